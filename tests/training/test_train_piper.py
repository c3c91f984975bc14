"""``train piper`` through the real CLI: train (small, 2 steps), export, speak by name, resume, refusals."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import pytest

from tests.helpers import cli_env, run_cli
from tests.training.conftest import SMALL, assert_speech, clean_env

pytestmark = pytest.mark.slow


def test_trained_voice_is_registered_and_spoken_by_name(trained, tmp_path):
    folder = trained["folder"]
    for name in ("mine.onnx", "mine.onnx.json", "training.json", "checkpoints/last.ckpt"):
        assert (folder / name).is_file(), name
    info = json.loads((folder / "training.json").read_text())
    assert info["steps"] == 2 and info["settings"]["arch"] == "small"
    assert info["data"]["utterances"] == 8 and info["versions"]["piper-tts"]
    assert [loss["step"] for loss in info["losses"]] == [1, 2]
    config = json.loads((folder / "mine.onnx.json").read_text())
    assert config["audio"]["sample_rate"] == 22050 and config["espeak"]["voice"] == "en-us"
    assert trained["stdout"].strip().endswith("mine.onnx")
    # Off a terminal: one-line records, never a carriage-return bar.
    assert "\r" not in trained["stderr"] and "step 2/2" in trained["stderr"]

    env = clean_env(trained["home"])
    out = tmp_path / "mine.wav"
    proc = run_cli("piper-infer", "mine", "Hello there, this is my own voice.", "-o", out, env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert_speech(out)
    listed = run_cli("voices", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr.decode()
    assert any(v["name"] == "mine" and v["engine"] == "piper" for v in json.loads(listed.stdout))


def test_resume_continues_the_step_count(trained_copy, dataset):
    env = clean_env(trained_copy["home"])
    proc = run_cli("train", "piper", "--dataset", dataset, "--voice", "mine", "--resume", "--max-steps", "3", *SMALL,
                   env=env, timeout=1200)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert "resuming from step 2" in proc.stderr.decode()
    info = json.loads((trained_copy["folder"] / "training.json").read_text())
    assert info["steps"] == 3
    assert [run["from_step"] for run in info["runs"]] == [0, 2]


def test_resume_without_a_checkpoint_is_exit_2(dataset, tmp_path):
    proc = run_cli("train", "piper", "--dataset", dataset, "--voice", "fresh", "--resume", *SMALL,
                   env=clean_env(tmp_path))
    assert proc.returncode == 2 and b"nothing to resume" in proc.stderr


class _Payload:
    """Unpickling this runs a command: what a hostile checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.call, (["touch", str(self.marker)],))


def test_unsafe_warmstart_is_refused(dataset, tmp_path):
    pytest.importorskip("torch")
    import torch

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": _Payload(marker)}, evil, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    proc = run_cli("train", "piper", "--dataset", dataset, "--voice", "evil", "--warmstart", evil, *SMALL,
                   env=clean_env(tmp_path))
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert "refusing to load warm-start checkpoint" in err and "code that would run on load" in err
    assert not marker.exists()
    assert not (tmp_path / "data" / "demod-voice" / "training").exists()  # refused before any job was made


def test_not_ready_is_exit_2_without_force(dataset, tmp_path):
    proc = run_cli("train", "piper", "--dataset", dataset, "--voice", "early", "--arch", "small",
                   env=clean_env(tmp_path))
    assert proc.returncode == 2
    assert b"not ready to train" in proc.stderr and b"--force" in proc.stderr


def test_missing_train_extra_gives_the_install_hint(dataset, tmp_path):
    # The demo environment has no torch/lightning: the command says how to add the extra, before any work.
    code = ("import sys\nsys.modules['lightning'] = None\nfrom demod_voice import cli\n"
            "raise SystemExit(cli.main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", code, "train", "piper", "--dataset", str(dataset), "--voice", "x"],
                          capture_output=True, env=cli_env(clean_env(tmp_path)), timeout=300)
    assert proc.returncode == 2, proc.stderr.decode()
    err = proc.stderr.decode()
    assert "lightning" in err and "make install EXTRAS=train" in err and "pip install '.[train]'" in err
    assert not (tmp_path / "data" / "demod-voice" / "training").exists()


def test_ctrl_c_stops_after_a_checkpoint(dataset, tmp_path):
    import signal
    import time

    env = cli_env({**clean_env(tmp_path), "DEMOD_VOICE_TRAINING__PROGRESS_EVERY_S": "0"})
    proc = subprocess.Popen([sys.executable, "-m", "demod_voice", "train", "piper", "--dataset", str(dataset),
                             "--voice", "stopped", "--max-steps", "50", *SMALL], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env)
    lines = []
    try:
        deadline = time.monotonic() + 1200
        for raw in proc.stderr:
            lines.append(raw.decode())
            if raw.startswith(b"step 1/50"):
                proc.send_signal(signal.SIGINT)
                break
            assert time.monotonic() < deadline, lines
        lines += [raw.decode() for raw in proc.stderr]
        code = proc.wait(timeout=1200)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = "".join(lines)
    assert code == 130, err
    assert "stopping after the current step" in err and "continue with --resume" in err
    folder = tmp_path / "data" / "demod-voice" / "voices" / "trained" / "stopped"
    assert (folder / "checkpoints" / "last.ckpt").is_file()
    assert not (folder / "stopped.onnx").exists()
    status = json.loads(next((tmp_path / "data" / "demod-voice" / "training" / "jobs").glob("*/status.json")).read_text())
    assert status["status"] == "cancelled" and 1 <= status["step"] < 50


def test_a_log_gets_a_line_at_least_every_ten_seconds(dataset, tmp_path):
    """#34 item 5: off a terminal, `train` writes a record at least every 10 s (training.progress_every_s),
    also while the start or one long step gives no step record; each line is timed as it arrives."""
    import time

    env = cli_env(clean_env(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "demod_voice", "train", "piper", "--dataset", str(dataset),
                             "--voice", "logged", "--max-steps", "2", *SMALL], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env)
    started = time.monotonic()
    arrivals, lines = [started], []
    try:
        for raw in proc.stderr:
            arrivals.append(time.monotonic())
            lines.append(raw.decode())
        code = proc.wait(timeout=1200)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = "".join(lines)
    assert code == 0, err
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert max(gaps) <= 12.0, (max(gaps), err)  # 10 s plus the follower's 0.5 s poll and the load here
    assert any(line.startswith("training logged: ") for line in lines) or time.monotonic() - started < 12, err
