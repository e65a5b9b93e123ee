"""Vectors by (model, chunk hash), so the same text is never embedded twice; safe to delete."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

import numpy as np

# Layout 2: a rowid table, so a row (a 768-byte float16 vector and a few small columns) lives
# in its leaf page, 9 to a page; layout 1 (WITHOUT ROWID, float32) spilled every 1,536-byte
# vector to an overflow page and cost about 4 KB per vector. `half` = 1: the vector is float16.
_VERSION = 2
_PAGE_SIZE = 8192  # set before the first table; a 4 KB page fits 4 rows, 8 KB 9 (-11% of disk)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS vectors (
    id INTEGER PRIMARY KEY, model INTEGER NOT NULL, hash TEXT NOT NULL, used INTEGER NOT NULL,
    half INTEGER NOT NULL, vector BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS vectors_key ON vectors (model, hash);
CREATE INDEX IF NOT EXISTS vectors_used ON vectors (used);
"""
_LOOKUP_CHUNK = 500  # sqlite's limit on host parameters is 999 on old builds
_TOUCH_AFTER = 3600  # seconds: `used` is refreshed at most hourly, so lookups rarely write
# float16 keeps a normalized embedding to a cosine of 0.9999998 (measured on all-MiniLM-L6-v2
# and on random unit vectors; top-10 neighbours unchanged) at half the bytes; a vector it would
# bend further (out of float16's range, or tiny) is kept as float32.
_MIN_HALF_COSINE = 0.99999
# sqlite's codes for a file that is not a database or whose pages do not read back (garbage,
# a truncated file): the cache is set aside and started again. Any other failure (a full or
# read-only disk, a lock) is reported as it is.
_DAMAGED = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_log = logging.getLogger("gitindex")  # with no logging set up, Python prints a warning to stderr
_T = TypeVar("_T")


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in _DAMAGED or "malformed" in str(exc)


class VectorCache:
    """An LRU-bounded sqlite file; losing it costs only re-embedding."""

    def __init__(self, path: Path, max_mb: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_bytes = max_mb * 1024 * 1024
        self._models: dict[str, int] = {}
        self.recovered: str | None = None  # what was done about a damaged file, if anything
        try:
            self.db = self._connect()
        except sqlite3.DatabaseError as exc:
            if not (path.is_dir() or _damaged(exc)):
                raise  # a read-only or full disk, a lock: not the file's fault
            self._set_aside(exc)

    def _set_aside(self, exc: BaseException) -> None:
        """A damaged cache is only a cache: move it out of the way (never deleted: the manifest's
        way, manifest.set_aside) and start a new one; say so once, on stderr (the `gitindex`
        logger). Vectors it held are computed again."""
        from gitindex.manifest import set_aside

        if "db" in self.__dict__:
            self.db.close()
        aside = set_aside(self.path)
        self._models.clear()
        why = "a directory, not a file" if aside.is_dir() else str(exc)
        self.recovered = (f"the vector cache {self.path} was unreadable ({why}): set aside as {aside.name} "
                          "(safe to delete) and started again; vectors it held are computed again")
        _log.warning("gitindex: %s", self.recovered)
        self.db = self._connect()

    def _guarded(self, operation: Callable[[], _T], fallback: Callable[[], _T]) -> _T:
        """`operation`, or, when the file turns out damaged meanwhile (pages that do not read
        back), `fallback` on a new cache."""
        try:
            return operation()
        except sqlite3.DatabaseError as exc:
            if not _damaged(exc):
                raise
            self._set_aside(exc)
        return fallback()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            db.execute(f"PRAGMA page_size={_PAGE_SIZE}")  # only takes effect on a new file
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            if db.execute("PRAGMA user_version").fetchone()[0] != _VERSION:
                self._create(db)
        except BaseException:
            db.close()
            raise
        return db

    @staticmethod
    def _create(db: sqlite3.Connection) -> None:
        """A new file, or one in an older layout: it is only a cache, so drop and recreate."""
        old: list[str] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] != _VERSION:  # not done meanwhile
                old = [name for (name,) in db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
                for name in old:
                    db.execute(f'DROP TABLE "{name}"')
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if old:  # give the old layout's pages back
            db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self.db.close()

    def _model(self, name: str, create: bool) -> int | None:
        if name not in self._models:
            row = self.db.execute("SELECT id FROM models WHERE name = ?", (name,)).fetchone()
            if row is None:
                if not create:
                    return None
                self.db.execute("INSERT OR IGNORE INTO models (name) VALUES (?)", (name,))
                row = self.db.execute("SELECT id FROM models WHERE name = ?", (name,)).fetchone()
            self._models[name] = int(row[0])
        return self._models[name]

    def get_many(self, model: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        wanted = list(dict.fromkeys(hashes))
        return self._guarded(lambda: self._get_many(model, wanted), dict)

    def _get_many(self, model: str, wanted: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        mid = self._model(model, create=False)
        if mid is None or not wanted:
            return found
        now = int(time.time())
        stale: list[int] = []
        for i in range(0, len(wanted), _LOOKUP_CHUNK):
            part = wanted[i : i + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(part))
            rows = self.db.execute(
                f"SELECT id, hash, used, half, vector FROM vectors WHERE model = ? AND hash IN ({marks})",
                (mid, *part),
            )
            for rowid, digest, used, half, blob in rows:
                found[digest] = np.frombuffer(blob, dtype=np.float16 if half else np.float32).astype(np.float32)
                if used < now - _TOUCH_AFTER:
                    stale.append(rowid)
        if stale:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.executemany("UPDATE vectors SET used = ? WHERE id = ?", ((now, r) for r in stale))
        return found

    def put_many(self, model: str, vectors: Mapping[str, np.ndarray]) -> None:
        if vectors:
            self._guarded(lambda: self._put_many(model, vectors), lambda: self._put_many(model, vectors))

    def _put_many(self, model: str, vectors: Mapping[str, np.ndarray]) -> None:
        now = int(time.time())
        keys = list(vectors)
        full = np.stack([np.asarray(vectors[h], dtype=np.float32).ravel() for h in keys])
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            half = full.astype(np.float16)
            back = half.astype(np.float32)
            norms = np.linalg.norm(full, axis=1) * np.linalg.norm(back, axis=1)
            cosine = np.where(norms > 0, (full * back).sum(axis=1) / np.where(norms > 0, norms, 1), 0.0)
        as_half = np.isfinite(back).all(axis=1) & (cosine >= _MIN_HALF_COSINE)
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            mid = self._model(model, create=True)
            self.db.executemany(
                "INSERT INTO vectors (model, hash, used, half, vector) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (model, hash) DO UPDATE SET used = excluded.used, half = excluded.half, "
                "vector = excluded.vector",
                ((mid, h, now, 1, half[i].tobytes()) if as_half[i] else (mid, h, now, 0, full[i].tobytes())
                 for i, h in enumerate(keys)),
            )

    def size_bytes(self) -> int:
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        size = self.db.execute("PRAGMA page_size").fetchone()[0]
        return int(pages) * int(size)

    def prune(self) -> int:
        """Drop the least recently used vectors until the file fits its bound."""
        return self._guarded(self._prune, lambda: 0)

    def _prune(self) -> int:
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
                "DELETE FROM vectors WHERE id IN (SELECT id FROM vectors ORDER BY used DESC LIMIT -1 OFFSET ?)",
                (keep,),
            )
        self.db.execute("VACUUM")
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the file shrinks now, not later
        return cur.rowcount
