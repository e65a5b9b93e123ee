"""search: embed a query, ask the store, and say how fresh the index is."""

from __future__ import annotations

from dataclasses import dataclass

import pathspec

from gitindex.embedding import Embedder, SentenceTransformerEmbedder
from gitindex.index import Index
from gitindex.manifest import SYNCED_COMMIT, SYNCED_TREE


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
    """How the index compares with HEAD (git repositories only)."""

    synced_commit: str | None
    head: str | None
    files_differ: int

    @property
    def stale(self) -> bool:
        return self.files_differ > 0 or self.synced_commit != self.head

    def describe(self) -> str:
        if self.synced_commit is None and self.head is not None:
            return "the index has not been synced to a commit yet: run `gitindex sync`"
        at = self.synced_commit[:12] if self.synced_commit else "nothing"
        head = self.head[:12] if self.head else "no commit"
        return (f"index at {at}, HEAD at {head}, {self.files_differ} files differ "
                "(run `gitindex sync`, or search with --refresh)")


def freshness(ix: Index) -> Freshness | None:
    if ix.repo is None:
        return None
    head = ix.repo.head()
    synced_tree = ix.manifest.get(SYNCED_TREE)
    synced_commit = ix.manifest.get(SYNCED_COMMIT)
    if head is None:
        return Freshness(synced_commit, None, 0)
    if synced_tree is None or synced_tree not in ix.repo.git:
        return Freshness(synced_commit, head.commit, ix.manifest.counts()[0] or 1)
    return Freshness(synced_commit, head.commit, ix.repo.count_differences(synced_tree, head.tree))


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
    model = embedder or SentenceTransformerEmbedder(ix.spec, ix.config.device)
    vector = model.embed([query])[0]
    with ix.store.session():
        found = ix.store.query(vector.tolist(), limit, paths)
    return [Hit(p.payload["path"], int(p.payload["start_line"]), int(p.payload["end_line"]),
                float(p.score), str(p.payload.get("text", ""))) for p in found]
