"""A Qdrant server or cluster through qdrant-client, for a team sharing one index."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from gitindex.errors import StoreError
from gitindex.store import (
    DENSE,
    HNSW_EF,
    IDS_PAGE,
    INDEXED_FIELDS,
    LAYOUT,
    LEXICAL,
    REFS,
    REPO,
    SCROLL_FIELDS,
    Condition,
    Match,
    PointData,
    Query,
    ScoredPayload,
    Sparse,
    build_filter,
    kept_blobs,
    scoped,
)
from gitindex.store.paging import PAGE, pages, vectors_by_hash
from gitindex.store.transport import BUDGET, TIMEOUT, failure_message, with_retries

# A graph walk over the int8 copies, then the best candidates rescored with the original vectors.
SEARCH = models.SearchParams(hnsw_ef=HNSW_EF, quantization=models.QuantizationSearchParams(rescore=True, oversampling=2.0))


class RemoteStore:
    """One collection on a Qdrant server; created on the first write."""

    count_is_cheap = True

    def __init__(self, client: QdrantClient, collection: str, location: str) -> None:
        self.client = client
        self.collection = collection
        self.location = location
        self.repo = ""  # open_store() names the repository
        self._exists: bool | None = None
        self._size_checked = False
        self._alias: str | None = None  # during a blue/green rebuild: the name searchers use

    @classmethod
    def connect(cls, url: str, api_key: str | None, collection: str, *,
                budget: float = BUDGET, timeout: float = TIMEOUT) -> RemoteStore:
        """`budget`: seconds one call may spend retrying transient failures; `timeout`: one try's."""
        # The key is passed to the client only; it never appears in messages or payloads.
        client = QdrantClient(url=url, api_key=api_key, timeout=math.ceil(timeout))
        return cls(with_retries(client, url, budget=budget, timeout=timeout), collection, url)

    @contextlib.contextmanager
    def _failures(self) -> Iterator[None]:
        """A server that is down or refuses us is an expected failure, not a bug."""
        try:
            yield
        except (ResponseHandlingException, UnexpectedResponse, ConnectionError) as exc:
            raise StoreError(failure_message(exc, self.location, self.collection)) from None

    @contextlib.contextmanager
    def session(self, write: bool = False) -> Iterator[RemoteStore]:
        with self._failures():
            yield self

    def exists(self) -> bool:
        # Called outside sessions too (sync, search, status and verify ask it first).
        if self._exists is None:
            with self._failures():
                self._exists = self.client.collection_exists(self.collection)
        return self._exists

    def _ensure(self, dim: int) -> None:
        if self.exists():
            self._check_size(dim)
            return
        # What a large shared index needs: original vectors and payload on disk, an HNSW graph,
        # and int8 copies of the vectors in RAM for the graph walk (searches rescore with the
        # originals, SEARCH): a server holds a quarter of the vectors' size in memory.
        alias = None if self._alias is not None else self.collection
        if alias is not None:  # searchers use an alias, so that a rebuild can switch it atomically
            self.collection = _physical(alias)
        self.client.create_collection(
            self.collection,
            vectors_config={DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE, on_disk=True)},
            sparse_vectors_config={LEXICAL: models.SparseVectorParams(
                modifier=models.Modifier.IDF, index=models.SparseIndexParams(on_disk=True))},
            on_disk_payload=True,
            hnsw_config=models.HnswConfigDiff(m=16, ef_construct=100),
            quantization_config=models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(
                type=models.ScalarType.INT8, quantile=0.99, always_ram=True)),
        )
        for name in INDEXED_FIELDS:  # the repository key is a tenant: its points are kept together
            schema: Any = (models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
                           if name == REPO else models.PayloadSchemaType.KEYWORD)
            self.client.create_payload_index(self.collection, name, schema, wait=True)
        if alias is not None:
            self.client.update_collection_aliases(change_aliases_operations=[models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=self.collection, alias_name=alias))])
            self.collection = alias
        self._exists = True
        self._size_checked = True

    def _check_size(self, dim: int) -> None:
        """A collection made for another model's vectors is never written to."""
        if self._size_checked:
            return
        vectors = self.client.get_collection(self.collection).config.params.vectors
        size = vectors[DENSE].size if isinstance(vectors, dict) and DENSE in vectors else None
        if size != dim:
            from gitindex.errors import IndexMismatchError

            held = f"vectors of size {size}" if size is not None else "no vector named 'dense'"
            raise IndexMismatchError(
                f"collection {self.collection!r} on {self.location} holds {held}, and this model makes "
                f"vectors of size {dim}: choose another collection (--collection) or the model that "
                "built it (--model); nothing was written to it")
        self._size_checked = True

    def upsert(self, points: Sequence[PointData]) -> None:
        if not points:
            return
        self._ensure(len(points[0].vectors[DENSE]))
        self.client.upsert(
            self.collection,
            points=[models.PointStruct(id=p.id, payload=p.payload,
                                       vector={name: _vector(v) for name, v in p.vectors.items()})
                    for p in points],
            wait=True,
        )

    def delete_path(self, path: str, keep_blob: str | Sequence[str] | None = None) -> None:
        if not self.exists():
            return
        these = _filter(scoped(self.repo, [Match("path", (path,))]), unless=kept_blobs(keep_blob))
        assert these is not None
        self.client.delete(self.collection, points_selector=models.FilterSelector(filter=these), wait=True)

    def set_refs(self, refs: Sequence[str], ids: Sequence[str] | None = None) -> None:
        if not self.exists():
            return
        payload = {REFS: sorted(refs)}
        if ids is None:
            selector: Any = models.FilterSelector(filter=_filter(scoped(self.repo)) or models.Filter())
            with self._failures():
                self.client.set_payload(self.collection, payload=payload, points=selector, wait=True)
            return
        for i in range(0, len(ids), IDS_PAGE):
            with self._failures():
                self.client.set_payload(self.collection, payload=payload, points=list(ids[i:i + IDS_PAGE]), wait=True)

    def layout(self) -> str | None:
        if not self.exists():
            return None
        with self._failures():
            params = self.client.get_collection(self.collection).config.params
        if not isinstance(params.vectors, dict) or DENSE not in params.vectors:
            return "1"
        return LAYOUT if LEXICAL in (params.sparse_vectors or {}) else "2"

    def vectors_for(self, hashes: Sequence[str]) -> dict[str, list[float]]:
        if not hashes or not self.exists():
            return {}
        return vectors_by_hash(hashes, lambda part, offset: self.client.scroll(
            self.collection, limit=PAGE, offset=offset, with_payload=["hash"], with_vectors=[DENSE],
            scroll_filter=models.Filter(must=[models.FieldCondition(key="hash", match=models.MatchAny(any=part))]),
        ))

    def query(self, query: Query) -> list[ScoredPayload]:
        rankings = query.rankings()
        if not self.exists() or not rankings:
            return []
        mine = _filter(scoped(self.repo))  # BM25's IDF over this repository's points only
        params = {DENSE: SEARCH,
                  LEXICAL: models.SearchParams(idf=models.IdfCorpusParams(corpus=mine)) if mine is not None else None}
        page = {"limit": query.limit, "offset": query.offset or None, "with_payload": True}
        if query.mode == "hybrid":
            stages = [models.Prefetch(query=_vector(r.vector), using=r.using, limit=query.candidates,
                                      filter=_filter(scoped(self.repo, r.where)), params=params[r.using])
                      for r in rankings]
            fusion = models.RrfQuery(rrf=models.Rrf(k=query.rrf_k, weights=[r.weight for r in rankings]))
            result = self.client.query_points(self.collection, prefetch=stages, query=fusion, **page)  # type: ignore[arg-type]
        else:
            (only,) = rankings
            result = self.client.query_points(self.collection, query=_vector(only.vector), using=only.using,
                                              query_filter=_filter(scoped(self.repo, only.where)),
                                              search_params=params[only.using],
                                              **page)  # type: ignore[arg-type]
        return [ScoredPayload(p.score, dict(p.payload or {})) for p in result.points]

    def scroll(self, fields: Sequence[str] | None = SCROLL_FIELDS) -> Iterator[tuple[str, dict[str, Any]]]:
        if not self.exists():
            return
        wanted: Any = True if fields is None else list(fields)
        mine = _filter(scoped(self.repo))
        for record in pages(lambda offset: self.client.scroll(
                self.collection, limit=PAGE, offset=offset, with_payload=wanted, with_vectors=False,
                scroll_filter=mine)):
            yield str(record.id), dict(record.payload or {})

    def count(self) -> int:
        if not self.exists():
            return 0
        return self.client.count(self.collection, count_filter=_filter(scoped(self.repo)), exact=True).count

    def drop(self) -> None:
        """Delete this repository's points; the collection too once no other repository has any."""
        if not self.exists():
            return
        if self.repo:
            mine = _filter(scoped(self.repo))
            assert mine is not None
            self.client.delete(self.collection, points_selector=models.FilterSelector(filter=mine), wait=True)
            if self.client.count(self.collection, exact=True).count:
                return
        behind = self._behind(self.collection)
        if behind not in (None, self.collection):
            self.client.update_collection_aliases(change_aliases_operations=[
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=self.collection))])
        if behind is not None:
            self.client.delete_collection(behind)
        self._exists = False

    def begin_rebuild(self) -> str | None:
        if self._alias is not None:  # a rebuild under way (resumed): start it over, same name
            with self._failures():
                if self.client.collection_exists(self.collection):
                    self.client.delete_collection(self.collection)
            self._exists, self._size_checked = False, False
            return self.collection
        if self.exists() and self.client.count(self.collection, exact=True).count > self.count():
            self.drop()  # other repositories' points live here too: only this one's are rebuilt, in place
            return None
        physical = _physical(self.collection)
        self.resume_rebuild(physical)
        return physical

    def resume_rebuild(self, name: str) -> None:
        if self._alias is None:
            self._alias, self.collection = self.collection, name
            self._exists, self._size_checked = None, False

    def finish_rebuild(self) -> None:
        """Point the alias searchers use at the rebuilt collection, in one atomic update, and
        delete the old one. A collection made before aliases is deleted first (once: a moment
        in which the name answers nothing)."""
        if self._alias is None:
            return
        alias, physical = self._alias, self.collection
        with self._failures():
            old = self._behind(alias)
            switch: list[Any] = []
            if old == alias:
                self.client.delete_collection(alias)
            elif old is not None:
                switch.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
            switch.append(models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=physical, alias_name=alias)))
            self.client.update_collection_aliases(change_aliases_operations=switch)
            if old not in (None, alias):
                self.client.delete_collection(old)
        self.collection, self._alias, self._exists = alias, None, None

    def _behind(self, name: str) -> str | None:
        """The collection `name` stands for: itself, the one its alias points to, or None."""
        for alias in self.client.get_aliases().aliases:
            if alias.alias_name == name:
                return alias.collection_name
        return name if self.client.collection_exists(name) else None

    def close(self) -> None:
        """Nothing is kept open between sessions."""

    def looks_sound(self) -> bool:
        """A server's files are not ours to inspect: whatever fails is reported when it fails."""
        return True

    def set_aside(self) -> Path | None:
        """A server's collection is not ours to move (other clients may use it): None, and the
        failure that asked for it is reported as it is."""
        return None


def _physical(name: str) -> str:
    """A new collection's own name; searchers reach it through the alias `name`."""
    import uuid

    return f"{name}-{uuid.uuid4().hex[:8]}"


def _vector(vector: Sequence[float] | Sparse) -> list[float] | models.SparseVector:
    if isinstance(vector, Sparse):
        return models.SparseVector(indices=vector.indices, values=vector.values)
    return [float(x) for x in vector]


def _filter(where: Sequence[Condition], unless: Sequence[Match] = ()) -> models.Filter | None:
    """Points where every `where` condition holds and no `unless` one does (None: all points)."""
    def match(field: str, values: list[str]) -> Any:
        return models.FieldCondition(key=field, match=models.MatchAny(any=values))

    found: models.Filter | None = build_filter(where, unless, match, models.Filter)
    return found
