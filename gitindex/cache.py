"""Vectors by (model, chunk hash), so the same text is never embedded twice; safe to delete."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    model TEXT NOT NULL, hash TEXT NOT NULL, vector BLOB NOT NULL, used INTEGER NOT NULL,
    PRIMARY KEY (model, hash)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vectors_used ON vectors (used);
"""
_LOOKUP_CHUNK = 500  # sqlite's limit on host parameters is 999 on old builds


class VectorCache:
    """An LRU-bounded sqlite file; losing it costs only re-embedding."""

    def __init__(self, path: Path, max_mb: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_bytes = max_mb * 1024 * 1024
        try:
            self.db = self._connect()
        except sqlite3.DatabaseError:
            # A damaged cache is only a cache: start a new one.
            path.unlink(missing_ok=True)
            self.db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        return db

    def close(self) -> None:
        self.db.close()

    def get_many(self, model: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, np.ndarray] = {}
        for i in range(0, len(wanted), _LOOKUP_CHUNK):
            part = wanted[i : i + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(part))
            rows = self.db.execute(
                f"SELECT hash, vector FROM vectors WHERE model = ? AND hash IN ({marks})",
                (model, *part),
            )
            for digest, blob in rows:
                found[digest] = np.frombuffer(blob, dtype=np.float32)
        if found:
            now = int(time.time())
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.executemany(
                    "UPDATE vectors SET used = ? WHERE model = ? AND hash = ?",
                    ((now, model, h) for h in found),
                )
        return found

    def put_many(self, model: str, vectors: Mapping[str, np.ndarray]) -> None:
        now = int(time.time())
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)",
                ((model, h, np.asarray(v, dtype=np.float32).tobytes(), now) for h, v in vectors.items()),
            )

    def size_bytes(self) -> int:
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        size = self.db.execute("PRAGMA page_size").fetchone()[0]
        return int(pages) * int(size)

    def prune(self) -> int:
        """Drop the least recently used vectors until the file fits its bound."""
        size = self.size_bytes()
        if size <= self.max_bytes:
            return 0
        rows = self.db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
        if not rows:
            return 0
        # Keep the newest share that fits, with 10% headroom so pruning is not needed every run.
        keep = int(rows * self.max_bytes * 0.9 / size)
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            cur = self.db.execute(
                "DELETE FROM vectors WHERE (model, hash) IN (SELECT model, hash FROM vectors "
                "ORDER BY used DESC LIMIT -1 OFFSET ?)", (keep,)
            )
        self.db.execute("VACUUM")
        return cur.rowcount
