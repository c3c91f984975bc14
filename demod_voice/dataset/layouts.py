"""Find the utterances of an input folder and check their structure.

Two layouts are read:

* **ljspeech** -- ``metadata.csv`` with ``id|text``, ``id|speaker|text`` (multi
  speaker) or LJSpeech's own ``id|text|normalized text``; audio in ``wavs/``
  named ``ID.wav`` (or ``.flac``/``.ogg``/``.mp3``, or the id already carries
  the suffix).
* **pairs** -- recordings with side-car transcripts, as recording apps write
  them: ``name.wav`` + ``name.txt`` and an optional ``name.meta.json``
  (``{"speaker": ..., "text": ...}``), in the folder or its sub-folders.

Structural problems (column count, missing audio, empty text, duplicate or
unusable ids) are found here, before any audio is decoded, and reported per row
with the line number.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from demod_voice.errors import InputError, UsageError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3")
#: Utterance ids become file names.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_SPACES = re.compile(r"\s+")


@dataclass
class Issue:
    """One problem with one row: a stable code, a severity and a readable message."""

    code: str
    message: str
    severity: str = "error"
    """``error`` drops the row; ``warning`` keeps it."""

    def to_dict(self) -> dict:
        return {"code": self.code, "severity": self.severity, "message": self.message}


@dataclass
class Row:
    """One utterance as the input describes it."""

    id: str | None
    where: str
    """``metadata.csv:12`` or the transcript/recording path, for messages."""
    line: int | None = None
    audio_path: Path | None = None
    text: str | None = None
    speaker: str | None = None
    issues: list[Issue] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not any(i.severity == "error" for i in self.issues)

    def add(self, code: str, message: str, severity: str = "error") -> None:
        self.issues.append(Issue(code, message, severity))


def clean_text(text: str | None) -> str:
    return _SPACES.sub(" ", text or "").strip()


def detect_format(input_dir: Path, fmt: str = "auto") -> str:
    if fmt != "auto":
        return fmt
    return "ljspeech" if (input_dir / "metadata.csv").is_file() else "pairs"


def read_rows(input_dir: Path, fmt: str, speakers: str = "auto", transcribe: bool = False) -> tuple[list[Row], bool]:
    """All rows of ``input_dir`` with their structural issues, and whether it is multi-speaker.

    ``speakers`` is ``single``, ``multi`` or ``auto``. With ``transcribe`` an
    empty or missing transcript is not an error (it will be transcribed).
    """
    if not input_dir.is_dir():
        raise InputError(f"input folder not found: {input_dir}", hint="give the folder with metadata.csv or the recordings")
    fmt = detect_format(input_dir, fmt)
    if fmt == "ljspeech":
        rows, multi = _read_ljspeech(input_dir, speakers)
    elif fmt == "pairs":
        rows, multi = _read_pairs(input_dir, speakers)
    else:
        raise UsageError(f"unknown input format '{fmt}'", hint="use ljspeech, pairs or auto")
    _check_common(rows, transcribe)
    return rows, multi


def _read_ljspeech(input_dir: Path, speakers: str) -> tuple[list[Row], bool]:
    meta = input_dir / "metadata.csv"
    try:
        text = meta.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"no metadata.csv in {input_dir}",
                         hint="an LJSpeech folder needs metadata.csv and wavs/; use --format pairs for .wav + .txt files") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {meta}: {exc}", hint="metadata.csv must be UTF-8 text") from None
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        records.append((number, next(csv.reader([line], delimiter="|", quotechar='"'))))
    three = [cols for _, cols in records if len(cols) == 3]
    if speakers == "auto":
        # id|speaker|text when the middle column always looks like a name;
        # LJSpeech's own id|text|normalized text otherwise.
        multi = bool(three) and all(_ID.match(cols[1].strip()) for cols in three)
    else:
        multi = speakers == "multi"
    wavs = input_dir / "wavs"
    audio_dir = wavs if wavs.is_dir() else input_dir
    rows = []
    for number, cols in records:
        row = Row(id=cols[0].strip() or None, where=f"metadata.csv:{number}", line=number)
        rows.append(row)
        allowed = (3,) if multi else (2, 3)
        if len(cols) not in allowed:
            expected = "id|speaker|text" if multi else "id|text"
            row.add("columns", f"expected {' or '.join(map(str, allowed))} columns ({expected}), found {len(cols)}")
            continue
        if multi:
            row.speaker, row.text = cols[1].strip(), clean_text(cols[2])
        else:
            row.text = clean_text(cols[-1])
        if row.id:
            row.audio_path = _find_audio(audio_dir, row.id)
            if row.audio_path is None:
                row.add("missing_audio", f"no audio for '{row.id}' in {audio_dir} (tried {row.id}.wav/.flac/.ogg/.mp3)")
    return rows, multi


def _find_audio(audio_dir: Path, utt_id: str) -> Path | None:
    direct = audio_dir / utt_id
    if direct.suffix.lower() in AUDIO_SUFFIXES and direct.is_file():
        return direct
    for suffix in AUDIO_SUFFIXES:
        candidate = audio_dir / f"{utt_id}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _read_pairs(input_dir: Path, speakers: str) -> tuple[list[Row], bool]:
    rows = []
    # Sorted by name, .wav before other formats of the same name (the others are duplicates).
    audio_files = sorted((p for p in input_dir.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()),
                         key=lambda p: (str(p.with_suffix("")), AUDIO_SUFFIXES.index(p.suffix.lower())))
    stems = {p.with_suffix("") for p in audio_files}
    for path in audio_files:
        rel = path.relative_to(input_dir)
        utt_id = "_".join(rel.with_suffix("").parts)
        row = Row(id=utt_id, where=str(rel), audio_path=path)
        rows.append(row)
        meta_path = path.with_suffix(".meta.json")
        meta: dict = {}
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                if not isinstance(meta, dict):
                    raise ValueError("not a JSON object")
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                row.add("bad_meta", f"{meta_path.name} is not a JSON object: {exc}", "warning")
                meta = {}
        txt = path.with_suffix(".txt")
        if txt.is_file():
            try:
                row.text = clean_text(txt.read_text(encoding="utf-8-sig"))
            except (OSError, UnicodeDecodeError) as exc:
                row.add("bad_text", f"cannot read {txt.name}: {exc}")
        elif isinstance(meta.get("text"), str):
            row.text = clean_text(meta["text"])
        if isinstance(meta.get("speaker"), str) and meta["speaker"].strip():
            row.speaker = meta["speaker"].strip()
        elif len(rel.parts) > 1:
            row.speaker = rel.parts[0]
    # Transcripts without a recording are rows too: their audio is missing.
    for txt in sorted(input_dir.rglob("*.txt")):
        if txt.with_suffix("") in stems or txt.name.endswith(".meta.txt"):
            continue
        rel = txt.relative_to(input_dir)
        row = Row(id="_".join(rel.with_suffix("").parts), where=str(rel))
        row.add("missing_audio", f"transcript {rel} has no recording beside it ({rel.with_suffix('.wav')})")
        rows.append(row)
    multi = speakers == "multi" or (speakers == "auto" and len({r.speaker for r in rows if r.speaker}) > 1)
    return rows, multi


def _check_common(rows: list[Row], transcribe: bool) -> None:
    seen: dict[str, str] = {}
    for row in rows:
        if row.id is None:
            if not any(i.code == "columns" for i in row.issues):
                row.add("bad_id", "empty utterance id")
            continue
        if not _ID.match(row.id):
            row.add("bad_id", f"id '{row.id}' cannot be a file name (use letters, digits, _ . -)")
            continue
        if row.id in seen:
            row.add("duplicate_id", f"id '{row.id}' already used at {seen[row.id]}")
        else:
            seen[row.id] = row.where
        if row.audio_path is not None and not row.text and not any(i.code == "columns" for i in row.issues):
            if transcribe:
                row.add("transcribe", "no transcript: it will be transcribed", "warning")
            else:
                row.add("empty_text", "the transcript is empty or missing")
