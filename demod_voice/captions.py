"""Word timings and the caption files made from them (SRT, WebVTT, JSON).

A synthesis can report ``Word(word, start, end)`` in seconds from the start of
its audio. ``Timeline`` turns per-chunk timings (seconds from the chunk's own
start) into timings for the whole utterance as chunks are joined, so
sentence joins, ``sentence_silence`` and streaming all agree. Cues group
words into readable lines: a cue ends at a sentence end, a pause, or when it
gets too long.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from demod_voice.errors import InputError, UsageError

#: Caption file formats, chosen by the file suffix.
CAPTION_FORMATS = {".srt": "srt", ".vtt": "vtt", ".json": "json"}

_MAX_CUE_WORDS = 12
_MAX_CUE_CHARS = 64
_MAX_CUE_SECONDS = 5.0
_PAUSE_SECONDS = 0.6
_SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f\u0964][\"'\u201d\u2019)\]]*$")


@dataclass(frozen=True)
class Word:
    """One spoken word and when it is heard."""

    word: str
    """The word as written in the input text (punctuation attached)."""
    start: float
    """Seconds from the start of the audio."""
    end: float
    """Seconds from the start of the audio (>= start)."""

    def shifted(self, offset: float) -> Word:
        return Word(self.word, round(self.start + offset, 3), round(self.end + offset, 3))

    def scaled(self, factor: float) -> Word:
        """The same word on audio stretched by ``factor`` (a playback-rate change)."""
        return Word(self.word, round(self.start * factor, 3), round(self.end * factor, 3))

    def to_dict(self) -> dict:
        return asdict(self)


def words_to_dicts(words: Iterable[Word]) -> list[dict]:
    return [w.to_dict() for w in words]


class Timeline:
    """Joins per-chunk word timings into utterance timings as chunks are appended."""

    def __init__(self) -> None:
        self.offset = 0.0
        """Seconds of audio before the next chunk."""
        self.words: list[Word] = []

    def add(self, duration: float, words: Iterable[Word] | None) -> list[Word]:
        """Append a chunk of ``duration`` seconds; return its words on the utterance's time axis."""
        placed = [w.shifted(self.offset) for w in (words or ())]
        self.words.extend(placed)
        self.offset += duration
        return placed


def carry(source, converted):
    """Give ``converted`` (e.g. an RVC conversion of ``source``) the source's word timings.

    Voice conversion keeps the time axis (frame by frame), so timings carry over,
    scaled by the duration ratio in case the converter rounded to its hop size.
    """
    if source.words is None:
        return converted
    ratio = converted.duration / source.duration if source.duration else 1.0
    converted.words = [Word(w.word, round(w.start * ratio, 3), round(w.end * ratio, 3)) for w in source.words]
    return converted


def join(chunks: list):
    """Concatenate chunks (``audio.concat``), keeping their word timings on the joined time axis."""
    from demod_voice.audio import concat

    whole = concat(chunks)
    if any(c.words is not None for c in chunks):
        timeline = Timeline()
        for chunk in chunks:
            timeline.add(chunk.duration, chunk.words)
        whole.words = timeline.words
    return whole


# --- cues ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def cues(words: list[Word]) -> list[Cue]:
    """Group words into caption cues (sentence ends, pauses and length limits break lines)."""
    out: list[Cue] = []
    group: list[Word] = []

    def close() -> None:
        if group:
            out.append(Cue(group[0].start, group[-1].end, " ".join(w.word for w in group)))
            group.clear()

    for word in words:
        if group:
            chars = sum(len(w.word) + 1 for w in group) + len(word.word)
            if (word.start - group[-1].end > _PAUSE_SECONDS or len(group) >= _MAX_CUE_WORDS
                    or chars > _MAX_CUE_CHARS or word.end - group[0].start > _MAX_CUE_SECONDS):
                close()
        group.append(word)
        if _SENTENCE_END.search(word.word):
            close()
    close()
    return out


def _clock(seconds: float, sep: str) -> str:
    ms = max(0, int(round(seconds * 1000)))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(words: list[Word]) -> str:
    blocks = [f"{i}\n{_clock(c.start, ',')} --> {_clock(c.end, ',')}\n{c.text}\n"
              for i, c in enumerate(cues(words), 1)]
    return "\n".join(blocks)


def to_vtt(words: list[Word]) -> str:
    blocks = [f"{_clock(c.start, '.')} --> {_clock(c.end, '.')}\n{c.text}\n" for c in cues(words)]
    return "WEBVTT\n\n" + "\n".join(blocks)


def to_json(words: list[Word]) -> str:
    return json.dumps({"words": words_to_dicts(words)}, ensure_ascii=False, indent=1) + "\n"


def caption_format(path: str | Path) -> str:
    """The caption format for ``path``'s suffix, or a usage error naming the choices."""
    suffix = Path(path).suffix.lower()
    if suffix not in CAPTION_FORMATS:
        raise UsageError(f"cannot tell the caption format of '{Path(path).name}'",
                         hint="use a .srt, .vtt or .json file name")
    return CAPTION_FORMATS[suffix]


def render(words: list[Word], fmt: str) -> str:
    return {"srt": to_srt, "vtt": to_vtt, "json": to_json}[fmt](words)


def write(path: str | Path, words: list[Word]) -> Path:
    """Write captions atomically, the format chosen by the suffix."""
    from demod_voice.audio import atomic_write_bytes

    return atomic_write_bytes(path, render(words, caption_format(path)).encode("utf-8"))


# --- parsing (tests, and reading captions back) -----------------------------------------------

_TIMING = re.compile(r"^(\d+):(\d{2}):(\d{2})[,.](\d{3})\s+-->\s+(\d+):(\d{2}):(\d{2})[,.](\d{3})")


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_cues(content: str) -> list[Cue]:
    """Parse SRT or WebVTT text into cues; raises ``InputError`` on a malformed block."""
    lines = content.replace("\r\n", "\n").split("\n")
    if lines and lines[0].startswith("WEBVTT"):
        lines = lines[1:]
    out: list[Cue] = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line:
            i += 1
            continue
        if line.isdigit() and i + 1 < len(lines) and "-->" in lines[i + 1]:
            i += 1
            line = lines[i].strip()
        match = _TIMING.match(line)
        if not match:
            raise InputError(f"caption line {i + 1} is not a cue timing: {line[:60]!r}")
        start, end = _seconds(*match.groups()[:4]), _seconds(*match.groups()[4:])
        if end < start:
            raise InputError(f"caption line {i + 1} ends before it starts")
        text = []
        i += 1
        while i < len(lines) and lines[i].strip():
            text.append(lines[i].strip())
            i += 1
        if not text:
            raise InputError(f"caption cue at line {i} has no text")
        out.append(Cue(start, end, " ".join(text)))
    return out
