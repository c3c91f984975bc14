"""demod_voice.quality.score_audio on real speech and on damaged copies of it."""

from __future__ import annotations

import numpy as np

from demod_voice.audio import Audio, read
from demod_voice.quality import QualityScore, score_audio


def test_scores_rank_damage(speech_wav):
    clean = read(speech_wav)
    rng = np.random.default_rng(1)
    good = score_audio(clean)
    assert isinstance(good, QualityScore)
    assert good.score > 0.8 and good.snr_db > 30 and good.clipping_ratio == 0.0
    assert abs(good.duration - clean.duration) < 1e-6

    noisy = Audio(clean.samples + rng.normal(0, clean.rms, len(clean.samples)).astype(np.float32), clean.sample_rate)
    clipped = Audio(np.clip(clean.samples * 20, -1, 1), clean.sample_rate)
    silent = Audio(np.zeros_like(clean.samples), clean.sample_rate)
    padded = Audio(np.concatenate([np.zeros(clean.sample_rate * 12, np.float32), clean.samples]), clean.sample_rate)
    short = Audio(clean.samples[: int(0.4 * clean.sample_rate)], clean.sample_rate)

    n, c, s, p, sh = (score_audio(a) for a in (noisy, clipped, silent, padded, short))
    assert n.snr_db < 15 and n.score < good.score - 0.2
    assert c.clipping_ratio > 0.05 and c.score < 0.2
    assert s.score == 0.0 and s.silence_ratio == 1.0
    assert p.silence_ratio > 0.6 and p.score < good.score
    assert sh.components["duration"] < 0.3 and sh.score < good.score

    data = good.to_dict()
    assert set(data) == {"duration", "snr_db", "clipping_ratio", "silence_ratio", "peak_db", "score", "components"}
    assert set(data["components"]) == {"snr", "clipping", "silence", "duration"}
