"""Qdrant Edge (qdrant-edge-py): Qdrant's engine in-process, one shard on disk, no server."""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import filelock
from qdrant_edge import (
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeShard,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    MatchAny,
    MatchValue,
    PayloadSchemaType,
    Point,
    Query,
    QueryRequest,
    ScrollRequest,
    UpdateOperation,
)

from gitindex.errors import LockedError, StoreError
from gitindex.store import INDEXED_FIELDS, PointData, ScoredPayload

_PAGE = 1000
_READER_GRACE = 5.0  # seconds a writer lets a waiting reader go first


class EmbeddedStore:
    """A shard can be open in one process only (NOTES.md): every open, reads included, happens
    under an inter-process lock, and a sync holds it only while it writes a batch, so `search`
    and `status` get in between batches."""

    def __init__(self, path: Path, collection: str, lock_timeout: float) -> None:
        self.path = path
        self.location = str(path)
        self.collection = collection
        self._lock = filelock.FileLock(str(path.parent / f"{collection}.lock"))
        self._lock_timeout = lock_timeout
        self._shard: EdgeShard | None = None
        self._thread_lock = threading.RLock()
        self._readers = path.parent / f"{collection}.readers"  # a reader is waiting for the lock
        self._depth = 0  # sessions open in the thread holding _thread_lock; the outermost opens

    @contextlib.contextmanager
    def session(self, write: bool = False) -> Iterator[EmbeddedStore]:
        with self._thread_lock:  # sync's embedding and writing threads share this object
            if self._depth:  # already open in this thread, with or without a shard yet
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            try:
                with self._open(write):
                    yield self
            finally:
                self._depth = 0

    @contextlib.contextmanager
    def _open(self, write: bool) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if write:
                self._yield_to_readers()
            else:
                self._readers.touch()
            self._lock.acquire(timeout=self._lock_timeout)
            if not write:
                self._readers.unlink(missing_ok=True)
        except filelock.Timeout:
            raise LockedError(
                f"the embedded store {self.path} stayed busy for {self._lock_timeout:.0f} s; "
                "another gitindex process is writing to it, try again shortly"
            ) from None
        try:
            if self.exists():
                try:
                    self._shard = EdgeShard.load(str(self.path))
                except Exception as exc:  # qdrant_edge raises plain exceptions
                    raise StoreError(f"cannot open the embedded store {self.path}: {exc}") from None
            yield
        finally:
            if self._shard is not None:
                self._shard.flush()
                self._shard.close()
                self._shard = None
            self._lock.release()

    def _yield_to_readers(self) -> None:
        """A sync takes the lock again right after each batch; a reader waiting for it (a fresh
        marker file) goes first, so `search` and `status` answer during a long sync."""
        deadline = time.monotonic() + _READER_GRACE
        while time.monotonic() < deadline:
            try:
                age = time.time() - self._readers.stat().st_mtime
            except FileNotFoundError:
                return
            if age > _READER_GRACE:
                return
            time.sleep(0.02)

    def exists(self) -> bool:
        return self.path.is_dir() and any(self.path.iterdir())

    def _create(self, dim: int) -> EdgeShard:
        config = EdgeConfig(vectors=EdgeVectorParams(size=dim, distance=Distance.Cosine))
        shard = EdgeShard.create(str(self.path), config)
        for name in INDEXED_FIELDS:
            shard.update(UpdateOperation.create_field_index(name, PayloadSchemaType.Keyword))
        return shard

    def upsert(self, points: Sequence[PointData]) -> None:
        if not points:
            return
        if self._shard is None:
            self._shard = self._create(len(points[0].vector))
        self._shard.update(
            UpdateOperation.upsert_points(
                [Point(p.id, [float(x) for x in p.vector], p.payload) for p in points]
            )
        )

    def delete_path(self, path: str, keep_blob: str | None = None) -> None:
        if self._shard is None:
            return
        keep: list[Any] | None = [FieldCondition("blob", match=MatchValue(keep_blob))] if keep_blob else None
        self._shard.update(
            UpdateOperation.delete_points_by_filter(
                Filter(must=[FieldCondition("path", match=MatchValue(path))], must_not=keep)
            )
        )

    def vectors_for(self, hashes: Sequence[str]) -> dict[str, list[float]]:
        found: dict[str, list[float]] = {}
        if self._shard is None or not hashes:
            return found
        wanted = list(dict.fromkeys(hashes))
        for i in range(0, len(wanted), _PAGE):
            part = wanted[i : i + _PAGE]
            offset: Any = None
            while True:
                records, offset = self._shard.scroll(
                    ScrollRequest(
                        offset=offset, limit=_PAGE, with_payload=["hash"], with_vector=True,
                        filter=Filter(must=[FieldCondition("hash", match=MatchAny(part))]),
                    )
                )
                for rec in records:
                    if rec.payload and isinstance(rec.vector, list):
                        found.setdefault(rec.payload["hash"], rec.vector)  # type: ignore[arg-type]
                if offset is None:
                    break
        return found

    def query(self, vector: Sequence[float], limit: int, paths: Sequence[str] | None) -> list[ScoredPayload]:
        if self._shard is None:
            return []
        flt = Filter(must=[FieldCondition("path", match=MatchAny(list(paths)))]) if paths is not None else None
        hits = self._shard.query(
            QueryRequest(limit=limit, query=Query.Nearest([float(x) for x in vector]),
                         with_payload=True, filter=flt)
        )
        return [ScoredPayload(h.score, dict(h.payload or {})) for h in hits]

    def scroll(self, with_text: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
        if self._shard is None:
            return
        fields: Any = True if with_text else ["path", "blob", "hash", "start_line", "end_line", "commit", "model", "chunker"]
        offset: Any = None
        while True:
            records, offset = self._shard.scroll(
                ScrollRequest(offset=offset, limit=_PAGE, with_payload=fields, with_vector=False)
            )
            for rec in records:
                yield str(rec.id), dict(rec.payload or {})
            if offset is None:
                return

    def count(self) -> int:
        return self._shard.count(CountRequest(exact=True)) if self._shard is not None else 0

    def drop(self) -> None:
        if self._shard is not None:
            self._shard.close()
            self._shard = None
        shutil.rmtree(self.path, ignore_errors=True)

    def close(self) -> None:
        """Nothing is kept open between sessions."""
