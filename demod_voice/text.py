"""Text input handling: reading TEXT arguments, normalising, sentence splitting."""

from __future__ import annotations

import re
import sys
import unicodedata
from pathlib import Path

from demod_voice.errors import InputError, UsageError

_SPACE = re.compile(r"\s+")
# What no engine can speak and the phonemizers reject (espeak-ng takes C strings, ONNX tokenizers UTF-8):
# C0/C1 control characters other than tab, newline and carriage return, DEL, and lone UTF-16 surrogates.
_UNSPEAKABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# A sentence ends at . ! ? (or their CJK/Devanagari forms) followed by space or the end.
_SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f\u0964])[\"'\u201d\u2019)\]]*\s+")


def normalize(text: str) -> str:
    """NFC-normalise and collapse runs of whitespace (used for cache keys too)."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def check_speakable(text: str, what: str = "text") -> str:
    """Refuse text holding characters no engine can take (a NUL, other control characters, a lone surrogate).

    This is the request's fault, never the engine's: it is an ``InputError`` (HTTP 400, a Wyoming ``error``, exit
    2, a failed batch job) raised before any engine runs, so such text can never count against an engine's
    circuit breaker.
    """
    bad = _UNSPEAKABLE.search(text)
    if bad is not None:
        ch = bad.group()
        kind = "a lone surrogate" if "\ud800" <= ch <= "\udfff" else "a control character"
        raise InputError(f"{what} contains {kind} (U+{ord(ch):04X}) at character {bad.start() + 1}",
                         hint="remove control characters and invalid Unicode from the text",
                         param="input", code="invalid_characters")
    return text


def require_text(text: str, what: str = "text") -> str:
    """Return the normalised text, or raise when nothing speakable is left (or it holds unspeakable characters)."""
    clean = normalize(check_speakable(text, what))
    if not clean:
        raise InputError(f"{what} is empty or only whitespace", hint="give the words to speak")
    return clean


def read_text_argument(text: str | None, text_file: str | None, stdin=None) -> str:
    """Resolve TEXT / ``-`` (stdin) / ``--text-file`` into validated text."""
    if text is not None and text_file is not None:
        raise UsageError("give the text either as TEXT or with --text-file, not both")
    if text_file is not None:
        path = Path(text_file)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise InputError(f"text file not found: {path}", hint="check the path") from None
        except IsADirectoryError:
            raise InputError(f"text file is a folder: {path}") from None
        except OSError as exc:
            raise InputError(f"cannot read text file {path}: {exc.strerror}") from None
        try:
            content = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(f"text file {path} is not valid UTF-8 (byte {exc.start})",
                             hint="convert it, e.g. iconv -f latin1 -t utf-8") from None
        return require_text(content, f"text file {path}")
    if text is None:
        raise UsageError("no text given", hint="pass TEXT, '-' to read standard input, or --text-file FILE")
    if text == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        raw = stream.read()
        try:
            content = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as exc:
            raise InputError(f"standard input is not valid UTF-8 (byte {exc.start})") from None
        return require_text(content, "text from standard input")
    return require_text(text)


#: Characters of speech a digit stands for, roughly ("23456" is read "twenty-three thousand four hundred fifty-six").
DIGIT_WEIGHT = 9


def spoken_length(text: str) -> int:
    """Length of ``text`` once read aloud, in characters: digits count ``DIGIT_WEIGHT`` each.

    What a TTS network's memory follows is the length of the speech, and numbers expand: 248 characters
    of number-heavy text were 44 s of Piper audio, 248 of prose 11.5 s (docs/benchmarks.md).
    """
    return len(text) + (DIGIT_WEIGHT - 1) * sum(ch.isdigit() for ch in text)


def _prefix_within(sentence: str, limit: int, measure) -> int:
    """The longest prefix length of ``sentence`` whose ``measure`` is at most ``limit`` (at least 1)."""
    if measure is len:
        return min(limit, len(sentence))
    total = 0
    for index, ch in enumerate(sentence):
        total += measure(ch)
        if total > limit:
            return max(index, 1)
    return len(sentence)


def split_sentences(text: str, max_chars: int = 250, measure=len) -> list[str]:
    """Split into sentences; sentences longer than ``max_chars`` are split at commas or spaces.

    ``measure`` says how long a piece is (``len``, or ``spoken_length`` to count digits as the words they become).
    """
    out: list[str] = []
    for sentence in _SENTENCE_END.split(normalize(text)):
        sentence = sentence.strip()
        while measure(sentence) > max_chars:
            limit = _prefix_within(sentence, max_chars, measure)
            cut = max(sentence.rfind(", ", 0, limit), sentence.rfind("; ", 0, limit))
            if cut <= 0:
                cut = sentence.rfind(" ", 0, limit)
            if cut <= 0:  # no space within the limit: cut the word itself
                cut = limit - 1
            out.append(sentence[: cut + 1].strip())
            sentence = sentence[cut + 1:].strip()
        if sentence:
            out.append(sentence)
    return out


def complete_sentences(text: str) -> tuple[str, str]:
    """(the complete sentences, the unfinished rest) of streamed text.

    A sentence is complete once whitespace follows its end mark, so "Dr." at
    the very end of a chunk waits for the next one.
    """
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    if not ends:
        return "", text
    return text[: ends[-1]].strip(), text[ends[-1]:]
