"""apply: carry out a plan's steps: read and chunk the files they name into batches, resolve
each batch's vectors and write it (pipeline.py: the embedding and writing threads; vectors.py:
cache, store, model; writer.py: the order of writes). Imported only when there is work to do."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from gitindex import faults
from gitindex.chunking import TokenCounter
from gitindex.errors import Interrupted
from gitindex.examine import examine, skip_reason
from gitindex.manifest import Manifest
from gitindex.memory import MemoryBudget, default_limit_mb
from gitindex.pipeline import Pipeline
from gitindex.plan import Action, Step
from gitindex.source import Source
from gitindex.store import MemoryAware
from gitindex.sync import Progress, SyncResult
from gitindex.vectors import VectorResolver
from gitindex.workspace import Workspace
from gitindex.writer import Batch, BatchWriter, Removal, Update

_MAX_BATCH_FILES = 256  # a batch of deletions or tiny files still commits regularly


def apply(ws: Workspace, source: Source, steps: Iterator[Step], result: SyncResult, *,
          progress: Progress | None, should_stop: Callable[[], bool], look_in_store: bool) -> bool:
    """Carry out `steps`, adding what was done to `result`; True when a batch was written.
    Sets result.complete to False when --max-files stopped the run; raises Interrupted (after
    the current batch) when `should_stop()` turns true."""
    run = _Apply(ws, source, result, progress, should_stop, look_in_store)
    try:
        run.run(steps)
    finally:
        run.close()
    return run.wrote


class _Apply:
    def __init__(self, ws: Workspace, source: Source, result: SyncResult, progress: Progress | None,
                 should_stop: Callable[[], bool], look_in_store: bool) -> None:
        self.ws = ws
        self.m = ws.manifest
        self.store = ws.store
        self.source = source
        self.result = result
        self.progress = progress
        self.should_stop = should_stop
        self._counter: TokenCounter | None = None
        self._resolver = VectorResolver(
            ws.model_key, ws.cache_dir / "vectors.sqlite", ws.config.cache_max_mb, self.store,
            ws.embedder, look_in_store=look_in_store, clock=result.phases)
        self.budget = MemoryBudget(ws.config.memory_limit_mb or default_limit_mb(), ws.config.batch_size)
        result.memory_limit_mb = self.budget.limit_mb
        self.updates: list[Update] = []
        self.removes: list[Removal] = []
        self.batch_chunks = 0
        self.files_done = 0
        self.wrote = False  # a batch was written (and old chunk rows may need sweeping)

    def run(self, steps: Iterator[Step]) -> None:
        ws, clock = self.ws, self.result.phases
        writer = BatchWriter(self.store, commit=self.source.commit, model=ws.model_key,
                             chunker=ws.chunker_id, clock=clock)
        limit = ws.config.max_files
        stopped = False
        with Pipeline(self._resolve, lambda b, m: self._write(writer, b, m), self.m.path, self.m.ref) as pipeline:
            for step in steps:
                self._apply(step)
                if self.progress:
                    self.progress.advance(1, 0)
                if self.batch_chunks >= self.budget.batch_size or \
                        len(self.updates) + len(self.removes) >= _MAX_BATCH_FILES:
                    pipeline.submit(self._take_batch())
                if self.should_stop():
                    stopped = True
                    break
                if limit is not None and self.files_done >= limit:
                    self.result.complete = False
                    self.result.notes.append(f"stopped after {limit} files (--max-files); run again to continue")
                    break
            pipeline.submit(self._take_batch())  # the last, partial batch: whole on its own
            pipeline.drain()
        if stopped:  # by should_stop(), after the last whole batch
            self.result.complete = False
            raise Interrupted("interrupted; what was indexed is kept, run `gitindex sync` to finish")

    def _apply(self, step: Step) -> None:
        r = self.result
        if step.action is Action.DELETE:
            r.deleted += self._remove(step)
        elif step.action is Action.MODE:
            self._set_mode(step)
        elif step.action is Action.RECHECK:
            assert step.entry is not None
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
        assert entry is not None
        if self._counter is None:
            self._counter = self.ws.spec.token_counter()
        started = time.perf_counter()
        reason, chunks = examine(self.source, self.ws.selector, entry, self._counter, self.ws.spec.budget,
                                 self.ws.syntax)
        self.result.phases["read_chunk"] += time.perf_counter() - started
        faults.reached("chunked")
        if reason is not None:
            self.result.skipped[reason] += 1
            if old is None and not step.dirty:
                return None
            self._remove(step)
            return "removed" if old is not None else None
        # Another ref's view holds this very file: its points exist, they only list one more ref.
        shared = bool(self.m.holders(entry.path, entry.oid) - {self.m.ref})
        self.updates.append(Update(entry, chunks, old, step.dirty, shared))
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
        texts = {c.hash: c.embedded for u in batch.updates if not u.shared for c in u.chunks}
        batch.vectors, batch.embedded = self._resolver.resolve(texts)
        faults.reached("embedded")
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

    def close(self) -> None:
        self._resolver.close(prune=self.result.complete)
        b, r = self.budget, self.result
        if b.tightened:
            r.notes.append(f"memory: near the {b.limit_mb:.0f} MB limit, batches went down to "
                           f"{b.smallest_batch} chunks")
