"""Incremental audio encoders: one encoder per response, bytes out as soon as chunks go in.

``StreamEncoder(fmt, sample_rate)`` takes ``Audio`` chunks with ``write()`` and
returns the encoded bytes that are ready; ``finish()`` flushes the codec and
the container. The concatenation of everything returned is one valid file of
that format, so an HTTP response can start after the first sentence.

Compressed formats (mp3, Ogg Opus, ADTS AAC, FLAC) go through PyAV, whose
wheel bundles the ffmpeg libraries: no system ffmpeg is needed. A streamed
file cannot be rewritten afterwards, so headers that normally get patched at
the end are left in their "unknown length" form (MP3: no Xing/LAME frame;
FLAC: STREAMINFO with 0 total samples; WAV: sizes set to the maximum), which
every decoder handles. ``seekable=True`` (a whole file in memory) lets the
muxer finish those headers instead.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from demod_voice.errors import EngineError, UsageError, missing_extra
from demod_voice.pcm import float_to_pcm16

if TYPE_CHECKING:  # audio.py encodes AAC through this module: no import back at run time
    from demod_voice.audio import Audio


@dataclass(frozen=True)
class CodecSpec:
    """How one output format is produced with PyAV."""

    container: str
    """ffmpeg muxer name."""
    codec: str
    """ffmpeg encoder name."""
    rates: tuple[int, ...]
    """Sample rates the codec accepts; other audio is resampled to ``fallback_rate``."""
    fallback_rate: int
    bit_rate: int | None
    """Target bit rate for lossy codecs (mono speech)."""
    sample_format: str
    """Sample format the encoder is fed."""
    frame_samples: int
    """Samples per codec frame at the codec rate (the duration tolerance of a decode)."""
    muxer_options: tuple[tuple[str, str], ...] = ()
    """Container options when streaming (Ogg: 100 ms pages, so bytes leave per sentence, not per 1 s page)."""


_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)

#: Formats encoded incrementally with PyAV.
CODECS: dict[str, CodecSpec] = {
    "mp3": CodecSpec("mp3", "libmp3lame", _MP3_RATES, 24000, 96_000, "s16p", 1152),
    "opus": CodecSpec("ogg", "libopus", (48000,), 48000, 48_000, "flt", 960, (("page_duration", "100000"),)),
    "aac": CodecSpec("adts", "aac", _AAC_RATES, 24000, 96_000, "fltp", 1024),
    "flac": CodecSpec("flac", "flac", tuple(range(1, 655351)), 48000, None, "s16", 4608),
}

#: Every format that streams: raw PCM, WAV with an open-ended header, and the PyAV codecs.
STREAMABLE = ("wav", "pcm", *CODECS)


def wav_stream_header(sample_rate: int) -> bytes:
    """A 16-bit mono WAV header for a stream of unknown length (sizes set to the maximum)."""
    unknown = 0xFFFFFFFF
    return (b"RIFF" + struct.pack("<I", unknown) + b"WAVE" + b"fmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
            + b"data" + struct.pack("<I", unknown))


class _Sink:
    """A write-only file object: PyAV sees no ``seek`` and muxes as for a pipe."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class _SeekableSink(io.BytesIO):
    """An in-memory file the muxer may seek in; bytes are handed out only at the end."""

    def take(self) -> bytes:
        return b""


class _FileSink:
    """A real, seekable file the muxer writes straight into (memory stays bounded for long audio)."""

    def __init__(self, fh) -> None:
        self._fh = fh

    def write(self, data) -> int:
        return self._fh.write(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def flush(self) -> None:
        self._fh.flush()

    def take(self) -> bytes:
        return b""


class StreamEncoder:
    """Encode ``Audio`` chunks of one sample rate into one file of ``fmt``, incrementally.

    Not thread-safe; one per response. Chunks at another rate are resampled to the
    first chunk's rate (``sample_rate`` fixes it up front) by one streaming libsoxr
    resampler, so sentence joins carry no edge effects and the length is the whole
    audio's, not each chunk's rounded. ``into`` (a seekable binary file) makes the
    muxer write there directly; ``write``/``finish`` then return nothing.
    """

    def __init__(self, fmt: str, sample_rate: int | None = None, seekable: bool = False, into=None):
        if fmt not in STREAMABLE:
            raise UsageError(f"format '{fmt}' cannot be streamed", hint="use one of " + ", ".join(STREAMABLE))
        self.fmt = fmt
        self.sample_rate = sample_rate
        self.samples_in = 0
        """Input samples written so far (at ``sample_rate``)."""
        self._seekable = seekable or into is not None
        self._into = into
        self._container = None
        self._stream = None
        self._sink: _Sink | _SeekableSink | None = None
        self._finished = False
        self._resampler = None
        self._resampler_rate = 0

    @property
    def spec(self) -> CodecSpec | None:
        return CODECS.get(self.fmt)

    def write(self, chunk: Audio) -> bytes:
        """Encode one chunk; return the bytes that are ready (possibly none yet)."""
        if self._finished:
            raise RuntimeError("encoder already finished")
        if self.sample_rate is None:
            self.sample_rate = chunk.sample_rate
        if chunk.sample_rate != self.sample_rate or self._resampler is not None:
            return self._write_resampled(chunk)
        return self._write(chunk.samples)

    def _write_resampled(self, chunk: Audio) -> bytes:
        """Through the streaming resampler (its tail is flushed when the input rate changes or at the end)."""
        out = b""
        if self._resampler is not None and chunk.sample_rate != self._resampler_rate:
            out += self._flush_resampler()
        if chunk.sample_rate == self.sample_rate:
            return out + self._write(chunk.samples)
        if self._resampler is None:
            import soxr

            self._resampler = soxr.ResampleStream(chunk.sample_rate, self.sample_rate, 1, dtype="float32",
                                                  quality="HQ")
            self._resampler_rate = chunk.sample_rate
        samples = self._resampler.resample_chunk(np.asarray(chunk.samples, dtype=np.float32))
        return out + self._write(samples)

    def _flush_resampler(self) -> bytes:
        if self._resampler is None:
            return b""
        tail = self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        self._resampler = None
        return self._write(tail)

    def _write(self, samples: np.ndarray) -> bytes:
        samples = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)  # as ``Audio`` holds them
        head = b""
        if self.fmt in ("wav", "pcm"):
            if self.fmt == "wav" and self.samples_in == 0 and not getattr(self, "_header_sent", False):
                head = wav_stream_header(self.sample_rate)
                self._header_sent = True
            self.samples_in += len(samples)
            return head + float_to_pcm16(samples)
        if self._container is None:
            self._open()
        self._encode(samples)
        return self._sink.take()

    def finish(self) -> bytes:
        """Flush codec and container; return the last bytes. Call once."""
        if self._finished:
            return b""
        last = self._flush_resampler()
        self._finished = True
        if self.fmt in ("wav", "pcm"):
            if self.fmt == "wav" and not getattr(self, "_header_sent", False):
                return wav_stream_header(self.sample_rate or 22050)
            return last
        if self._container is None:
            self.sample_rate = self.sample_rate or 22050
            self._open()
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
        except self._av.error.FFmpegError as exc:
            raise EngineError(f"{self.fmt} encoder failed at the end: {exc}") from exc
        if isinstance(self._sink, _SeekableSink):
            return self._sink.getvalue()
        return last + self._sink.take()

    def close(self) -> None:
        """Release the codec without flushing (an abandoned stream)."""
        if self._container is not None and not self._finished:
            self._finished = True
            try:
                self._container.close()
            except self._av.error.FFmpegError:
                pass

    # -- PyAV --
    def _open(self) -> None:
        try:
            import av
        except ImportError:
            raise missing_extra("av", "server") from None
        self._av = av
        spec = self.spec
        rate = self.sample_rate if self.sample_rate in spec.rates else spec.fallback_rate
        if self._into is not None:
            self._sink = _FileSink(self._into)
        else:
            self._sink = _SeekableSink() if self._seekable else _Sink()
        options = {} if self._seekable else {"flush_packets": "1", **dict(spec.muxer_options)}
        try:
            container = av.open(self._sink, mode="w", format=spec.container, options=options)
            stream = container.add_stream(spec.codec, rate=rate, layout="mono")
            stream.format = spec.sample_format
            if spec.bit_rate:
                stream.bit_rate = spec.bit_rate
        except (av.error.FFmpegError, ValueError) as exc:
            raise EngineError(f"cannot start the {self.fmt} encoder ({spec.codec}): {exc}",
                              hint="the PyAV wheel should bundle it; reinstall 'av'") from exc
        self._container, self._stream = container, stream

    def _encode(self, samples: np.ndarray) -> None:
        av = self._av
        if not len(samples):
            return
        pcm = np.frombuffer(float_to_pcm16(samples), dtype="<i2")
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.time_base = Fraction(1, self.sample_rate)
        frame.pts = self.samples_in
        self.samples_in += len(samples)
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except av.error.FFmpegError as exc:
            raise EngineError(f"{self.fmt} encoder failed: {exc}") from exc


def encode_whole(audio: Audio, fmt: str) -> bytes:
    """One complete file through the same encoder (headers finished, since memory is seekable)."""
    encoder = StreamEncoder(fmt, audio.sample_rate, seekable=True)
    head = encoder.write(audio)
    return head + encoder.finish()


def encode_chunks(chunks, fmt: str, sample_rate: int | None = None):
    """Generator: encoded bytes for each chunk as it arrives, then the tail (sync front ends)."""
    encoder = StreamEncoder(fmt, sample_rate)
    try:
        for chunk in chunks:
            data = encoder.write(chunk)
            if data:
                yield data
        tail = encoder.finish()
        if tail:
            yield tail
    finally:
        encoder.close()


def frame_seconds(fmt: str, sample_rate: int) -> float:
    """One codec frame in seconds (how closely a decode can match the input's length)."""
    spec = CODECS.get(fmt)
    if spec is None:
        return 1.0 / sample_rate
    rate = sample_rate if sample_rate in spec.rates else spec.fallback_rate
    return spec.frame_samples / rate


__all__ = ["CODECS", "STREAMABLE", "StreamEncoder", "encode_chunks", "encode_whole", "frame_seconds",
           "wav_stream_header"]
