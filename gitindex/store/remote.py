"""A Qdrant server or cluster through qdrant-client, for a team sharing one index."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from gitindex.errors import StoreError
from gitindex.store import INDEXED_FIELDS, PointData, ScoredPayload

_PAGE = 1000


class RemoteStore:
    """One collection on a Qdrant server; created on the first write."""

    def __init__(self, client: QdrantClient, collection: str, location: str) -> None:
        self.client = client
        self.collection = collection
        self.location = location
        self._exists: bool | None = None

    @classmethod
    def connect(cls, url: str, api_key: str | None, collection: str) -> RemoteStore:
        # The key is passed to the client only; it never appears in messages or payloads.
        return cls(QdrantClient(url=url, api_key=api_key, timeout=60), collection, url)

    @contextlib.contextmanager
    def _failures(self) -> Iterator[None]:
        """A server that is down or refuses us is an expected failure, not a bug."""
        try:
            yield
        except (ResponseHandlingException, UnexpectedResponse, ConnectionError) as exc:
            raise StoreError(f"Qdrant at {self.location} failed: {exc}") from None

    @contextlib.contextmanager
    def session(self, write: bool = False) -> Iterator[RemoteStore]:
        with self._failures():
            yield self

    def set_buffer_scale(self, scale: float) -> None:
        pass  # nothing is buffered here: each write is a request the server acknowledges

    def exists(self) -> bool:
        # Called outside sessions too (sync, search, status and verify ask it first).
        if self._exists is None:
            with self._failures():
                self._exists = self.client.collection_exists(self.collection)
        return self._exists

    def _ensure(self, dim: int) -> None:
        if self.exists():
            return
        self.client.create_collection(
            self.collection,
            vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
        )
        for name in INDEXED_FIELDS:
            self.client.create_payload_index(
                self.collection, name, models.PayloadSchemaType.KEYWORD, wait=True
            )
        self._exists = True

    def upsert(self, points: Sequence[PointData]) -> None:
        if not points:
            return
        self._ensure(len(points[0].vector))
        self.client.upsert(
            self.collection,
            points=[models.PointStruct(id=p.id, vector=[float(x) for x in p.vector], payload=p.payload)
                    for p in points],
            wait=True,
        )

    def delete_path(self, path: str, keep_blob: str | None = None) -> None:
        if not self.exists():
            return
        keep: list[Any] | None = (
            [models.FieldCondition(key="blob", match=models.MatchValue(value=keep_blob))] if keep_blob else None
        )
        flt = models.Filter(
            must=[models.FieldCondition(key="path", match=models.MatchValue(value=path))], must_not=keep
        )
        self.client.delete(self.collection, points_selector=models.FilterSelector(filter=flt), wait=True)

    def vectors_for(self, hashes: Sequence[str]) -> dict[str, list[float]]:
        found: dict[str, list[float]] = {}
        if not hashes or not self.exists():
            return found
        wanted = list(dict.fromkeys(hashes))
        for i in range(0, len(wanted), _PAGE):
            flt = models.Filter(must=[models.FieldCondition(key="hash", match=models.MatchAny(any=wanted[i : i + _PAGE]))])
            offset: Any = None
            while True:
                records, offset = self.client.scroll(
                    self.collection, scroll_filter=flt, limit=_PAGE, offset=offset,
                    with_payload=["hash"], with_vectors=True,
                )
                for rec in records:
                    if rec.payload and isinstance(rec.vector, list):
                        found.setdefault(rec.payload["hash"], rec.vector)  # type: ignore[arg-type]
                if offset is None:
                    break
        return found

    def query(self, vector: Sequence[float], limit: int, paths: Sequence[str] | None) -> list[ScoredPayload]:
        if not self.exists():
            return []
        flt = (models.Filter(must=[models.FieldCondition(key="path", match=models.MatchAny(any=list(paths)))])
               if paths is not None else None)
        result = self.client.query_points(
            self.collection, query=[float(x) for x in vector], limit=limit, query_filter=flt, with_payload=True
        )
        return [ScoredPayload(p.score, dict(p.payload or {})) for p in result.points]

    def scroll(self, with_text: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
        if not self.exists():
            return
        fields: Any = True if with_text else ["path", "blob", "hash", "start_line", "end_line", "commit", "model", "chunker"]
        offset: Any = None
        while True:
            records, offset = self.client.scroll(
                self.collection, limit=_PAGE, offset=offset, with_payload=fields, with_vectors=False
            )
            for rec in records:
                yield str(rec.id), dict(rec.payload or {})
            if offset is None:
                return

    def count(self) -> int:
        return self.client.count(self.collection, exact=True).count if self.exists() else 0

    def drop(self) -> None:
        if self.exists():
            self.client.delete_collection(self.collection)
        self._exists = False

    def close(self) -> None:
        """Nothing is kept open between sessions."""
