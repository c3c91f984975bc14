"""Delivering synthesised audio: to a file (atomically), a device/FIFO, stdout, or streamed.

Shared by every synthesis command so streaming and file output behave the
same whatever the engine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from demod_voice import audio as audio_mod
from demod_voice.audio import Audio
from demod_voice.errors import InputError, UsageError
from demod_voice.paths import STDOUT, atomic_write_bytes, check_output, open_output


@dataclass
class Target:
    """Where audio goes: a file path, or stdout (``-``), in one format."""

    path: str
    fmt: str
    stream: bool = False

    @property
    def to_stdout(self) -> bool:
        return self.stream or self.path == "-"

    def describe(self) -> str:
        return "standard output" if self.to_stdout else self.path


def plan_target(output: str | None, fmt: str | None, stream: bool, default_fmt: str = "wav") -> Target:
    """Validate the output arguments before any expensive work starts."""
    if stream:
        if fmt not in (None, "pcm"):
            raise UsageError("--stream writes raw 16-bit PCM; drop --format or use --format pcm")
        if output not in (None, "-"):
            raise UsageError("--stream writes to standard output; drop --output (or use --output -)")
        return Target("-", "pcm", stream=True)
    path = output or f"output.{default_fmt if default_fmt != 'pcm' else 'pcm'}"
    target = Target(path, audio_mod.format_for(None if path == "-" else path, fmt, default_fmt))
    if not target.to_stdout:
        check_output(path)
    return target


def stream_pcm(chunks: Iterable[Audio], out: BinaryIO | None = None) -> Audio:
    """Write each chunk as raw PCM as soon as it arrives; return the whole audio."""
    parts: list[np.ndarray] = []
    sample_rate = 0
    with contextlib.nullcontext(out) if out is not None else open_output(STDOUT) as fh:
        for chunk in chunks:
            sample_rate = chunk.sample_rate
            fh.write(chunk.to_pcm16())
            fh.flush()
            parts.append(chunk.samples)
    if not parts:
        raise InputError("the text produced no speech", hint="give words, not only punctuation")
    return Audio(np.concatenate(parts), sample_rate)


def deliver(chunks: Iterable[Audio], target: Target) -> Audio:
    """Consume ``chunks`` into ``target``; file writes are atomic."""
    if target.stream:
        return stream_pcm(chunks)
    collected = list(chunks)
    if not collected:
        raise InputError("the text produced no speech", hint="give words, not only punctuation")
    whole = audio_mod.concat(collected)
    atomic_write_bytes(STDOUT if target.to_stdout else target.path, audio_mod.encode(whole, target.fmt))
    return whole


def deliver_bytes(data: bytes, target: Target) -> None:
    """Write already-encoded audio (e.g. from the audio cache) to ``target``, atomically for files."""
    atomic_write_bytes(STDOUT if target.to_stdout else target.path, data)
