"""A cheap deterministic embedder, for benchmark runs that measure memory, not the model."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

DIM = 384


class FakeEmbedder:
    """A hash-seeded random unit vector per text: same text, same vector; no model loaded.

    It keeps the real model's id, so an index built with it can be synced afterwards with the
    real model (a no-op then embeds nothing and must not see a model change).
    """

    def __init__(self, model_id: str, dim: int = DIM) -> None:
        self.model_id = model_id
        self.dim = dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
            out[i] = np.random.default_rng(int.from_bytes(digest, "little")).standard_normal(self.dim)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out
