"""sync: bring the store to exactly the chunks of a target tree, embedding only new text.

Order of writes, so that any interruption leaves a state the next run finishes:
1. the manifest marks a batch's paths dirty; 2. the store upserts the new points, then deletes
the paths' other points; 3. the manifest records the batch and clears its dirty marks.
The last synced tree moves only when a whole run completes.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from gitindex.chunking import Chunk, TokenCounter, language
from gitindex.embedding import Embedder
from gitindex.errors import IndexMismatchError, Interrupted
from gitindex.examine import examine, skip_reason
from gitindex.index import Index
from gitindex.lock import sync_lock
from gitindex.manifest import (
    CHUNKER,
    COLLECTION,
    LAST_RUN,
    MODEL,
    SELECTION,
    STORE,
    SYNCED_TREE,
    FileRecord,
    IndexedFile,
    Manifest,
)
from gitindex.memory import MemoryBudget, default_limit_mb, peak_rss_mb
from gitindex.pipeline import Batch, Pipeline, Update
from gitindex.repo import Change, Entry, Target
from gitindex.store import PointData, point_id

if TYPE_CHECKING:
    from gitindex.cache import VectorCache

_MAX_BATCH_FILES = 256  # a batch of deletions or tiny files still commits regularly


@dataclass
class SyncResult:
    """What one run did; `to_json()` is the contract of `sync --json`."""

    commit: str | None
    label: str
    complete: bool = True
    added: int = 0
    modified: int = 0
    deleted: int = 0
    renamed: int = 0
    unchanged: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    embedded: int = 0
    reused: int = 0
    deleted_chunks: int = 0
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    memory_limit_mb: float = 0.0
    notes: list[str] = field(default_factory=list)
    # Seconds spent per phase: git, read_chunk (main thread), lookup, embed (embedding thread),
    # store, manifest (writing thread). The threads overlap, so they can add up to more than wall.
    phases: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))

    def to_json(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "complete": self.complete,
            "files": {
                "added": self.added, "modified": self.modified, "deleted": self.deleted,
                "renamed": self.renamed, "unchanged": self.unchanged,
                "skipped": sum(self.skipped.values()),
                "skipped_by_reason": dict(sorted(self.skipped.items())),
            },
            "chunks": {"embedded": self.embedded, "reused": self.reused, "deleted": self.deleted_chunks},
            "seconds": round(self.seconds, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "memory_limit_mb": round(self.memory_limit_mb),
            "phases": {k: round(v, 3) for k, v in sorted(self.phases.items())},
            "notes": self.notes,
        }


class Progress(Protocol):
    def start(self, total_files: int | None) -> None: ...

    def advance(self, files: int, chunks: int) -> None: ...


def sync(
    ix: Index,
    target: Target | None,
    *,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    rebuild: bool = False,
    wait: bool = True,
    on_wait: Callable[[], None] | None = None,
) -> SyncResult:
    """Index `target` (a git tree; None for a plain directory) incrementally.

    Raises LockedError when another sync holds the repository and `wait` is False, and
    Interrupted (after finishing the current batch) when `should_stop()` turns true.
    """
    started = time.monotonic()
    with sync_lock(ix.sync_lock_path, ix.config.lock_timeout if wait else 0, on_wait):
        run = _Run(ix, target, embedder, progress, should_stop)
        error: BaseException | None = None
        try:
            run.execute(rebuild)
        except BaseException as exc:
            error = exc
            raise
        finally:
            run.close()
            run.result.seconds = time.monotonic() - started
            run.result.peak_rss_mb = peak_rss_mb()
            run.note_memory()
            last = {"finished_at": time.time(), "label": run.result.label, "summary": run.result.to_json(),
                    "error": None if error is None else (str(error) or type(error).__name__)}
            ix.manifest.set(**{LAST_RUN: json.dumps(last)})
    return run.result


def _timed(items: Iterator[Change], clock: defaultdict[str, float], phase: str) -> Iterator[Change]:
    """Yield from `items`, adding the time spent producing them to clock[phase]."""
    while True:
        started = time.perf_counter()
        item = next(items, None)
        clock[phase] += time.perf_counter() - started
        if item is None:
            return
        yield item


class _Run:
    def __init__(self, ix: Index, target: Target | None, embedder: Embedder | None,
                 progress: Progress | None, should_stop: Callable[[], bool]) -> None:
        self.ix = ix
        self.m = ix.manifest
        self.store = ix.store
        self.target = target
        self.progress = progress
        self.should_stop = should_stop
        self._embedder = embedder
        self._counter: TokenCounter | None = None
        self._cache: VectorCache | None = None
        self.result = SyncResult(commit=target.commit if target else None,
                                 label=target.label if target else "directory")
        self.budget = MemoryBudget(ix.config.memory_limit_mb or default_limit_mb(), ix.config.batch_size)
        self.result.memory_limit_mb = self.budget.limit_mb
        self.dirty = set(self.m.dirty())
        self.full = False
        self.store_had_points = False
        self.updates: list[Update] = []
        self.removes: list[IndexedFile] = []
        self.batch_chunks = 0
        self.files_done = 0
        self.wrote = False  # a batch was written (and old chunk rows may need sweeping)
        self.dir_snapshot: list[tuple[str, str, int, int, int]] = []

    # -- set-up -----------------------------------------------------------------------------
    def _prepare(self, rebuild: bool) -> None:
        ix, m = self.ix, self.m
        wanted = (ix.model_key, ix.chunker_id)
        here = {STORE: self.store.location, COLLECTION: ix.collection}
        exists = self.store.exists()  # reaches a server before anything local changes
        if m.get(MODEL) is not None and any(m.get(k) != v for k, v in here.items()):
            # The manifest describes another store: read this one's state back instead.
            self.result.notes.append(f"store changed to {self.store.location} ({ix.collection})")
            m.reset()
        if m.get(MODEL) is None and exists and not rebuild:
            self._adopt_store()
        built = (m.get(MODEL), m.get(CHUNKER))
        if rebuild or (built[0] is not None and built != wanted):
            if not rebuild:
                if ix.config.qdrant_url:
                    raise IndexMismatchError(
                        f"collection {ix.collection!r} was built with model {built[0]!r} and chunker "
                        f"{built[1]!r}, not {wanted[0]!r} / {wanted[1]!r}; mixing them would corrupt "
                        "search. Run `gitindex sync --rebuild` to re-embed everything into it"
                    )
                self.result.notes.append(
                    f"model or chunker changed ({built[0]} {built[1]} -> {wanted[0]} {wanted[1]}): "
                    "re-embedding into a fresh collection")
            with self.store.session(write=True):
                self.store.drop()
            m.reset()
            self.dirty.clear()
        m.set(**{MODEL: wanted[0], CHUNKER: wanted[1], **here})
        # Vectors this run writes are cached first, so only points older than the run can be
        # worth looking up in the store (a first index skips those lookups entirely).
        self.store_had_points = self.store.exists()
        self.full = m.get(SELECTION) != ix.selector.fingerprint

    def _adopt_store(self) -> None:
        """No manifest but a store with points (a deleted manifest, a fresh CI runner, another
        collection before): read what is indexed back from the points' payloads, so only what
        differs is embedded, and which model and chunker made them."""
        by_path: dict[str, dict[str, list[Chunk]]] = {}
        makers: set[tuple[str, str]] = set()
        with self.store.session(write=True):
            for _pid, p in self.store.scroll():
                chunks = by_path.setdefault(p["path"], {}).setdefault(p["blob"], [])
                chunks.append(Chunk(int(p["start_line"]), int(p["end_line"]), "", p["hash"]))
                makers.add((str(p.get("model")), str(p.get("chunker"))))
        if not by_path:
            return
        records = []
        for path, blobs in by_path.items():
            blob, chunks = max(blobs.items(), key=lambda kv: len(kv[1]))
            records.append(FileRecord(path, blob, 0o100644, sorted(chunks, key=lambda c: c.start)))
            if len(blobs) > 1:
                self.dirty.add(path)
        self.m.mark_dirty(self.dirty)
        self.m.record(records)
        model, chunker = makers.pop() if len(makers) == 1 else ("mixed or unknown", "mixed or unknown")
        self.m.set(**{MODEL: model, CHUNKER: chunker})
        self.result.notes.append(f"adopted {len(records)} indexed files from the store")

    # -- change detection -------------------------------------------------------------------
    def _changes(self) -> Iterator[Change]:
        if self.ix.repo is None:
            yield from self._dir_changes()
            return
        repo, target = self.ix.repo, self.target
        assert target is not None
        base = self.m.get(SYNCED_TREE)
        if self.full or base is None or base not in repo.git:
            self.full = True
            if self.progress:
                self.progress.start(sum(1 for _ in repo.walk(target.tree)))
            yield from (Change("A", None, e) for e in repo.walk(target.tree))
            gone = [f for f in self.m.files() if repo.entry(target.tree, f.path) is None]
            yield from (Change("D", Entry(f.path, f.blob, f.mode), None) for f in gone)
            yield from (Change("D", Entry(p, "", 0), None) for p in sorted(self.dirty)
                        if repo.entry(target.tree, p) is None)
            return
        changes = list(repo.diff_trees(base, target.tree))
        if self.progress:
            self.progress.start(len(changes) + len(self.dirty))
        seen: set[str] = set()
        for change in changes:
            seen.update(e.path for e in (change.old, change.new) if e is not None)
            yield change
        for path in sorted(self.dirty - seen):
            yield Change("M", None, repo.entry(target.tree, path))

    def _dir_changes(self) -> Iterator[Change]:
        from gitindex.directory import scan

        known = self.m.dir_state()
        seen: set[str] = set()
        for entry, size, mtime in scan(self.ix.root, known):
            seen.add(entry.path)
            self.dir_snapshot.append((entry.path, entry.oid, entry.mode, size, mtime))
            prev = known.get(entry.path)
            if self.full or prev is None or (prev[0], prev[1]) != (entry.oid, entry.mode) or entry.path in self.dirty:
                yield Change("A" if prev is None else "M", None, entry)
        for path in sorted((set(known) | {f.path for f in self.m.files()} | self.dirty) - seen):
            yield Change("D", Entry(path, "", 0), None)

    # -- applying changes -------------------------------------------------------------------
    def execute(self, rebuild: bool) -> None:
        self._prepare(rebuild)
        limit = self.ix.config.max_files
        with Pipeline(self.embed_stage, self.write_stage, self.m.path) as pipeline:
            for change in _timed(self._changes(), self.result.phases, "git"):
                self._apply(change)
                if self.progress:
                    self.progress.advance(1, 0)
                if self.batch_chunks >= self.budget.batch_size or \
                        len(self.updates) + len(self.removes) >= _MAX_BATCH_FILES:
                    pipeline.submit(self._take_batch())
                if self.should_stop():
                    break
                if limit is not None and self.files_done >= limit:
                    self.result.complete = False
                    self.result.notes.append(f"stopped after {limit} files (--max-files); run again to continue")
                    break
            else:
                pipeline.submit(self._take_batch())
                pipeline.drain()
                self._finish()
                return
            pipeline.submit(self._take_batch())
            pipeline.drain()
        if self.result.complete:  # stopped by should_stop(), after the last whole batch
            self.result.complete = False
            raise Interrupted("interrupted; what was indexed is kept, run `gitindex sync` to finish")

    def _apply(self, change: Change) -> None:
        old, new = change.old, change.new
        gone = self._remove(old.path) if old and (new is None or old.path != new.path) else False
        outcome = self._update(new) if new is not None else None
        if change.status == "R" and gone and outcome == "added":
            self.result.renamed += 1
            return
        if gone:
            self.result.deleted += 1
        if outcome == "added":
            self.result.added += 1
        elif outcome == "modified":
            self.result.modified += 1
        elif outcome == "removed":
            self.result.deleted += 1

    def _remove(self, path: str) -> bool:
        """Queue a path's points for deletion; True if it was indexed."""
        cur = self.m.file(path)
        if cur is None and path not in self.dirty:
            return False
        self.removes.append(cur or IndexedFile(path, "", 0, 0))
        self.files_done += 1
        return cur is not None

    def _skip(self, reason: str, path: str) -> str | None:
        self.result.skipped[reason] += 1
        return "removed" if self._remove(path) else None

    def _update(self, entry: Entry) -> str | None:
        """Queue a path's new content; returns added / modified / removed / None (nothing)."""
        cur = self.m.file(entry.path)
        dirty = entry.path in self.dirty
        same = cur is not None and cur.blob == entry.oid and not dirty
        if same and not self.full:
            return self._mode_only(cur, entry)
        if same:  # the selection settings changed: is this file still selected?
            reason = skip_reason(self.ix, self.target, entry)
            return self._skip(reason, entry.path) if reason else self._mode_only(cur, entry)
        if self._counter is None:
            self._counter = self.ix.spec.token_counter()
        started = time.perf_counter()
        reason, chunks = examine(self.ix, self.target, entry, self._counter)
        self.result.phases["read_chunk"] += time.perf_counter() - started
        if reason is not None:
            return self._skip(reason, entry.path)
        self.updates.append(Update(entry, chunks, cur))
        self.batch_chunks += len(chunks)
        self.files_done += 1
        if cur is None or not cur.blob:
            return "added"
        return "modified" if cur.blob != entry.oid else None

    def _mode_only(self, cur: IndexedFile | None, entry: Entry) -> str | None:
        assert cur is not None
        if cur.mode == entry.mode:
            return None
        self.m.set_mode(entry.path, entry.mode)  # the points do not carry the mode
        return "modified"

    # -- one batch --------------------------------------------------------------------------
    def _take_batch(self) -> Batch:
        batch = Batch(self.updates, self.removes)
        self.updates, self.removes, self.batch_chunks = [], [], 0
        return batch

    def cache(self) -> VectorCache:
        """The vector cache; used by the embedding stage's thread only."""
        if self._cache is None:
            from gitindex.cache import VectorCache  # numpy: a no-op run never needs it

            self._cache = VectorCache(self.ix.cache_dir / "vectors.sqlite", self.ix.config.cache_max_mb)
        return self._cache

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self.ix.embedder()
        return self._embedder

    def embed_stage(self, batch: Batch) -> Batch:
        """Vectors for every chunk of the batch: from the cache, else the store, else the model."""
        import numpy as np

        texts = {c.hash: c.text for u in batch.updates for c in u.chunks}
        if not texts:
            return batch
        clock = self.result.phases
        started = time.perf_counter()
        model, cache = self.ix.model_key, self.cache()
        batch.vectors = cache.get_many(model, texts)
        missing = [h for h in texts if h not in batch.vectors]
        if missing and self.store_had_points:
            with self.store.session(write=True):
                found = self.store.vectors_for(missing)
            if found:
                arrays = {h: np.asarray(v, dtype=np.float32) for h, v in found.items()}
                cache.put_many(model, arrays)
                batch.vectors.update(arrays)
                missing = [h for h in missing if h not in found]
        clock["lookup"] += time.perf_counter() - started
        if missing:
            started = time.perf_counter()
            fresh = dict(zip(missing, self.embedder.embed([texts[h] for h in missing]), strict=True))
            clock["embed"] += time.perf_counter() - started
            started = time.perf_counter()
            cache.put_many(model, fresh)
            batch.vectors.update(fresh)
            batch.embedded = len(missing)
            clock["lookup"] += time.perf_counter() - started
        return batch

    def write_stage(self, batch: Batch, manifest: Manifest) -> None:
        """Store first (acknowledged), then the manifest; dirty marks cover the gap."""
        if not batch.updates and not batch.removes:
            return
        clock = self.result.phases
        started = time.perf_counter()
        paths = [u.entry.path for u in batch.updates] + [r.path for r in batch.removes]
        manifest.mark_dirty(paths)
        commit = self.target.commit if self.target else None
        points = [
            PointData(point_id(u.entry.path, u.entry.oid, i), batch.vectors[c.hash], {
                "path": u.entry.path, "blob": u.entry.oid, "hash": c.hash,
                "start_line": c.start, "end_line": c.end, "language": language(u.entry.path),
                "text": c.text, "commit": commit, "model": self.ix.model_key, "chunker": self.ix.chunker_id,
            })
            for u in batch.updates for i, c in enumerate(u.chunks)
        ]
        clock["manifest"] += time.perf_counter() - started
        started = time.perf_counter()
        with self.store.session(write=True):
            self.store.upsert(points)
            for u in batch.updates:  # upsert first, then delete: a file is never absent
                if u.old is not None or u.entry.path in self.dirty:
                    self.store.delete_path(u.entry.path, keep_blob=u.entry.oid)
            for gone in batch.removes:
                self.store.delete_path(gone.path)
        clock["store"] += time.perf_counter() - started
        started = time.perf_counter()
        records = [FileRecord(u.entry.path, u.entry.oid, u.entry.mode, u.chunks) for u in batch.updates]
        records += [FileRecord(r.path, None, 0, None) for r in batch.removes]
        manifest.record(records, clear_dirty=paths)
        clock["manifest"] += time.perf_counter() - started
        self.dirty.difference_update(paths)
        self.wrote = True
        r = self.result
        r.embedded += batch.embedded
        r.reused += len(points) - batch.embedded
        r.deleted_chunks += sum(u.old.chunks for u in batch.updates if u.old and u.old.blob != u.entry.oid)
        r.deleted_chunks += sum(x.chunks for x in batch.removes)
        if self.progress:
            self.progress.advance(0, len(points))
        if self.budget.check():
            self.store.set_buffer_scale(self.budget.scale)

    def _finish(self) -> None:
        target = self.target
        self.m.finish(target.tree if target else None, target.commit if target else None,
                      sweep=self.wrote)
        self.m.set(**{SELECTION: self.ix.selector.fingerprint})
        if self.ix.repo is None:
            self.m.save_dir_state(self.dir_snapshot)
        files, _points = self.m.counts()
        r = self.result
        r.unchanged = max(0, files - r.added - r.modified - r.renamed)

    def note_memory(self) -> None:
        b, r = self.budget, self.result
        if r.peak_rss_mb > b.limit_mb:
            r.notes.append(f"peak RSS {r.peak_rss_mb:.0f} MB went over the memory limit of {b.limit_mb:.0f} MB, "
                           f"even with batches of {b.smallest_batch} chunks: the model, its runtime and "
                           "the store need that much at least (README: How it works, Memory)")
        elif b.tightened:
            r.notes.append(f"memory: near the {b.limit_mb:.0f} MB limit, batches went down to "
                           f"{b.smallest_batch} chunks")

    def close(self) -> None:
        self.store.close()
        if self._cache is not None:
            if self.result.complete:
                self._cache.prune()
            self._cache.close()
