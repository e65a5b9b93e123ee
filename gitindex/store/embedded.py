"""Qdrant Edge (qdrant-edge-py): Qdrant's engine in-process, one shard on disk, no server."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitindex.errors import LockedError, LockFileError, StoreError, StoreUnreadableError
from gitindex.lazy import lazy_module
from gitindex.lock import FileLock, Timeout
from gitindex.store import (
    DENSE,
    HNSW_EF,
    IDS_PAGE,
    INDEXED_FIELDS,
    LAYOUT,
    LEXICAL,
    REFS,
    REPO,
    SCROLL_FIELDS,
    Condition,
    Match,
    PointData,
    ScoredPayload,
    Sparse,
    build_filter,
    kept_blobs,
    scoped,
)
from gitindex.store import Query as SearchQuery
from gitindex.store.paging import PAGE, pages, vectors_by_hash

if TYPE_CHECKING:
    import qdrant_edge as qe
else:
    qe = lazy_module("qdrant_edge")  # loaded when a shard is opened: a no-op sync never does

_UPSERT_PAGE = 128  # points converted to Python lists and sent at a time: a file of thousands
# of chunks (one batch) would otherwise hold 12 KB of float objects per point at once
_READER_GRACE = 5.0  # seconds a writer lets a waiting reader go first
_READER_POLL = 1.0  # a waiting reader refreshes its marker this often, so it never looks stale
_WATCH_EVERY = 0.02  # seconds between a kept shard's checks for a waiting process
_FLUSH_EVERY = 2.0  # seconds of writes a kept-open shard may hold in its WAL alone
# Points collect in one appendable segment, whose vectors, id map and payload indexes stay in
# RAM; once it holds this many bytes of vectors (about 11k points of 384 floats) optimize()
# turns it into an immutable segment that is only memory-mapped (Memory.Cold), and the shard is
# reopened so none of it stays resident. Without this, a writer's memory grew with the points
# (840 MB of RSS at 250k points; flat with it, measured 50k to 250k). Smaller segments lower
# the peak (the conversion's own spike, the WAL and the appendable segment all scale with it:
# 12 / 16 / 24 MB gave 307 / 331 / 353 MB for a 10k-file first index) but each one costs a
# reader's open about 7 ms (258k points: 24 segments at 16 MB).
_SEGMENT_BYTES = 16 * 1024 * 1024
# Free space a write needs beyond its points: turning a full appendable segment into a mapped one
# writes the segment again (vectors, payload, graph) before the old one goes. A write that runs
# out of space inside qdrant_edge does not fail: a write through a memory map to a full tmpfs
# ends the process with SIGBUS, so the room is checked before each write.
_SPACE_FLOOR = 64 * 1024 * 1024
_SPACE_FACTOR = 4  # a point's bytes: WAL, appendable segment, converted segment, and slack
_PAYLOAD_BYTES = 512  # a point's payload and sparse vector, besides its text


# Each mapped segment (one per _SEGMENT_BYTES of vectors, about 11k chunks) gets an HNSW graph;
# the appendable one and smaller ones are scanned (full_scan_threshold, in KB, below the smallest
# segment a writer under memory pressure makes, a quarter of _SEGMENT_BYTES). Measured at 250k
# chunks (benchmarks/ann.py): a warm query 3-5 ms with Recall@10 0.99 at ef 128 (exact scan:
# 10-15 ms), a new process's first query 0.11 s instead of 0.54 s, for 0.05 ms a point of graph
# building (13 s at 250k: 0.2% of the first index, whose embedding takes ~6,000 s). int8
# quantization was measured too and left out: 18% more disk, a slower first query (0.21-0.29 s),
# and Recall@10 0.90 without rescoring, for 2 ms less on a warm query.
_HNSW_M, _HNSW_EF_CONSTRUCT, _FULL_SCAN_KB = 16, 100, 4_000


def _config(dim: int, segment_bytes: int, lexical: bool = True) -> qe.EdgeConfig:
    """Everything on disk and mapped on demand (Cold): neither a writer's nor a reader's memory
    grows with the number of points."""
    kb = segment_bytes // 1024
    return qe.EdgeConfig(
        vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine, memory=qe.Memory.Cold)},
        sparse_vectors=({LEXICAL: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf, memory=qe.Memory.Cold)}
                        if lexical else None),
        payload_memory=qe.Memory.Cold,
        id_tracker_memory=qe.Memory.Cold,
        hnsw_config=qe.HnswIndexConfig(m=_HNSW_M, ef_construct=_HNSW_EF_CONSTRUCT,
                                       full_scan_threshold=_FULL_SCAN_KB, memory=qe.Memory.Cold),
        # Segments are converted at kb of vectors; merges only gather small ones (after vacuum)
        # up to 1.5x that, so no optimize() ever rewrites more than one segment's worth.
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=kb, max_segment_size=kb * 3 // 2,
                                        default_segment_number=8),
    )


def _field_index(name: str) -> qe.KeywordIndexParams:
    # The repository key is a tenant: Qdrant keeps each repository's points together.
    return qe.KeywordIndexParams(memory=qe.Memory.Cold, is_tenant=True if name == REPO else None)


def _floats(vector: Sequence[float]) -> list[float]:
    """A list of Python floats, as qdrant_edge takes it (numpy's tolist() is 5x a float() loop)."""
    tolist = getattr(vector, "tolist", None)
    return list(tolist()) if tolist is not None else [float(x) for x in vector]


def _vector(vector: Sequence[float] | Sparse) -> list[float] | qe.SparseVector:
    if isinstance(vector, Sparse):
        return qe.SparseVector(vector.indices, vector.values)
    return _floats(vector)


class EmbeddedStore:
    """A shard can be open in one process only (qdrant-edge-py 0.9: a second qe.EdgeShard.load of
    the same path fails on the WAL lock, and without the WAL it corrupts the first): every open,
    reads included, happens under an inter-process lock (lock.py). A reader opens and closes the
    shard per session. A writer keeps it open (and the lock held) from one write session to the
    next, which saves a load, flush and close per batch, until a reader waits (a fresh marker
    file): then, at the end of a session or within _WATCH_EVERY between sessions, it flushes,
    closes and lets the reader in; close() ends it. That hand-over to waiting readers is ours: no
    lock library lets a holder see who waits. Updates are in the shard's WAL when update()
    returns, which survives the process being killed (measured): a batch is safe to record in
    the manifest without a flush per batch.

    A resident process (`gitindex mcp`) sets `keep_reads`: its read sessions keep the shard
    open too, so a search costs no load (30-60 ms). Anyone who waits for the lock, writer or
    reader, keeps the marker fresh, so a kept shard (a writer's or a resident reader's) is
    handed over within _WATCH_EVERY; the resident loads it again at its next read."""

    count_is_cheap = False  # opening a shard to count costs 30-60 ms

    def __init__(self, path: Path, collection: str, lock_timeout: float) -> None:
        self.path = path
        self.location = str(path)
        self.collection = collection
        self.repo = ""  # open_store() names the repository
        self._lock_path = path.parent / f"{collection}.lock"  # the lock is made on the first open
        self._lock_timeout = lock_timeout
        self._shard: qe.EdgeShard | None = None
        self._thread_lock = threading.RLock()
        self._readers = path.parent / f"{collection}.readers"  # someone is waiting for the lock
        self.keep_reads = False  # a resident process: read sessions keep the shard open too
        self._opened_for_write = False  # the open shard was loaded (settled) for writing
        self._depth = 0  # sessions open in the thread holding _thread_lock; the outermost opens
        self._kept = False  # the lock is held (and the shard open) between writer sessions
        self._flushed_at = 0.0  # monotonic time of the kept shard's last flush
        self._dim = 0  # the open shard's vector size
        self._lexical = True  # the open shard has the lexical vector (layout 2 shards do not)
        self._segment_limit = _SEGMENT_BYTES  # usual size of the appendable segment (scaled)
        self._segment_bytes = _SEGMENT_BYTES  # compact when the appendable segment holds this
        self._remap = False  # reopen the kept shard at the next session's end (memory pressure)
        self._watch_stop: threading.Event | None = None  # stops the watcher of the kept shard

    @cached_property
    def _lock(self) -> FileLock:
        return FileLock(self._lock_path)  # a writer's lock may be taken in one thread, released in another

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
                kept = self._kept  # a writer's shard, kept open: reads and writes reuse it
                if kept and write and not self._opened_for_write:  # a resident reader's: reload to write
                    self._release()
                    kept = False
                if not kept:
                    self._acquire(write)
                ok = False
                try:
                    yield self
                    ok = True
                finally:
                    keep = kept or write or (self.keep_reads and self._shard is not None)
                    if ok and keep and not self._reader_waiting():
                        self._keep()
                    else:
                        self._release(quiet=not ok)
            finally:
                self._depth = 0

    def _acquire(self, write: bool) -> None:
        if write or _writable(self.path.parent):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if write:
                self._yield_to_readers()
                self._wait_marked()
            elif _writable(self.path.parent):
                self._wait_marked()
            # else: a read-only directory (a read-only mount, or not ours to write): no writer can
            # be in it either, and the lock file cannot be made or opened for writing there, so a
            # read goes without the lock (releasing a lock not taken is a no-op). qdrant_edge 0.9
            # still writes on opening a shard; _load says so.
        except Timeout:
            raise LockedError(
                f"the embedded store {self.path} stayed busy for {self._lock_timeout:.0f} s; "
                "another gitindex process is writing to it, try again shortly"
            ) from None
        try:
            self._shard = self._load(write) if self.exists() else None
        except BaseException:
            self._lock.release()
            raise
        self._opened_for_write = write
        self._flushed_at = time.monotonic()

    def _wait_marked(self) -> None:
        """Take the lock, keeping a marker fresh meanwhile so that whoever keeps the shard open
        between sessions (a sync's writer, a resident reader) lets this process in."""
        deadline = time.monotonic() + self._lock_timeout
        try:
            while True:
                self._mark()
                left = deadline - time.monotonic()
                try:
                    self._lock.acquire(timeout=max(0.0, min(_READER_POLL, left)))
                    break
                except Timeout:
                    if left <= _READER_POLL:
                        raise
        finally:  # taken, timed out or failed: a marker left behind makes writers wait for no one
            with contextlib.suppress(OSError):
                self._readers.unlink(missing_ok=True)

    def _mark(self) -> None:
        if self._readers.is_dir():  # (touch() would only update its time, and unlink() fail)
            raise LockFileError(f"{self._readers} is a directory, where gitindex keeps a marker file (a process "
                                "waiting for the store): remove that directory and run again")
        self._readers.touch()

    def _load(self, write: bool) -> qe.EdgeShard:
        try:
            self._dim = self._stored_dim() or 0
            self._lexical = LEXICAL in self._saved_vectors("sparse_vectors")  # read once per open
            if write:  # settle the shard on this module's settings (older shards kept all in RAM)
                shard = self._load_settled()
                self._remap = False
                schema = shard.info().payload_schema
                for name in INDEXED_FIELDS:
                    have = schema.get(name)
                    if have is None or getattr(have.params, "memory", None) != qe.Memory.Cold:
                        shard.update(qe.UpdateOperation.create_field_index(name, _field_index(name)))
                return shard
            return qe.EdgeShard.load(str(self.path))
        except Exception as exc:  # qdrant_edge raises plain exceptions
            error = _store_error(exc, self.path, f"cannot open the embedded store {self.path}: {exc}")
            if isinstance(error, StoreUnreadableError):  # the next sync, even a no-op, sets it aside
                with contextlib.suppress(OSError):
                    self._unreadable.touch()
            raise error from None

    def _load_settled(self) -> qe.EdgeShard:
        if self._dim:
            graphs = self._saved_vectors("hnsw_config").get("m")
            try:
                shard = qe.EdgeShard.load(str(self.path), _config(self._dim, self._segment_limit, self._lexical))
            except Exception:  # settings it refuses: open it as it is, they are only for memory
                return qe.EdgeShard.load(str(self.path))
            if graphs == 0 and _HNSW_M:  # made before segments had graphs: build them now, once (13 s at 250k)
                shard.optimize()
            return shard
        return qe.EdgeShard.load(str(self.path))

    def _saved_vectors(self, kind: str = "vectors") -> dict[str, Any]:
        try:
            saved = json.loads((self.path / "edge_config.json").read_text())
            vectors = saved[kind]
            return vectors if isinstance(vectors, dict) else {}
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def _stored_dim(self) -> int | None:
        try:
            return int(self._saved_vectors()[DENSE]["size"])
        except (KeyError, TypeError, ValueError):
            return None

    def layout(self) -> str | None:
        if not self.exists():
            return None
        if DENSE not in self._saved_vectors():
            return "1"
        return LAYOUT if LEXICAL in self._saved_vectors("sparse_vectors") else "2"

    def _keep(self) -> None:
        """End a writer session with the shard still open: flush now and then, and turn a full
        appendable segment into a mapped one. A resident reader's shard is only kept."""
        try:
            if self._shard is not None and self._opened_for_write:
                self.check_space(0)
                if self._remap:  # a smaller segment size (memory pressure): reload under it,
                    self._reopen()  # which also drops the file pages mapped in so far
                info = self._shard.info()
                unindexed = self._unconverted(info)
                if unindexed * self._dim * 4 >= self._segment_bytes and self._shard.optimize():
                    self._reopen()
                    self._segment_bytes = self._segment_limit
                elif unindexed * self._dim * 4 >= self._segment_bytes:  # nothing to optimize
                    self._segment_bytes = unindexed * self._dim * 4 + self._segment_limit  # (never seen)
                elif time.monotonic() - self._flushed_at >= _FLUSH_EVERY:
                    self._shard.flush()
                    self._flushed_at = time.monotonic()
        except BaseException:
            self._release(quiet=True)
            raise
        self._remap = False
        self._kept = True
        if self._watch_stop is None:
            self._watch_stop = threading.Event()
            threading.Thread(target=self._watch, args=(self._watch_stop,), daemon=True,
                             name="gitindex-store-watch").start()

    def _unconverted(self, info: qe.ShardInfo) -> int:
        """Points whose dense vectors are still in the appendable segment. The shard counts a
        vector as indexed once it is in a converted segment, but every sparse vector as indexed
        at once (its inverted index is built on write): with a lexical vector on every point,
        the dense ones indexed are the indexed count less the points (an empty lexical vector
        counts as not indexed, which only brings a conversion forward)."""
        indexed_dense = info.indexed_vectors_count - (info.points_count if self._lexical else 0)
        return max(0, info.points_count - indexed_dense)

    def _reopen(self) -> None:
        assert self._shard is not None
        self._shard.flush()
        self._shard.close()
        self._shard = None  # a failed load leaves nothing half-open behind
        self._shard = self._load(write=True)
        self._flushed_at = time.monotonic()

    def set_buffer_scale(self, scale: float) -> None:
        limit = max(_SEGMENT_BYTES // 4, int(_SEGMENT_BYTES * scale))  # smaller: too many segments
        # Smaller (or the same: the budget is giving memory back): reload under it, dropping the
        # mapped pages. Larger needs no reload: the next conversion reopens under the new size.
        self._remap = limit <= self._segment_limit
        self._segment_limit = limit
        self._segment_bytes = min(self._segment_bytes, limit)

    def _watch(self, stop: threading.Event) -> None:
        """Between a kept shard's sessions, let a waiting process in without waiting for the
        next batch or query (the next session opens the shard again)."""
        while not stop.wait(_WATCH_EVERY):
            if not self._reader_waiting() or not self._thread_lock.acquire(blocking=False):
                continue  # a session in progress checks for readers when it ends
            try:
                if not stop.is_set() and self._kept and not self._depth:
                    self._release()
            finally:
                self._thread_lock.release()

    def _release(self, quiet: bool = False) -> None:
        """Flush and close the shard, and let other processes in; `quiet` after a failure, whose
        error is the one to report."""
        self._kept = False
        if self._watch_stop is not None:
            self._watch_stop.set()
            self._watch_stop = None
        try:
            if self._shard is not None:
                shard, self._shard = self._shard, None
                try:
                    shard.flush()
                except Exception:
                    if not quiet:
                        raise
                finally:
                    shard.close()
        finally:
            self._lock.release()

    def _reader_waiting(self) -> bool:
        try:
            return time.time() - self._readers.stat().st_mtime <= _READER_GRACE
        except FileNotFoundError:
            return False

    def _yield_to_readers(self) -> None:
        """A sync takes the lock again right after each batch; a reader waiting for it (a fresh
        marker file) goes first, so `search` and `status` answer during a long sync."""
        deadline = time.monotonic() + _READER_GRACE
        while time.monotonic() < deadline and self._reader_waiting():
            time.sleep(0.02)

    def exists(self) -> bool:
        return self.path.is_dir() and any(self.path.iterdir())

    def check_space(self, points: int, payload_bytes: int = 0) -> None:
        """Raise StoreError, before anything is written, when the disk holding the shard has
        less room than `points` points (and `payload_bytes` of their text) need, with the floor
        a segment's conversion needs."""
        where = self.path if self.path.exists() else self.path.parent
        try:
            free = shutil.disk_usage(where).free
        except OSError:
            return  # not measurable here (the write itself reports a full disk, if it can)
        point = max(self._dim, 1) * 4 + _PAYLOAD_BYTES
        needed = _SPACE_FLOOR + _SPACE_FACTOR * (points * point + payload_bytes)
        if free < needed:
            raise _no_space(self.path, free, needed)

    def _create(self, dim: int) -> qe.EdgeShard:
        self._dim, self._lexical = dim, True
        self.check_space(0)
        self.path.mkdir(parents=True, exist_ok=True)
        shard = qe.EdgeShard.create(str(self.path), _config(dim, self._segment_limit))
        for name in INDEXED_FIELDS:
            shard.update(qe.UpdateOperation.create_field_index(name, _field_index(name)))
        return shard

    def upsert(self, points: Sequence[PointData]) -> None:
        if not points:
            return
        try:
            if self._shard is None:
                self._shard = self._create(len(points[0].vectors[DENSE]))
            self.check_space(len(points), sum(len(str(p.payload.get("text", ""))) for p in points))
            for i in range(0, len(points), _UPSERT_PAGE):
                self._shard.update(qe.UpdateOperation.upsert_points([
                    qe.Point(p.id, {name: _vector(v) for name, v in p.vectors.items()}, p.payload)
                    for p in points[i : i + _UPSERT_PAGE]
                ]))
        except StoreError:
            raise
        except Exception as exc:  # qdrant_edge raises plain exceptions; OSError from mkdir
            raise _store_error(exc, self.path, None) from None

    def delete_path(self, path: str, keep_blob: str | Sequence[str] | None = None) -> None:
        if self._shard is None:
            return
        these = _filter(scoped(self.repo, [Match("path", (path,))]), unless=kept_blobs(keep_blob))
        assert these is not None
        self._shard.update(qe.UpdateOperation.delete_points_by_filter(these))

    def set_refs(self, refs: Sequence[str], ids: Sequence[str] | None = None) -> None:
        if self._shard is None:
            return
        payload = {REFS: sorted(refs)}
        if ids is None:
            everything = _filter(scoped(self.repo))
            op = (qe.UpdateOperation.set_payload_by_filter(everything, payload) if everything is not None
                  else qe.UpdateOperation.set_payload_by_filter(qe.Filter(), payload))
            self._shard.update(op)
            return
        for i in range(0, len(ids), IDS_PAGE):
            self._shard.update(qe.UpdateOperation.set_payload(list(ids[i:i + IDS_PAGE]), payload))

    def vectors_for(self, hashes: Sequence[str]) -> dict[str, list[float]]:
        shard = self._shard
        if shard is None or not hashes:
            return {}
        return vectors_by_hash(hashes, lambda part, offset: shard.scroll(qe.ScrollRequest(
            offset=offset, limit=PAGE, with_payload=["hash"], with_vector=[DENSE],
            filter=qe.Filter(must=[qe.FieldCondition("hash", match=qe.MatchAny(part))]),
        )))

    def query(self, query: SearchQuery) -> list[ScoredPayload]:
        rankings = query.rankings()
        if self._shard is None or not rankings:
            return []
        # BM25's IDF over this repository's live points only (other repositories in a shared
        # collection, and deleted points not yet vacuumed, do not weigh its words).
        mine = _filter(scoped(self.repo))
        params = {DENSE: qe.SearchParams(hnsw_ef=HNSW_EF),
                  LEXICAL: qe.SearchParams(idf=qe.IdfParams(corpus=mine)) if mine is not None else None}
        page = {"limit": query.limit, "offset": query.offset or None, "with_payload": True}
        if query.mode == "hybrid":
            stages = [qe.Prefetch(query.candidates, qe.Query.Nearest(_vector(r.vector), using=r.using),
                                  filter=_filter(scoped(self.repo, r.where)), params=params[r.using]) for r in rankings]
            fusion = qe.Fusion.Rrf(query.rrf_k, [r.weight for r in rankings])
            request = qe.QueryRequest(**page, prefetches=stages, query=fusion)  # type: ignore[arg-type]
        else:  # (the stubs type Fusion's variants as Fusion itself)
            (only,) = rankings
            request = qe.QueryRequest(**page, filter=_filter(scoped(self.repo, only.where)),  # type: ignore[arg-type]
                                      params=params[only.using],
                                      query=qe.Query.Nearest(_vector(only.vector), using=only.using))
        return [ScoredPayload(h.score, dict(h.payload or {})) for h in self._shard.query(request)]

    def scroll(self, fields: Sequence[str] | None = SCROLL_FIELDS) -> Iterator[tuple[str, dict[str, Any]]]:
        shard = self._shard
        if shard is None:
            return
        wanted: Any = True if fields is None else list(fields)
        mine = _filter(scoped(self.repo))
        for record in pages(lambda offset: shard.scroll(
                qe.ScrollRequest(offset=offset, limit=PAGE, with_payload=wanted, with_vector=False, filter=mine))):
            yield str(record.id), dict(record.payload or {})

    def count(self) -> int:
        if self._shard is None:
            return 0
        return self._shard.count(qe.CountRequest(exact=True, filter=_filter(scoped(self.repo))))

    def drop(self) -> None:
        """Delete this repository's points; the shard too once no other repository has any
        (one repository per shard, as gitindex keeps it under the git dir: always)."""
        mine = _filter(scoped(self.repo))
        if self._shard is not None and mine is not None:
            self._shard.update(qe.UpdateOperation.delete_points_by_filter(mine))
            if self._shard.count(qe.CountRequest(exact=True)):
                return
        if self._shard is not None:
            self._shard.close()
            self._shard = None
        shutil.rmtree(self.path, ignore_errors=True)

    @property
    def _unreadable(self) -> Path:
        """Left by any command that failed to open the shard: the next sync sets it aside."""
        return self.path.parent / f"{self.collection}.unreadable"

    def looks_sound(self) -> bool:
        """A check that opens nothing (a no-op sync must stay cheap): no command failed to open
        the shard since, its config reads back with its vectors, and its WAL and segments are
        there. True when there is no shard."""
        if not self.exists():
            return True
        return (not self._unreadable.exists() and bool(self._saved_vectors())
                and (self.path / "wal").is_dir() and (self.path / "segments").is_dir())

    def set_aside(self) -> Path:
        """Move a shard that cannot be opened out of the way (never deleted): the next write
        creates a fresh one."""
        if self._shard is not None:
            self._shard.close()
            self._shard = None
        moved = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        self.path.rename(moved)
        self._unreadable.unlink(missing_ok=True)
        return moved

    def begin_rebuild(self) -> str | None:
        """The shard is this repository's alone: rebuilt in place."""
        self.drop()
        return None

    def resume_rebuild(self, name: str) -> None:
        """Nothing to resume: the shard was rebuilt in place."""

    def finish_rebuild(self) -> None:
        """Nothing to switch."""

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """The store's lock with no shard open, taken as a writer takes it (a shard another
        process keeps open is handed over): a switch renames shard directories under it
        (store/swap.py)."""
        with self._thread_lock:
            self.close()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._wait_marked()
            except Timeout:
                raise LockedError(f"the embedded store {self.path} stayed busy for {self._lock_timeout:.0f} s; "
                                  "another gitindex process is using it, try again shortly") from None
            try:
                yield
            finally:
                self._lock.release()

    def close(self) -> None:
        """Flush and close a shard a writer kept open, and release the lock (the end of a sync)."""
        with self._thread_lock:
            if self._kept and not self._depth:
                self._release()


def _writable(directory: Path) -> bool:
    """Whether this process may create files in `directory` (or, missing, where it would go)."""
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent
    return os.access(directory, os.W_OK)  # (EROFS says no to root too)


def _no_space(path: Path, free: int, needed: int) -> StoreError:
    mb = 1024 * 1024
    return StoreError(f"no space left on the device holding {path}: {free // mb} MB free, about "
                      f"{-(-needed // mb)} MB needed; free space and run `gitindex sync` again")


def _store_error(exc: BaseException, path: Path, message: str | None) -> BaseException:
    """A store failure as the error to report: a full or read-only disk said in words; other
    failures as `message`, or as they are (None)."""
    text = str(exc)
    code = exc.errno if isinstance(exc, OSError) else None
    if code == errno.ENOSPC or "No space left" in text:
        where = path if path.exists() else path.parent
        free = shutil.disk_usage(where).free if where.exists() else 0
        return _no_space(path, free, _SPACE_FLOOR)
    if code == errno.EROFS or "Read-only file system" in text:
        return StoreError(f"the embedded store {path} is on a read-only file system, and qdrant-edge "
                          "cannot open a shard without writing to it (not even to search); make it "
                          "writable, or copy the repository somewhere writable")
    if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return StoreError(f"no permission to write the embedded store {path} (qdrant-edge writes "
                          "even to open a shard); run gitindex as a user who may write there")
    held = "WouldBlock" in text or "temporarily unavailable" in text  # another process has it open
    if message is not None and isinstance(exc, Exception) and not isinstance(exc, OSError) and not held:
        return StoreUnreadableError(f"{message}; run `gitindex sync`, which sets the store aside and "
                                    "rebuilds it (vectors come from the cache)")
    return StoreError(message) if message is not None else exc


def _filter(where: Sequence[Condition], unless: Sequence[Match] = ()) -> qe.Filter | None:
    """Points where every `where` condition holds and no `unless` one does (None: all points)."""
    def match(field: str, values: list[str]) -> Any:
        return qe.FieldCondition(field, match=qe.MatchAny(values))

    found: qe.Filter | None = build_filter(where, unless, match, qe.Filter)
    return found
