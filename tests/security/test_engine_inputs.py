"""Items 3-5 of issue #18: engine parameters, bounded work per request, abandoned requests.

The behaviour lives in the engine layer (adapters, options from the config schema, Piper sentence
splitting, cancellation); these tests hold it from the outside, through every front end: config files,
the CLI, batch rows and the real HTTP server.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
import uuid

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.helpers import cli_env, run_cli
from tests.security.conftest import client

HOSTILE = [("sentence_silence", 1e6), ("noise_scale", float("nan")), ("volume", 1e308), ("length_scale", -5.0),
           ("noise_w", float("inf")), ("length_scale", float("-inf"))]


def finite_speech(data: bytes) -> np.ndarray:
    samples, _ = sf.read(io.BytesIO(data), dtype="int16")
    assert len(samples) > 1000
    assert np.isfinite(samples.astype(np.float64)).all()
    assert np.mean(np.abs(samples.astype(np.int32)) >= 32767) < 0.01, "constant full-scale samples (NaN audio)"
    return samples


# --- item 3: one validation, every front end ------------------------------------------------

@pytest.mark.parametrize("key, value", [("piper.volume", ".nan"), ("piper.noise_scale", ".inf"),
                                        ("piper.sentence_silence", "1e6"), ("xtts.temperature", "-.inf")])
def test_config_refuses_non_finite_and_out_of_range(isolated_home, tmp_path, key, value):
    section, name = key.split(".")
    config = tmp_path / "c.yaml"
    config.write_text(f"{section}:\n  {name}: {value}\n")
    proc = run_cli("config", "validate", config)
    assert proc.returncode == 2, proc.stderr
    assert key in proc.stderr.decode()


@pytest.mark.parametrize("flag, value", [("--noise-scale", "nan"), ("--volume", "inf"), ("--length-scale", "-5"),
                                         ("--sentence-silence", "1e6"), ("--volume", "1e308")])
def test_cli_refuses_hostile_numbers(isolated_home, joe_voice, tmp_path, flag, value):
    proc = run_cli("piper-infer", joe_voice, "Hello.", flag, value, "-o", tmp_path / "x.wav")
    assert proc.returncode == 2, proc.stderr
    assert not (tmp_path / "x.wav").exists()


def test_batch_refuses_hostile_numbers(isolated_home, joe_voice, tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(json.dumps({"engine": "piper", "model": str(joe_voice), "text": "Hello.",
                                        "output": f"o{i}.wav", key: value}) + "\n"
                            for i, (key, value) in enumerate(HOSTILE)))
    proc = run_cli("batch", jobs, "--dry-run", cwd=tmp_path)
    err = proc.stderr.decode()
    assert err.count("invalid") >= len(HOSTILE), err


@pytest.mark.parametrize("key, value", HOSTILE)
def test_http_refuses_hostile_numbers_with_400(server, alice, key, value):
    body = json.dumps({"text": "Hello there.", "params": {key: value}})  # NaN/Infinity as Python's json writes them
    res = alice.post("/api/tts", content=body, headers={"Content-Type": "application/json"})
    assert res.status_code == 400, res.text
    assert key in res.json()["error"]["message"]


def test_input_errors_never_open_the_circuit_for_others(server, alice, bob):
    for _ in range(4):  # more than router.breaker_failures (2)
        alice.post("/api/tts", json={"text": "Hello there.", "params": {"sentence_silence": 1e6}})
    res = bob.post("/api/tts", json={"text": f"Still here {uuid.uuid4().hex[:4]}.", "format": "wav"})
    assert res.status_code == 200 and res.headers["x-engine"] == "piper"
    assert bob.get("/health").json()["engines"]["piper"]["circuit"] == "closed"


def test_nan_audio_is_never_cached(server, alice):
    body = json.dumps({"text": "Cache me not.", "params": {"noise_scale": float("nan")}, "format": "wav"})
    for _ in range(2):
        res = alice.post("/api/tts", content=body, headers={"Content-Type": "application/json"})
        assert res.status_code == 400
        assert res.headers.get("x-cache") != "hit"


# --- item 4: bounded work ------------------------------------------------------------------

def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), 0 once it has gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def reset_peak_rss(pid: int) -> None:
    """Start VmHWM afresh (Linux clear_refs "5"), so the peak is this request's, not the shared server's
    whole life (earlier tests send it 200 MB bodies and uploads)."""
    with open(f"/proc/{pid}/clear_refs", "w") as fh:
        fh.write("5")


@pytest.mark.slow
def test_long_unpunctuated_request_has_bounded_memory(server, alice):
    """4096 characters without punctuation: audio starts flowing and the server stays small.

    (Speaking all of it takes minutes; the first seconds show the text was split, where one 4096-character
    "sentence" used to take 6.9 GB before the first sample.)
    """
    text = " ".join(f"word{i % 50}" for i in range(700))[:4096]
    received = 0
    before = peak_rss_mb(server["proc"].pid)
    reset_peak_rss(server["proc"].pid)
    with alice.stream("POST", "/api/tts", json={"text": text, "format": "pcm", "stream": True, "cache": False},
                      timeout=600) as res:
        assert res.status_code == 200
        for block in res.iter_bytes():
            received += len(block)
            if received >= 3 * 22050 * 2:
                break
    assert received >= 3 * 22050 * 2
    peak = peak_rss_mb(server["proc"].pid)
    assert peak < 1024, f"peak {peak:.0f} MB during the request (server's peak before it: {before:.0f} MB)"


@pytest.mark.slow
def test_megabyte_text_file_through_the_cli_has_bounded_memory(isolated_home, joe_voice, tmp_path):
    """Stream a 1 MB unpunctuated text file; watch memory until a few seconds of audio came out, then stop."""
    text_file = tmp_path / "big.txt"
    text_file.write_text(("lots of words without any end " * 40_000)[:1_000_000])
    proc = subprocess.Popen([sys.executable, "-m", "demod_voice", "piper-infer", str(joe_voice), "--text-file",
                             str(text_file), "--stream"], env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    received, peak = 0, 0.0
    watcher_done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not watcher_done.is_set() and proc.poll() is None:
            peak = max(peak, peak_rss_mb(proc.pid))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        while received < 3 * 22050 * 2:  # three seconds of 16-bit audio at 22.05 kHz
            block = proc.stdout.read1(65536)
            if not block:
                break
            received += len(block)
    finally:
        watcher_done.set()
        watcher.join(5)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        err = proc.stderr.read().decode()
    assert "please report" not in err and "Traceback" not in err, err
    assert received >= 3 * 22050 * 2, f"no audio came out (exit {proc.returncode}): {err}"
    assert 0 < peak < 1024


MEMORY_BETWEEN_SENTENCES = """
import sys
from pathlib import Path
from demod_voice.engines.piper import engine as piper

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

engine = piper.load(Path(sys.argv[1]), "cpu")
list(engine.synthesize("Hello there.", piper.PiperOptions()))
before = rss_mb()
long_piece = " ".join(f"word{i % 50}" for i in range(40))[:150]  # ~15 s of audio in one network run
for _ in range(3):
    list(engine.synthesize(long_piece, piper.PiperOptions()))
print(before, rss_mb())
"""


@pytest.mark.slow
def test_piper_memory_falls_back_between_sentences(joe_voice):
    """A long sentence's working memory is handed back after it (shared arena shrunk per run), so a server
    that once spoke a long sentence does not keep its peak for every later request.

    Measured: the default arena kept ~1 GB after such sentences; the shrinking arena falls back to +44 MB, ONNX Runtime's own per-session arena kept +284 MB.
    """
    proc = subprocess.run([sys.executable, "-c", MEMORY_BETWEEN_SENTENCES, str(joe_voice)], capture_output=True,
                          text=True, env=cli_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr
    before, after = map(float, proc.stdout.split())
    assert after < before + 150, f"RSS {before:.0f} MB before, {after:.0f} MB after three long sentences"


# --- item 5: abandoned requests ------------------------------------------------------------

@pytest.mark.slow
def test_abandoned_requests_are_cancelled(server, bob):
    text = " ".join(f"Sentence {i} of a request that its client will abandon." for i in range(70))
    for _ in range(6):
        with client(server, "alice", timeout=1.0) as impatient:
            with pytest.raises(httpx.TimeoutException):
                impatient.post("/api/tts", json={"text": text, "cache": False})
    deadline = time.monotonic() + 60  # uncancelled, six such jobs on two workers run for minutes
    while bob.get("/health").json()["active_jobs"] > 0:
        assert time.monotonic() < deadline, "abandoned requests kept running"
        time.sleep(0.5)
    res = bob.post("/api/tts", json={"text": f"My turn {uuid.uuid4().hex[:4]}.", "format": "wav"})
    assert res.status_code == 200
