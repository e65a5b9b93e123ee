"""plan: what a sync must do, path by path, to make the index match a source.

A pure function of its inputs, as dvc-data's diff(old, new): it reads the source's trees (and
a directory's file list) but no file content, and never the store or the model. The rules:

- a path whose indexed blob and mode equal the target's needs nothing, unless its store state
  is uncertain (dirty: a batch was cut short between the store and the manifest);
- same blob, other mode: the manifest notes the mode (points do not carry it);
- same blob, but the selection rules changed: recheck whether the file is still selected;
- anything else in the target is (re)indexed; a path the target lacks is deleted;
- an exact rename (same blob, new path) moves the file: the new path is indexed from vectors
  already known, the old path's points go;
- a copy is an added path: its vectors come from the cache or the store, not the model.

Which paths to look at: with a baseline (the tree the last completed run indexed), the paths
that differ from it, the paths recorded since (an interrupted run may have indexed them at a
target this run does not diff against), and the dirty ones. Without one, every path of the
target and every path the manifest holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple, Protocol

from gitindex.manifest import IndexedFile
from gitindex.repo import Change, Entry
from gitindex.source import Source


class Action(StrEnum):
    INDEX = "index"  # read, chunk and write the file
    RENAME = "rename"  # INDEX at the new path, and delete the old path's points
    DELETE = "delete"  # delete the path's points and record
    MODE = "mode"  # only the file mode changed: the manifest notes it
    RECHECK = "recheck"  # same content, new selection rules: is the file still selected?


class Step(NamedTuple):
    action: Action
    path: str
    entry: Entry | None  # the file in the target (None: DELETE)
    indexed: IndexedFile | None  # what the manifest holds for `path` (None: nothing)
    dirty: bool = False  # the store may hold points of `path` that the manifest does not know
    moved_from: Step | None = None  # RENAME: the DELETE step of the old path


class Indexed(Protocol):
    """What plan() needs of the manifest (a dict-backed stand-in serves in tests)."""

    def file(self, path: str) -> IndexedFile | None: ...

    def files(self) -> Iterable[IndexedFile]: ...


@dataclass(frozen=True)
class Plan:
    steps: Iterator[Step]  # streamed: a first index never holds the whole tree's steps
    full: bool  # no baseline, or new selection rules: every path of the target is looked at
    total: int | None  # how many paths are looked at, when known (for progress)

    def __iter__(self) -> Iterator[Step]:
        return self.steps


def plan(source: Source, indexed: Indexed, *, dirty: AbstractSet[str] = frozenset(),
         touched: AbstractSet[str] = frozenset(), selection_changed: bool = False) -> Plan:
    """The steps that bring the index from `indexed` to exactly the files of `source`."""
    changes = None if selection_changed else source.changes()
    if changes is None:
        return Plan(_full(source, indexed, dirty, selection_changed), True, source.count())
    listed = list(changes)  # bounded by the size of the change, not of the tree
    extra = sorted((set(touched) | set(dirty)) - {p for c in listed for p in _paths(c.old, c.new)})
    return Plan(_incremental(source, indexed, listed, extra, dirty), False, len(listed) + len(extra))


class Shard(NamedTuple):
    """Shard `k` of `n` (1-based): the paths whose stable hash falls in it. N jobs, one per
    shard, together do what one sync does, point for point."""

    k: int
    n: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        k, _, n = text.partition("/")
        try:
            shard = cls(int(k), int(n))
        except ValueError:
            shard = cls(0, 0)
        if not 1 <= shard.k <= shard.n:
            from gitindex.errors import ConfigError

            raise ConfigError(f"bad shard {text!r}: expected K/N with 1 <= K <= N, e.g. 2/4")
        return shard

    def holds(self, path: str) -> bool:
        import xxhash

        return xxhash.xxh32_intdigest(path.encode("utf-8", "surrogatepass")) % self.n == self.k - 1


def only_shard(steps: Iterable[Step], shard: Shard) -> Iterator[Step]:
    """The steps of one shard's paths. A rename across shards is split: the shard of the new
    path indexes it (its vectors come from the cache or the store), the old path's shard
    deletes it."""
    for step in steps:
        mine = shard.holds(step.path)
        if step.action is Action.RENAME and step.moved_from is not None:
            left = shard.holds(step.moved_from.path)
            if mine and left:
                yield step
            elif mine:
                yield step._replace(action=Action.INDEX, moved_from=None)
            elif left:
                yield step.moved_from
        elif mine:
            yield step


def _paths(*entries: Entry | None) -> Iterator[str]:
    return (e.path for e in entries if e is not None)


def compare(entry: Entry, indexed: IndexedFile | None, *, dirty: bool = False,
            recheck: bool = False) -> Step | None:
    """The step for one file of the target, given what the manifest holds at its path."""
    if indexed is not None and indexed.blob == entry.oid and not dirty:
        if recheck:
            return Step(Action.RECHECK, entry.path, entry, indexed)
        if indexed.mode != entry.mode:
            return Step(Action.MODE, entry.path, entry, indexed)
        return None
    return Step(Action.INDEX, entry.path, entry, indexed, dirty)


def _gone(path: str, indexed: IndexedFile | None, dirty: AbstractSet[str]) -> Step | None:
    """The step for a path the target lacks: delete what the index may hold of it."""
    if indexed is None and path not in dirty:
        return None
    return Step(Action.DELETE, path, None, indexed, path in dirty)


def _full(source: Source, indexed: Indexed, dirty: AbstractSet[str], recheck: bool) -> Iterator[Step]:
    seen: set[str] = set()
    for entry in source.entries():
        seen.add(entry.path)
        step = compare(entry, indexed.file(entry.path), dirty=entry.path in dirty, recheck=recheck)
        if step is not None:
            yield step
    for record in indexed.files():
        if record.path not in seen:
            seen.add(record.path)
            yield Step(Action.DELETE, record.path, None, record, record.path in dirty)
    for path in sorted(set(dirty) - seen):
        yield Step(Action.DELETE, path, None, None, True)


def _incremental(source: Source, indexed: Indexed, changes: list[Change], extra: list[str],
                 dirty: AbstractSet[str]) -> Iterator[Step]:
    for change in changes:
        old, new = change.old, change.new
        moved = old is not None and (new is None or old.path != new.path)
        gone = _gone(old.path, indexed.file(old.path), dirty) if moved and old is not None else None
        step = None
        if new is not None:
            step = compare(new, indexed.file(new.path), dirty=new.path in dirty)
        if gone is not None and step is not None and step.action is Action.INDEX and change.status == "R":
            yield Step(Action.RENAME, step.path, step.entry, step.indexed, step.dirty, moved_from=gone)
            continue
        if gone is not None:
            yield gone
        if step is not None:
            yield step
    for path in extra:
        entry = source.entry(path)
        record = indexed.file(path)
        step = compare(entry, record, dirty=path in dirty) if entry is not None else _gone(path, record, dirty)
        if step is not None:
            yield step
