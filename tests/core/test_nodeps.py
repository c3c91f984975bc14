"""Without torch (the `make demo` environment): engine commands exit 2 with the install line, packages are
checked before weights, and nothing says "unexpected ... please report it" (#34 A, B, H).

The child interpreters really lack the packages (tests/nodeps.py hides them from the path finder), so the
genuine missing-package code paths run.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from tests.helpers import run_cli
from tests.nodeps import hidden_env


@pytest.fixture
def nodeps(tmp_path):
    home = tmp_path / "home"
    return hidden_env(tmp_path / "hide", extra={"XDG_DATA_HOME": str(home / "data"),
                                                 "XDG_CONFIG_HOME": str(home / "config"),
                                                 "XDG_CACHE_HOME": str(home / "cache")})


@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "in.wav"
    t = np.arange(22050) / 22050
    sf.write(path, (0.2 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), 22050)
    return path


def test_the_blocker_hides_torch(nodeps):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "import importlib.util as u; print(u.find_spec('torch')); "
                           "import torch"], env=nodeps, capture_output=True, text=True)
    assert proc.stdout.strip() == "None" and "ModuleNotFoundError: No module named 'torch'" in proc.stderr


@pytest.mark.parametrize("case", ["rvc-convert", "rvc-convert-name", "piper-infer-rvc", "rvc-add", "xtts-zero-shot",
                                  "preprocess-transcribe"])
def test_engine_commands_need_their_packages_first(case, nodeps, wav, tmp_path, joe_voice):
    pth = tmp_path / "voice.pth"
    pth.write_bytes(b"not read: the packages are checked first")
    data = tmp_path / "data"
    data.mkdir()
    args = {
        "rvc-convert": ["rvc-convert", wav, "-m", pth, "-o", tmp_path / "o.wav"],
        "rvc-convert-name": ["rvc-convert", wav, "-m", "somebody", "-o", tmp_path / "o.wav"],
        "piper-infer-rvc": ["piper-infer", joe_voice, "Hello.", "-o", tmp_path / "o.wav", "--rvc", pth],
        "rvc-add": ["rvc", "add", "somebody", pth],
        "xtts-zero-shot": ["xtts-zero-shot", wav, "Hello.", "-o", tmp_path / "o.wav"],
        "preprocess-transcribe": ["piper-preprocess", "--input-dir", data, "--output-dir", tmp_path / "ds",
                                  "--transcribe"],
    }[case]
    proc = run_cli(*args, env=nodeps, timeout=300)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert "make install EXTRAS=" in err and "pip install '.[" in err, err
    assert "unexpected" not in err and "please report" not in err and "Traceback" not in err, err
    # packages before weights: no word about hubert_base.pt, XTTS-v2 or a Whisper model to download
    assert "models pull" not in err and "hubert" not in err.lower() and "XTTS-v2" not in err, err
    assert not (tmp_path / "o.wav").exists() and not (tmp_path / "ds").exists()


def test_a_missing_optional_package_is_never_unexpected(tmp_path, joe_voice):
    """Any optional package missing where it is imported (here PyAV, for aac) is exit 2 with its extra."""
    env = hidden_env(tmp_path / "hide", hidden=("av",))
    proc = run_cli("piper-infer", joe_voice, "Hello.", "-o", tmp_path / "o.aac", env=env, timeout=300)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert "'av'" in err or "PyAV" in err or " av " in err, err
    assert "make install EXTRAS=" in err and "unexpected" not in err and "please report" not in err, err
    assert not (tmp_path / "o.aac").exists()


def test_health_reports_packages_and_real_weights(nodeps, tmp_path):
    proc = run_cli("health", "--json", env=nodeps, timeout=300)
    report = json.loads(proc.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["xtts"]["ok"] is False and "torch" in checks["xtts"]["detail"]
    assert checks["rvc"]["ok"] is False and "make install EXTRAS=rvc" in checks["rvc"]["detail"]
    assert checks["xtts-weights"]["ok"] is False and checks["xtts-weights"]["data"]["status"] == "skipped"
    assert checks["piper"]["ok"] is True and report["healthy"] is True


def test_health_names_missing_weights_and_the_pull_command(isolated_home):
    pytest.importorskip("TTS")
    proc = run_cli("health", "--json", timeout=300)
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["xtts"]["ok"] is True  # the packages are here
    assert checks["xtts-weights"]["ok"] is False
    assert "demod-voice models pull xtts-v2" in checks["xtts-weights"]["detail"]
    assert "demod-voice models pull rvc-aux" in checks["rvc-weights"]["detail"]
    table = run_cli("health", timeout=300).stdout.decode()
    assert "xtts-weights" in table and "models pull xtts-v2" in table


def test_preprocess_writes_the_piper1_layout_without_torch(nodeps, tmp_path, joe_voice):
    """The README's piper-preprocess example works where torch is absent: piper1 only, said once."""
    data = tmp_path / "data"
    (data / "wavs").mkdir(parents=True)
    t = np.arange(2 * 22050) / 22050
    for i in range(3):
        sf.write(data / "wavs" / f"u{i}.wav", (0.3 * np.sin(2 * np.pi * (140 + 20 * i) * t)).astype(np.float32), 22050)
    (data / "metadata.csv").write_text("".join(f"u{i}|Hello number {i}.\n" for i in range(3)), encoding="utf-8")
    proc = run_cli("piper-preprocess", "--input-dir", data, "--output-dir", tmp_path / "ds", env=nodeps, timeout=300)
    err = proc.stderr.decode()
    assert "torch is not installed" in err and "Traceback" not in err, err
    legacy = run_cli("piper-preprocess", "--input-dir", data, "--output-dir", tmp_path / "ds2", "--trainer", "legacy",
                     env=nodeps, timeout=300)
    assert legacy.returncode == 2 and "--trainer piper1" in legacy.stderr.decode()
    assert not (tmp_path / "ds2").exists()
    if proc.returncode == 0:
        assert (tmp_path / "ds" / "metadata.csv").is_file() and not (tmp_path / "ds" / "dataset.jsonl").exists()


def test_say_keeps_the_voice_asked_for(nodeps, tmp_path, joe_voice):
    """`say --voice me` (a cloned voice whose engine cannot run) never exits 0 in Joe's voice unasked."""
    sample = tmp_path / "me.wav"
    assert run_cli("piper-infer", joe_voice, "This is a sample of my voice, long enough to clone from.", "-o", sample,
                   env=nodeps, timeout=300).returncode == 0
    for args in (["voices", "add", "me", "--sample", sample], ["voices", "reference", "auto", "me"]):
        assert run_cli(*args, env=nodeps, timeout=300).returncode == 0
    refused = run_cli("say", "--voice", "me", "Hello there.", "-o", tmp_path / "o.wav", env=nodeps, timeout=300)
    err = refused.stderr.decode()
    assert refused.returncode == 2 and "voice 'me' cannot be spoken now" in err and "--allow-other-voice" in err, err
    assert not (tmp_path / "o.wav").exists()
    allowed = run_cli("say", "--voice", "me", "Hello there.", "-o", tmp_path / "o.wav", "--allow-other-voice",
                      env=nodeps, timeout=300)
    err = allowed.stderr.decode()
    assert allowed.returncode == 0 and "spoke in en_US-joe-medium instead" in err, err
    assert (tmp_path / "o.wav").is_file()
