"""Reference audio -> the log-mel spectrogram the style encoders were trained on.

80 HTK-scale mel bands of the power spectrum (FFT 2048, window 1200, hop 300 on 24 kHz audio, centred, reflect
padding), ``(log(1e-5 + mel) + 4) / 4``. Leading and trailing silence (30 dB under the loudest frame) is cut
first, as the reference implementation does before computing a style.

The filterbank is the one StyleTTS2 was trained with, not the one its sample rate suggests: the reference code and
its training data loader build ``torchaudio.transforms.MelSpectrogram(n_mels=80, n_fft=2048, win_length=1200,
hop_length=300)`` without a ``sample_rate``, so torchaudio lays the bands out for its default 16 kHz (0 to 8 kHz
over the FFT bins). Feeding the style encoders a true 24 kHz filterbank gives mels unlike anything they saw in
training (max difference 2.1 on the same audio), which changes every cloned voice's timbre. ``tests/parity``
holds this equal to torchaudio's.
"""

from __future__ import annotations

import numpy as np

N_FFT, WIN, HOP, SAMPLE_RATE = 2048, 1200, 300, 24000
FILTERBANK_RATE = 16000
"""The rate the mel bands are laid out for (torchaudio's default, as in StyleTTS2's training), not the audio's."""


def trim_silence(samples: np.ndarray, top_db: float = 30.0, frame: int = 2048, hop: int = 512) -> np.ndarray:
    """``samples`` without the leading and trailing frames more than ``top_db`` under the loudest one."""
    if len(samples) < frame:
        return samples
    padded = np.pad(samples.astype(np.float64), frame // 2, mode="constant")
    starts = np.arange(0, len(padded) - frame + 1, hop)
    power = np.array([np.mean(padded[i:i + frame] ** 2) for i in starts])
    if not power.size or power.max() <= 0:
        return samples[:0]
    loud = np.flatnonzero(10 * np.log10(np.maximum(power, 1e-20) / power.max()) > -top_db)
    return samples[loud[0] * hop: min(len(samples), (loud[-1] + 1) * hop)]


def _mel_filters(n_mels: int, n_freqs: int):
    import torch

    def to_mel(hz):
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    top = FILTERBANK_RATE // 2
    freqs = np.linspace(0, top, n_freqs)
    points = 700.0 * (10 ** (np.linspace(to_mel(0.0), to_mel(float(top)), n_mels + 2) / 2595.0) - 1.0)
    width = np.diff(points)
    distance = points[None, :] - freqs[:, None]
    rising = -distance[:, :-2] / width[:-1]
    falling = distance[:, 2:] / width[1:]
    return torch.from_numpy(np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32))  # (freqs, mels)


def log_mel(samples: np.ndarray, n_mels: int = 80):
    """(1, n_mels, frames) float32 tensor."""
    import torch

    wave = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    spec = torch.stft(wave, N_FFT, HOP, WIN, window=torch.hann_window(WIN), center=True, pad_mode="reflect",
                      return_complex=True).abs() ** 2
    mel = _mel_filters(n_mels, N_FFT // 2 + 1).T @ spec
    return ((torch.log(1e-5 + mel) + 4.0) / 4.0).unsqueeze(0)
