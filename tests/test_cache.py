"""The vector cache: real sqlite, bounded on disk, safe to delete or damage."""

from __future__ import annotations

import sqlite3
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
    for h, v in vectors.items():  # stored as float16: the direction is what search uses
        assert found[h].dtype == np.float32 and found[h].shape == v.shape
        assert _cosine(found[h], v) >= 0.9999
        assert np.allclose(found[h], v, rtol=1e-3, atol=1e-3)
    assert cache.get_many("model-b", vectors) == {}


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_vectors_float16_would_bend_are_kept_exactly(tmp_path: Path) -> None:
    cache = VectorCache(tmp_path / "v.sqlite", max_mb=8)
    huge = np.full(384, 1e6, dtype=np.float32)  # beyond float16's range
    tiny = np.full(384, 1e-9, dtype=np.float32)  # below float16's smallest step
    cache.put_many("m", {"huge": huge, "tiny": tiny})
    found = cache.get_many("m", ["huge", "tiny"])
    assert np.array_equal(found["huge"], huge) and np.array_equal(found["tiny"], tiny)


def test_a_vector_costs_under_a_kilobyte_on_disk(tmp_path: Path) -> None:
    """The old layout spilled each vector to an overflow page (about 4.7 KB a vector)."""
    cache = VectorCache(tmp_path / "v.sqlite", max_mb=64)
    for seed in range(10):
        cache.put_many("m", _vectors(500, seed=seed))
    cache.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert cache.size_bytes() / 5000 < 1000


def test_lookups_refresh_the_last_use_only_when_stale(tmp_path: Path) -> None:
    cache = VectorCache(tmp_path / "v.sqlite", max_mb=8)
    vectors = _vectors(4)
    cache.put_many("m", vectors)
    cache.db.execute("UPDATE vectors SET used = 5")
    cache.get_many("m", list(vectors)[:2])
    used = sorted(u for (u,) in cache.db.execute("SELECT used FROM vectors"))
    assert used[:2] == [5, 5] and used[2] > 5 and used[3] > 5


def test_a_cache_in_the_old_layout_is_dropped_and_recreated(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE vectors (model TEXT NOT NULL, hash TEXT NOT NULL, vector BLOB NOT NULL, "
        "used INTEGER NOT NULL, PRIMARY KEY (model, hash)) WITHOUT ROWID;"
        "CREATE INDEX vectors_used ON vectors (used);")
    rows = [("m", f"h{i}", np.ones(384, dtype=np.float32).tobytes(), 1) for i in range(300)]
    old.executemany("INSERT INTO vectors VALUES (?, ?, ?, ?)", rows)
    old.commit()
    old.close()
    before = path.stat().st_size

    cache = VectorCache(path, max_mb=8)
    assert cache.db.execute("PRAGMA user_version").fetchone()[0] == 2
    assert cache.get_many("m", ["h0", "h1"]) == {}  # only a cache: the old vectors are gone
    assert path.stat().st_size < before / 4  # and so are their pages
    vectors = _vectors(3)
    cache.put_many("m", vectors)
    assert set(cache.get_many("m", vectors)) == set(vectors)
    cache.close()

    again = VectorCache(path, max_mb=8)  # the new layout is kept as it is
    assert set(again.get_many("m", vectors)) == set(vectors)


def test_prune_keeps_the_file_under_its_bound_and_the_recent_vectors(tmp_path: Path) -> None:
    cache = VectorCache(tmp_path / "v.sqlite", max_mb=1)
    old = _vectors(1500, seed=1)
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
