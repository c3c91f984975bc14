"""The files a prepared dataset consists of, each written atomically.

* ``metadata.csv`` + ``wavs/`` -- piper1-gpl's ``python -m piper.train fit``
  (``--data.csv_path``, ``--data.audio_dir``): ``ID.wav|text`` or
  ``ID.wav|speaker|text``, ``|``-separated, quoted by the csv module the
  trainer reads it with.
* ``config.json`` + ``dataset.jsonl`` + ``cache/`` -- the legacy
  ``piper_train`` layout (``--dataset-dir``): one JSON line per utterance with
  its phoneme ids and the paths of its normalised audio and spectrogram tensors.
* ``report.json`` and ``summary.txt`` -- what happened to every input row.

Rows come out in input order and nothing depends on timing, so the same input
and settings give byte-identical files.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from demod_voice.paths import atomic_write_bytes


def write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, data) -> None:
    write_text(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def write_metadata_csv(path: Path, kept: list[dict], multi: bool) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="|", lineterminator="\n")
    for entry in kept:
        name = Path(entry["wav"]).name
        writer.writerow([name, entry["speaker"], entry["text"]] if multi else [name, entry["text"]])
    write_text(path, buf.getvalue())


def write_dataset_jsonl(path: Path, out_dir: Path, kept: list[dict], speaker_ids: dict[str, int]) -> None:
    lines = []
    for entry in kept:
        lines.append(json.dumps({
            "id": entry["id"],
            "text": entry["text"],
            "audio_path": entry["source"],
            "speaker": entry["speaker"] if speaker_ids else None,
            "speaker_id": speaker_ids.get(entry["speaker"]) if speaker_ids else None,
            "phonemes": [p for sentence in entry["phonemes"] for p in sentence],
            "phoneme_ids": entry["phoneme_ids"],
            "audio_norm_path": str((out_dir / entry["audio_norm_path"]).resolve()),
            "audio_spec_path": str((out_dir / entry["audio_spec_path"]).resolve()),
            "missing_phonemes": [],
        }, ensure_ascii=False))
    write_text(path, "".join(line + "\n" for line in lines))


def voice_config(*, name: str, language: str, sample_rate: int, id_map: dict, speaker_ids: dict[str, int]) -> dict:
    """The ``config.json`` piper_train reads (and copies beside the exported .onnx)."""
    max_id = max(i for ids in id_map.values() for i in ids)
    region = language.split("-")
    return {
        "dataset": name,
        "audio": {"sample_rate": sample_rate, "quality": "medium" if sample_rate >= 22050 else "low"},
        "espeak": {"voice": language},
        "language": {"code": "_".join([region[0].lower()] + [r.upper() for r in region[1:]])},
        "inference": {"noise_scale": 0.667, "length_scale": 1, "noise_w": 0.8},
        "phoneme_type": "espeak",
        "phoneme_map": {},
        "phoneme_id_map": id_map,
        "num_symbols": max(256, max_id + 1),
        "num_speakers": max(1, len(speaker_ids)),
        "speaker_id_map": speaker_ids,
        "piper_version": "1.0.0",
    }
