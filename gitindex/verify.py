"""verify: compare the store with the source, point by point."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from gitindex.examine import examine
from gitindex.source import Source
from gitindex.store import VectorStore, point_id
from gitindex.workspace import Workspace


@dataclass(frozen=True, slots=True)
class VerifyResult:
    stale: int  # points in the store that the tree does not have
    missing: int  # chunks of the tree that the store lacks
    duplicates: int  # extra points for the same path and line range
    expected: int
    note: str | None = None  # what the user should know beyond the counts

    @property
    def ok(self) -> bool:
        return not (self.stale or self.missing or self.duplicates)

    def to_json(self) -> dict[str, object]:
        return {"stale": self.stale, "missing": self.missing, "duplicates": self.duplicates,
                "expected": self.expected, "ok": self.ok}


def verify(ws: Workspace, source: Source | None) -> VerifyResult:
    """Chunk the source afresh (trusting no manifest) and compare with every stored point;
    `source` None stands for an empty tree (a repository with no commits)."""
    expected: set[str] = set()
    if source is not None:
        counter = ws.spec.token_counter()
        for entry in source.entries():
            reason, chunks = examine(source, ws.selector, entry, counter, ws.spec.budget, ws.syntax)
            if reason is None:
                expected.update(point_id(entry.path, entry.oid, i, ws.store.repo) for i in range(len(chunks)))
    stored, ranges = _stored(ws.store)
    return VerifyResult(
        stale=len(stored - expected), missing=len(expected - stored),
        duplicates=sum(n - 1 for n in ranges.values() if n > 1), expected=len(expected),
    )


def _stored(store: VectorStore) -> tuple[set[str], Counter[tuple[str, int, int]]]:
    stored: set[str] = set()
    ranges: Counter[tuple[str, int, int]] = Counter()
    if store.exists():
        with store.session():
            for pid, payload in store.scroll():
                stored.add(pid)
                ranges[(payload["path"], int(payload["start_line"]), int(payload["end_line"]))] += 1
    return stored, ranges
