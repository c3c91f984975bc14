"""Bad input fails fast, clearly, and leaves no output file (no model is loaded for these)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from demod_voice.quality import clipping_ratio
from tests.xtts.conftest import write_wav


def _run(cli, tmp_path, checkpoint, reference, *options, text="Hello there."):
    out = tmp_path / "out.wav"
    proc = cli("xtts-zero-shot", reference, text, "-o", out, "--model-dir", checkpoint, "--cpu", *options)
    return proc, out


@pytest.mark.parametrize("case", ["missing", "unreadable", "silent", "short", "empty-folder"])
def test_bad_reference_is_a_clear_error_and_no_output(case, cli, tmp_path, xtts_checkpoint):
    sr = 22050
    if case == "missing":
        ref, expect = tmp_path / "nope.wav", "reference audio not found"
    elif case == "unreadable":
        ref, expect = tmp_path / "junk.wav", "cannot read reference audio"
        ref.write_bytes(b"this is not audio at all" * 10)
    elif case == "silent":
        ref, expect = write_wav(tmp_path / "silence.wav", np.zeros(sr * 4)), "is silent"
    elif case == "short":
        tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(int(sr * 1.2)) / sr)
        ref = write_wav(tmp_path / "short.wav", np.concatenate([np.zeros(sr), tone, np.zeros(sr)]))
        expect = "at least 2 s are needed"
    else:
        ref, expect = tmp_path / "empty", "holds no audio files"
        ref.mkdir()
    proc, out = _run(cli, tmp_path, xtts_checkpoint, ref)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert err.startswith("error: ") and expect in err and "Traceback" not in err
    assert not out.exists()
    assert not list(tmp_path.glob(".out.wav.*")), "a temporary output file was left behind"


def test_unknown_language_lists_the_valid_ones(cli, tmp_path, xtts_checkpoint, speech_wav):
    proc, out = _run(cli, tmp_path, xtts_checkpoint, speech_wav, "--language", "xx")
    err = proc.stderr.decode()
    assert proc.returncode == 2
    assert "language 'xx' is not supported" in err and "en, es, fr" in err
    assert not out.exists()


def test_missing_model_names_the_files_and_the_folder(cli, tmp_path, speech_wav, isolated_home):
    proc = cli("xtts-zero-shot", speech_wav, "Hello.", "-o", tmp_path / "out.wav")
    err = proc.stderr.decode()
    assert proc.returncode == 2
    folder = isolated_home / "data" / "demod-voice" / "models" / "xtts-v2"
    assert f"{folder} is missing config.json, model.pth, vocab.json" in err
    assert "models pull xtts-v2" in err
    assert not (tmp_path / "out.wav").exists()


def test_usage_errors(cli, tmp_path, xtts_checkpoint, speech_wav):
    proc = cli("xtts-zero-shot", "Hello.", "--voice", "ghost", "--model-dir", xtts_checkpoint, "-o", tmp_path / "o.wav")
    assert proc.returncode == 2 and "no saved voice named 'ghost'" in proc.stderr.decode()
    proc = cli("xtts-zero-shot", speech_wav, "Hi.", "--stream", "--format", "wav", "--model-dir", xtts_checkpoint)
    assert proc.returncode == 2 and "--stream writes raw 16-bit PCM" in proc.stderr.decode()
    proc = cli("xtts-zero-shot", speech_wav, "Hi.", "--save-voice", "../evil", "--model-dir", xtts_checkpoint)
    assert proc.returncode == 2 and "invalid voice name" in proc.stderr.decode()
    proc = cli("xtts-zero-shot", speech_wav, "--model-dir", xtts_checkpoint)
    assert proc.returncode == 2 and "no text given" in proc.stderr.decode()
    # RVC options without --rvc are refused before any model loads.
    proc = cli("xtts-zero-shot", speech_wav, "Hi.", "--rvc-pitch", "3", "--model-dir", xtts_checkpoint,
               "-o", tmp_path / "r.wav")
    assert proc.returncode == 2 and "--rvc-pitch needs --rvc MODEL" in proc.stderr.decode()
    assert not (tmp_path / "r.wav").exists()


def test_long_reference_uses_its_best_window(tmp_path, speech_wav, caplog):
    """40 s of audio with the speech in the middle and clipped noise at the start: the speech is chosen."""
    from demod_voice import audio
    from demod_voice.engines import xtts

    speech = audio.resample(audio.read(speech_wav), 22050).samples
    sr = 22050
    rng = np.random.default_rng(0)
    clipped = np.clip(rng.normal(0, 2.0, sr * 12), -1, 1)
    quiet = 0.002 * rng.normal(0, 1, sr * 10)
    signal = np.concatenate([clipped, quiet, speech, speech, quiet, 0.5 * speech])
    path = write_wav(tmp_path / "long.wav", signal)
    with caplog.at_level(logging.WARNING, logger="demod_voice.engines.xtts"):
        ref = xtts.load_reference(path)
    assert xtts.MIN_WINDOW_SECONDS <= ref.duration <= xtts.BEST_WINDOW_SECONDS + 0.2
    assert "using its best" in caplog.text
    assert clipping_ratio(ref) < 0.001  # the clipped noise (about 60% at full scale) was not picked


def test_folder_and_repeated_references_expand_in_order(tmp_path, speech_wav, second_speech_wav):
    from demod_voice.engines import xtts

    folder = tmp_path / "refs"
    folder.mkdir()
    (folder / "b.wav").write_bytes(speech_wav.read_bytes())
    (folder / "a.flac").write_bytes(second_speech_wav.read_bytes())
    (folder / "notes.txt").write_text("not audio")
    files = xtts.expand_references([folder, speech_wav])
    assert [f.name for f in files] == ["a.flac", "b.wav", speech_wav.name]


def test_sentence_bar_on_a_terminal(isolated_home, xtts_checkpoint, speech_wav, tmp_path):
    """xtts-zero-shot counts sentences on a terminal (issue 25 item 6), with coqui's flag names (item 7)."""
    from tests.helpers import run_cli_on_tty

    out = tmp_path / "bar.wav"
    code, err = run_cli_on_tty(["xtts-zero-shot", "One sentence. And two.", "--speaker_wav", speech_wav,
                                "--language_idx", "en", "--out_path", out, "--model-dir", xtts_checkpoint, "--cpu"])
    assert code == 0, err
    assert b"xtts" in err and b"sentence" in err and b"/2" in err, err
    assert out.stat().st_size > 1000
