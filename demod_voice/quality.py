"""How usable a recording is, as one 0..1 score plus the measurements behind it.

Used by ``piper-preprocess`` to drop poor training utterances and, by the
server's voice profiles, to rank reference samples. Everything is computed on
20 ms frames of the mono signal, so it costs a few milliseconds per second of
audio and needs no model:

* **estimated SNR** -- the level of the loud frames (95th percentile) over the
  noise floor (10th percentile of the frames that are not digital silence).
  Recordings with pauses between words measure well; a recording with no pause
  at all gets a pessimistic estimate, which is the safe direction.
* **clipping ratio** -- the fraction of samples stuck at full scale: at least
  two neighbours in a row at the same rail. A peak-normalised recording touches
  full scale on a few isolated samples; that is not clipping.
* **silence ratio** -- the fraction of frames more than 40 dB below the
  loudest frame (long lead-in/lead-out or dead air).
* **duration** -- very short clips carry too little speech to learn from or to
  clone a voice from; very long ones are unwieldy.

The overall score is a weighted geometric mean of one 0..1 sub-score per
component, so one fatal defect (silence, heavy clipping) pulls the whole score
to zero instead of being averaged away.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from demod_voice.audio import Audio, frame_rms_db

#: Frames below this level (dBFS) count as digital silence, not as noise floor.
DIGITAL_SILENCE_DB = -90.0
#: A recording whose loudest frame is below this level (dBFS) is silent.
SILENT_PEAK_DB = -60.0
#: Frames this far below the loudest frame count as silence.
SILENCE_BELOW_PEAK_DB = 40.0

_WEIGHTS = {"snr": 0.4, "clipping": 0.25, "silence": 0.2, "duration": 0.15}


@dataclass(frozen=True)
class QualityScore:
    """The measurements of one recording and the score they add up to."""

    duration: float
    """Length in seconds."""
    snr_db: float
    """Estimated signal-to-noise ratio in dB (capped at 60)."""
    clipping_ratio: float
    """Fraction of samples at or above full scale (0..1)."""
    silence_ratio: float
    """Fraction of 20 ms frames 40 dB or more below the loudest frame (0..1)."""
    peak_db: float
    """Loudest sample in dBFS."""
    score: float
    """Overall quality, 0 (unusable) .. 1 (clean)."""
    components: dict
    """The 0..1 sub-score of each component (snr, clipping, silence, duration)."""

    def to_dict(self) -> dict:
        """JSON-friendly form with rounded numbers (reports, API responses)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float):
                out[key] = round(value, 4)
        out["components"] = {k: round(v, 4) for k, v in self.components.items()}
        return out


def _ramp(value: float, low: float, high: float) -> float:
    """0 at ``low``, 1 at ``high``, linear between (works for falling ramps too)."""
    if high == low:
        return 1.0 if value >= high else 0.0
    return float(min(1.0, max(0.0, (value - low) / (high - low))))


def estimate_snr_db(levels_db: np.ndarray) -> float:
    """Loud-frame level over noise floor, from per-frame RMS levels in dB."""
    active = levels_db[levels_db > DIGITAL_SILENCE_DB]
    if len(active) < 2:
        return 60.0 if len(active) else 0.0
    floor = float(np.percentile(active, 10))
    signal = float(np.percentile(active, 95))
    if len(active) < len(levels_db) * 0.5 and floor < signal - 60:
        return 60.0
    return float(min(60.0, max(0.0, signal - floor)))


def clipping_ratio(audio: Audio, level: float = 0.999) -> float:
    """Fraction of samples in flat runs (2+ samples) at the positive or negative rail."""
    x = audio.samples
    if len(x) < 2:
        return 0.0
    high, low = x >= level, x <= -level
    run_high = high[1:] & high[:-1]
    run_low = low[1:] & low[:-1]
    stuck = np.zeros(len(x), dtype=bool)
    stuck[1:] |= run_high | run_low
    stuck[:-1] |= run_high | run_low
    return float(np.mean(stuck))


def score_audio(audio: Audio) -> QualityScore:
    """Measure ``audio`` and score it 0..1 (see the module docstring)."""
    duration = audio.duration
    peak = audio.peak
    peak_db = 20.0 * math.log10(peak) if peak > 0 else -120.0
    clip = clipping_ratio(audio)
    if peak_db < SILENT_PEAK_DB or duration <= 0:
        components = {"snr": 0.0, "clipping": 1.0, "silence": 0.0, "duration": _duration_score(duration)}
        return QualityScore(duration, 0.0, clip, 1.0, peak_db, 0.0, components)
    levels = frame_rms_db(audio)
    silence = float(np.mean(levels < levels.max() - SILENCE_BELOW_PEAK_DB))
    snr = estimate_snr_db(levels)
    components = {
        "snr": _ramp(snr, 10.0, 35.0),
        "clipping": 1.0 - _ramp(clip, 0.0, 0.01),
        "silence": 1.0 - _ramp(silence, 0.4, 0.9),
        "duration": _duration_score(duration),
    }
    if min(components.values()) <= 0.0:
        score = 0.0
    else:
        # Weighted geometric mean: one fatal component sinks the score.
        score = math.exp(sum(w * math.log(components[k]) for k, w in _WEIGHTS.items()) / sum(_WEIGHTS.values()))
    return QualityScore(duration, snr, clip, silence, peak_db, score, components)


def _duration_score(duration: float) -> float:
    """Full marks from 1 s to 20 s; nothing under 0.3 s; fading to 0.5 at 40 s."""
    if duration < 1.0:
        return _ramp(duration, 0.3, 1.0)
    if duration <= 20.0:
        return 1.0
    return max(0.5, 1.0 - 0.5 * _ramp(duration, 20.0, 40.0))


# --- reference suitability (voice profiles) ------------------------------------------------

@dataclass
class ReferenceScore:
    """How usable a recording is as a cloning reference (built on ``QualityScore``); ``overall`` is 0 (unusable) .. 1 (ideal)."""

    overall: float
    snr_db: float
    """Estimated signal-to-noise ratio: loud-frame level minus noise-floor level."""
    clipping: float
    """Fraction of samples at full scale."""
    silence: float
    """Fraction of 20 ms frames more than 40 dB below the loudest frame (or below -60 dBFS)."""
    duration: float
    """Seconds."""
    loudness_lufs: float | None
    """Integrated loudness (ITU-R BS.1770); None when too short to measure."""
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def score_reference(audio: Audio) -> ReferenceScore:
    """Score a recording as a cloning reference.

    The measurements (estimated SNR, clipping, silence, duration) and their
    0..1 sub-scores come from ``score_audio``, shared with ``piper-preprocess``; a reference additionally wants 3-30 s of speech at a
    sensible loudness, and the problems are spelled out for the user.
    """
    from demod_voice import audio as audio_mod

    base = score_audio(audio)
    duration = base.duration
    if duration <= 0 or base.score <= 0.0 and audio.peak <= 1e-5:
        return ReferenceScore(0.0, 0.0, 0.0, 1.0, duration, None, ["silent or empty"])
    lufs = audio_mod.loudness(audio)
    lufs_value = float(lufs) if np.isfinite(lufs) else None

    problems = []
    if base.snr_db < 20:
        problems.append(f"noisy (SNR {base.snr_db:.0f} dB)")
    if base.clipping_ratio > 0.001:
        problems.append(f"clipped ({base.clipping_ratio:.1%} of samples)")
    if base.silence_ratio > 0.5:
        problems.append(f"mostly silence ({base.silence_ratio:.0%})")
    if duration < 3.0:
        duration_s = _ramp(duration, 0.5, 3.0)
        problems.append(f"short ({duration:.1f} s; 3-30 s is best)")
    elif duration > 30.0:
        duration_s = max(0.3, 30.0 / duration)
        problems.append(f"long ({duration:.0f} s; 3-30 s is best)")
    else:
        duration_s = 1.0
    if lufs_value is None:
        loud_s = 0.5
    elif lufs_value < -35:
        loud_s = _ramp(lufs_value, -50.0, -35.0)
        problems.append(f"quiet ({lufs_value:.0f} LUFS)")
    elif lufs_value > -10:
        loud_s = 1.0 - _ramp(lufs_value, -10.0, 0.0)
        problems.append(f"very loud ({lufs_value:.0f} LUFS)")
    else:
        loud_s = 1.0
    c = base.components
    overall = 0.35 * c["snr"] + 0.2 * c["clipping"] + 0.15 * c["silence"] + 0.15 * duration_s + 0.15 * loud_s
    return ReferenceScore(round(overall, 3), round(base.snr_db, 1), round(base.clipping_ratio, 5),
                        round(base.silence_ratio, 3), round(duration, 3),
                        None if lufs_value is None else round(lufs_value, 1), problems)
