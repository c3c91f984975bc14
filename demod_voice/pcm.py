"""The one float -> 16-bit PCM rule, below both ``audio`` (files) and ``streaming`` (incremental encoders),
so a WAV file and a streamed WAV of the same audio hold the same samples."""

from __future__ import annotations

import numpy as np


def float_to_pcm16(samples: np.ndarray) -> bytes:
    """Float samples -> raw 16-bit little-endian PCM bytes (clipped)."""
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    return (clipped * 32767.0).round().astype("<i2").tobytes()

