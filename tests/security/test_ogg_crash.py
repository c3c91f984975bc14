"""Issue 24 item 1: one long Ogg Vorbis answer must not crash the process.

libsndfile 1.2.2 hands a whole ``sf.write`` to libvorbis at once and dies with SIGSEGV on about two
minutes of 22 kHz audio in one write (``/api/tts`` ogg, ogg with timestamps, ``/api/convert``, a batch
job, the CLI with the audio cache). Every writer now feeds libsndfile in bounded blocks
(``audio.write_blocks``). Ten minutes of speech are cheap to make: 58 one-word sentences, each followed
by Piper's maximum 10 s of ``sentence_silence``. Every encoder run is in a child process, so a crash
fails the test instead of killing pytest.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys

import pytest
import soundfile as sf

from demod_voice.batch.local import _death
from tests.helpers import cli_env, run_cli

TEN_MINUTES_TEXT = "Yes. " * 58  # 58 x (~0.4 s of speech + 10 s of silence) ~ 10 minutes


def _in_child(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, env=cli_env(), timeout=timeout)


@pytest.mark.parametrize("fmt", ["ogg", "opus", "mp3"])
def test_whole_file_encoders_survive_ten_minutes(fmt):
    """``audio.encode`` (batch workers, CLI cache, ``/api/convert``) and the server's ``encode_whole``."""
    code = f"""
import io, numpy as np, soundfile as sf
from demod_voice.audio import Audio, encode
from demod_voice.server.service import encode_whole
rate = 22050
samples = (0.1 * np.sin(np.arange(rate * 600) * (2 * np.pi * 220 / rate))).astype("float32")
for fn in (encode, encode_whole):
    data = fn(Audio(samples, rate), "{fmt}")
    print(round(sf.info(io.BytesIO(data)).duration, 1))
"""
    proc = _in_child(code)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr.decode()[-2000:]}"
    for line in proc.stdout.decode().split():
        assert float(line) == pytest.approx(600.0, abs=0.2)


@pytest.mark.slow
def test_ogg_encoder_survives_an_hour_in_a_small_stack_thread():
    """The proof the server relies on: an hour of Ogg Vorbis in one call, in a thread with a 512 KiB stack."""
    code = """
import io, threading, numpy as np, soundfile as sf
from demod_voice.audio import Audio, encode
threading.stack_size(512 * 1024)
out = {}
samples = np.zeros(22050 * 3600, "float32")
thread = threading.Thread(target=lambda: out.update(data=encode(Audio(samples, 22050), "ogg")))
thread.start(); thread.join()
print(sf.info(io.BytesIO(out["data"])).duration)
"""
    proc = _in_child(code, timeout=600)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr.decode()[-2000:]}"
    assert float(proc.stdout.decode()) == pytest.approx(3600.0, abs=0.2)


def test_cli_writes_ten_minutes_of_ogg(isolated_home, joe_voice, tmp_path):
    """piper-infer with the audio cache on encodes the whole answer at once (the old crash)."""
    out = tmp_path / "long.ogg"
    proc = run_cli("piper-infer", joe_voice, TEN_MINUTES_TEXT, "-o", out, "--sentence-silence", "10",
                   env={"DEMOD_VOICE_CACHE__ENABLED": "1"}, timeout=600)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr.decode()[-2000:]}"
    assert sf.info(str(out)).duration > 590


def test_batch_writes_ten_minutes_of_ogg(isolated_home, joe_voice, tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"engine": "piper", "voice": str(joe_voice), "text": TEN_MINUTES_TEXT,
                                "output": "long.ogg"}) + "\n", encoding="utf-8")
    proc = run_cli("batch", jobs, cwd=tmp_path, env={"DEMOD_VOICE_PIPER__SENTENCE_SILENCE": "10"}, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert sf.info(str(tmp_path / "long.ogg")).duration > 590


def test_server_answers_ten_minutes_of_ogg_and_keeps_serving(server, alice):
    body = {"text": TEN_MINUTES_TEXT, "format": "ogg", "cache": False, "params": {"sentence_silence": 10}}
    r = alice.post("/api/tts", json=body, timeout=300)
    assert r.status_code == 200, r.text
    assert sf.info(io.BytesIO(r.content)).duration > 590
    r = alice.post("/api/tts", json={**body, "timestamps": True}, timeout=300)
    assert r.status_code == 200, r.text
    audio = base64.b64decode(r.json()["audio"])
    assert sf.info(io.BytesIO(audio)).duration > 590
    assert server["proc"].poll() is None
    assert alice.get("/health").status_code == 200


def test_a_worker_killed_by_a_signal_is_reported_by_its_name():
    """multiprocessing gives -signum as the exit code of a worker killed by a signal."""
    crashed = _death(-11)
    assert "SIGSEGV" in crashed["message"] and "memory" not in crashed["hint"]
    killed = _death(-9)
    assert "SIGKILL" in killed["message"] and "out-of-memory" in killed["hint"]
    assert "exit code 3" in _death(3)["message"]


def test_batch_reports_a_crashed_worker_with_the_signal(isolated_home, joe_voice, tmp_path):
    """A worker that really dies by SIGSEGV mid-job: the job's error names the signal."""
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"engine": "piper", "voice": str(joe_voice), "text": "Hello there.",
                                "output": "a.wav"}) + "\n", encoding="utf-8")
    # a sitecustomize in the workers' path makes the Piper engine crash the worker process natively
    crash = tmp_path / "crash"
    crash.mkdir()
    (crash / "sitecustomize.py").write_text(
        "import os, signal, sys\n"
        "if os.environ.get('CRASH_BATCH_WORKER') and '--multiprocessing-fork' in sys.argv:\n"
        "    import demod_voice.batch.worker as w\n"
        "    w.Worker.run = lambda self, job: os.kill(os.getpid(), signal.SIGSEGV)\n")
    env = {"PYTHONPATH": f"{crash}:{cli_env()['PYTHONPATH']}", "CRASH_BATCH_WORKER": "1"}
    proc = run_cli("batch", jobs, cwd=tmp_path, env=env, timeout=300)
    err = proc.stderr.decode()
    assert proc.returncode != 0
    assert "SIGSEGV" in err and "may have run out of memory" not in err, err
