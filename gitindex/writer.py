"""What a batch holds, and how it is written: the store first, then the manifest.

Order of writes, so that any interruption leaves a state the next run finishes: the manifest
marks the batch's paths dirty; the store upserts the new points (acknowledged), re-lists the
refs of points other refs still hold, then deletes the paths' points no ref holds; the manifest
records the batch and clears its dirty marks. Each step is idempotent, worked out from what the
manifest records, so the next run's redo of a dirty path ends in the same state.

A batch belongs to one ref (the manifest's `ref`). A file another ref's view already holds at
the same blob is not written again: its points list one more ref. A file's old blob that other
refs still hold is not deleted: its points list one ref fewer. An overlay (refs.py) lists itself
at every path a batch of its changes; before a base changes paths that overlays inherit from
it, those overlays are listed on what they hold there (then their overrides are recorded).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from gitindex import faults, lexical
from gitindex.chunking import Chunk, language
from gitindex.manifest import FileRecord, IndexedFile, Manifest
from gitindex.paths import path_fields
from gitindex.repo import Entry
from gitindex.store import DENSE, LEXICAL, PointData, VectorStore, point_id


@dataclass
class Update:
    """A file's new content: its entry, its chunks, and what the manifest had for it."""

    entry: Entry
    chunks: list[Chunk]
    old: IndexedFile | None
    dirty: bool = False  # the store may hold points of this path that the manifest does not know
    shared: bool = False  # another ref holds this path at this blob: its points exist already


@dataclass
class Removal:
    """A path whose points go: what the manifest had for it (None: only dirty)."""

    path: str
    old: IndexedFile | None


@dataclass
class Batch:
    updates: list[Update]
    removes: list[Removal]
    vectors: dict[str, Any] = field(default_factory=dict)  # chunk hash -> vector, once resolved
    embedded: int = 0  # how many of them the model made

    @property
    def paths(self) -> list[str]:
        return [u.entry.path for u in self.updates] + [r.path for r in self.removes]

    @property
    def points(self) -> int:
        return sum(len(u.chunks) for u in self.updates)

    @property
    def new_points(self) -> int:
        return sum(len(u.chunks) for u in self.updates if not u.shared)


def payload(entry: Entry, chunk: Chunk, commit: str | None, model: str, chunker: str,
            repo: str = "", refs: tuple[str, ...] = ("",)) -> dict[str, Any]:
    """What a point carries besides its vectors (store.PAYLOAD_FIELDS)."""
    return {
        "repo": repo, "refs": sorted(refs),
        "path": entry.path, "blob": entry.oid, "hash": chunk.hash, "start_line": chunk.start,
        "end_line": chunk.end, "language": language(entry.path), "text": chunk.text, "commit": commit,
        "model": model, "chunker": chunker, "symbol": chunk.symbol, "kind": chunk.kind,
        "names": lexical.chunk_names(chunk.symbol, chunk.defines), "defines": lexical.defined_names(chunk.defines),
        **path_fields(entry.path),
    }


class BatchWriter:
    """Writes batches whose vectors are resolved; adds the seconds spent to `clock`."""

    def __init__(self, store: VectorStore, *, commit: str | None, model: str, chunker: str,
                 clock: defaultdict[str, float]) -> None:
        self.store = store
        self.repo = store.repo
        self.commit = commit
        self.model = model
        self.chunker = chunker
        self.clock = clock

    def write(self, batch: Batch, manifest: Manifest) -> None:
        if not batch.updates and not batch.removes:
            return
        started = perf_counter()
        paths = batch.paths
        self._hand_over(paths, manifest)
        manifest.mark_dirty(paths)
        faults.reached("dirty-marked")
        ref = manifest.ref
        points = [
            PointData(point_id(u.entry.path, u.entry.oid, i, self.repo),
                      {DENSE: batch.vectors[c.hash], LEXICAL: lexical.document(u.entry.path, c.symbol, c.embedded)},
                      payload(u.entry, c, self.commit, self.model, self.chunker, self.repo, (ref,)))
            for u in batch.updates if not u.shared for i, c in enumerate(u.chunks)
        ]
        relist: dict[frozenset[str], list[str]] = {}  # refs -> the points that list exactly them
        deletes: list[tuple[str, frozenset[str]]] = []  # path, the blobs of it whose points stay
        for u in batch.updates:
            path, blob = u.entry.path, u.entry.oid
            if u.shared:
                self._relist(relist, manifest, path, blob, (manifest.holders(path, blob) - {ref}) | {ref})
            if u.old is not None and u.old.blob != blob and (left := manifest.holders(path, u.old.blob) - {ref}):
                self._relist(relist, manifest, path, u.old.blob, left)
            if u.old is not None or u.dirty:
                deletes.append((path, manifest.blobs_elsewhere(path) | {blob}))
        for gone in batch.removes:
            if gone.old is not None and (left := manifest.holders(gone.path, gone.old.blob) - {ref}):
                self._relist(relist, manifest, gone.path, gone.old.blob, left)
            deletes.append((gone.path, manifest.blobs_elsewhere(gone.path)))
        self.clock["manifest"] += perf_counter() - started
        started = perf_counter()
        with self.store.session(write=True):
            self.store.upsert(points)
            faults.reached("upserted")
            for refs, ids in relist.items():
                self.store.set_refs(sorted(refs), ids)
            for path, keep in deletes:  # upsert first, then delete: a file is never absent
                self.store.delete_path(path, keep_blob=sorted(keep))
            faults.reached("deleted")
        self.clock["store"] += perf_counter() - started
        started = perf_counter()
        records = [FileRecord(u.entry.path, u.entry.oid, u.entry.mode, u.chunks) for u in batch.updates]
        records += [FileRecord(r.path, None, 0, None) for r in batch.removes]
        manifest.record(records, clear_dirty=paths)
        faults.reached("recorded")
        self.clock["manifest"] += perf_counter() - started

    def _hand_over(self, paths: list[str], manifest: Manifest) -> None:
        """The current ref is about to change `paths`: the overlays that inherit them from it
        list themselves on what they hold there, so their views stay as they are."""
        inheriting = manifest.inheriting(paths)
        if not inheriting:
            return
        relist: dict[frozenset[str], list[str]] = {}
        for (path, blob, _chunks), refs in inheriting.items():
            if blob is not None:
                self._relist(relist, manifest, path, blob, manifest.holders(path, blob) | set(refs))
        if relist:
            with self.store.session(write=True):
                for listed, ids in relist.items():
                    self.store.set_refs(sorted(listed), ids)
        faults.reached("ref-inherited")
        by_ref: dict[str, list[str]] = {}
        for (path, _blob, _chunks), refs in inheriting.items():
            for ref in refs:
                by_ref.setdefault(ref, []).append(path)
        for ref, owned in by_ref.items():
            manifest.override(ref, owned)

    def _relist(self, relist: dict[frozenset[str], list[str]], manifest: Manifest, path: str, blob: str,
                refs: frozenset[str]) -> None:
        chunks = len(manifest.blob_chunks(blob) or ())
        relist.setdefault(frozenset(refs), []).extend(point_id(path, blob, i, self.repo) for i in range(chunks))
