"""The hand-written network pieces against direct (slow, obvious) formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from demod_voice.engines.rvc.synthesizer import MultiHeadAttention, _fold_weight_norm


@pytest.mark.parametrize("t", [3, 9])  # shorter than the window, and longer (padded table)
def test_relative_position_attention_matches_the_direct_formula(t):
    torch.manual_seed(0)
    window, channels, heads = 3, 8, 2
    attn = MultiHeadAttention(channels, channels, heads, window_size=window).eval()
    x = torch.randn(1, channels, t)
    mask = torch.ones(1, 1, t, t)
    got = attn(x, mask)

    kc = channels // heads
    q = attn.conv_q(x).view(1, heads, kc, t).transpose(2, 3)[0] / math.sqrt(kc)
    k = attn.conv_k(x).view(1, heads, kc, t).transpose(2, 3)[0]
    v = attn.conv_v(x).view(1, heads, kc, t).transpose(2, 3)[0]
    rel_k, rel_v = attn.emb_rel_k[0], attn.emb_rel_v[0]
    out = torch.zeros(heads, t, kc)
    for h in range(heads):
        scores = torch.zeros(t, t)
        for i in range(t):
            for j in range(t):
                scores[i, j] = q[h, i] @ k[h, j]
                if abs(j - i) <= window:
                    scores[i, j] += q[h, i] @ rel_k[window + j - i]
        p = torch.softmax(scores, dim=-1)
        for i in range(t):
            for j in range(t):
                out[h, i] += p[i, j] * v[h, j]
                if abs(j - i) <= window:
                    out[h, i] += p[i, j] * rel_v[window + j - i]
    want = attn.conv_o(out.transpose(1, 2).reshape(1, channels, t))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_weight_norm_folding_matches_torch():
    conv = torch.nn.utils.weight_norm(torch.nn.ConvTranspose1d(6, 3, 4, 2))
    sd = {f"dec.ups.0.{k}": v for k, v in conv.state_dict().items()}
    folded = _fold_weight_norm(sd)
    assert set(folded) == {"dec.ups.0.weight", "dec.ups.0.bias"}
    conv(torch.zeros(1, 6, 2))  # recompute weight from g and v
    np.testing.assert_allclose(folded["dec.ups.0.weight"].numpy(), conv.weight.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_rmvpe_mel_filterbank_matches_librosa():
    """RMVPE was trained on librosa's HTK-scale, Slaney-normalised filters; ours are written out by hand."""
    librosa = pytest.importorskip("librosa")
    from demod_voice.engines.rvc.rmvpe import _mel_filterbank

    want = librosa.filters.mel(sr=16000, n_fft=1024, n_mels=128, fmin=30, fmax=8000, htk=True)
    np.testing.assert_allclose(_mel_filterbank(), want, rtol=1e-4, atol=1e-7)
