"""verify: compare the store with the source, point by point, and each point's refs."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gitindex.examine import examine
from gitindex.manifest import Manifest
from gitindex.source import Source
from gitindex.store import REFS, VectorStore, point_id
from gitindex.workspace import Workspace


@dataclass(frozen=True, slots=True)
class VerifyResult:
    stale: int  # points in the store that the trees do not have
    missing: int  # chunks of the trees that the store lacks
    duplicates: int  # extra points for the same path, blob and line range
    expected: int
    note: str | None = None  # what the user should know beyond the counts
    mislisted: int = 0  # points whose refs list is not the refs whose trees hold them
    refs: tuple[str, ...] = ()  # the refs checked

    @property
    def ok(self) -> bool:
        return not (self.stale or self.missing or self.duplicates or self.mislisted)

    def to_json(self) -> dict[str, object]:
        return {"stale": self.stale, "missing": self.missing, "duplicates": self.duplicates,
                "mislisted": self.mislisted, "expected": self.expected, "refs": list(self.refs), "ok": self.ok}


def verify(ws: Workspace, source: Source | None, ref: str | None = None) -> VerifyResult:
    """Chunk the source afresh (trusting the manifest only for which paths overlays inherit) and
    compare with the stored points of `ref`'s view (None: every point); `source` None stands for
    an empty tree."""
    return verify_views(ws, [(ref, source)], only=ref)


def verify_views(ws: Workspace, views: Iterable[tuple[str | None, Source | None]], only: str | None = None,
                 unseen: Sequence[str] = ()) -> VerifyResult:
    """Compare every stored point (or, with `only`, those listing that ref) with a fresh
    chunking of each view's tree: a point must exist exactly when some view's tree has its
    chunk, and list exactly those views' refs (a view named None lists no refs to check). The
    points only `unseen` refs hold (tracked, but not resolvable here: another worktree's HEAD,
    another machine's branch) are left unchecked."""
    expected: defaultdict[str, set[str]] = defaultdict(set)
    names: list[str] = []
    spec, syntax = ws.spec, ws.syntax  # (each reads the manifest while a switch is under way)
    counter = spec.token_counter()
    for name, source in views:
        if name is not None:
            names.append(name)
        if source is None:
            continue
        for entry in source.entries():
            reason, chunks = examine(source, ws.selector, entry, counter, spec.budget, syntax)
            if reason is None:
                for i in range(len(chunks)):
                    held = expected[point_id(entry.path, entry.oid, i, ws.store.repo)]
                    if name is not None:
                        held.add(name)
    stored, ranges = _stored(ws.store, only, ws.manifest)
    elsewhere = set(unseen)
    unchecked = [pid for pid, held in stored.items() if held and held <= elsewhere and pid not in expected]
    for pid in unchecked:
        del stored[pid]
    mislisted = 0
    if names:
        checked = set(names)
        mislisted = sum(1 for pid, held in expected.items()
                        if pid in stored and (stored[pid] & checked if only is None else {only} & stored[pid]) != held)
    return VerifyResult(
        stale=len(stored.keys() - expected.keys()), missing=len(expected.keys() - stored.keys()),
        duplicates=sum(n - 1 for n in ranges.values() if n > 1), expected=len(expected),
        mislisted=mislisted, refs=tuple(names),
        note=(f"{len(unchecked)} points of refs this worktree cannot resolve ({', '.join(sorted(elsewhere))}) "
              "were not checked") if unchecked else None,
    )


def _stored(store: VectorStore, only: str | None,
            manifest: Manifest) -> tuple[dict[str, set[str]], Counter[tuple[str, str, int, int]]]:
    """Each point's views (the refs it lists, and the overlays that inherit it), and how many
    points each (path, blob, line range) has."""
    stored: dict[str, set[str]] = {}
    ranges: Counter[tuple[str, str, int, int]] = Counter()
    if store.exists():
        with store.session():
            for pid, payload in store.scroll():
                refs = set(manifest.views([str(r) for r in payload.get(REFS) or ("",)], str(payload["path"])))
                if only is not None and only not in refs:
                    continue
                stored[pid] = refs
                ranges[(payload["path"], payload["blob"], int(payload["start_line"]), int(payload["end_line"]))] += 1
    return stored, ranges
