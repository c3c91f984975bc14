"""Helpers for the batch tests: job-file writers and checks on outputs and reports."""

from __future__ import annotations

import csv
import json
from pathlib import Path

SENTENCES = [
    "The harbour lights came on one by one as the evening fog rolled in.",
    "She counted the steps twice before she opened the heavy wooden door.",
    "A small brown dog waited patiently beside the bakery every morning.",
    "Seven trains left the station before anyone noticed the missing bag.",
    "The old clock in the hallway struck nine and then fell silent.",
    "He wrote the numbers on the back of an envelope and smiled.",
    "Rain tapped against the window while the kettle began to whistle.",
    "Nobody expected the quiet student to win the chess tournament.",
    "The garden was full of tomatoes, beans and bright yellow flowers.",
    "They walked along the river until the city lights disappeared.",
    "A letter arrived on Tuesday with a stamp from a distant island.",
    "The painter mixed blue and white until the sky looked right.",
]


def write_csv(path: Path, header: list[str] | None, rows: list[list]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def read_report(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def by_status(report: dict) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for job in report["jobs"]:
        out.setdefault(job["status"], set()).add(job["line"])
    return out


def decode(path: Path):
    """Decode a whole output file; fails the test if it is truncated or empty."""
    import soundfile as sf

    data, sr = sf.read(str(path), dtype="float32")
    assert sr > 0 and len(data) > sr // 4, f"{path} is too short ({len(data)} samples)"
    return data, sr


PIPER_HEADER = ["engine", "voice", "text", "output", "noise_scale", "noise_w"]


def piper_rows(voice: Path, n: int, outdir: str = "out", start: int = 0, long: bool = False) -> list[list]:
    """Deterministic Piper rows (zero noise) for ``PIPER_HEADER``; short lines unless ``long``."""
    return [["piper", str(voice), SENTENCES[i % len(SENTENCES)] if long else f"Line number {i + 1}.",
             f"{outdir}/line{i:02d}.wav", 0, 0] for i in range(start, start + n)]
