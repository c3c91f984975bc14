"""Feature retrieval: pull content features towards the voice's training set.

An RVC ``.index`` is a faiss index (usually ``IVF{n},Flat``) over the training
features. Each input frame is replaced by the inverse-square-distance weighted
mean of its 8 nearest stored frames, then blended with the original by
``index_rate`` (0 = off, 1 = only retrieved features).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from demod_voice.errors import InputError, missing_extra

_LOGGER = logging.getLogger(__name__)


class FeatureIndex:
    """A loaded retrieval index plus the stored vectors it searches."""

    def __init__(self, path: str | Path):
        try:
            import faiss
        except ImportError:
            raise missing_extra("faiss-cpu", "rvc") from None
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"index file not found: {self.path}", hint="pass the .index that came with the voice")
        try:
            self.index = faiss.read_index(str(self.path))
        except RuntimeError as exc:
            raise InputError(f"cannot read faiss index {self.path}: {str(exc).strip().splitlines()[-1][:200]}",
                             hint="pass the added_*.index file RVC wrote for this voice") from None
        if self.index.ntotal == 0:
            raise InputError(f"index {self.path} is empty", hint="use the added_*.index, not the trained_*.index")
        try:
            self.vectors = self.index.reconstruct_n(0, self.index.ntotal)
        except RuntimeError:
            ivf = faiss.extract_index_ivf(self.index)
            ivf.make_direct_map()
            self.vectors = self.index.reconstruct_n(0, self.index.ntotal)
        self.dim = int(self.index.d)

    def blend(self, feats: np.ndarray, rate: float, k: int = 8) -> np.ndarray:
        """``[frames, dim]`` features -> the same, mixed ``rate`` of the way to retrieved ones."""
        if rate <= 0:
            return feats
        if feats.shape[1] != self.dim:
            raise InputError(f"index {self.path.name} holds {self.dim}-d features but the voice uses "
                             f"{feats.shape[1]}-d", hint="use the index trained with this voice (v1: 256, v2: 768)")
        query = np.ascontiguousarray(feats, dtype=np.float32)
        k = min(k, self.index.ntotal)
        distances, ids = self.index.search(query, k)
        weights = np.square(1.0 / np.maximum(distances, 1e-12))
        weights[ids < 0] = 0.0
        weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
        retrieved = np.sum(self.vectors[np.maximum(ids, 0)] * weights[:, :, None], axis=1)
        return (rate * retrieved + (1.0 - rate) * feats).astype(np.float32)
