"""``xtts-zero-shot`` end to end through the CLI: inference, cache hit, streaming, saved voices."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from tests.helpers import run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("xtts-home")
    env = {}
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache")):
        (root / sub).mkdir()
        env[var] = str(root / sub)
    return root, env


@pytest.fixture(scope="module")
def first_run(home, xtts_checkpoint, speech_wav, second_speech_wav):
    """Clone from two references (a folder), write a WAV and save the voice as 'alice'."""
    root, env = home
    refs = root / "refs"
    refs.mkdir()
    (refs / "one.wav").write_bytes(speech_wav.read_bytes())
    (refs / "two.flac").write_bytes(second_speech_wav.read_bytes())
    out = root / "first.wav"
    proc = run_cli("xtts-zero-shot", refs, "Hello there.", "-o", out, "--model-dir", xtts_checkpoint,
                   "--language", "en", "--save-voice", "alice", "--seed", "1", "-v", "--cpu", env=env)
    return proc, out, refs


def test_clone_writes_audio_at_the_model_rate(first_run, home):
    proc, out, _ = first_run
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "conditioning latents: computed from 2 reference(s)" in err
    data, sr = sf.read(str(out), dtype="float32")
    assert sr == 24000 and data.ndim == 1 and len(data) > 0.2 * sr
    assert np.isfinite(data).all() and np.abs(data).max() > 1e-3
    root, _ = home
    assert len(list((root / "cache" / "demod-voice" / "xtts-latents").glob("*.safetensors"))) == 1
    profile = root / "data" / "demod-voice" / "profiles" / "local" / "voices" / "alice"
    assert (profile / "latents" / "xtts.safetensors").is_file() and (profile / "manifest.json").is_file()
    assert len(list((profile / "samples").glob("*.wav"))) == 2


def test_second_run_hits_the_cache_and_streams_pcm(first_run, home, xtts_checkpoint):
    _, _, refs = first_run
    root, env = home
    proc = run_cli("xtts-zero-shot", "--reference", refs, "Streaming now.", "--stream", "--model-dir",
                   xtts_checkpoint, "--seed", "2", "-v", "--cpu", env=env)
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "conditioning latents: cache hit" in err and "computed from" not in err
    pcm = np.frombuffer(proc.stdout, dtype="<i2")
    assert len(proc.stdout) % 2 == 0 and len(pcm) > 0.1 * 24000
    assert np.abs(pcm).max() > 30
    assert len(list((root / "cache" / "demod-voice" / "xtts-latents").glob("*.safetensors"))) == 1


def test_saved_voice_speaks_without_audio_and_is_listed(first_run, home, xtts_checkpoint):
    root, env = home
    out = root / "voice.flac"
    proc = run_cli("xtts-zero-shot", "--voice", "alice", "Saved voice.", "-o", out, "--no-split-sentences",
                   "--model-dir", xtts_checkpoint, "--temperature", "0.6", "--speed", "1.2", "-v", "--cpu", env=env)
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "conditioning latents" not in err  # no reference, no conditioning at all
    data, sr = sf.read(str(out), dtype="float32")
    assert sr == 24000 and np.isfinite(data).all() and np.abs(data).max() > 1e-3
    listed = run_cli("voices", "list", "--engine", "xtts", env=env)
    assert listed.returncode == 0
    rows = [line.split() for line in listed.stdout.decode().splitlines() if line.startswith("alice")]
    assert len(rows) == 1 and rows[0][1] == "xtts", listed.stdout.decode()  # one voice, one row


def test_xtts_then_rvc_in_one_process(first_run, home, xtts_checkpoint, tmp_path):
    """``--rvc`` converts the cloned speech with an RVC voice: the output is at the RVC model's rate."""
    pytest.importorskip("demod_voice.engines.rvc")
    from tests.rvc.tiny import build_tiny_rvc

    root, env = home
    voice, rvc_cfg = build_tiny_rvc(tmp_path / "rvc")
    out = root / "converted.wav"
    proc = run_cli("xtts-zero-shot", "--voice", "alice", "Converted speech.", "-o", out, "--model-dir", xtts_checkpoint,
                   "--rvc", voice, "--hubert", rvc_cfg["rvc"]["hubert"], "--rmvpe", rvc_cfg["rvc"]["rmvpe"],
                   "--rvc-pitch", "2", "--cpu", env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    data, sr = sf.read(str(out), dtype="float32")
    assert sr == 40000 and np.isfinite(data).all() and len(data) > 0.05 * sr
