"""A server without torch (the `make demo` environment) says only what can run and keeps the voice asked
for (#34 B, C, E): /health, /api/engines, /v1/models; a saved voice whose engine cannot run is an error, not
Joe's voice, unless the request allows another speaker; over-long input is OpenAI's 400; a favicon is served."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import run_cli
from tests.nodeps import hidden_env
from tests.server.conftest import start_server, stop_server


@pytest.fixture(scope="module")
def bare(tmp_path_factory, joe_voice):
    home = tmp_path_factory.mktemp("bare-home")
    env = hidden_env(home / "hide")
    xdg = {"XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data"),
           "XDG_CACHE_HOME": str(home / "cache")}
    sample = home / "me.wav"
    made = run_cli("piper-infer", joe_voice, "This is a sample of my voice, long enough to clone from.", "-o", sample,
                   env={**env, **xdg}, timeout=300)
    assert made.returncode == 0, made.stderr
    for args in (["voices", "add", "me", "--sample", sample], ["voices", "reference", "auto", "me"]):
        proc = run_cli(*args, env={**env, **xdg}, timeout=300)
        assert proc.returncode == 0, proc.stderr
    proc, url = start_server(home, "server:\n  cpu_workers: 1\n", env_extra={"PYTHONPATH": env["PYTHONPATH"]})
    with httpx.Client(base_url=url, timeout=120) as client:
        yield client
    stop_server(proc)


def test_engines_that_cannot_run_are_not_listed(bare):
    engines = bare.get("/api/engines").json()["engines"]
    for name in ("xtts", "rvc", "styletts2"):
        assert engines[name]["installed"] is False and engines[name]["available"] is False, engines[name]
    assert "torch" in engines["xtts"]["problem"]
    assert engines["piper"]["installed"] is True and engines["piper"]["available"] is True
    assert engines["gpt-sovits"]["available"] is False  # no api_v2 server answers
    health = bare.get("/health").json()["engines"]
    assert health["xtts"]["installed"] is False and health["rvc"]["available"] is False
    models = [m["id"] for m in bare.get("/v1/models").json()["data"]]
    assert "piper" in models and "tts-1" in models
    for name in ("xtts", "styletts2", "gpt-sovits"):
        assert name not in models
        assert bare.get(f"/v1/models/{name}").status_code == 404


def test_a_saved_voice_is_not_spoken_by_someone_else(bare):
    for model in ("tts-1-hd", "tts-1"):
        res = bare.post("/v1/audio/speech", json={"model": model, "input": "Hello there.", "voice": "me"})
        assert res.status_code == 400, (model, res.status_code, res.headers)
        error = res.json()["error"]
        assert error["code"] == "voice_unavailable" and error["param"] == "voice"
        assert "'me'" in error["message"] and "xtts" in error["message"] and "allow_other_voice" in error["hint"]
    native = bare.post("/api/tts", json={"text": "Hello there.", "voice": "me"})
    assert native.status_code == 400 and native.json()["error"]["code"] == "voice_unavailable"


def test_another_speaker_only_when_asked_and_then_said(bare):
    res = bare.post("/v1/audio/speech", json={"model": "tts-1-hd", "input": "Hello there.", "voice": "me",
                                              "response_format": "wav", "allow_other_voice": True})
    assert res.status_code == 200 and res.content[:4] == b"RIFF"
    assert res.headers["X-Engine"] == "piper"
    assert res.headers["X-Voice"] == "en_US-joe-medium"
    assert "voice: 'me' spoken as en_US-joe-medium" in res.headers["X-Fallback"]
    again = bare.post("/api/tts", json={"text": "Hello there.", "voice": "me", "allow_other_voice": True})
    assert again.status_code == 200 and again.headers["X-Voice"] == "en_US-joe-medium"


def test_catalog_voices_still_answer(bare):
    res = bare.post("/v1/audio/speech", json={"model": "tts-1-hd", "input": "Hello there.", "voice": "alloy",
                                              "response_format": "wav"})
    assert res.status_code == 200 and res.headers["X-Engine"] == "piper"


def test_over_long_input_is_openais_400(bare):
    res = bare.post("/v1/audio/speech", json={"model": "tts-1", "input": "a" * 4097, "voice": "alloy"})
    assert res.status_code == 400
    error = res.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "string_above_max_length",
                                                              "input")


def test_over_long_input_is_the_sdks_bad_request(bare):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=str(bare.base_url) + "/v1", api_key="none", max_retries=0)
    with pytest.raises(openai.BadRequestError):
        client.audio.speech.create(model="tts-1", voice="alloy", input="a" * 4097)


def test_favicon_is_served(bare):
    res = bare.get("/favicon.ico")
    assert res.status_code == 200 and res.headers["content-type"].startswith("image/svg+xml")
    assert res.content.startswith(b"<svg")
