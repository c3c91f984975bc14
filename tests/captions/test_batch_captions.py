"""The batch ``captions`` column/field: word timings written beside each job's audio."""

from __future__ import annotations

import csv
import json

import pytest
import soundfile as sf

from demod_voice import captions


def test_batch_captions_column(run_main, joe_voice, tmp_path):
    jobs = tmp_path / "lines.csv"
    rows = [
        {"engine": "piper", "voice": str(joe_voice), "text": "First line, with captions.", "output": "out/one.wav",
         "captions": "out/one.srt", "noise_w": "0"},
        {"engine": "piper", "voice": str(joe_voice), "text": "Second line. As JSON.", "output": "out/two.mp3",
         "captions": "out/two.json", "sentence_silence": "0.3"},
        {"engine": "piper", "voice": str(joe_voice), "text": "No captions here.", "output": "out/three.wav",
         "captions": ""},
        {"engine": "piper", "voice": str(joe_voice), "text": "Bad suffix.", "output": "out/four.wav",
         "captions": "out/four.txt"},
    ]
    (tmp_path / "out").mkdir()
    with open(jobs, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) + ["sentence_silence"])
        writer.writeheader()
        writer.writerows(rows)
    code, err = run_main("batch", jobs, "--report", tmp_path / "report.json")
    assert code != 0 and "line 5" in err and "caption format" in err  # the bad row is reported, the others ran
    srt = captions.parse_cues((tmp_path / "out/one.srt").read_text())
    assert " ".join(c.text for c in srt) == "First line, with captions."
    assert srt[-1].end <= sf.info(str(tmp_path / "out/one.wav")).duration
    words = json.loads((tmp_path / "out/two.json").read_text())["words"]
    assert [w["word"] for w in words] == ["Second", "line.", "As", "JSON."]
    assert words[2]["start"] - words[1]["end"] >= 0.3
    assert (tmp_path / "out/three.wav").exists() and not list((tmp_path / "out").glob("three.*[!v]"))
    # resume: nothing to redo, the captions stay
    code, err = run_main("batch", jobs)
    assert (tmp_path / "out/one.srt").exists()


@pytest.mark.slow
def test_batch_xtts_captions_field_needs_and_uses_whisper(run_main, xtts_checkpoint, speech_wav, whisper_path, tmp_path,
                                                         monkeypatch):
    jobs = tmp_path / "lines.jsonl"
    job = {"engine": "xtts", "model": str(xtts_checkpoint), "reference": str(speech_wav), "language": "en",
           "text": "Aligned by Whisper.", "output": "x.wav", "captions": "x.vtt"}
    jobs.write_text(json.dumps(job) + "\n")
    code, err = run_main("batch", jobs)
    assert code != 0 and "captions.whisper_model" in err and not (tmp_path / "x.wav").exists()  # refused at validation
    monkeypatch.setenv("DEMOD_VOICE_CAPTIONS__WHISPER_MODEL", whisper_path)
    code, err = run_main("batch", jobs)
    assert code == 0, err
    cues = captions.parse_cues((tmp_path / "x.vtt").read_text())
    assert " ".join(c.text for c in cues) == "Aligned by Whisper."
    assert cues[-1].end <= sf.info(str(tmp_path / "x.wav")).duration + 1e-3
