"""Pitch (f0) extraction for RVC: one frame every 10 ms of 16 kHz audio.

Methods: ``rmvpe`` (needs ``rmvpe.pt``), ``crepe``/``crepe-tiny`` (torchcrepe,
weights ship with it), ``harvest``/``dio`` (pyworld, no weights) and ``pm``
(praat-parselmouth, GPL, only when installed). Also the mapping from Hz to the
256 coarse pitch classes the synthesizer embeds.
"""

from __future__ import annotations

import logging

import numpy as np

from demod_voice.config import F0_METHODS as METHODS  # the one list lives in the schema
from demod_voice.errors import InputError, NotAvailableError, install_hint

_LOGGER = logging.getLogger(__name__)

SAMPLE_RATE = 16000
HOP = 160
F0_MIN = 50.0
F0_MAX = 1100.0
_MEL_MIN = 1127.0 * np.log(1.0 + F0_MIN / 700.0)
_MEL_MAX = 1127.0 * np.log(1.0 + F0_MAX / 700.0)


def available_methods() -> tuple[str, ...]:
    """``pm`` only appears when the optional GPL package is installed."""
    import importlib.util

    return tuple(m for m in METHODS if m != "pm" or importlib.util.find_spec("parselmouth") is not None)


def _fit(f0: np.ndarray, frames: int) -> np.ndarray:
    f0 = np.asarray(f0, dtype=np.float32).reshape(-1)
    if len(f0) >= frames:
        return f0[:frames]
    return np.pad(f0, (0, frames - len(f0)))


def _world(audio: np.ndarray, method: str, filter_radius: int) -> np.ndarray:
    try:
        import pyworld
    except ImportError:
        raise NotAvailableError(f"f0 method '{method}' needs pyworld", hint=install_hint("rvc")) from None
    x = audio.astype(np.float64)
    analyse = pyworld.harvest if method == "harvest" else pyworld.dio
    f0, t = analyse(x, fs=SAMPLE_RATE, f0_floor=F0_MIN, f0_ceil=F0_MAX, frame_period=1000 * HOP / SAMPLE_RATE)
    f0 = pyworld.stonemask(x, f0, t, SAMPLE_RATE)
    if method == "harvest" and filter_radius > 2:
        from scipy.signal import medfilt

        f0 = medfilt(f0, 3)
    return f0


def _crepe(audio: np.ndarray, model: str, device: str) -> np.ndarray:
    try:
        import torch
        import torchcrepe
    except ImportError:
        raise NotAvailableError("f0 method 'crepe' needs torchcrepe", hint=install_hint("rvc")) from None
    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
    dev = "cuda" if device.startswith("cuda") else "cpu"
    f0, periodicity = torchcrepe.predict(x, SAMPLE_RATE, HOP, F0_MIN, F0_MAX, model, batch_size=512, device=dev,
                                         return_periodicity=True)
    periodicity = torchcrepe.filter.median(periodicity, 3)
    f0 = torchcrepe.filter.mean(f0, 3)
    f0[periodicity < 0.1] = 0
    return f0[0].cpu().numpy()


def _pm(audio: np.ndarray) -> np.ndarray:
    try:
        import parselmouth
    except ImportError:
        raise NotAvailableError("f0 method 'pm' needs praat-parselmouth (GPL), which is not installed",
                                hint=install_hint("rvc-gpl") + ", or use rmvpe/harvest/crepe") from None
    pitch = parselmouth.Sound(audio.astype(np.float64), SAMPLE_RATE).to_pitch_ac(
        time_step=HOP / SAMPLE_RATE, voicing_threshold=0.6, pitch_floor=F0_MIN, pitch_ceiling=F0_MAX)
    f0 = pitch.selected_array["frequency"]
    lead = (len(audio) // HOP + 1 - len(f0) + 1) // 2  # praat's first frame sits half a window in
    return np.pad(f0, (max(lead, 0), 0))


def extract(audio16k: np.ndarray, method: str, *, rmvpe=None, filter_radius: int = 3,
            device: str = "cpu") -> np.ndarray:
    """f0 in Hz, ``len(audio)//160 + 1`` frames (0 = unvoiced)."""
    frames = len(audio16k) // HOP + 1
    if method == "rmvpe":
        if rmvpe is None:
            raise InputError("f0 method rmvpe needs rmvpe.pt", hint="pass --rmvpe or run 'demod-voice models pull rvc-aux'")
        f0 = rmvpe.f0(audio16k)
    elif method in ("crepe", "crepe-tiny"):
        f0 = _crepe(audio16k, "tiny" if method == "crepe-tiny" else "full", device)
    elif method in ("harvest", "dio"):
        f0 = _world(audio16k, method, filter_radius)
    elif method == "pm":
        f0 = _pm(audio16k)
    else:
        raise InputError(f"unknown f0 method {method!r}", hint="choose one of " + ", ".join(available_methods()))
    return _fit(np.nan_to_num(f0), frames)


def shift(f0: np.ndarray, semitones: float) -> np.ndarray:
    return (f0 * 2.0 ** (semitones / 12.0)).astype(np.float32)


def coarse(f0: np.ndarray) -> np.ndarray:
    """Hz -> pitch classes 1..255 on a mel scale (1 = unvoiced), as the synthesizer embeds them."""
    mel = 1127.0 * np.log(1.0 + np.asarray(f0, dtype=np.float64) / 700.0)
    voiced = mel > 0
    mel[voiced] = (mel[voiced] - _MEL_MIN) * 254.0 / (_MEL_MAX - _MEL_MIN) + 1.0
    mel = np.clip(mel, 1.0, 255.0)
    return np.rint(mel).astype(np.int64)
