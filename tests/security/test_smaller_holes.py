"""Item 7 of issue #18: the smaller holes, each as the hostile user or operator found it.

Shutdown bounded by --graceful-timeout, a port in use, batch state lock and self-overwrite, non-UTF-8
argv, /dev/zero as reference audio, /dev/full as stdout, broken voice configs, an unsafe XTTS checkpoint.
Every one must end in one ``error:`` line with the documented exit code, never "please report it".
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import cli_env, run_cli
from tests.server.conftest import start_server, stop_server


def assert_clear_error(proc: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == code, err
    assert err.count("error: ") == 1 and "please report" not in err and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


# --- serve ---------------------------------------------------------------------------------

def test_port_in_use_exits_1_with_an_error_line(isolated_home):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_cli("serve", "--port", str(port), timeout=120)
    assert_clear_error(proc, 1, f"127.0.0.1:{port}", "in use")


def test_graceful_timeout_bounds_shutdown(tmp_path, joe_voice):
    proc, url = start_server(tmp_path, "server:\n  cpu_workers: 1\n", ("--graceful-timeout", "2", "--preload"))
    # ~3000 characters of speech: half a minute or more of synthesis on these cores
    text = " ".join(f"Sentence number {i} keeps the engine busy for a while longer." for i in range(48))
    answer: dict = {}

    def long_request() -> None:
        try:
            answer["status"] = httpx.post(url + "/api/tts", json={"text": text, "cache": False}, timeout=300).status_code
        except httpx.HTTPError as exc:
            answer["error"] = type(exc).__name__

    thread = threading.Thread(target=long_request, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while httpx.get(url + "/health", timeout=5).json()["active_jobs"] < 1:
        assert time.monotonic() < deadline, "the long request never started"
        time.sleep(0.2)
    asked = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(25)  # a bound far below the synthesis time, not a timing measurement
    except subprocess.TimeoutExpired:
        stop_server(proc)
        pytest.fail("the server still ran 25 s after SIGTERM with --graceful-timeout 2")
    assert proc.returncode == 0
    assert time.monotonic() - asked < 25
    thread.join(30)
    assert answer.get("status") != 200  # the request was cut, not finished


# --- batch ---------------------------------------------------------------------------------

def write_jobs(folder: Path, voice: Path, outputs: list[str]) -> Path:
    jobs = folder / "jobs.jsonl"
    jobs.write_text("".join(json.dumps({"engine": "piper", "model": str(voice), "output": out, "format": "wav",
                                        "text": f"Line {i} of a long batch, spoken slowly and clearly."}) + "\n"
                            for i, out in enumerate(outputs)))
    return jobs


def test_batch_output_may_not_be_its_own_state(isolated_home, joe_voice, tmp_path):
    jobs = write_jobs(tmp_path, joe_voice, ["ok.wav", "jobs.jsonl.batch-state.sqlite"])
    proc = run_cli("batch", str(jobs), cwd=tmp_path)
    assert_clear_error(proc, 2, "resume state")
    assert not (tmp_path / "ok.wav").exists()
    write_jobs(tmp_path, joe_voice, ["ok.wav", "jobs.jsonl.batch-state.sqlite-wal"])
    assert_clear_error(run_cli("batch", str(jobs), cwd=tmp_path), 2, "resume state")
    write_jobs(tmp_path, joe_voice, ["jobs.jsonl"])  # the job file itself: that job is invalid (exit 1)
    assert run_cli("batch", str(jobs), cwd=tmp_path).returncode == 1
    assert json.loads(jobs.read_text())["output"] == "jobs.jsonl"  # the job file survived


def test_second_batch_on_the_same_state_exits_2_naming_the_holder(isolated_home, joe_voice, tmp_path):
    jobs = write_jobs(tmp_path, joe_voice, [f"out{i:02d}.wav" for i in range(60)])
    first = subprocess.Popen([sys.executable, "-m", "demod_voice", "batch", str(jobs)], cwd=tmp_path, env=cli_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lock = tmp_path / "jobs.jsonl.batch-state.sqlite.lock"
    try:
        deadline = time.monotonic() + 120
        while not (lock.exists() and lock.read_text().strip()):
            assert first.poll() is None and time.monotonic() < deadline, "the first run never took its lock"
            time.sleep(0.1)
        second = run_cli("batch", str(jobs), cwd=tmp_path)
        assert first.poll() is None, "the first run ended before the second was tried"
        assert_clear_error(second, 2, f"pid {first.pid}", "in use")
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(120)
    # once the holder is gone (even killed), the state is free again
    again = run_cli("batch", str(jobs), "--dry-run", cwd=tmp_path)
    assert again.returncode == 0, again.stderr


# --- command line --------------------------------------------------------------------------

def test_non_utf8_argv_exits_2(isolated_home, joe_voice, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "demod_voice", "piper-infer", str(joe_voice).encode(), b"caf\xe9 \xff",
                           "-o", "x.wav"], capture_output=True, env=cli_env(), cwd=tmp_path, timeout=120)
    assert_clear_error(proc, 2, "not valid UTF-8")


@pytest.mark.slow
def test_dev_zero_as_reference_is_bounded(isolated_home, xtts_checkpoint, tmp_path):
    proc = run_cli("xtts-zero-shot", "/dev/zero", "Hello.", "--model-dir", xtts_checkpoint, "-o", tmp_path / "x.wav",
                   timeout=600)
    assert_clear_error(proc, 2, "/dev/zero")


def test_reading_audio_is_bounded_for_fifos_and_long_files(tmp_path):
    import numpy as np
    import soundfile as sf

    from demod_voice import audio
    from demod_voice.errors import InputError

    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(16000 * 30, dtype=np.float32), 16000)
    assert audio.read(long, max_seconds=2.5).duration == pytest.approx(2.5)
    with pytest.raises(InputError, match="larger than"):
        audio.read(long, max_bytes=100_000)
    fifo = tmp_path / "ref.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as fh:
            fh.write(long.read_bytes())

    threading.Thread(target=feed, daemon=True).start()
    assert audio.read(fifo, what="reference audio").duration == pytest.approx(30.0)


def test_full_stdout_is_a_clear_error(isolated_home, joe_voice, tmp_path):
    with open("/dev/full", "wb") as full:
        for args in (("piper-infer", str(joe_voice), "Hello.", "-o", "-"), ("config", "show")):
            proc = subprocess.run([sys.executable, "-m", "demod_voice", *args], stdout=full, stderr=subprocess.PIPE,
                                  env=cli_env(), cwd=tmp_path, timeout=300)
            assert_clear_error(proc, 1, "cannot write standard output")


@pytest.mark.parametrize("field, value, needle", [("sample_rate", -5, "sample_rate"),
                                                  ("espeak", "xx-nonexistent", "espeak")])
def test_broken_voice_config_is_an_input_error(isolated_home, joe_voice, tmp_path, field, value, needle):
    import shutil

    model = tmp_path / "broken.onnx"
    shutil.copyfile(joe_voice, model)  # a copy: a symlink would resolve to the real voice and its config
    config = json.loads(Path(f"{joe_voice}.json").read_text())
    if field == "sample_rate":
        config["audio"]["sample_rate"] = value
    else:
        config["espeak"] = {"voice": value}
    Path(f"{model}.json").write_text(json.dumps(config))
    proc = run_cli("piper-infer", model, "Hello there.", "-o", tmp_path / "x.wav", cwd=tmp_path)
    assert_clear_error(proc, 2, needle)


@pytest.mark.slow
def test_unsafe_xtts_checkpoint_is_refused_with_exit_2(isolated_home, xtts_checkpoint, speech_wav, tmp_path):
    import shutil

    torch = pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil-xtts"
    shutil.copytree(xtts_checkpoint, evil)
    torch.save({"model": {}, "payload": _Boom(str(marker))}, evil / "model.pth")
    proc = run_cli("xtts-zero-shot", speech_wav, "Hello.", "--model-dir", evil, "-o", tmp_path / "x.wav", timeout=600)
    err = assert_clear_error(proc, 2, "code that would run on load", "models pull xtts-v2")
    assert "weights_only" not in err and "Warning" not in err  # why it was refused, never how to switch it off
    assert not marker.exists()


class _Boom:
    """Unpickling this would create a file: proof that nothing ran."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))

