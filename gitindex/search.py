"""search: embed a query, ask the store, and say how fresh the index is."""

from __future__ import annotations

from dataclasses import dataclass

from gitindex.embedding import Embedder
from gitindex.errors import IndexMismatchError
from gitindex.manifest import LAYOUT, MODEL, SYNCED_COMMIT, SYNCED_TREE
from gitindex.paths import glob_filter
from gitindex.store import LAYOUT as STORE_LAYOUT
from gitindex.store import Query
from gitindex.workspace import Workspace


@dataclass(frozen=True, slots=True)
class Hit:
    path: str
    start_line: int
    end_line: int
    score: float
    text: str

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "start_line": self.start_line, "end_line": self.end_line,
                "score": round(self.score, 4), "text": self.text}


@dataclass(frozen=True, slots=True)
class Freshness:
    """How the indexed tree compares with HEAD's (git repositories only)."""

    synced_commit: str | None  # None after a --staged sync, or before any
    synced: bool  # a sync has completed
    head: str | None
    files_differ: int

    @property
    def stale(self) -> bool:
        return not self.synced or self.files_differ > 0

    def describe(self) -> str:
        if not self.synced:
            return "the index has not been synced yet: run `gitindex sync`"
        at = self.synced_commit[:12] if self.synced_commit else "the staged tree"
        head = self.head[:12] if self.head else "no commit"
        return (f"index at {at}, HEAD at {head}, {self.files_differ} files differ "
                "(run `gitindex sync`, or search with --refresh)")


def freshness(ws: Workspace) -> Freshness | None:
    """Compare trees, not commits: an empty commit or a --staged sync of HEAD's tree is fresh.
    None for a plain directory, which has no HEAD to compare with."""
    if ws.repo is None:
        return None
    head = ws.repo.head()
    synced_tree = ws.manifest.get(SYNCED_TREE)
    synced_commit = ws.manifest.get(SYNCED_COMMIT)
    if head is None:
        return Freshness(synced_commit, synced_tree is not None, None, 0)
    if synced_tree is None or synced_tree not in ws.repo.git:
        return Freshness(synced_commit, False, head.commit, ws.manifest.counts()[0])
    return Freshness(synced_commit, True, head.commit, ws.repo.count_differences(synced_tree, head.tree))


def check_index(ws: Workspace) -> None:
    """Queries must be embedded by the model that built the index, against the layout it has."""
    built = ws.manifest.get(MODEL)
    if built is not None and built != ws.model_key:
        model, _, variant = built.partition("#")
        hint = f"--model {model}" + (" --backend onnx-int8" if variant else " --backend onnx")
        raise IndexMismatchError(
            f"the index was built with model {built!r}, not {ws.model_key!r}: search with "
            f"{hint}, or re-index with `gitindex sync --rebuild` and these settings"
        )
    layout = ws.manifest.get(LAYOUT) or "1"
    if built is not None and layout != STORE_LAYOUT:
        raise IndexMismatchError(
            f"the index was built by an older gitindex (store layout {layout}, now {STORE_LAYOUT}): "
            "run `gitindex sync` once to bring it up to date (vectors already computed are reused)"
        )


def search(ws: Workspace, query: str, *, limit: int = 10, path_glob: str | None = None,
           embedder: Embedder | None = None) -> list[Hit]:
    """The `limit` chunks closest to `query`, best first; `path_glob` filters paths (gitignore
    syntax: `*.py`, `src/**/*.ts`), in the store as far as payload filters go, then exactly."""
    if not ws.store.exists():
        return []
    check_index(ws)
    vector = (embedder or ws.embedder).embed([query])[0].tolist()
    where, matches = glob_filter(path_glob) if path_glob else ((), None)
    hits: list[Hit] = []
    offset, page = 0, limit
    with ws.store.session():
        while len(hits) < limit:
            found = ws.store.query(Query(vector=vector, limit=page, offset=offset, where=where))
            for p in found:
                path = str(p.payload["path"])
                if matches is None or matches(path):
                    hits.append(Hit(path, int(p.payload["start_line"]), int(p.payload["end_line"]),
                                    float(p.score), str(p.payload.get("text", ""))))
            if len(found) < page:
                break
            offset += page
            page = min(page * 4, 4096)  # what the filters let through matched poorly: look further
    return hits[:limit]
