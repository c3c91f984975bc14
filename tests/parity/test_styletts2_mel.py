"""StyleTTS2's reference mel equals the one it was trained on (issue #32, item 1).

The reference implementation (``styletts2`` on PyPI, ``tts.py``) and its training loader build the mel with
``torchaudio.transforms.MelSpectrogram(n_mels=80, n_fft=2048, win_length=1200, hop_length=300)`` -- no
``sample_rate``, so torchaudio's default 16 kHz filterbank -- then ``(log(1e-5 + mel) + 4) / 4``. Ours must give
the same numbers on the same 24 kHz audio; before the fix they differed by 2.1.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchaudio = pytest.importorskip("torchaudio")


def reference_mel(samples: np.ndarray):
    to_mel = torchaudio.transforms.MelSpectrogram(n_mels=80, n_fft=2048, win_length=1200, hop_length=300)
    mel = to_mel(torch.from_numpy(samples).float())
    return (torch.log(1e-5 + mel.unsqueeze(0)) + 4) / 4


def test_log_mel_equals_the_training_mel():
    from demod_voice.engines.styletts2 import mel

    rng = np.random.default_rng(7)
    t = np.arange(24000 * 2) / 24000
    samples = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 3100 * t)
               + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    ours = mel.log_mel(samples)
    theirs = reference_mel(samples)
    assert ours.shape == theirs.shape == (1, 80, 161)
    assert float((ours - theirs).abs().max()) < 1e-3

