"""Vectors for chunk texts: from the vector cache, else from points already in the store, else
from the model. Whatever the store or the model gives goes into the cache, so the same text is
never embedded twice."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

from gitindex.embedding import Embedder
from gitindex.store import VectorStore

if TYPE_CHECKING:
    from gitindex.cache import VectorCache


class VectorResolver:
    """Used from one thread (the embedding stage's): the cache's sqlite connection is its own."""

    def __init__(self, model: str, cache_path: Path, cache_max_mb: int, store: VectorStore,
                 embedder: Embedder, *, look_in_store: bool, clock: defaultdict[str, float]) -> None:
        self.model = model
        self.cache_path = cache_path
        self.cache_max_mb = cache_max_mb
        self.store = store
        self.embedder = embedder
        self.look_in_store = look_in_store  # False when the store held nothing before this run
        self.clock = clock
        self._cache: VectorCache | None = None

    @property
    def cache(self) -> VectorCache:
        if self._cache is None:
            from gitindex.cache import VectorCache  # numpy: a no-op run never needs it

            self._cache = VectorCache(self.cache_path, self.cache_max_mb)
        return self._cache

    def resolve(self, texts: Mapping[str, str]) -> tuple[dict[str, Any], int]:
        """A vector for each chunk hash of `texts` (hash -> text), and how many the model made."""
        import numpy as np

        if not texts:
            return {}, 0
        started = perf_counter()
        vectors: dict[str, Any] = self.cache.get_many(self.model, texts)
        missing = [h for h in texts if h not in vectors]
        if missing and self.look_in_store:
            with self.store.session(write=True):
                found = self.store.vectors_for(missing)
            if found:
                arrays = {h: np.asarray(v, dtype=np.float32) for h, v in found.items()}
                self.cache.put_many(self.model, arrays)
                vectors.update(arrays)
                missing = [h for h in missing if h not in found]
        self.clock["lookup"] += perf_counter() - started
        if not missing:
            return vectors, 0
        started = perf_counter()
        fresh = dict(zip(missing, self.embedder.embed([texts[h] for h in missing]), strict=True))
        self.clock["embed"] += perf_counter() - started
        started = perf_counter()
        self.cache.put_many(self.model, fresh)
        vectors.update(fresh)
        self.clock["lookup"] += perf_counter() - started
        return vectors, len(missing)

    def close(self, *, prune: bool) -> None:
        """Close the cache; `prune` (after a complete run) bounds its size first."""
        if self._cache is not None:
            if prune:
                self._cache.prune()
            self._cache.close()
            self._cache = None
