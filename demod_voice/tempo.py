"""Change the playback rate of speech, keeping its pitch (WSOLA: overlap-add with a similarity search).

Why: Piper's ``length_scale`` is not a rate. The model rounds every phoneme up to whole frames, so
halving it gave 1.64x and quartering it 2.13x on the Joe voice, and the curve differs per voice and per
text. OpenAI clients send ``speed`` as a playback rate, so Piper speaks at its own length scale and the
result is stretched here: the length comes out exactly ``1 / rate`` of the input, on every voice.

The method: cut the output into frames every ``hop`` samples with a Hann window (50 % overlap, so the
windows sum to one). Frame ``k`` should come from the input near ``k * hop * rate``; within a few
milliseconds of that spot the frame is taken where it best continues the previous frame (highest
cross-correlation with what naturally followed it), so pitch periods line up and no echo or click is heard.
"""

from __future__ import annotations

import numpy as np

#: Frame length in seconds: long enough to hold two pitch periods of a low voice, short enough that
#: phonemes are not smeared.
FRAME_S = 0.030
#: How far (seconds) a frame may move from its nominal place to line up with the previous one: about one
#: pitch period of a low (100 Hz) voice.
SEARCH_S = 0.010


def stretch(samples: np.ndarray, rate: float, sample_rate: int) -> np.ndarray:
    """``samples`` (mono float) played ``rate`` times as fast, pitch unchanged; length ``round(n / rate)``."""
    samples = np.asarray(samples, dtype=np.float32)
    if not rate > 0:
        raise ValueError(f"rate must be positive, not {rate}")
    out_len = int(round(len(samples) / rate))
    if rate == 1.0 or len(samples) == 0:
        return samples.copy()
    hop = max(8, int(round(FRAME_S * sample_rate / 2)))
    frame = 2 * hop
    search = max(1, int(round(SEARCH_S * sample_rate)))
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(frame) / frame)).astype(np.float32)  # periodic Hann
    # Output index j stands for output time j - frame: the first frame-length of the buffer is lead-in, so
    # every kept sample lies under two windows (which sum to one). Input index i stands for i - lead.
    lead = int(np.ceil(frame * rate)) + search + 1
    tail = int(np.ceil(3 * frame * rate)) + frame + search + 16
    x = np.concatenate([np.zeros(lead, np.float32), samples, np.zeros(tail, np.float32)])
    frames = (frame + out_len) // hop + 2
    out = np.zeros(frames * hop + frame, dtype=np.float32)
    previous = None  # input index where the last frame was taken
    for k in range(frames):
        nominal = lead + int(round((k * hop - frame) * rate))
        start = nominal
        if previous is not None:
            # what naturally followed the previous frame: the overlap the new frame must continue
            template = x[previous + hop: previous + frame]
            low = max(0, nominal - search)
            score = np.correlate(x[low: nominal + search + hop], template, mode="valid")
            if score.size and np.any(score):
                start = low + int(np.argmax(score))
        out[k * hop: k * hop + frame] += x[start: start + frame] * window
        previous = start
    return out[frame: frame + out_len]
