"""search: embed a query, ask the store, and say how fresh the index is."""

from __future__ import annotations

from dataclasses import dataclass

import pathspec

from gitindex.embedding import Embedder
from gitindex.errors import IndexMismatchError
from gitindex.index import Index
from gitindex.manifest import MODEL, SYNCED_COMMIT, SYNCED_TREE


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


def freshness(ix: Index) -> Freshness | None:
    """Compare trees, not commits: an empty commit or a --staged sync of HEAD's tree is fresh."""
    if ix.repo is None:
        return None
    head = ix.repo.head()
    synced_tree = ix.manifest.get(SYNCED_TREE)
    synced_commit = ix.manifest.get(SYNCED_COMMIT)
    if head is None:
        return Freshness(synced_commit, synced_tree is not None, None, 0)
    if synced_tree is None or synced_tree not in ix.repo.git:
        return Freshness(synced_commit, False, head.commit, ix.manifest.counts()[0])
    return Freshness(synced_commit, True, head.commit, ix.repo.count_differences(synced_tree, head.tree))


def check_model(ix: Index) -> None:
    """Queries must be embedded by the model that built the index."""
    built = ix.manifest.get(MODEL)
    if built is not None and built != ix.model_key:
        model, _, variant = built.partition("#")
        hint = f"--model {model}" + (" --backend onnx-int8" if variant else " --backend onnx")
        raise IndexMismatchError(
            f"the index was built with model {built!r}, not {ix.model_key!r}: search with "
            f"{hint}, or re-index with `gitindex sync --rebuild` and these settings"
        )


def search(ix: Index, query: str, *, limit: int = 10, path_glob: str | None = None,
           embedder: Embedder | None = None) -> list[Hit]:
    """The `limit` chunks closest to `query`, best first; `path_glob` filters paths (gitignore
    syntax: `*.py`, `src/**/*.ts`)."""
    paths = None
    if path_glob:
        spec = pathspec.GitIgnoreSpec.from_lines([path_glob])
        paths = [f.path for f in ix.manifest.files() if spec.match_file(f.path)]
        if not paths:
            return []
    if not ix.store.exists():
        return []
    check_model(ix)
    model = embedder or ix.embedder()
    vector = model.embed([query])[0]
    with ix.store.session():
        found = ix.store.query(vector.tolist(), limit, paths)
    return [Hit(p.payload["path"], int(p.payload["start_line"]), int(p.payload["end_line"]),
                float(p.score), str(p.payload.get("text", ""))) for p in found]
