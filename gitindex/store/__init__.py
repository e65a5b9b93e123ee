"""The vector store interface, and open_store() to pick the embedded or the server adapter."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

# Payload fields every point carries; `path`, `blob` and `hash` are indexed for filters.
PAYLOAD_FIELDS = (
    "path", "blob", "hash", "start_line", "end_line", "language", "text", "commit", "model", "chunker",
)
INDEXED_FIELDS = ("path", "blob", "hash")


@dataclass(frozen=True, slots=True)
class PointData:
    id: str
    vector: Sequence[float]
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ScoredPayload:
    score: float
    payload: dict[str, Any]


class VectorStore(Protocol):
    """What sync, search and verify need from Qdrant, embedded or server."""

    location: str  # where the points live, for status
    collection: str

    def session(self, write: bool = False) -> contextlib.AbstractContextManager[VectorStore]:
        """Hold the store open (and, embedded, its inter-process lock) for a few calls; writers
        let waiting readers go first."""
        ...

    def exists(self) -> bool: ...

    def upsert(self, points: Sequence[PointData]) -> None:
        """Write points; returns once the store has acknowledged them."""
        ...

    def delete_path(self, path: str, keep_blob: str | None = None) -> None:
        """Delete every point of `path` except those of blob `keep_blob`."""
        ...

    def vectors_for(self, hashes: Sequence[str]) -> dict[str, list[float]]:
        """Vectors already stored for these chunk hashes (any path)."""
        ...

    def query(self, vector: Sequence[float], limit: int, paths: Sequence[str] | None) -> list[ScoredPayload]: ...

    def scroll(self, with_text: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every point's id and payload."""
        ...

    def count(self) -> int: ...

    def drop(self) -> None:
        """Delete the collection and everything in it."""
        ...

    def close(self) -> None:
        """Release whatever a writer kept open between sessions."""
        ...

    def set_buffer_scale(self, scale: float) -> None:
        """How much of its usual buffer a writer may hold in memory, in (0, 1]; a sync near its
        memory limit lowers it. The embedded shard writes segments out sooner and drops the
        pages it has mapped; a server has nothing to do."""
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
