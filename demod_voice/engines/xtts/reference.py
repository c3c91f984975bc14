"""Reference audio for cloning, without torch: expanding folders, reading, trimming, best window."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from demod_voice import audio as audio_mod
from demod_voice.audio import Audio
from demod_voice.errors import InputError, UsageError

_LOGGER = logging.getLogger(__name__)

#: Conditioning audio is resampled to the rate the GPT conditioning encoder expects.
REFERENCE_RATE = 22050
MIN_REFERENCE_SECONDS = 2.0
LONG_REFERENCE_SECONDS = 30.0
#: A long reference is cut to its best window of this many seconds (at least MIN_WINDOW).
BEST_WINDOW_SECONDS = 12.0
MIN_WINDOW_SECONDS = 6.0
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".caf", ".w64")


def expand_references(items: Iterable[str | os.PathLike]) -> list[Path]:
    """REFERENCE arguments -> audio files; a folder contributes its audio files, sorted."""
    files: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            if not inside:
                raise InputError(f"reference folder {path} holds no audio files",
                                 hint="put WAV/FLAC/OGG/MP3 recordings of the voice in it")
            files.extend(inside)
        elif not path.exists():
            raise InputError(f"reference audio not found: {path}", hint="check the path")
        else:
            files.append(path)
    if not files:
        raise UsageError("no reference audio given", hint="pass REFERENCE (a file or a folder), --reference, or --voice NAME")
    return files


def best_window(audio: Audio, seconds: float = BEST_WINDOW_SECONDS) -> tuple[Audio, float]:
    """The ``seconds``-long stretch with the most speech and the least clipping.

    Each candidate window (hop 0.5 s) scores the share of 20 ms frames within
    35 dB of the loudest frame (speech, not pauses), minus a heavy penalty for
    clipped samples, plus a small bonus for level. Returns (window, start).
    """
    sr = audio.sample_rate
    length = int(seconds * sr)
    if len(audio.samples) <= length:
        return audio, 0.0
    frame = int(0.02 * sr)
    levels = audio_mod.frame_rms_db(audio, 0.02)
    voiced = levels > levels.max() - 35.0
    clipped = np.abs(audio.samples[: len(levels) * frame].reshape(len(levels), frame)) >= 0.999
    clip_frames = clipped.mean(axis=1)
    per_window = length // frame
    hop = max(1, int(0.5 * sr) // frame)
    best, best_score = 0, -np.inf
    for start in range(0, len(levels) - per_window + 1, hop):
        seg = slice(start, start + per_window)
        level = float(np.clip((levels[seg].mean() + 60.0) / 60.0, 0.0, 1.0))
        score = voiced[seg].mean() - 20.0 * clip_frames[seg].mean() + 0.1 * level
        if score > best_score:
            best, best_score = start, score
    begin = best * frame
    return Audio(audio.samples[begin: begin + length], sr), begin / sr


def load_reference(path: Path) -> Audio:
    """Read one reference: mono, 22.05 kHz, silence-trimmed, 2-30 s (longer: its best 6-12 s)."""
    audio = audio_mod.read(path, what="reference audio")
    if not len(audio.samples):
        raise InputError(f"reference audio {path} is empty", hint="record at least 2 seconds of clear speech")
    audio = audio_mod.resample(audio, REFERENCE_RATE)
    if audio_mod.is_silent(audio):
        raise InputError(f"reference audio {path} is silent", hint="record at least 2 seconds of clear speech")
    trimmed = audio_mod.trim_silence(audio)
    if trimmed.duration < MIN_REFERENCE_SECONDS:
        raise InputError(
            f"reference audio {path} has only {trimmed.duration:.1f} s of sound (after trimming silence); "
            f"at least {MIN_REFERENCE_SECONDS:.0f} s are needed",
            hint="use a longer recording (6-12 s of clear speech works best)")
    if trimmed.duration > LONG_REFERENCE_SECONDS:
        window, start = best_window(trimmed, BEST_WINDOW_SECONDS)
        window = audio_mod.trim_silence(window)
        if window.duration < MIN_WINDOW_SECONDS:  # a window full of pauses: fall back to the plain start
            window = Audio(trimmed.samples[: int(BEST_WINDOW_SECONDS * REFERENCE_RATE)], REFERENCE_RATE)
            start = 0.0
        _LOGGER.warning("reference %s is %.0f s long; using its best %.1f s (from %.1f s) for cloning",
                        path.name, trimmed.duration, window.duration, start)
        trimmed = window
    from demod_voice.quality import clipping_ratio

    if clipping_ratio(trimmed) > 0.01:
        _LOGGER.warning("reference %s is clipped (%.1f%% of samples at full scale); the clone may sound distorted",
                        path.name, 100 * clipping_ratio(trimmed))
    return trimmed


