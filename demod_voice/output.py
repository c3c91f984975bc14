"""Delivering synthesised audio: to a file (atomically), a device/FIFO, stdout, or streamed.

Shared by every synthesis command so streaming and file output behave the
same whatever the engine.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

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


@dataclass(frozen=True)
class Delivered:
    """What was written: enough for the summary line, without keeping the audio in memory."""

    sample_rate: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def stream_pcm(chunks: Iterable[Audio], out: BinaryIO | None = None) -> Delivered:
    """Write each chunk as raw PCM as soon as it arrives."""
    frames = 0
    sample_rate = 0
    with contextlib.nullcontext(out) if out is not None else open_output(STDOUT) as fh:
        for chunk in chunks:
            sample_rate = sample_rate or chunk.sample_rate
            if chunk.sample_rate != sample_rate:
                chunk = audio_mod.resample(chunk, sample_rate)
            fh.write(chunk.to_pcm16())
            fh.flush()
            frames += len(chunk.samples)
    if not sample_rate:
        raise InputError("the text produced no speech", hint="give words, not only punctuation")
    return Delivered(sample_rate, frames)


def deliver(chunks: Iterable[Audio], target: Target) -> Delivered:
    """Consume ``chunks`` into ``target``, encoding each as it arrives; file writes are atomic.

    Memory stays bounded whatever the text's length: a file target is encoded straight into the
    temporary file beside it, and standard output, devices and FIFOs (which cannot seek back to
    finish a header) get a temporary spool file that is copied over at the end. The bytes are
    those of ``audio.encode`` on the whole audio (tests/core/test_output.py).
    """
    if target.stream:
        return stream_pcm(chunks)
    path = STDOUT if target.to_stdout else target.path
    with open_output(path) as fh:
        if path != STDOUT and check_output(path).kind == "file":
            return _encode_into(chunks, fh, target.fmt)
        with tempfile.TemporaryFile(prefix="demod-voice-", suffix=".part") as spool:
            delivered = _encode_into(chunks, spool, target.fmt)
            spool.seek(0)
            shutil.copyfileobj(spool, fh, 1 << 20)
        return delivered


def _encode_into(chunks: Iterable[Audio], fh: BinaryIO, fmt: str) -> Delivered:
    writer = None
    for chunk in chunks:
        if writer is None:
            writer = audio_mod.IncrementalEncoder(fh, fmt, chunk.sample_rate)
        writer.write(chunk)
    if writer is None or not writer.frames:
        raise InputError("the text produced no speech", hint="give words, not only punctuation")
    writer.finish()
    return Delivered(writer.sample_rate, writer.frames)


def deliver_bytes(data: bytes, target: Target) -> None:
    """Write already-encoded audio (e.g. from the audio cache) to ``target``, atomically for files."""
    atomic_write_bytes(STDOUT if target.to_stdout else target.path, data)
