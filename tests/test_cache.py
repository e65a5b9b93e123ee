"""The vector cache: real sqlite, bounded on disk, safe to delete or damage."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gitindex.cache import VectorCache


def _vectors(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"h{seed}-{i}": rng.standard_normal(384).astype(np.float32) for i in range(n)}


def test_round_trip_is_keyed_by_model(tmp_path: Path) -> None:
    cache = VectorCache(tmp_path / "v.sqlite", max_mb=64)
    vectors = _vectors(10)
    cache.put_many("model-a", vectors)
    found = cache.get_many("model-a", [*vectors, "unknown"])
    assert set(found) == set(vectors)
    assert all(np.array_equal(found[h], v) for h, v in vectors.items())
    assert cache.get_many("model-b", vectors) == {}


def test_prune_keeps_the_file_under_its_bound_and_the_recent_vectors(tmp_path: Path) -> None:
    cache = VectorCache(tmp_path / "v.sqlite", max_mb=1)
    old = _vectors(800, seed=1)
    cache.put_many("m", old)
    cache.db.execute("UPDATE vectors SET used = 0")  # written long ago
    recent = _vectors(100, seed=2)
    cache.put_many("m", recent)
    assert cache.size_bytes() > 1024 * 1024
    removed = cache.prune()
    assert removed > 0
    assert cache.size_bytes() <= 1024 * 1024
    assert set(cache.get_many("m", recent)) == set(recent)
    assert len(cache.get_many("m", old)) < len(old)


def test_a_damaged_cache_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    path.write_bytes(b"this is not a sqlite database" * 100)
    cache = VectorCache(path, max_mb=8)
    cache.put_many("m", _vectors(3))
    assert len(cache.get_many("m", _vectors(3))) == 3
