"""`demod-voice voices ...` profile management through the real CLI, and the quality score itself."""

from __future__ import annotations

import json

import numpy as np

from demod_voice.audio import Audio, read
from demod_voice.quality import score_reference as score_sample


def test_voices_cli_lifecycle(cli, speech_wav, short_wav, isolated_home):
    assert cli("voices", "add", "narrator", "--sample", str(speech_wav)).returncode == 0
    listed = cli("voices", "list").stdout.decode()
    assert "en_US-joe-medium" in listed and "narrator" in listed  # catalog voices and profiles together
    added = cli("voices", "samples", "add", "narrator", str(short_wav), "--transcript", "Good morning, everyone.")
    assert added.returncode == 0, added.stderr
    samples = json.loads(cli("voices", "samples", "list", "narrator", "--json").stdout)
    assert len(samples) == 2 and all(0 < s["score"]["overall"] <= 1 for s in samples)
    assert [s["transcript"] for s in samples if s["filename"] == short_wav.name] == ["Good morning, everyone."]
    short_id = next(s["id"] for s in samples if s["filename"] == short_wav.name)

    assert cli("voices", "reference", "set", "narrator", short_id).stdout.decode().split() == [short_id]
    shown = json.loads(cli("voices", "show", "narrator", "--json").stdout)
    assert shown["reference"] == [short_id] and len(shown["samples"]) == 2
    auto = cli("voices", "reference", "auto", "narrator").stdout.decode().split()
    assert set(auto) == {s["id"] for s in samples}  # ~6 s + ~1.5 s: both fit in 12 s
    text = cli("voices", "show", "narrator").stdout.decode()
    assert "engine: xtts" in text and "SCORE" in text

    assert cli("voices", "list", "--user", "someone-else", "--json").returncode == 0
    assert "narrator" not in cli("voices", "list", "--user", "someone-else").stdout.decode()
    assert cli("voices", "remove", "narrator").returncode == 0
    assert "narrator" not in cli("voices", "list").stdout.decode()


def test_voices_cli_errors(cli, tmp_path, speech_wav):
    bad = cli("voices", "add", "../escape")
    assert bad.returncode == 2 and "invalid voice name '../escape'" in bad.stderr.decode()
    missing = cli("voices", "show", "ghost")
    assert missing.returncode == 2 and "no saved voice 'ghost'" in missing.stderr.decode()
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio")
    failed = cli("voices", "add", "junky", "--sample", str(junk))
    assert failed.returncode == 2 and "cannot read sample" in failed.stderr.decode()
    assert "junky" not in cli("voices", "list").stdout.decode()  # a failed add leaves nothing behind
    assert cli("voices", "add", "v1").returncode == 0
    dup = cli("voices", "add", "v1")
    assert dup.returncode == 2 and "already exists" in dup.stderr.decode()
    nosample = cli("voices", "reference", "set", "v1", "s123")
    assert nosample.returncode == 2 and "has no sample 's123'" in nosample.stderr.decode()
    empty = cli("voices", "reference", "auto", "v1")
    assert empty.returncode == 2 and "no usable samples" in empty.stderr.decode()
    bad_user = cli("voices", "list", "--user", "../root")
    assert bad_user.returncode == 2 and "invalid user name" in bad_user.stderr.decode()


def test_quality_score_orders_recordings(speech_wav):
    speech = read(speech_wav)
    clean = score_sample(speech)
    rng = np.random.default_rng(1)
    noisy = score_sample(Audio(speech.samples + rng.normal(0, 0.05, len(speech.samples)), speech.sample_rate))
    clipped = score_sample(Audio(np.clip(speech.samples * 8, -1, 1), speech.sample_rate))
    quiet = score_sample(Audio(speech.samples * 0.003, speech.sample_rate))
    short = score_sample(Audio(speech.samples[: speech.sample_rate // 2], speech.sample_rate))
    silent = score_sample(Audio(np.zeros(speech.sample_rate * 3), speech.sample_rate))
    assert clean.overall > 0.9 and not clean.problems
    assert noisy.overall < clean.overall and noisy.snr_db < clean.snr_db and any("noisy" in p for p in noisy.problems)
    assert clipped.clipping > 0.001 and clipped.overall < clean.overall and any("clipped" in p for p in clipped.problems)
    assert quiet.overall < clean.overall and any("quiet" in p for p in quiet.problems)
    assert short.overall < clean.overall and any("short" in p for p in short.problems)
    assert silent.overall == 0.0


def test_cli_uses_the_audio_cache_when_enabled(cli, tmp_path):
    env = {"DEMOD_VOICE_CACHE__ENABLED": "true"}
    first = cli("piper-infer", "en_US-joe-medium", "Cached on the command line.", "-o", str(tmp_path / "a.wav"), env=env)
    assert first.returncode == 0 and "and cached it" in first.stderr.decode()
    second = cli("piper-infer", "en_US-joe-medium", "Cached  on the command line.", "-o", str(tmp_path / "b.wav"), env=env)
    assert second.returncode == 0 and "from the audio cache" in second.stderr.decode()
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
