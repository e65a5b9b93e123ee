"""verify: compare the store with the target tree, point by point."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from gitindex.examine import examine
from gitindex.index import Index
from gitindex.repo import Entry, Target
from gitindex.store import point_id


@dataclass(frozen=True, slots=True)
class VerifyResult:
    stale: int  # points in the store that the tree does not have
    missing: int  # chunks of the tree that the store lacks
    duplicates: int  # extra points for the same path and line range
    expected: int

    @property
    def ok(self) -> bool:
        return not (self.stale or self.missing or self.duplicates)

    def to_json(self) -> dict[str, object]:
        return {"stale": self.stale, "missing": self.missing, "duplicates": self.duplicates,
                "expected": self.expected, "ok": self.ok}


def _entries(ix: Index, target: Target | None) -> list[Entry]:
    if ix.repo is not None:
        assert target is not None
        return list(ix.repo.walk(target.tree))
    from gitindex.directory import scan

    return [entry for entry, _size, _mtime in scan(ix.root, ix.manifest.dir_state())]


def verify(ix: Index, target: Target | None) -> VerifyResult:
    """Chunk the target tree afresh (trusting no manifest) and compare with every stored point."""
    counter = ix.spec.token_counter()
    expected: set[str] = set()
    for entry in _entries(ix, target):
        reason, chunks = examine(ix, target, entry, counter)
        if reason is None:
            expected.update(point_id(entry.path, entry.oid, i) for i in range(len(chunks)))
    stored: set[str] = set()
    ranges: Counter[tuple[str, int, int]] = Counter()
    if ix.store.exists():
        with ix.store.session():
            for pid, payload in ix.store.scroll():
                stored.add(pid)
                ranges[(payload["path"], int(payload["start_line"]), int(payload["end_line"]))] += 1
    return VerifyResult(
        stale=len(stored - expected), missing=len(expected - stored),
        duplicates=sum(n - 1 for n in ranges.values() if n > 1), expected=len(expected),
    )
