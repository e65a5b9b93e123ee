"""The vector store protocol, the values it takes, and open_store() to pick an adapter."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

# Every point has two vectors: DENSE, the model's embedding of its text, and LEXICAL, a BM25
# sparse vector of its words (lexical.py) that the store weighs by IDF.
DENSE = "dense"
LEXICAL = "lexical"
# The shape of a collection: its vectors and payload. Bumped when they change; an index in
# another layout is rebuilt (embedded) or refused until `sync --rebuild` (server). Layout 1 had
# one unnamed vector and no path fields; layout 2 no lexical vector, symbols or names.
LAYOUT = "3"

# Payload fields every point carries (see writer.py); INDEXED_FIELDS have keyword indexes.
PAYLOAD_FIELDS = (
    "path", "blob", "hash", "start_line", "end_line", "language", "text", "commit", "model", "chunker",
    "parts", "ext", "symbol", "kind", "names", "defines", "repo", "refs",
)
INDEXED_FIELDS = ("path", "blob", "hash", "parts", "ext", "language", "names", "defines", "repo", "refs")
# The refs whose trees hold a point (refs.py): a search for one ref keeps the points listing it.
REFS = "refs"
IDS_PAGE = 1024  # point ids per request when refs are set by id
# The repository key: a tenant index (Qdrant keeps each repository's points together), and a
# condition every adapter adds to each read, delete and search of a repository's store.
REPO = "repo"
# What adopting a store and verifying it read back: everything but the text.
SCROLL_FIELDS = ("path", "blob", "hash", "start_line", "end_line", "commit", "model", "chunker", "refs")
# Candidates a search explores in each HNSW graph (embedded segments and a server collection
# alike): Recall@10 0.99 against exact search at 250k chunks (benchmarks/ann.py).
HNSW_EF = 128
# hybrid: dense and lexical candidates (and definitions the query names) fused by reciprocal rank.
MODES = ("hybrid", "dense", "lexical")


class Sparse(NamedTuple):
    """A sparse vector: the non-zero dimensions and their values."""

    indices: list[int]
    values: list[float]


class PointData(NamedTuple):
    id: str
    vectors: Mapping[str, Sequence[float] | Sparse]  # by name: {DENSE: [...], LEXICAL: Sparse}
    payload: dict[str, Any]


class Match(NamedTuple):
    """A payload condition: `field` (a keyword, or a list of keywords) holds one of `values`."""

    field: str
    values: tuple[str, ...]


class InView(NamedTuple):
    """The points of one ref's view (refs.py): those listing `ref`, and for an overlay those
    listing its `base` at a path it does not override (`own`)."""

    ref: str
    base: str | None = None
    own: tuple[str, ...] = ()


Condition = Match | InView


@dataclass(frozen=True, slots=True)
class Query:
    """One search request, whatever the store: what to rank by, which points may match, how many.

    dense ranks by `vector`, lexical by `sparse`; hybrid fetches `candidates` of each (and of
    the points whose `names` hold one of `names`, ranked by `vector`) and fuses the lists by
    reciprocal rank, weighted by `weights` (dense, lexical, names)."""

    vector: Sequence[float] | None = None  # the dense query vector
    sparse: Sparse | None = None  # the lexical query vector
    names: tuple[str, ...] = ()  # identifiers the query names (lexical.query_names), matched to `defines`
    limit: int = 10
    offset: int = 0
    where: tuple[Condition, ...] = ()  # all must hold
    mode: str = "dense"
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    rrf_k: int = 60

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown search mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.mode in ("dense", "hybrid") and self.vector is None:
            raise ValueError(f"a {self.mode} query needs a vector")
        if self.mode in ("lexical", "hybrid") and self.sparse is None:
            raise ValueError(f"a {self.mode} query needs a sparse vector")

    @property
    def candidates(self) -> int:
        """How many points each source of a hybrid query contributes to the fusion."""
        return max(50, 3 * (self.limit + self.offset))

    def rankings(self) -> list[Ranking]:
        """What the store ranks by: one ranking (dense, lexical), or a hybrid query's several,
        to fuse. A lexical ranking whose query has no indexed word is left out."""
        lexical = self.sparse if self.sparse is not None and self.sparse.indices else None
        if self.mode != "hybrid":
            vector = self.vector if self.mode == "dense" else lexical
            return [] if vector is None else [Ranking(DENSE if self.mode == "dense" else LEXICAL, vector, self.where, 1.0)]
        assert self.vector is not None
        found = [Ranking(DENSE, self.vector, self.where, self.weights[0])]
        if lexical is not None:
            found.append(Ranking(LEXICAL, lexical, self.where, self.weights[1]))
        if self.names:
            found.append(Ranking(DENSE, self.vector, (*self.where, Match("defines", self.names)), self.weights[2]))
        return [r for r in found if r.weight > 0]


class Ranking(NamedTuple):
    """One ranked list a query asks for: nearest to `vector` (named `using`) among the points
    `where` allows; a hybrid query fuses several by reciprocal rank, each counted `weight` times."""

    using: str
    vector: Sequence[float] | Sparse
    where: tuple[Condition, ...]
    weight: float


class ScoredPayload(NamedTuple):
    score: float
    payload: dict[str, Any]


class VectorStore(Protocol):
    """What sync, search and verify need from Qdrant, embedded or server."""

    location: str  # where the points live, for status
    collection: str
    repo: str  # the repository key: every call below reads and deletes this repository's points only
    count_is_cheap: bool  # count() needs no shard to be opened (a server answers it)

    def session(self, write: bool = False) -> contextlib.AbstractContextManager[VectorStore]:
        """A scope for a few calls: the embedded store holds its shard and inter-process lock
        for it (writers let waiting readers go first); a server needs nothing held."""
        ...

    def exists(self) -> bool: ...

    def layout(self) -> str | None:
        """The LAYOUT of the existing collection (None: there is none)."""
        ...

    def upsert(self, points: Sequence[PointData]) -> None:
        """Write points; returns once the store has acknowledged them."""
        ...

    def delete_path(self, path: str, keep_blob: str | Sequence[str] | None = None) -> None:
        """Delete every point of `path` except those of blob `keep_blob` (or of these blobs)."""
        ...

    def set_refs(self, refs: Sequence[str], ids: Sequence[str] | None = None) -> None:
        """Set the refs that hold these points (None: every point of the repository)."""
        ...

    def vectors_for(self, hashes: Sequence[str]) -> dict[str, list[float]]:
        """Dense vectors already stored for these chunk hashes (any path)."""
        ...

    def query(self, query: Query) -> list[ScoredPayload]: ...

    def scroll(self, fields: Sequence[str] | None = SCROLL_FIELDS) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every point's id and payload (the given fields; None: all of them)."""
        ...

    def count(self) -> int: ...

    def drop(self) -> None:
        """Delete the repository's points (the collection too once no other repository has any)."""
        ...

    def begin_rebuild(self) -> str | None:
        """Start re-indexing from nothing. A server builds into a new collection beside the one
        searchers use and switches to it at finish_rebuild() (blue/green): the name to resume
        with is returned. Otherwise (the embedded store; a collection other repositories share)
        the repository's points are dropped now and None is returned."""
        ...

    def resume_rebuild(self, name: str) -> None:
        """Go on writing into the collection an interrupted rebuild began."""
        ...

    def finish_rebuild(self) -> None:
        """The rebuild is complete: searchers switch to it; the old collection goes."""
        ...

    def close(self) -> None:
        """Release whatever a writer kept open between sessions."""
        ...

    def looks_sound(self) -> bool:
        """A check that opens nothing (a no-op sync must stay cheap): False when the store's own
        files show it cannot be opened, so that sync sets it aside. True when there is no store
        yet, and always for a server (its files are not ours to inspect)."""
        ...

    def set_aside(self) -> Path | None:
        """Move a store that cannot be opened out of the way, never deleting it, and return
        where it went; the next write starts a fresh one. None when it is not ours to move (a
        server's collection): the caller reports the failure instead."""
        ...


@runtime_checkable
class MemoryAware(Protocol):
    """A store that buffers writes in this process (the embedded one) and can hold less."""

    def set_buffer_scale(self, scale: float) -> None:
        """How much of its usual buffer a writer may hold in memory, in (0, 1]; a sync near
        its memory limit lowers it, and the store writes out sooner and drops mapped pages."""
        ...


def point_id(path: str, blob: str, index: int, repo: str = "") -> str:
    """A stable id per (repository, path, blob, chunk), so re-writing a batch never duplicates
    a point, and two repositories in one collection never write the same point."""
    import uuid

    import xxhash

    key = f"{repo}\0{path}\0{blob}\0{index}" if repo else f"{path}\0{blob}\0{index}"
    return str(uuid.UUID(bytes=xxhash.xxh3_128_digest(key.encode("utf-8", "surrogatepass"))))


def open_store(
    *, url: str | None, api_key: str | None, collection: str, data_dir: Path, lock_timeout: float, repo: str = "",
    server_budget: float = 60.0,
) -> VectorStore:
    """The embedded Qdrant Edge shard under data_dir, or a Qdrant server when url is given;
    scoped to repository `repo`."""
    store: VectorStore
    if url:
        from gitindex.store.remote import RemoteStore

        store = RemoteStore.connect(url, api_key, collection, budget=server_budget,
                                    timeout=min(30.0, max(server_budget, 0.1)))
    else:
        from gitindex.store.embedded import EmbeddedStore

        store = EmbeddedStore(data_dir / "qdrant" / collection, collection, lock_timeout)
    store.repo = repo
    return store


def kept_blobs(keep_blob: str | Sequence[str] | None) -> list[Match]:
    """delete_path's exception: the points of these blobs stay."""
    blobs = (keep_blob,) if isinstance(keep_blob, str) else tuple(keep_blob or ())
    return [Match("blob", blobs)] if blobs else []


def build_filter(where: Sequence[Condition], unless: Sequence[Match], match: Callable[[str, list[str]], Any],
                 make: Callable[..., Any]) -> Any | None:
    """A filter in a client's own types (`match(field, values)`: a keyword condition;
    `make(must=, should=, must_not=)`: a filter): points where every `where` condition holds
    and no `unless` one does (None: all points)."""
    if not where and not unless:
        return None

    def condition(c: Condition) -> Any:
        if isinstance(c, Match):
            return match(c.field, list(c.values))
        listed = match(REFS, [c.ref])
        if c.base is None:
            return listed
        inherited = make(must=[match(REFS, [c.base])], must_not=[match("path", list(c.own))] if c.own else None)
        return make(should=[listed, inherited])

    return make(must=[condition(c) for c in where] or None,
                must_not=[match(m.field, list(m.values)) for m in unless] or None)


def scoped(repo: str, where: Sequence[Condition] = ()) -> tuple[Condition, ...]:
    """`where`, limited to repository `repo` (no limit for the unnamed repository of a test)."""
    return (*where, Match(REPO, (repo,))) if repo else tuple(where)
