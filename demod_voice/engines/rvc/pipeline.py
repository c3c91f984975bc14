"""The RVC conversion pipeline on loaded parts: audio in, converted audio out.

16 kHz input -> (high-pass) -> f0 for the whole clip -> quiet-point segments,
each with context on both sides -> HuBERT features -> optional index blending
-> 2x frame upsampling (50 -> 100 frames/s) -> protect -> synthesizer -> trim
the context -> join -> RMS-envelope mix -> optional resample.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

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
    """How long inputs are cut (seconds): at the quietest point near every ``center``."""

    pad: float = 0.5
    """Context added on both sides of each segment, trimmed after synthesis."""
    center: float = 30.0
    query: float = 4.0
    """Half-width of the window searched for the quietest point."""
    max_len: float = 35.0
    """Inputs up to this long are converted in one piece."""


def high_pass(x: np.ndarray) -> np.ndarray:
    """Remove rumble below 48 Hz, as RVC does before feature extraction."""
    from scipy.signal import butter, sosfiltfilt

    if len(x) < 64:
        return x
    sos = butter(5, 48, btype="high", fs=SR16, output="sos")
    return sosfiltfilt(sos, x).astype(np.float32)


def split_points(x: np.ndarray, seg: Segmenting) -> list[int]:
    """Sample positions (multiples of one frame) where a long input is cut: the quietest spot near each centre."""
    if len(x) <= seg.max_len * SR16:
        return []
    window = HOP16
    energy = np.convolve(np.abs(x.astype(np.float64)), np.ones(window), mode="same")
    points: list[int] = []
    center = int(seg.center * SR16)
    query = int(seg.query * SR16)
    pos = center
    while pos < len(x) - int(seg.query * SR16) - HOP16:
        lo, hi = max(pos - query, (points[-1] if points else 0) + HOP16), min(pos + query, len(x) - HOP16)
        if hi <= lo:
            break
        cut = lo + int(np.argmin(energy[lo:hi]))
        cut -= cut % HOP16
        if cut > (points[-1] if points else 0):
            points.append(cut)
        pos = cut + center
    return points


def frame_rms(x: np.ndarray, sr: int, length: int) -> np.ndarray:
    """RMS over half-second frames, linearly stretched to ``length`` samples."""
    hop = max(1, sr // 2)
    frame = hop * 2
    padded = np.pad(x.astype(np.float64), (frame // 2, frame // 2), mode="reflect" if len(x) > frame // 2 else "constant")
    count = 1 + max(0, (len(padded) - frame)) // hop
    rms = np.array([np.sqrt(np.mean(padded[i * hop:i * hop + frame] ** 2)) for i in range(count)])
    if count == 1:
        return np.full(length, rms[0])
    return np.interp(np.linspace(0, count - 1, length), np.arange(count), rms)


def mix_rms(source16k: np.ndarray, converted: np.ndarray, sr: int, rate: float) -> np.ndarray:
    """Give the output the input's loudness envelope by ``1 - rate`` (rate 1 = unchanged)."""
    if rate >= 1.0 or not len(converted):
        return converted
    rms_in = frame_rms(source16k, SR16, len(converted))
    rms_out = np.maximum(frame_rms(converted, sr, len(converted)), 1e-6)
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
        feats = self.hubert.features(torch.from_numpy(chunk), self.version)[0].cpu().numpy()
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
        """16 kHz samples, usable length, context pad, padded samples and f0 over the padded clip."""
        x16 = high_pass(resample(audio, SR16).samples)
        n = len(x16) - len(x16) % HOP16
        pad = max(HOP16, int(self.segmenting.pad * SR16) // HOP16 * HOP16)
        padded = np.pad(x16[:n], (pad, pad), mode="reflect" if pad < n else "constant") if n else x16[:0]
        f0_full = self._f0(padded, options, rmvpe) if (self.synth.f0 and n) else None
        return x16, n, pad, padded, f0_full

    def pitch_track(self, audio: Audio, options: ConvertOptions, rmvpe=None) -> np.ndarray | None:
        """The f0 (Hz per 10 ms, after ``pitch``) the synthesizer receives; None for no-f0 voices."""
        _, n, pad, _, f0_full = self._prepare(audio, options, rmvpe)
        return None if f0_full is None else f0_full[pad // HOP16:(pad + n) // HOP16]

    def convert(self, audio: Audio, options: ConvertOptions, rmvpe=None, seed: int = 0) -> Audio:
        x16, n, pad, padded, f0_full = self._prepare(audio, options, rmvpe)
        if n == 0:
            return Audio(np.zeros(0, np.float32), options.resample_sr or self.sample_rate)
        bounds = [0, *split_points(x16[:n], self.segmenting), n]
        pieces: list[np.ndarray] = []
        tgt_pad = pad // HOP16 * self.hop
        for start, end in zip(bounds[:-1], bounds[1:], strict=True):
            chunk = padded[start:end + 2 * pad]
            f0 = f0_full[start // HOP16:(end + 2 * pad) // HOP16] if f0_full is not None else None
            out = self._segment(chunk, f0, options, seed)
            want = (end - start) // HOP16 * self.hop
            pieces.append(_fit(out[tgt_pad:], want))
        converted = np.concatenate(pieces)
        converted = mix_rms(x16[:n], converted, self.sample_rate, options.rms_mix_rate)
        peak = float(np.max(np.abs(converted))) if len(converted) else 0.0
        if peak > 0.99:
            converted = converted * (0.99 / peak)
        result = Audio(converted, self.sample_rate)
        if options.resample_sr and options.resample_sr != self.sample_rate:
            result = resample(result, options.resample_sr)
        length = int(round(len(audio.samples) * result.sample_rate / audio.sample_rate))
        return Audio(_fit(result.samples, length), result.sample_rate)
