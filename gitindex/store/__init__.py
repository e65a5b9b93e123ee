"""The vector store protocol, the values it takes, and open_store() to pick an adapter."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

# Every point's dense vector has this name, so that other vectors (sparse, lexical) can sit
# beside it in the same collection.
DENSE = "dense"
# The shape of a collection: its vectors and payload. Bumped when they change; an index in
# another layout is rebuilt (embedded) or refused until `sync --rebuild` (server). Layout 1 had
# one unnamed vector and no path fields.
LAYOUT = "2"

# Payload fields every point carries (see writer.py); INDEXED_FIELDS have keyword indexes.
PAYLOAD_FIELDS = (
    "path", "blob", "hash", "start_line", "end_line", "language", "text", "commit", "model", "chunker",
    "parts", "ext",
)
INDEXED_FIELDS = ("path", "blob", "hash", "parts", "ext", "language")
# What adopting a store and verifying it read back: everything but the text.
SCROLL_FIELDS = ("path", "blob", "hash", "start_line", "end_line", "commit", "model", "chunker")
MODES = ("dense",)


class PointData(NamedTuple):
    id: str
    vectors: Mapping[str, Sequence[float]]  # by name: {DENSE: [...]}
    payload: dict[str, Any]


class Match(NamedTuple):
    """A payload condition: `field` (a keyword, or a list of keywords) holds one of `values`."""

    field: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Query:
    """One search request, whatever the store: what to rank by, which points may match, how many."""

    vector: Sequence[float] | None = None  # the dense query vector
    limit: int = 10
    offset: int = 0
    where: tuple[Match, ...] = ()  # all must hold
    mode: str = "dense"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown search mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.mode == "dense" and self.vector is None:
            raise ValueError("a dense query needs a vector")


class ScoredPayload(NamedTuple):
    score: float
    payload: dict[str, Any]


class VectorStore(Protocol):
    """What sync, search and verify need from Qdrant, embedded or server."""

    location: str  # where the points live, for status
    collection: str
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

    def delete_path(self, path: str, keep_blob: str | None = None) -> None:
        """Delete every point of `path` except those of blob `keep_blob`."""
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
        """Delete the collection and everything in it."""
        ...

    def close(self) -> None:
        """Release whatever a writer kept open between sessions."""
        ...


@runtime_checkable
class MemoryAware(Protocol):
    """A store that buffers writes in this process (the embedded one) and can hold less."""

    def set_buffer_scale(self, scale: float) -> None:
        """How much of its usual buffer a writer may hold in memory, in (0, 1]; a sync near
        its memory limit lowers it, and the store writes out sooner and drops mapped pages."""
        ...


def point_id(path: str, blob: str, index: int) -> str:
    """A stable id per (path, blob, chunk), so re-writing a batch never duplicates a point."""
    import uuid

    import xxhash

    return str(uuid.UUID(bytes=xxhash.xxh3_128_digest(f"{path}\0{blob}\0{index}".encode())))


def open_store(
    *, url: str | None, api_key: str | None, collection: str, data_dir: Path, lock_timeout: float
) -> VectorStore:
    """The embedded Qdrant Edge shard under data_dir, or a Qdrant server when url is given."""
    if url:
        from gitindex.store.remote import RemoteStore

        return RemoteStore.connect(url, api_key, collection)
    from gitindex.store.embedded import EmbeddedStore

    return EmbeddedStore(data_dir / "qdrant" / collection, collection, lock_timeout)
