"""Audio in, audio out: one small type plus I/O, DSP and encoding helpers.

Engines speak ``Audio`` (float32 mono samples in [-1, 1] and a sample rate);
encoding to a file format happens only at the edges (file write, HTTP
response). Every file written here goes through ``paths.atomic_output``: a temporary
file beside the target renamed into place (a crash or Ctrl-C never leaves a
partial file), or straight into a character device, FIFO or standard output.
"""

from __future__ import annotations

import io
import os
import re
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from demod_voice.errors import InputError, LimitError, UsageError
from demod_voice.paths import atomic_path, atomic_write_bytes, check_writable_dir  # noqa: F401 (audio writers use them)
from demod_voice.pcm import float_to_pcm16  # noqa: F401 (re-exported: the one float -> PCM16 rule)

#: Output formats and how they are produced. ``pcm`` is raw 16-bit little-endian mono.
FORMATS = ("wav", "flac", "ogg", "opus", "mp3", "aac", "pcm")
_SUFFIXES = {".wav": "wav", ".flac": "flac", ".ogg": "ogg", ".oga": "ogg", ".opus": "opus",
             ".mp3": "mp3", ".aac": "aac", ".pcm": "pcm", ".raw": "pcm"}
MEDIA_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "opus": "audio/ogg",
               "mp3": "audio/mpeg", "aac": "audio/aac", "pcm": "audio/pcm"}
#: Opus only supports these rates; other audio is resampled to 48 kHz.
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
#: libsndfile's container and subtype for each format it writes.
_SOUNDFILE_FORMATS = {"flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"), "opus": ("OGG", "OPUS"),
                      "mp3": ("MP3", "MPEG_LAYER_III")}


@dataclass
class Audio:
    """Mono float32 samples and their sample rate."""

    samples: np.ndarray
    """1-D float32 array, nominally in [-1, 1]."""
    sample_rate: int
    """Samples per second."""
    words: list | None = None
    """Optional word timings (``captions.Word``, seconds from this chunk's start) that travel with the chunk."""

    def __post_init__(self) -> None:
        self.samples = np.ascontiguousarray(self.samples, dtype=np.float32).reshape(-1)
        self.sample_rate = int(self.sample_rate)

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate if self.sample_rate else 0.0

    @property
    def peak(self) -> float:
        return float(np.max(np.abs(self.samples))) if len(self.samples) else 0.0

    @property
    def rms(self) -> float:
        return float(np.sqrt(np.mean(np.square(self.samples, dtype=np.float64)))) if len(self.samples) else 0.0

    def to_pcm16(self) -> bytes:
        return float_to_pcm16(self.samples)


def concat(parts: list[Audio], silence: float = 0.0) -> Audio:
    """Join audio of one sample rate, with optional silence between parts."""
    if not parts:
        raise ValueError("nothing to concatenate")
    sr = parts[0].sample_rate
    gap = np.zeros(int(round(silence * sr)), dtype=np.float32)
    pieces: list[np.ndarray] = []
    for i, part in enumerate(parts):
        if part.sample_rate != sr:
            part = resample(part, sr)
        if i and len(gap):
            pieces.append(gap)
        pieces.append(part.samples)
    return Audio(np.concatenate(pieces), sr)


# --- reading ---------------------------------------------------------------------

#: The most bytes read from one audio source; more is refused (``/dev/zero`` would otherwise read forever).
MAX_READ_BYTES = 256 * 1024 * 1024


def read(source: str | os.PathLike | bytes | BinaryIO, sample_rate: int | None = None, what: str = "audio file",
         max_seconds: float | None = None, max_bytes: int = MAX_READ_BYTES) -> Audio:
    """Read any format libsndfile reads, mixed down to mono, optionally resampled.

    Work is bounded: a source larger than ``max_bytes`` is refused (a FIFO or device is read up to that
    bound, never to its end), and with ``max_seconds`` only that much audio is decoded.
    """
    import soundfile as sf

    if isinstance(source, (bytes, bytearray)) or not isinstance(getattr(source, "name", source), (str, os.PathLike)):
        name = "(in memory)"  # never a Python object's repr such as <_io.BytesIO object at 0x...>
    else:
        name = str(getattr(source, "name", source))
    data_source = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    if isinstance(source, (str, os.PathLike)):
        data_source = _bounded_source(Path(source), what, max_bytes)
    try:
        with sf.SoundFile(data_source) as fh:
            frames = -1 if max_seconds is None else int(max_seconds * fh.samplerate)
            data, sr = fh.read(frames, dtype="float32", always_2d=True), fh.samplerate
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, MemoryError) as exc:
        # AAC/M4A, WebM, streamed FLAC (unknown length) ...: PyAV's bundled ffmpeg decoders
        if hasattr(data_source, "seek"):
            data_source.seek(0)
        audio = _read_av(data_source, name, what, exc, max_seconds)
        sr = audio.sample_rate
    else:
        audio = Audio(data.mean(axis=1) if data.shape[1] > 1 else data[:, 0], sr)
    if sample_rate and sample_rate != sr:
        audio = resample(audio, sample_rate)
    return audio


def _bounded_source(path: Path, what: str, max_bytes: int) -> Path | io.BytesIO:
    """``path`` itself for a regular file within the bound; the bytes of a FIFO/device read up to the bound."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"{what} not found: {path}", hint="check the path") from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror}") from None
    too_big = InputError(f"{what} {path} is larger than {max_bytes // (1024 * 1024)} MiB",
                         hint="use a shorter recording, or compress it (FLAC, OGG)")
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{what} is a folder, not a file: {path}")
    if stat.S_ISREG(st.st_mode):
        if st.st_size > max_bytes:
            raise too_big
        return path
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > max_bytes:
        raise too_big
    return io.BytesIO(data)


def _plain_error(exc: Exception) -> str:
    """libsndfile's message without the Python object it was given (``<_io.BytesIO object at 0x...>: ``)."""

    text = re.sub(r"<_io\.\w+ object at 0x[0-9a-fA-F]+>:?\s*", "", str(exc)).strip()
    text = text.removeprefix("Error opening ").strip()
    if text.lower().startswith("format not recognised"):
        return "not a format libsndfile knows"
    return text or type(exc).__name__


def _read_av(source, name: str, what: str, first_error: Exception, max_seconds: float | None = None) -> Audio:
    """Decode with PyAV (no system ffmpeg), mixed down to mono; used when libsndfile cannot.

    With ``max_seconds`` decoding stops once that much audio is in hand (bounded work).
    """
    hint = "use WAV, FLAC, OGG, MP3, AAC/M4A or another common audio format"
    first_error = _plain_error(first_error)
    try:
        import av
    except ImportError:
        raise InputError(f"cannot read {what} {name}: {first_error}", hint=hint) from None
    source = str(source) if isinstance(source, (str, os.PathLike)) else source
    parts: list[np.ndarray] = []
    try:
        with av.open(source, mode="r") as container:
            if not container.streams.audio:
                raise InputError(f"{what} {name} has no audio stream", hint=hint)
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=stream.rate)
            limit = None if max_seconds is None else int(max_seconds * stream.rate)
            for frame in container.decode(stream):
                parts.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
                if limit is not None and sum(len(x) for x in parts) >= limit:
                    break
            parts.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
            rate = stream.rate
    except av.error.FFmpegError as exc:
        raise InputError(f"cannot read {what} {name}: {first_error}; PyAV: {exc}", hint=hint) from None
    if not parts or not rate:
        raise InputError(f"{what} {name} holds no audio samples", hint=hint)
    samples = np.concatenate(parts)
    if max_seconds is not None:
        samples = samples[: int(max_seconds * rate)]
    return Audio(samples, rate)


def decode_upload(data: bytes, what: str, max_seconds: float, limit_key: str) -> Audio:
    """Decode untrusted audio block by block, refusing it (``LimitError``, 413) once it passes ``max_seconds``.

    A compressed upload can hold hours of audio in a few hundred KB (a FLAC of silence); decoding it whole
    first would cost GBs. The length in the header is checked before any decoding, then the count of
    decoded samples as they arrive, so the work and memory are those of ``max_seconds`` of audio at most.
    Formats libsndfile cannot read go through PyAV under the same bound.
    """
    import soundfile as sf

    def too_long(seconds: float | None = None) -> LimitError:
        length = f" ({seconds:.0f} s)" if seconds else ""
        return LimitError(f"{what} is longer than {max_seconds:g} s{length}",
                          hint=f"send shorter audio (the limit is {limit_key})")

    try:
        with sf.SoundFile(io.BytesIO(data)) as fh:
            rate, channels = fh.samplerate, fh.channels
            limit = int(max_seconds * rate)
            if 0 < fh.frames < (1 << 62) and fh.frames > limit:  # cheap: the header's own length
                raise too_long(fh.frames / rate)
            parts: list[np.ndarray] = []
            total = 0
            for block in fh.blocks(max(1024, 65536 // max(1, channels)), dtype="float32", always_2d=True):
                total += len(block)
                if total > limit:
                    raise too_long()
                parts.append(block.mean(axis=1) if channels > 1 else block[:, 0].copy())
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, MemoryError) as exc:
        audio = _read_av(io.BytesIO(data), "", what, exc, max_seconds + 1.0)
        if audio.duration > max_seconds:
            raise too_long() from None
        return audio
    if not parts:
        raise InputError(f"{what} holds no audio samples", hint="send a recording of a few seconds")
    return Audio(np.concatenate(parts), rate)


def info(path: str | os.PathLike) -> tuple[int, int, float]:
    """(sample_rate, channels, duration seconds) without decoding the audio."""
    import soundfile as sf

    meta = sf.info(str(path))
    return meta.samplerate, meta.channels, meta.duration


# --- DSP ------------------------------------------------------------------------

def resample(audio: Audio, sample_rate: int) -> Audio:
    """High-quality resampling (libsoxr)."""
    if audio.sample_rate == sample_rate or not len(audio.samples):
        return Audio(audio.samples, sample_rate)
    import soxr

    return Audio(soxr.resample(audio.samples, audio.sample_rate, sample_rate, quality="HQ"), sample_rate)


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def peak_normalize(audio: Audio, peak_db: float = -1.0) -> Audio:
    """Scale so the absolute peak sits at ``peak_db`` dBFS (silence stays silence)."""
    peak = audio.peak
    if peak <= 1e-9:
        return audio
    return Audio(audio.samples * (db_to_gain(peak_db) / peak), audio.sample_rate)


def loudness(audio: Audio) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770); -inf for silence or very short audio."""
    import pyloudnorm

    if audio.duration < 0.4:  # BS.1770 needs at least one 400 ms block
        return float("-inf")
    return float(pyloudnorm.Meter(audio.sample_rate).integrated_loudness(audio.samples.astype(np.float64)))


def loudness_normalize(audio: Audio, target_lufs: float = -23.0, peak_db: float = -1.0) -> Audio:
    """Bring integrated loudness to ``target_lufs`` without letting peaks exceed ``peak_db``."""
    current = loudness(audio)
    if not np.isfinite(current):
        return peak_normalize(audio, peak_db) if audio.peak > 1e-9 else audio
    gain = db_to_gain(target_lufs - current)
    ceiling = db_to_gain(peak_db)
    if audio.peak * gain > ceiling:
        gain = ceiling / audio.peak
    return Audio(audio.samples * gain, audio.sample_rate)


def frame_rms_db(audio: Audio, frame: float = 0.02) -> np.ndarray:
    """RMS level of consecutive frames in dBFS."""
    n = max(1, int(audio.sample_rate * frame))
    count = len(audio.samples) // n
    if count == 0:
        return np.array([20 * np.log10(max(audio.rms, 1e-10))])
    frames = audio.samples[: count * n].reshape(count, n).astype(np.float64)
    return 20.0 * np.log10(np.maximum(np.sqrt(np.mean(frames ** 2, axis=1)), 1e-10))


def trim_silence(audio: Audio, threshold_db: float = -40.0, pad: float = 0.05, frame: float = 0.02) -> Audio:
    """Cut leading and trailing frames quieter than ``threshold_db`` relative to the peak frame."""
    levels = frame_rms_db(audio, frame)
    loud = np.flatnonzero(levels > levels.max() + threshold_db) if len(levels) else []
    if len(loud) == 0 or levels.max() < -80:
        return Audio(audio.samples[:0], audio.sample_rate)
    n = int(audio.sample_rate * frame)
    p = int(audio.sample_rate * pad)
    start = max(0, loud[0] * n - p)
    end = min(len(audio.samples), (loud[-1] + 1) * n + p)
    return Audio(audio.samples[start:end], audio.sample_rate)


def is_silent(audio: Audio, threshold_db: float = -60.0) -> bool:
    return audio.peak <= db_to_gain(threshold_db)


# --- encoding & writing -----------------------------------------------------------

def format_for(path: str | os.PathLike | None, fmt: str | None, default: str = "wav") -> str:
    """Pick the output format: explicit ``fmt``, else the file suffix, else ``default``."""
    if fmt:
        fmt = fmt.lower()
        if fmt not in FORMATS:
            raise UsageError(f"unknown audio format '{fmt}'", hint="choose one of " + ", ".join(FORMATS))
        return fmt
    if path and str(path) != "-":
        suffix = Path(path).suffix.lower()
        if suffix in _SUFFIXES:
            return _SUFFIXES[suffix]
        if suffix in (".m4a", ".mp4") and fmt is None:
            raise UsageError(f"'{Path(path).name}': {suffix} is an MP4 container, which demod-voice does not write",
                             hint="write AAC as .aac (ADTS), or use .ogg/.opus/.mp3")
        if suffix:
            raise UsageError(f"cannot infer the audio format from '{Path(path).name}'",
                             hint="use a .wav/.flac/.ogg/.opus/.mp3/.aac/.pcm suffix or pass --format")
    return default


def wav_header(sample_rate: int, frames: int) -> bytes:
    """The 44-byte header libsndfile writes for mono 16-bit PCM WAV.

    With the samples already quantised by ``float_to_pcm16`` a WAV file is this
    header plus those bytes; building it here skips soundfile's BytesIO round
    trip through Python callbacks, which showed in the in-process Piper
    overhead (docs/benchmarks.md). tests/core/test_audio.py checks the bytes
    against soundfile's.
    """
    size = frames * 2
    return (b"RIFF" + struct.pack("<I", 36 + size) + b"WAVE" + b"fmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16) + b"data" + struct.pack("<I", size))


def encode(audio: Audio, fmt: str) -> bytes:
    """Encode to a complete file in ``fmt`` (see ``FORMATS``)."""
    import soundfile as sf

    fmt = format_for(None, fmt)
    if fmt == "pcm":
        return audio.to_pcm16()
    if fmt == "aac":  # libsndfile has no AAC; PyAV's bundled encoder needs no system ffmpeg
        from demod_voice.streaming import encode_whole

        return encode_whole(audio, "aac")
    if fmt == "wav" and np.ndim(audio.samples) == 1:
        return wav_header(audio.sample_rate, len(audio.samples)) + audio.to_pcm16()
    buf = io.BytesIO()
    samples = np.clip(audio.samples, -1.0, 1.0)
    if fmt in ("wav", "flac"):
        # One float -> 16-bit rule everywhere (files, streams, raw pcm): ``float_to_pcm16``, so a WAV file
        # and a streamed WAV of the same audio hold the same samples.
        pcm = np.frombuffer(audio.to_pcm16(), dtype="<i2")
        sf.write(buf, pcm, audio.sample_rate, format=fmt.upper(), subtype="PCM_16")
    else:  # ogg, opus, mp3: libsndfile's lossy encoders, fed in bounded blocks
        if fmt == "opus" and audio.sample_rate not in _OPUS_RATES:
            audio = resample(audio, 48000)
            samples = np.clip(audio.samples, -1.0, 1.0)
        container, subtype = _SOUNDFILE_FORMATS[fmt]
        with sf.SoundFile(buf, "w", audio.sample_rate, 1, format=container, subtype=subtype) as fh:
            write_blocks(fh, samples)
    return buf.getvalue()


#: Frames handed to libsndfile per write. libsndfile 1.2.2's Vorbis writer gives libvorbis a whole
#: write at once and crashes the process (SIGSEGV) on one write of ~2 minutes at 22 kHz; writes of this
#: size encode hour-long audio (tests/security/test_ogg_crash.py), also in threads with small stacks.
SF_WRITE_BLOCK = 32768


def write_blocks(fh, samples: np.ndarray) -> None:
    """``fh.write(samples)`` in blocks of ``SF_WRITE_BLOCK`` frames (same file, bounded native work)."""
    for start in range(0, len(samples), SF_WRITE_BLOCK):
        fh.write(samples[start:start + SF_WRITE_BLOCK])


class IncrementalEncoder:
    """``encode`` chunk by chunk into a seekable binary file, so long audio never sits in memory whole.

    Gives ``encode``'s bytes for the concatenated chunks: WAV and PCM exactly (header finished at the
    end), FLAC and MP3 too (libsndfile's encoders do not depend on how writes are cut), AAC through the
    same PyAV encoder; Ogg files carry a random stream serial, so Ogg Vorbis/Opus match in samples only.
    Opus at a rate the codec lacks is resampled with a streaming libsoxr resampler. Chunks at another
    rate than ``sample_rate`` are resampled to it, as ``concat`` does.
    """

    def __init__(self, fh: BinaryIO, fmt: str, sample_rate: int):
        self.fmt = format_for(None, fmt)
        self.sample_rate = sample_rate
        self.frames = 0
        self._fh = fh
        self._sf = None
        self._resampler = None
        self._aac = None
        if self.fmt == "wav":
            fh.write(wav_header(sample_rate, 0))  # sizes filled in by finish()
        elif self.fmt == "aac":
            from demod_voice.streaming import StreamEncoder

            self._aac = StreamEncoder("aac", sample_rate, into=fh)
        elif self.fmt != "pcm":
            import soundfile as sf

            rate = sample_rate
            if self.fmt == "opus" and rate not in _OPUS_RATES:
                import soxr

                rate = 48000
                self._resampler = soxr.ResampleStream(sample_rate, rate, 1, dtype="float32", quality="HQ")
            container, subtype = _SOUNDFILE_FORMATS[self.fmt]
            self._sf = sf.SoundFile(fh, "w", rate, 1, format=container, subtype=subtype)

    def write(self, chunk: Audio) -> None:
        if chunk.sample_rate != self.sample_rate:
            chunk = resample(chunk, self.sample_rate)
        self.frames += len(chunk.samples)
        if self.fmt in ("wav", "pcm"):
            self._fh.write(chunk.to_pcm16())
        elif self._aac is not None:
            self._aac.write(chunk)
        elif self.fmt == "flac":  # quantised by the one float -> 16-bit rule, as in ``encode``
            write_blocks(self._sf, np.frombuffer(chunk.to_pcm16(), dtype="<i2"))
        else:
            self._write_float(np.asarray(chunk.samples, dtype=np.float32), last=False)

    def _write_float(self, samples: np.ndarray, last: bool) -> None:
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples, last=last)
        if len(samples):
            write_blocks(self._sf, np.clip(samples, -1.0, 1.0))

    def finish(self) -> None:
        """Complete the file (headers, codec flush). Call once, after the last chunk."""
        if self.fmt == "wav":
            end = self._fh.tell()
            self._fh.seek(0)
            self._fh.write(wav_header(self.sample_rate, self.frames))
            self._fh.seek(end)
        elif self._aac is not None:
            self._aac.finish()
        elif self._sf is not None:
            if self._resampler is not None:
                self._write_float(np.zeros(0, dtype=np.float32), last=True)
            self._sf.close()
        self._fh.flush()


def write(audio: Audio, target: str | os.PathLike, fmt: str | None = None) -> Path:
    """Encode and write atomically; the format comes from ``fmt`` or the suffix."""
    return atomic_write_bytes(target, encode(audio, format_for(target, fmt)))
