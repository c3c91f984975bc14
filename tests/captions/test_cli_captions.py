"""--captions FILE on piper-infer, xtts-zero-shot and rvc-convert (in process: engines load once)."""

from __future__ import annotations

import json

import pytest
import soundfile as sf

from demod_voice import captions


def cue_words(path) -> list[str]:
    return " ".join(c.text for c in captions.parse_cues(path.read_text(encoding="utf-8"))).split()


def test_piper_infer_writes_srt_that_accounts_for_speed_and_silence(run_main, joe_voice, tmp_path):
    text = "Captions come out of the command line. Slower speech, longer pauses!"
    out, srt = tmp_path / "a.wav", tmp_path / "a.srt"
    code, err = run_main("piper-infer", joe_voice, text, "-o", out, "--captions", srt, "--speed", "0.8",
                         "--sentence-silence", "0.5", "--noise-w", "0")
    assert code == 0, err
    assert cue_words(srt) == text.split()
    cues = captions.parse_cues(srt.read_text())
    info = sf.info(str(out))
    assert cues[-1].end <= info.duration and cues[-1].end > info.duration - 0.8
    assert cues[1].start - cues[0].end >= 0.5  # the sentence silence lies between the cues


def test_bad_captions_path_is_refused_before_synthesis(run_main, joe_voice, tmp_path):
    code, err = run_main("piper-infer", joe_voice, "Hi.", "-o", tmp_path / "a.wav", "--captions", tmp_path / "a.txt")
    assert code == 2 and "caption format" in err and not (tmp_path / "a.wav").exists()
    code, err = run_main("piper-infer", joe_voice, "Hi.", "-o", tmp_path / "a.wav", "--captions",
                         tmp_path / "missing" / "a.srt")
    assert code == 2 and "does not exist" in err


@pytest.mark.slow
def test_piper_to_rvc_chain_keeps_the_word_timings(run_main, rvc_assets, joe_voice, tmp_path):
    code, err = run_main("rvc", "add", "dora", rvc_assets["v2_nof0"])
    assert code == 0, err
    text = "Voice conversion keeps the time axis."
    out, words_json = tmp_path / "c.wav", tmp_path / "c.json"
    code, err = run_main("piper-infer", joe_voice, text, "-o", out, "--rvc", "dora", "--hubert",
                         rvc_assets["hubert_dir"], "--captions", words_json)
    assert code == 0, err
    words = json.loads(words_json.read_text())["words"]
    assert [w["word"] for w in words] == text.split()
    assert words[-1]["end"] <= sf.info(str(out)).duration + 1e-3


@pytest.mark.slow
def test_xtts_captions_come_from_whisper_alignment(run_main, xtts_checkpoint, speech_wav, whisper_path, tmp_path,
                                                   monkeypatch):
    monkeypatch.setenv("DEMOD_VOICE_CAPTIONS__WHISPER_MODEL", whisper_path)
    text = "Hello there. Random weights speak no words."
    out, vtt = tmp_path / "x.wav", tmp_path / "x.vtt"
    code, err = run_main("xtts-zero-shot", speech_wav, text, "-o", out, "--model-dir", xtts_checkpoint,
                         "--language", "en", "--seed", "1", "--cpu", "--captions", vtt)
    assert code == 0, err
    assert vtt.read_text().startswith("WEBVTT")
    # tiny random weights make noise, so Whisper anchors nothing: the words are spread over the audio, in order
    assert cue_words(vtt) == text.split()
    assert captions.parse_cues(vtt.read_text())[-1].end <= sf.info(str(out)).duration + 1e-3


@pytest.mark.slow
def test_xtts_captions_need_a_whisper_model(run_main, xtts_checkpoint, speech_wav, tmp_path):
    code, err = run_main("xtts-zero-shot", speech_wav, "Hi.", "-o", tmp_path / "x.wav", "--model-dir",
                         xtts_checkpoint, "--language", "en", "--cpu", "--captions", tmp_path / "x.srt")
    assert code == 2 and "captions.whisper_model" in err and not (tmp_path / "x.wav").exists()


@pytest.mark.slow
def test_rvc_convert_captions_from_the_input_speech(run_main, rvc_assets, short_speech, whisper_path, tmp_path,
                                                     monkeypatch):
    monkeypatch.setenv("DEMOD_VOICE_CAPTIONS__WHISPER_MODEL", whisper_path)
    out, srt = tmp_path / "r.wav", tmp_path / "r.srt"
    code, err = run_main("rvc-convert", short_speech, "--model", rvc_assets["v2_nof0"], "--hubert",
                         rvc_assets["hubert_dir"], "-o", out, "--captions", srt)
    assert code == 0, err
    heard = [w.lower().strip(".,") for w in cue_words(srt)]
    assert "quick" in heard and "brown" in heard  # the 2 s excerpt of "The quick brown fox jumps ..."
    assert captions.parse_cues(srt.read_text())[-1].end <= sf.info(str(out)).duration + 0.05
    code, err = run_main("rvc-convert", short_speech, "--model", rvc_assets["v2_nof0"], "-o", out,
                         "--captions-text", "x")
    assert code == 2 and "--captions-text needs --captions" in err
