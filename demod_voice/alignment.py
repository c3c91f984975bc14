"""Word timings for synthesised speech, two ways.

* **Piper** knows them: piper-tts 1.8 reports how many samples each phoneme
  produced. Phonemes are grouped into words at espeak's word spaces, and the
  groups are matched to the words of the input text by phonemizing each word
  on its own (numbers and abbreviations become several spoken words).
* **Any other audio** (XTTS, anything after RVC): the known text is aligned to
  faster-whisper's word timestamps; words Whisper missed are placed between
  their matched neighbours in proportion to their length.

Timings are seconds from the start of the audio given (a chunk); ``captions.Timeline``
puts chunks on one time axis.
"""

from __future__ import annotations

import difflib
import logging
import re
import unicodedata
from collections.abc import Callable, Sequence

import numpy as np

from demod_voice.audio import Audio
from demod_voice.captions import Word
from demod_voice.errors import EngineError, InputError

_LOGGER = logging.getLogger(__name__)

#: Piper's sentence start/end and pad symbols: they carry samples but belong to no word.
_NON_WORD_PHONEMES = {"^", "$", "_"}


def text_words(text: str) -> list[str]:
    """The words of ``text`` as written; a token without letters or digits joins its neighbour."""
    out: list[str] = []
    pending = ""
    for token in text.split():
        if not any(ch.isalnum() for ch in token):
            if out:
                out[-1] += " " + token if token in ("-", "\u2013", "\u2014") else token
            else:
                pending += token
            continue
        out.append(pending + token)
        pending = ""
    return out


def _is_word_phoneme(phoneme: str) -> bool:
    if phoneme in _NON_WORD_PHONEMES or not phoneme.strip():
        return False
    return not all(unicodedata.category(ch).startswith("P") for ch in phoneme)


def phoneme_word_spans(alignments: Sequence, sample_rate: int) -> list[tuple[float, float]]:
    """(start, end) seconds of each spoken word in one Piper chunk, from its phoneme alignments.

    Word boundaries are espeak's spaces; punctuation pauses and the sentence
    start/end symbols are left out of the words they follow.
    """
    spans: list[tuple[float, float]] = []
    position = 0
    start = end = None
    for item in alignments:
        samples = int(item.num_samples)
        if item.phoneme == " ":
            if start is not None:
                spans.append((start / sample_rate, end / sample_rate))
            start = end = None
        elif _is_word_phoneme(item.phoneme):
            if start is None:
                start = position
            end = position + samples
        position += samples
    if start is not None:
        spans.append((start / sample_rate, end / sample_rate))
    return spans


def count_spoken_words(sentences: list[list[str]]) -> int:
    """How many espeak word groups a phonemized text has (what ``phoneme_word_spans`` finds)."""
    count = 0
    for phonemes in sentences:
        in_word = False
        for phoneme in phonemes:
            if phoneme == " ":
                in_word = False
            elif _is_word_phoneme(phoneme) and not in_word:
                count += 1
                in_word = True
    return count


class PiperWordMapper:
    """Hands out the words of one text to the Piper chunks synthesised from it, in order."""

    def __init__(self, text: str, phonemize: Callable[[str], list[list[str]]]):
        self.words = text_words(text)
        self._phonemize = phonemize
        self._counts: list[int] = []
        self._next = 0

    def _count(self, index: int) -> int:
        while len(self._counts) <= index:
            self._counts.append(count_spoken_words(self._phonemize(self.words[len(self._counts)])))
        return self._counts[index]

    def take(self, spans: list[tuple[float, float]], last: bool = False) -> list[Word]:
        """Words for a chunk whose spoken-word spans are ``spans`` (``last``: all words left)."""
        if not spans:
            return []
        remaining = len(self.words) - self._next
        if remaining <= 0:
            return []
        total, k, exact = 0, 0, False
        if not last:
            while k < remaining and total < len(spans):
                total += self._count(self._next + k)
                k += 1
            exact = total == len(spans)
            # words that are not spoken (count 0) right after stay with this chunk
            while exact and k < remaining and self._count(self._next + k) == 0:
                k += 1
        if last or k == 0:
            k = remaining
            exact = sum(self._count(self._next + i) for i in range(k)) == len(spans)
        words = self.words[self._next:self._next + k]
        self._next += k
        if exact:
            out, group = [], 0
            for i, word in enumerate(words):
                n = self._count(self._next - k + i)
                if n == 0:
                    at = out[-1].end if out else spans[0][0]
                    out.append(Word(word, round(at, 3), round(at, 3)))
                    continue
                out.append(Word(word, round(spans[group][0], 3), round(spans[group + n - 1][1], 3)))
                group += n
            return out
        _LOGGER.debug("phoneme groups (%d) and words (%d) differ; spreading evenly", len(spans), len(words))
        return _spread(words, spans)


def _spread(words: list[str], spans: list[tuple[float, float]]) -> list[Word]:
    """Map words onto spoken-word spans proportionally when the counts disagree."""
    out = []
    n, g = len(words), len(spans)
    for i, word in enumerate(words):
        first = min(g - 1, i * g // n)
        last = max(first, min(g - 1, (i + 1) * g // n - 1))
        out.append(Word(word, round(spans[first][0], 3), round(spans[last][1], 3)))
    return out


# --- Whisper ---------------------------------------------------------------------------------

_NORMALIZE = re.compile(r"[^\w]+", re.UNICODE)


def whisper_model(path: str):
    """The faster-whisper model in ``path``, loaded once per process by the shared STT engine (CPU, int8)."""
    from demod_voice.engines.whisper import engine as whisper

    return whisper.load(path, "cpu", "int8").model


def _norm(word: str) -> str:
    return _NORMALIZE.sub("", word.lower())


def whisper_words(model, audio: Audio, language: str | None = None, prompt: str | None = None) -> list[Word]:
    """faster-whisper's own word timestamps for ``audio`` (recognised words, not the input text)."""
    from demod_voice.audio import resample

    samples = resample(audio, 16000).samples if audio.sample_rate != 16000 else audio.samples
    try:
        segments, _ = model.transcribe(np.ascontiguousarray(samples, dtype=np.float32), language=language,
                                       beam_size=1, word_timestamps=True, condition_on_previous_text=False,
                                       initial_prompt=prompt, vad_filter=False)
        return [Word(w.word.strip(), float(w.start), float(w.end)) for s in segments for w in (s.words or ())]
    except (RuntimeError, ValueError) as exc:
        raise EngineError(f"Whisper alignment failed: {type(exc).__name__}: {exc}") from exc


def align_text(text: str, heard: list[Word], duration: float) -> list[Word]:
    """Put the words of ``text`` on the time axis of ``heard``; see ``align_text_anchored``."""
    return align_text_anchored(text, heard, duration)[0]


def align_text_anchored(text: str, heard: list[Word], duration: float) -> tuple[list[Word], list[bool]]:
    """Put the words of ``text`` on the time axis of ``heard`` (Whisper's words of the same audio).

    Matching words take Whisper's times; the others are spread over the gap
    between their matched neighbours by character count. With no match at all
    the words are spread over the whole audio.
    """
    words = text_words(text)
    if not words:
        return [], []
    ours = [_norm(w) for w in words]
    theirs = [_norm(w.word) for w in heard]
    times: list[tuple[float, float] | None] = [None] * len(words)
    matcher = difflib.SequenceMatcher(a=ours, b=theirs, autojunk=False)
    for block in matcher.get_matching_blocks():
        for i in range(block.size):
            hit = heard[block.b + i]
            times[block.a + i] = (hit.start, hit.end)
    # a replaced run of equal length (e.g. "colour" heard as "color") takes the heard times one to one
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "replace" and a1 - a0 == b1 - b0:
            for i in range(a1 - a0):
                times[a0 + i] = (heard[b0 + i].start, heard[b0 + i].end)
    out: list[Word] = []
    i = 0
    while i < len(words):
        if times[i] is not None:
            start, end = times[i]
            out.append(Word(words[i], round(start, 3), round(max(start, end), 3)))
            i += 1
            continue
        j = i
        while j < len(words) and times[j] is None:
            j += 1
        gap_start = out[-1].end if out else 0.0
        gap_end = times[j][0] if j < len(words) else max(duration, gap_start)
        if gap_end < gap_start:
            gap_end = gap_start
        lengths = [max(1, len(w)) for w in words[i:j]]
        scale = (gap_end - gap_start) / sum(lengths)
        at = gap_start
        for word, length in zip(words[i:j], lengths, strict=True):
            out.append(Word(word, round(at, 3), round(at + length * scale, 3)))
            at += length * scale
        i = j
    return out, [t is not None for t in times]


class WhisperAligner:
    """Aligns known text to audio with a faster-whisper model (loaded once per process)."""

    def __init__(self, model_name: str, language: str | None = None):
        self.model = whisper_model(model_name)
        self.language = (language or "").split("-")[0].split("_")[0].lower() or None
        if self.language and not getattr(self.model.model, "is_multilingual", True) and self.language != "en":
            self.language = "en"  # an English-only model; alignment still places the words it can

    def align(self, audio: Audio, text: str) -> list[Word]:
        if not len(audio.samples):
            return []
        heard = whisper_words(self.model, audio, self.language, prompt=text[:200])
        return align_text(text, heard, audio.duration)


def with_words(chunks, text: str, aligner_factory: Callable[[], WhisperAligner]):
    """Pass chunks through, attaching word timings to those that carry none.

    An engine's own timings (Piper) pass as they are. Otherwise each chunk is
    transcribed as it comes and the text is aligned to everything heard so
    far; a chunk leaves (one chunk late) with the words that ended inside it
    and are anchored by a recognised word, the last chunk with all the rest.
    ``aligner_factory`` is called only if some chunk needs it.
    """
    pending: Audio | None = None
    timer: _WhisperTimer | None = None
    for chunk in chunks:
        if chunk.words is not None and timer is None:
            yield chunk
            continue
        if timer is None:
            timer = _WhisperTimer(text, aligner_factory())
        timer.hear(chunk)
        if pending is not None:
            yield timer.release(pending, final=False)
        pending = chunk
    if pending is not None:
        yield timer.release(pending, final=True)


class _WhisperTimer:
    """Whisper's words of the chunks heard so far, and the text words already handed out."""

    def __init__(self, text: str, aligner: WhisperAligner):
        self.text = text
        self.aligner = aligner
        self.heard: list[Word] = []
        self.duration = 0.0
        self.released_until = 0.0
        self.given = 0

    def hear(self, chunk: Audio) -> None:
        if len(chunk.samples):
            words = whisper_words(self.aligner.model, chunk, self.aligner.language, prompt=self.text[:200])
            self.heard.extend(w.shifted(self.duration) for w in words)
        self.duration += chunk.duration

    def release(self, chunk: Audio, final: bool) -> Audio:
        """``chunk`` (the oldest not yet released) with its words, relative to its own start."""
        start = self.released_until
        end = start + chunk.duration
        words, anchored = align_text_anchored(self.text, self.heard, self.duration)
        take = len(words)
        if not final:
            take = self.given
            for index in range(self.given, len(words)):
                if words[index].end > end + 1e-6:
                    break
                if anchored[index]:
                    take = index + 1
        out = [w.shifted(-start) for w in words[self.given:take]]
        self.given = take
        self.released_until = end
        return Audio(chunk.samples, chunk.sample_rate, words=out)


def words_of_speech(speech: Audio, text: str | None, cfg, language: str | None = None) -> list[Word]:
    """Word timings of a recording: ``text`` aligned to it, or Whisper's own words when no text is given."""
    aligner = WhisperAligner(whisper_model_name(cfg), language)
    if text:
        return aligner.align(speech, text)
    return whisper_words(aligner.model, speech, aligner.language)


def whisper_model_name(cfg) -> str:
    """The model folder that aligns text for captions.

    ``captions.whisper_model``, else ``dataset.whisper_model``, else the speech-to-text model ``stt.model``;
    a registry name (whisper-tiny.en) or a folder, resolved by the shared STT engine (clear error if missing).
    """
    from demod_voice.engines.whisper import engine as whisper
    from demod_voice.errors import DemodError

    hint = ("set captions.whisper_model to a faster-whisper model folder, e.g. "
            "DEMOD_VOICE_CAPTIONS__WHISPER_MODEL=/path/to/whisper-tiny.en, or pull stt.model")
    explicit = cfg.get("captions.whisper_model") or cfg.get("dataset.whisper_model")
    name = explicit or cfg.get("stt.model")
    if not name:
        raise InputError("word timings for this engine need a Whisper model, and captions.whisper_model is not set",
                         hint=hint)
    try:
        return str(whisper.resolve(str(name), cfg))
    except DemodError as exc:
        if explicit:
            raise
        raise type(exc)(f"word timings for this engine need a Whisper model: captions.whisper_model is not set "
                        f"and stt.model ({name}) is not usable: {exc.message}", hint=hint) from None
