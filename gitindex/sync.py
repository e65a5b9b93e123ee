"""sync: bring the store to exactly the chunks of a source, embedding only new text.

The run: reconcile the manifest with the store (another store, another model, a lost manifest),
plan() the steps, examine and chunk the files they name into batches, resolve each batch's
vectors and write it (pipeline.py: embedding and writing threads; writer.py: the order of
writes). The last synced tree moves only when a whole run completes.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from gitindex.chunking import Chunk, TokenCounter
from gitindex.errors import IndexMismatchError, Interrupted
from gitindex.examine import examine, skip_reason
from gitindex.lock import sync_lock
from gitindex.manifest import (
    CHUNKER,
    COLLECTION,
    LAST_RUN,
    LAYOUT,
    MODEL,
    SELECTION,
    STORE,
    FileRecord,
    Manifest,
)
from gitindex.memory import MemoryBudget, default_limit_mb, peak_rss_mb
from gitindex.pipeline import Pipeline
from gitindex.plan import Action, Step, plan
from gitindex.repo import Target
from gitindex.source import Source
from gitindex.store import LAYOUT as STORE_LAYOUT
from gitindex.store import MemoryAware
from gitindex.vectors import VectorResolver
from gitindex.workspace import Workspace
from gitindex.writer import Batch, BatchWriter, Removal, Update

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
    ws: Workspace,
    target: Target | None,
    *,
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
    with sync_lock(ws.sync_lock_path, ws.config.lock_timeout if wait else 0, on_wait):
        run = _Run(ws, target, progress, should_stop)
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
            ws.manifest.set(**{LAST_RUN: json.dumps(last)})
    return run.result


def _timed(items: Iterator[Step], clock: defaultdict[str, float], phase: str) -> Iterator[Step]:
    """Yield from `items`, adding the time spent producing them to clock[phase]."""
    while True:
        started = time.perf_counter()
        item = next(items, None)
        clock[phase] += time.perf_counter() - started
        if item is None:
            return
        yield item


class _Run:
    def __init__(self, ws: Workspace, target: Target | None, progress: Progress | None,
                 should_stop: Callable[[], bool]) -> None:
        self.ws = ws
        self.m = ws.manifest
        self.store = ws.store
        self.target = target
        self.source: Source | None = None  # made once the manifest is reconciled with the store
        self.progress = progress
        self.should_stop = should_stop
        self._counter: TokenCounter | None = None
        self._resolver: VectorResolver | None = None
        self.result = SyncResult(commit=target.commit if target else None,
                                 label=target.label if target else "directory")
        self.budget = MemoryBudget(ws.config.memory_limit_mb or default_limit_mb(), ws.config.batch_size)
        self.result.memory_limit_mb = self.budget.limit_mb
        self.dirty = set(self.m.dirty())
        self.updates: list[Update] = []
        self.removes: list[Removal] = []
        self.batch_chunks = 0
        self.files_done = 0
        self.wrote = False  # a batch was written (and old chunk rows may need sweeping)

    # -- set-up -----------------------------------------------------------------------------
    def _prepare(self, rebuild: bool) -> bool:
        """Reconcile the manifest with the store; True when the store held points before this
        run (only then can a vector be worth looking up there)."""
        ws, m = self.ws, self.m
        wanted = (ws.model_key, ws.chunker_id, STORE_LAYOUT)
        here = {STORE: self.store.location, COLLECTION: ws.collection}
        exists = self.store.exists()  # reaches a server before anything local changes
        if m.get(MODEL) is not None and any(m.get(k) != v for k, v in here.items()):
            # The manifest describes another store: read this one's state back instead.
            self.result.notes.append(f"store changed to {self.store.location} ({ws.collection})")
            m.reset()
        if m.get(MODEL) is None and exists and not rebuild:
            self._adopt_store()
        built = (m.get(MODEL), m.get(CHUNKER), m.get(LAYOUT) or "1")
        if rebuild or (built[0] is not None and built != wanted):
            if not rebuild:
                if ws.config.qdrant_url:
                    raise IndexMismatchError(
                        f"collection {ws.collection!r} was built with model {built[0]!r}, chunker "
                        f"{built[1]!r} and store layout {built[2]}, not {wanted[0]!r} / {wanted[1]!r} / "
                        f"{wanted[2]}; mixing them would corrupt search. Run `gitindex sync --rebuild` "
                        "to re-index everything into it"
                    )
                self.result.notes.append(
                    f"model, chunker or store layout changed ({' '.join(map(str, built))} -> "
                    f"{' '.join(wanted)}): re-indexing into a fresh collection (vectors already in "
                    "the cache are not embedded again)")
            with self.store.session(write=True):
                self.store.drop()
            m.reset()
            self.dirty.clear()
        m.set(**{MODEL: wanted[0], CHUNKER: wanted[1], LAYOUT: wanted[2], **here})
        # Vectors this run writes are cached first, so only points older than the run can be
        # worth looking up in the store (a first index skips those lookups entirely).
        return self.store.exists()

    def _adopt_store(self) -> None:
        """No manifest but a store with points (a deleted manifest, a fresh CI runner, another
        collection before): read what is indexed back from the points' payloads, so only what
        differs is embedded, and which model, chunker and layout made them."""
        by_path: dict[str, dict[str, list[Chunk]]] = {}
        makers: set[tuple[str, str]] = set()
        with self.store.session(write=True):
            layout = self.store.layout()
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
        self.m.set(**{MODEL: model, CHUNKER: chunker, LAYOUT: layout or "1"})
        self.result.notes.append(f"adopted {len(records)} indexed files from the store")

    # -- applying the plan ------------------------------------------------------------------
    def execute(self, rebuild: bool) -> None:
        ws = self.ws
        store_had_points = self._prepare(rebuild)
        source = self.source = ws.source(self.target)  # its baseline as the manifest has it now
        steps = plan(source, self.m, dirty=self.dirty, touched=set(self.m.touched()),
                     selection_changed=self.m.get(SELECTION) != ws.selector.fingerprint)
        clock = self.result.phases
        self._resolver = VectorResolver(
            ws.model_key, ws.cache_dir / "vectors.sqlite", ws.config.cache_max_mb, self.store,
            ws.embedder, look_in_store=store_had_points, clock=clock)
        writer = BatchWriter(self.store, commit=source.commit, model=ws.model_key,
                             chunker=ws.chunker_id, clock=clock)
        if self.progress:
            self.progress.start(steps.total)
        limit = ws.config.max_files
        with Pipeline(self._resolve, lambda b, m: self._write(writer, b, m), self.m.path) as pipeline:
            for step in _timed(iter(steps), clock, "git"):
                self._apply(step)
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

    def _apply(self, step: Step) -> None:
        r = self.result
        if step.action is Action.DELETE:
            r.deleted += self._remove(step)
        elif step.action is Action.MODE:
            self._set_mode(step)
        elif step.action is Action.RECHECK:
            assert step.entry is not None and self.source is not None
            reason = skip_reason(self.source, self.ws.selector, step.entry)
            if reason is not None:
                r.skipped[reason] += 1
                r.deleted += self._remove(step)
            elif step.indexed is not None and step.indexed.mode != step.entry.mode:
                self._set_mode(step)
        else:  # INDEX or RENAME
            gone = self._remove(step.moved_from) if step.moved_from is not None else False
            outcome = self._index(step)
            if gone and outcome == "added":
                r.renamed += 1
                return
            r.deleted += gone
            if outcome == "added":
                r.added += 1
            elif outcome == "modified":
                r.modified += 1
            elif outcome == "removed":
                r.deleted += 1

    def _remove(self, step: Step) -> bool:
        """Queue a path's points for deletion; True if it was indexed."""
        self.removes.append(Removal(step.path, step.indexed))
        self.files_done += 1
        return step.indexed is not None

    def _set_mode(self, step: Step) -> None:
        assert step.entry is not None
        self.m.set_mode(step.path, step.entry.mode)  # the points do not carry the mode
        self.result.modified += 1

    def _index(self, step: Step) -> str | None:
        """Queue a file's new content; returns added / modified / removed / None (nothing)."""
        entry, old = step.entry, step.indexed
        assert entry is not None and self.source is not None
        if self._counter is None:
            self._counter = self.ws.spec.token_counter()
        started = time.perf_counter()
        reason, chunks = examine(self.source, self.ws.selector, entry, self._counter, self.ws.spec.budget)
        self.result.phases["read_chunk"] += time.perf_counter() - started
        if reason is not None:
            self.result.skipped[reason] += 1
            if old is None and not step.dirty:
                return None
            self._remove(step)
            return "removed" if old is not None else None
        self.updates.append(Update(entry, chunks, old, step.dirty))
        self.batch_chunks += len(chunks)
        self.files_done += 1
        if old is None:
            return "added"
        return "modified" if old.blob != entry.oid else None

    # -- one batch --------------------------------------------------------------------------
    def _take_batch(self) -> Batch:
        batch = Batch(self.updates, self.removes)
        self.updates, self.removes, self.batch_chunks = [], [], 0
        return batch

    def _resolve(self, batch: Batch) -> Batch:
        """The embedding stage: a vector for every chunk of the batch."""
        assert self._resolver is not None
        texts = {c.hash: c.text for u in batch.updates for c in u.chunks}
        batch.vectors, batch.embedded = self._resolver.resolve(texts)
        return batch

    def _write(self, writer: BatchWriter, batch: Batch, manifest: Manifest) -> None:
        """The writing stage: the batch into the store, then the manifest; then the tallies."""
        if not batch.updates and not batch.removes:
            return
        writer.write(batch, manifest)
        self.wrote = True
        r = self.result
        r.embedded += batch.embedded
        r.reused += batch.points - batch.embedded
        r.deleted_chunks += sum(u.old.chunks for u in batch.updates if u.old and u.old.blob != u.entry.oid)
        r.deleted_chunks += sum(x.old.chunks for x in batch.removes if x.old)
        if self.progress:
            self.progress.advance(0, batch.points)
        if self.budget.check() and isinstance(self.store, MemoryAware):
            self.store.set_buffer_scale(self.budget.scale)

    def _finish(self) -> None:
        source = self.source
        assert source is not None
        self.m.finish(source.tree, source.commit, sweep=self.wrote, snapshot=source.snapshot())
        self.m.set(**{SELECTION: self.ws.selector.fingerprint})
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
        if self._resolver is not None:
            self._resolver.close(prune=self.result.complete)

