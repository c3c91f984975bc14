"""piper-preprocess end to end, through the real CLI, on real Joe speech."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.dataset.conftest import BROKEN, PAD_SECONDS, SENTENCES

pytestmark = pytest.mark.slow


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def _by_id(report: dict) -> dict:
    out: dict = {}
    for entry in report["utterances"]:
        out.setdefault(entry["id"], []).append(entry)
    return out


def _codes(entry: dict) -> set:
    return {i["code"] for i in entry["issues"]}


def test_ljspeech_with_broken_rows(cli, make_ljspeech, tmp_path, speech_corpus):
    src = make_ljspeech(broken=True)
    out = tmp_path / "out"
    proc = cli("piper-preprocess", "--input-dir", src, "--output-dir", out, "--language", "en-us", "--workers", "2")
    assert proc.returncode == 0, proc.stderr.decode()
    stdout = proc.stdout.decode()
    report = _report(out)
    entries = _by_id(report)

    # Every broken row is reported with its line number and reason, and left out.
    assert _codes(entries["missing_01"][0]) == {"missing_audio"} and entries["missing_01"][0]["line"] == 6
    wrong = [e for e in report["utterances"] if "columns" in _codes(e)]
    assert [e["line"] for e in wrong] == [9, 39]
    assert "found 1" in wrong[0]["issues"][0]["message"] and "found 4" in wrong[1]["issues"][0]["message"]
    assert "empty_text" in _codes(entries["empty_01"][0])
    assert "silent" in _codes(entries["silent_01"][0])
    assert "clipped" in _codes(entries["clipped_01"][0])
    first, duplicate = entries["utt_003"]
    assert first["status"] == "ok" and duplicate["line"] == 38
    assert "duplicate_id" in _codes(duplicate) and "metadata.csv:4" in duplicate["issues"][0]["message"]
    for utt_id in BROKEN:
        assert entries[utt_id][-1]["status"] == "invalid", utt_id
        assert f"({utt_id})" in stdout  # the summary names each problem row
    assert "metadata.csv:9 (wrong_columns_only): columns: expected 2 or 3 columns (id|text), found 1" in stdout
    # Too little audio for training is a warning, with how much there is and how much is needed.
    assert report["totals"]["enough_audio"] is False
    assert "WARNING: only" in stdout and "10.0 min" in stdout

    # The good rows: all 32 kept, with quality scores.
    kept = [e for e in report["utterances"] if e["status"] == "ok"]
    assert sorted(e["id"] for e in kept) == sorted(speech_corpus.texts)
    assert report["totals"]["kept"] == 32 and report["totals"]["invalid"] == 7
    for entry in kept:
        q = entry["quality"]
        assert q["score"] > 0.6 and q["snr_db"] > 20 and q["clipping_ratio"] == 0
        assert 0 < q["silence_ratio"] < 0.6
    assert entries["clipped_01"][0]["quality"]["clipping_ratio"] > 0.01
    assert entries["silent_01"][0]["quality"]["score"] == 0

    # piper1-gpl input: metadata.csv of file|text, audio resampled to 22050 Hz mono and trimmed.
    with open(out / "metadata.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="|"))
    assert [r[0] for r in rows] == [f"{i}.wav" for i in speech_corpus.texts]
    assert [r[1] for r in rows] == SENTENCES
    for name, _text in rows:
        info = sf.info(str(out / "wavs" / name))
        assert info.samplerate == 22050 and info.channels == 1 and info.subtype == "PCM_16"
        source = next((src / "wavs").glob(name.removesuffix(".wav") + ".*"))
        in_duration = sf.info(str(source)).duration
        assert in_duration - info.duration > 2 * PAD_SECONDS - 0.2  # leading and trailing silence cut
        samples, _ = sf.read(str(out / "wavs" / name))
        assert 0.1 < np.abs(samples).max() <= 0.9  # loudness-normalised, peaks under -1 dBFS
    assert {entries["utt_004"][0]["source_sample_rate"], entries["utt_006"][0]["source_sample_rate"]} == {16000, 44100}

    # Legacy piper_train: config.json + dataset.jsonl with phoneme ids and tensor paths.
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["audio"]["sample_rate"] == 22050 and config["espeak"]["voice"] == "en-us"
    assert config["num_speakers"] == 1 and config["phoneme_type"] == "espeak"
    lines = [json.loads(line) for line in (out / "dataset.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 32
    torch = pytest.importorskip("torch")
    first_line = lines[0]
    audio = torch.load(first_line["audio_norm_path"], map_location="cpu", weights_only=True)
    spec = torch.load(first_line["audio_spec_path"], map_location="cpu", weights_only=True)
    assert audio.dtype == torch.float32 and spec.shape[0] == 513
    assert abs(spec.shape[1] - len(audio) / 256) <= 4

    # The phoneme ids map back to exactly the phonemes espeak-ng gives for the text.
    from piper.phonemize_espeak import EspeakPhonemizer

    from demod_voice.dataset.phonemes import ids_to_phonemes

    espeak = EspeakPhonemizer()
    for line in lines:
        expected = [p for sentence in espeak.phonemize("en-us", line["text"]) for p in sentence]
        assert ids_to_phonemes(line["phoneme_ids"], config["phoneme_id_map"]) == expected
        assert line["phonemes"] == expected
        assert line["phoneme_ids"][0] == 1 and line["phoneme_ids"][-1] == 2  # ^ ... $


def test_pairs_layout_and_strict(cli, make_pairs, tmp_path, speech_corpus):
    src = make_pairs(broken=True)
    out = tmp_path / "out"
    # --strict: the invalid rows are an error before anything is written.
    proc = cli("piper-preprocess", "--input-dir", src, "--output-dir", out, "--strict")
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert "error: --strict: 5 invalid row(s)" in err and "missing_01.txt" in err, err
    assert not out.exists()

    proc = cli("piper-preprocess", "--input-dir", src, "--output-dir", out, "--format", "pairs", "--trainer", "piper1")
    assert proc.returncode == 0, proc.stderr.decode()
    report = _report(out)
    assert report["format"] == "pairs"
    entries = _by_id(report)
    for utt_id, code in BROKEN.items():
        assert code in _codes(entries[utt_id][-1]) and entries[utt_id][-1]["status"] == "invalid", utt_id
    assert entries["utt_003"][1]["where"] == "utt_003.mp3"
    assert report["totals"]["kept"] == 32
    rows = (out / "metadata.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "utt_000.wav|The sun rose over the quiet hills."
    assert not (out / "dataset.jsonl").exists()  # --trainer piper1 only


def test_dry_run_writes_nothing(cli, make_ljspeech, tmp_path):
    src = make_ljspeech(broken=True)
    out = tmp_path / "out"
    proc = cli("piper-preprocess", "--input-dir", src, "--output-dir", out, "--dry-run", "--min-duration", "1.6")
    assert proc.returncode == 0, proc.stderr.decode()
    stdout = proc.stdout.decode()
    assert "dry run: nothing written" in stdout
    assert "too_short" in stdout and "metadata.csv:6 (missing_01): missing_audio" in stdout
    assert not out.exists()


def test_strict_too_little_audio(cli, make_ljspeech, tmp_path):
    src = make_ljspeech()
    out = tmp_path / "out"
    proc = cli("piper-preprocess", "--input-dir", src, "--output-dir", out, "--strict")
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert "of usable audio, 10.0 min needed to train" in err
    assert not (out / "metadata.csv").exists()


@pytest.mark.parametrize("args, message", [
    (["--min-duration", "5", "--max-duration", "2"], "--min-duration 5 must be below --max-duration 2"),
    (["--language", "xx-nope"], "espeak-ng has no voice 'xx-nope'"),
    (["--format", "ljspeech"], "no metadata.csv in"),
])
def test_bad_options(cli, make_pairs, tmp_path, args, message):
    src = make_pairs(name="p")
    proc = cli("piper-preprocess", "--input-dir", src, "--output-dir", tmp_path / "o", *args)
    assert proc.returncode == 2
    assert message in proc.stderr.decode() and proc.stderr.decode().startswith("error: ")
    assert not (tmp_path / "o").exists()


def test_missing_input_dir(cli, tmp_path):
    proc = cli("piper-preprocess", "--input-dir", tmp_path / "nope", "--output-dir", tmp_path / "o")
    assert proc.returncode == 2 and "input folder not found" in proc.stderr.decode()


def test_multi_speaker_and_voice_id_map(cli, speech_corpus, tmp_path, joe_voice):
    import shutil

    src = tmp_path / "multi"
    (src / "wavs").mkdir(parents=True)
    lines = []
    for index, (utt_id, text) in enumerate(list(speech_corpus.texts.items())[:6]):
        shutil.copyfile(speech_corpus.wav(utt_id), src / "wavs" / f"{utt_id}.wav")
        lines.append(f"{utt_id}|{'bob' if index % 2 else 'alice'}|{text}")
    (src / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    voice_config = Path(f"{joe_voice}.json")
    proc = cli("piper-preprocess", "--input-dir", src, "--output-dir", out, "--voice-config", voice_config,
               "--sample-rate", "16000", "--trainer", "legacy")
    assert proc.returncode == 0, proc.stderr.decode()
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["num_speakers"] == 2 and config["speaker_id_map"] == {"alice": 0, "bob": 1}
    joe = json.loads(voice_config.read_text(encoding="utf-8"))
    assert config["phoneme_id_map"] == joe["phoneme_id_map"] and config["audio"]["sample_rate"] == 16000
    lines = [json.loads(line) for line in (out / "dataset.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(d["speaker"], d["speaker_id"]) for d in lines[:2]] == [("alice", 0), ("bob", 1)]
    assert sf.info(str(out / "wavs" / "utt_000.wav")).samplerate == 16000
    assert not (out / "metadata.csv").exists()  # --trainer legacy only


def test_ljspeech_column_layouts(tmp_path):
    from demod_voice.dataset.layouts import read_rows

    folder = tmp_path / "lj"
    (folder / "wavs").mkdir(parents=True)
    for name in ("a1", "a2"):
        (folder / "wavs" / f"{name}.wav").write_bytes(b"")
    # LJSpeech's own id|text|normalized text: the middle column has spaces, so it is text.
    (folder / "metadata.csv").write_text("a1|Dr. Smith|Doctor Smith\na2|In 1990|In nineteen ninety\n", encoding="utf-8")
    rows, multi = read_rows(folder, "auto")
    assert not multi and [r.text for r in rows] == ["Doctor Smith", "In nineteen ninety"]
    # id|speaker|text with speaker names; --single-speaker forces the LJSpeech reading.
    (folder / "metadata.csv").write_text("a1|anna|Hello there.\na2|ben|Good day.\n", encoding="utf-8")
    rows, multi = read_rows(folder, "auto")
    assert multi and [(r.speaker, r.text) for r in rows] == [("anna", "Hello there."), ("ben", "Good day.")]
    rows, multi = read_rows(folder, "auto", speakers="single")
    assert not multi and rows[0].text == "Hello there."
    # Multi-speaker needs three columns; a pipe inside quotes stays text.
    (folder / "metadata.csv").write_text('a1|anna|"Hello | there."\na2|Good day.\n', encoding="utf-8")
    rows, multi = read_rows(folder, "ljspeech", speakers="multi")
    assert rows[0].text == "Hello | there." and rows[0].valid
    assert [i.code for i in rows[1].issues] == ["columns"] and rows[1].line == 2
