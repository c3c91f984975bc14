"""The RVC conversion pipeline on loaded parts: audio in, converted audio out.

16 kHz input -> (high-pass) -> f0 for the whole clip -> quiet-point segments,
each with context on both sides -> HuBERT features -> optional index blending
-> 2x frame upsampling (50 -> 100 frames/s) -> protect -> synthesizer -> trim
the context -> join -> RMS-envelope mix -> optional resample.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

import demod_voice.engines.rvc.f0 as f0_mod
from demod_voice.audio import Audio, resample

_LOGGER = logging.getLogger(__name__)

SR16 = 16000
HOP16 = 160  # one synthesizer frame = 10 ms


@dataclass(frozen=True)
class ConvertOptions:
    """Per-call conversion settings (the ``rvc-convert`` options)."""

    pitch: float = 0.0
    """Transpose in semitones (-24..24)."""
    f0_method: str = "rmvpe"
    index_rate: float = 0.75
    """0 = no retrieval, 1 = only retrieved features."""
    filter_radius: int = 3
    """Median filter on harvest f0 when >= 3."""
    rms_mix_rate: float = 0.25
    """1 = keep the converted loudness envelope, 0 = follow the input's."""
    protect: float = 0.33
    """Keep this share of the original features on unvoiced frames (0.5 = off)."""
    resample_sr: int | None = None
    """Output rate; None keeps the model's rate."""


@dataclass(frozen=True)
class Segmenting:
    """How long inputs are cut (seconds): at the quietest point near every multiple of ``center``.

    The defaults are RVC's for a model run in fp32 (its ``x_pad``, ``x_query``, ``x_center``, ``x_max``);
    :meth:`rvc` gives its fp16 numbers too.
    """

    pad: float = 1.0
    """Context added on both sides of each segment, trimmed after synthesis."""
    center: float = 38.0
    query: float = 6.0
    """Half-width of the window searched for the quietest point."""
    max_len: float = 41.0
    """Inputs up to this long are converted in one piece."""

    @classmethod
    def rvc(cls, half: bool, context: float | None = None) -> Segmenting:
        """RVC's settings for the precision the synthesizer runs in (fp16: 3 s context, fp32: 1 s).

        ``context`` (the ``rvc.context_s`` option) replaces the context only.
        """
        seg = cls(pad=3.0, center=60.0, query=10.0, max_len=65.0) if half else cls()
        return seg if context is None else replace(seg, pad=float(context))


def high_pass(x: np.ndarray) -> np.ndarray:
    """Remove rumble below 48 Hz with RVC's filter: 5th-order Butterworth, forward and backward."""
    from scipy.signal import butter, filtfilt

    if len(x) < 64:
        return x
    b, a = butter(5, 48, btype="high", fs=SR16)
    return filtfilt(b, a, x)


def split_points(x: np.ndarray, seg: Segmenting) -> list[int]:
    """Sample positions (multiples of one frame) where a long input is cut, found as RVC finds them.

    Near every multiple of ``center`` seconds, the quietest 10 ms (least summed magnitude, centred) within
    ``query`` seconds either side.
    """
    if len(x) + HOP16 <= seg.max_len * SR16:
        return []
    padded = np.abs(np.pad(x.astype(np.float64), (HOP16 // 2, HOP16 // 2), mode="reflect"))
    cumulative = np.concatenate([[0.0], np.cumsum(padded)])
    energy = cumulative[HOP16:HOP16 + len(x)] - cumulative[:len(x)]  # sum of |x| over [i - 80, i + 80)
    center, query = int(round(seg.center * SR16)), int(round(seg.query * SR16))
    points: list[int] = []
    for mid in range(center, len(x), center):
        lo = max(0, mid - query)
        cut = lo + int(np.argmin(energy[lo:mid + query]))
        points.append(cut // HOP16 * HOP16)
    return points


def librosa_rms(x: np.ndarray, sr: int) -> np.ndarray:
    """RMS every half second over one-second frames, centred with zero padding (librosa's ``feature.rms``)."""
    hop = sr // 2
    frame = hop * 2
    padded = np.pad(np.asarray(x, dtype=np.float64), (frame // 2, frame // 2))
    count = 1 + (len(padded) - frame) // hop
    squares = np.concatenate([[0.0], np.cumsum(padded ** 2)])
    starts = np.arange(count) * hop
    return np.sqrt(np.maximum(squares[starts + frame] - squares[starts], 0.0) / frame)


def stretch_linear(values: np.ndarray, length: int) -> np.ndarray:
    """Linear resize to ``length`` points with half-pixel centres (``F.interpolate(mode="linear")``)."""
    count = len(values)
    src = np.maximum((np.arange(length) + 0.5) * (count / length) - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), count - 1)
    hi = np.minimum(lo + 1, count - 1)
    frac = src - lo
    return values[lo] * (1.0 - frac) + values[hi] * frac


def mix_rms(source16k: np.ndarray, converted: np.ndarray, sr: int, rate: float) -> np.ndarray:
    """Give the output the input's loudness envelope by ``1 - rate`` (rate 1 = unchanged), as RVC's ``change_rms``.

    Both envelopes are librosa-style RMS (one-second frames every half second), stretched linearly to the
    output's length; the output's is floored at 1e-6.
    """
    if rate >= 1.0 or not len(converted):
        return converted
    rms_in = stretch_linear(librosa_rms(source16k, SR16), len(converted))
    rms_out = np.maximum(stretch_linear(librosa_rms(converted, sr), len(converted)), 1e-6)
    gain = np.power(rms_in, 1.0 - rate) * np.power(rms_out, rate - 1.0)
    return (converted * gain).astype(np.float32)


def _fit(x: np.ndarray, length: int) -> np.ndarray:
    return x[:length] if len(x) >= length else np.pad(x, (0, length - len(x)))


class Pipeline:
    """Runs one conversion on loaded parts (synthesizer, HuBERT, optional index and RMVPE)."""

    def __init__(self, synth, hubert, version: str, index=None, device: str = "cpu",
                 segmenting: Segmenting = Segmenting()):
        self.synth = synth
        self.hubert = hubert
        self.version = version
        self.index = index
        self.device = device
        self.segmenting = segmenting
        self.sample_rate = synth.sample_rate
        self.hop = synth.hop

    def _f0(self, x16: np.ndarray, options: ConvertOptions, rmvpe) -> np.ndarray:
        f0 = f0_mod.extract(x16, options.f0_method, rmvpe=rmvpe, filter_radius=options.filter_radius,
                            device=self.device)
        return f0_mod.shift(f0, options.pitch)

    def _segment(self, chunk: np.ndarray, f0: np.ndarray | None, options: ConvertOptions, generator):
        import torch

        frames = len(chunk) // HOP16
        feats = self.hubert.features(torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32)), self.version)[0].cpu().numpy()
        original = feats
        if self.index is not None and options.index_rate > 0:
            feats = self.index.blend(feats, options.index_rate)
        feats = np.repeat(feats, 2, axis=0)  # 50 -> 100 frames/s
        original = np.repeat(original, 2, axis=0)
        frames = min(frames, len(feats))
        feats, original = feats[:frames], original[:frames]
        pitch = pitchf = None
        if self.synth.f0:
            pitchf = _fit(f0, frames)
            if options.protect < 0.5:
                keep = np.where(pitchf > 0, 1.0, options.protect).astype(np.float32)[:, None]
                feats = feats * keep + original * (1.0 - keep)
            pitch = torch.from_numpy(f0_mod.coarse(pitchf))[None].to(self.device)
            pitchf = torch.from_numpy(pitchf)[None].to(self.device)
        dtype = next(self.synth.parameters()).dtype
        phone = torch.from_numpy(np.ascontiguousarray(feats))[None].to(self.device, dtype=dtype)
        lengths = torch.tensor([frames], device=self.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(generator)
            out = self.synth.infer(phone, lengths, pitch, pitchf.to(dtype) if pitchf is not None else None)
        return out[0, 0].float().cpu().numpy()

    def _prepare(self, audio: Audio, options: ConvertOptions, rmvpe):
        """16 kHz samples, usable length, context pad, padded samples and f0 over the padded clip.

        The context is reflected (repeatedly, for inputs shorter than it), as RVC does.
        """
        x16 = high_pass(resample(audio, SR16).samples)
        n = len(x16) - len(x16) % HOP16
        pad = max(HOP16, int(round(self.segmenting.pad * SR16)) // HOP16 * HOP16)
        padded = np.pad(x16, (pad, pad), mode="reflect" if len(x16) > 1 else "constant") if n else x16[:0]
        f0_full = self._f0(padded, options, rmvpe) if (self.synth.f0 and n) else None
        return x16, n, pad, padded, f0_full

    def pitch_track(self, audio: Audio, options: ConvertOptions, rmvpe=None) -> np.ndarray | None:
        """The f0 (Hz per 10 ms, after ``pitch``) the synthesizer receives; None for no-f0 voices."""
        _, n, pad, _, f0_full = self._prepare(audio, options, rmvpe)
        return None if f0_full is None else f0_full[pad // HOP16:(pad + n) // HOP16]

    def convert(self, audio: Audio, options: ConvertOptions, rmvpe=None, seed: int = 0) -> Audio:
        """Convert ``audio``; the result lasts as long as the input (see docs/rvc.md, "Parity with RVC").

        Each segment is synthesised from the same samples RVC feeds it (its context plus, before a cut, one
        extra frame); RVC keeps that extra frame, so its output grows 10 ms per cut, while here each
        segment keeps exactly its own frames.
        """
        x16, n, pad, padded, f0_full = self._prepare(audio, options, rmvpe)
        if n == 0:
            return Audio(np.zeros(0, np.float32), options.resample_sr or self.sample_rate)
        bounds = [0, *split_points(x16, self.segmenting)]
        pieces: list[np.ndarray] = []
        tgt_pad = pad // HOP16 * self.hop
        for i, start in enumerate(bounds):
            last = i == len(bounds) - 1
            end = n if last else bounds[i + 1]
            if end <= start:
                continue
            chunk = padded[start:] if last else padded[start:end + 2 * pad + HOP16]
            f0 = None
            if f0_full is not None:
                f0 = f0_full[start // HOP16:len(padded) // HOP16 if last else (end + 2 * pad) // HOP16]
            out = self._segment(chunk, f0, options, seed)
            want = (end - start) // HOP16 * self.hop
            pieces.append(_fit(out[tgt_pad:], want))
        converted = np.concatenate(pieces).astype(np.float32)
        converted = mix_rms(x16, converted, self.sample_rate, options.rms_mix_rate)
        peak = float(np.max(np.abs(converted))) if len(converted) else 0.0
        if peak > 0.99:
            converted = converted * (0.99 / peak)
        result = Audio(converted, self.sample_rate)
        if options.resample_sr and options.resample_sr != self.sample_rate:
            result = resample(result, options.resample_sr)
        length = int(round(len(audio.samples) * result.sample_rate / audio.sample_rate))
        return Audio(_fit(result.samples, length), result.sample_rate)
