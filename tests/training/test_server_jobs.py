"""The training job API on a real server: start, poll to ``succeeded`` with progress, cancel, speak the voice,
and per-user isolation (another user gets 404 for the job and the voice)."""

from __future__ import annotations

import io
import shutil
import time

import httpx
import pytest
import soundfile as sf

from tests.server.conftest import auth_config, client_for, start_server, stop_server
from tests.training.conftest import SENTENCES, assert_speech

pytestmark = pytest.mark.slow
JOB = {"max_steps": 1, "arch": "small", "batch_size": 2, "force": True}


def _wait(client: httpx.Client, job_id: str, timeout: float = 1500) -> tuple[dict, list[dict]]:
    """Poll a job until it ends; (its last view, every view seen)."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        res = client.get(f"/api/training/jobs/{job_id}")
        assert res.status_code == 200, res.text
        seen.append(res.json())
        if seen[-1]["status"] in ("succeeded", "failed", "cancelled"):
            return seen[-1], seen
        time.sleep(1.0)
    raise AssertionError(f"job {job_id} did not finish: {seen[-1]}")


def _speak(client: httpx.Client, voice: str, tmp_path, native: bool = False):
    if native:
        res = client.post("/api/tts", json={"text": "Hello from my trained voice.", "voice": voice, "fallback": False})
    else:
        res = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "Hello from my trained voice.",
                                                    "voice": voice, "response_format": "wav"})
    if res.status_code != 200:
        return res
    out = tmp_path / f"{voice}-{'native' if native else 'openai'}.wav"
    out.write_bytes(res.content)
    assert_speech(out)
    return res


def test_single_user_job_and_speech(trained, dataset, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(trained["home"], home, symlinks=True)
    proc, url = start_server(home, "server:\n  cpu_workers: 1\n")
    try:
        with httpx.Client(base_url=url, timeout=300) as client:
            # The voice the CLI trained is spoken by name, by both APIs.
            assert _speak(client, "mine", tmp_path).status_code == 200
            assert _speak(client, "mine", tmp_path, native=True).status_code == 200

            ready = client.get("/api/training/readiness", params={"engine": "piper", "dataset": str(dataset)})
            assert ready.status_code == 200 and ready.json()["samples"] == 8 and ready.json()["ready"] is False
            res = client.post("/api/training/jobs", json={"dataset": str(dataset), "voice": "served", **JOB,
                                                          "force": False})
            assert res.status_code == 400 and "not ready" in res.json()["error"]["message"]

            res = client.post("/api/training/jobs", json={"dataset": str(dataset), "voice": "served", **JOB})
            assert res.status_code == 202, res.text
            body = res.json()
            assert set(body) == {"id", "status"} and body["status"] in ("queued", "running")
            final, _ = _wait(client, body["id"])
            assert final["status"] == "succeeded", final
            assert final["progress"]["step"] == 1 and final["progress"]["epoch"] == 0
            assert final["progress"]["loss"] is None or final["progress"]["loss"] > 0
            assert "eta_s" in final["progress"]
            assert _speak(client, "served", tmp_path).status_code == 200
            assert "served" in [v["name"] for v in client.get("/api/voices").json()["voices"]]
    finally:
        stop_server(proc)


def test_keyed_users_jobs_cancel_and_isolation(recordings, tmp_path):
    proc, url = start_server(tmp_path / "home", auth_config() + "  cpu_workers: 1\n")
    try:
        with client_for({"url": url}, "alice") as alice, client_for({"url": url}, "bob") as bob:
            assert alice.post("/api/voices", json={"name": "anna", "engine": "xtts"}).status_code == 201
            for i, wav in enumerate(sorted((recordings / "wavs").glob("*.wav"))):
                with open(wav, "rb") as fh:
                    res = alice.post("/api/voices/anna/samples", files={"file": (wav.name, fh, "audio/wav")},
                                     data={"transcript": SENTENCES[i]})
                assert res.status_code == 201, res.text
            ready = alice.get("/api/training/readiness", params={"engine": "piper", "profile": "anna"}).json()
            assert ready["samples"] == 8 and ready["untranscribed"] == 0
            # A dataset path on the server's disk is for single-user mode only; another user's profile is 404.
            assert alice.post("/api/training/jobs", json={"dataset": str(recordings), "voice": "x", **JOB}
                              ).status_code == 403
            assert bob.post("/api/training/jobs", json={"profile": "anna", "voice": "x", **JOB}).status_code == 404

            first = alice.post("/api/training/jobs", json={"profile": "anna", "voice": "annas", **JOB})
            assert first.status_code == 202, first.text
            second = alice.post("/api/training/jobs", json={"profile": "anna", "voice": "later", **JOB}).json()
            # One job at a time: the second waits, and a waiting job is cancelled at once.
            assert alice.get(f"/api/training/jobs/{second['id']}").json()["status"] == "queued"
            cancelled = alice.delete(f"/api/training/jobs/{second['id']}")
            assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

            job_id = first.json()["id"]
            assert bob.get(f"/api/training/jobs/{job_id}").status_code == 404
            assert bob.delete(f"/api/training/jobs/{job_id}").status_code == 404
            assert job_id not in [j["id"] for j in bob.get("/api/training/jobs").json()["jobs"]]
            final, _ = _wait(alice, job_id)
            assert final["status"] == "succeeded", final
            assert alice.get(f"/api/training/jobs/{second['id']}").json()["status"] == "cancelled"

            assert _speak(alice, "annas", tmp_path).status_code == 200
            assert "annas" in [v["name"] for v in alice.get("/api/voices").json()["voices"]]
            denied = bob.post("/v1/audio/speech", json={"model": "tts-1", "input": "hi", "voice": "annas"})
            assert denied.status_code == 404
            assert "annas" not in [v["name"] for v in bob.get("/api/voices").json()["voices"]]
            assert sf.info(io.BytesIO(alice.post("/api/tts", json={"text": "hi", "voice": "annas"}).content)
                           ).samplerate == 22050
    finally:
        stop_server(proc)


def test_unknown_job_is_404(tmp_path):
    proc, url = start_server(tmp_path / "home", "")
    try:
        assert httpx.get(url + "/api/training/jobs/20260101-000000-deadbeef").status_code == 404
        assert httpx.get(url + "/api/training/jobs/..%2f..").status_code == 404
    finally:
        stop_server(proc)

