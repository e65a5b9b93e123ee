"""The search-quality peer: LangChain's code splitter, ranked exactly in numpy by the same model and by BM25.

Chunks: `RecursiveCharacterTextSplitter.from_language(Language.PYTHON / Language.JS,
chunk_size=1000, chunk_overlap=0, add_start_index=True)`; each chunk's start offset gives its
lines. Dense: gitindex's own embedder (same model, same backend), cosine over all chunks.
BM25: qdrant_edge.Bm25 with Bm25Config(tokenizer=TokenizerType.Code) (English stemming and stop
words, k=1.2, b=0.75, as gitindex's lexical side uses) for the documents' term weights, the
IDF (Qdrant's formula, over the peer's chunks) applied here. `langchain-text-splitters` is a
benchmark-only requirement (`pip install langchain-text-splitters`), not a gitindex dependency.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

CHUNK_SIZE = 1000
_LANGUAGES = {".py": "PYTHON", ".js": "JS"}


@dataclass(frozen=True)
class PeerChunk:
    path: str
    start_line: int
    end_line: int
    text: str


def split(files: dict[str, str]) -> list[PeerChunk]:
    """The peer's chunks of every file, with their line ranges. Raises ImportError when
    langchain-text-splitters is not installed."""
    from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

    splitters = {suffix: RecursiveCharacterTextSplitter.from_language(
        Language[name], chunk_size=CHUNK_SIZE, chunk_overlap=0, add_start_index=True)
        for suffix, name in _LANGUAGES.items()}
    chunks = []
    for path, text in sorted(files.items()):
        splitter = splitters.get(path[path.rfind("."):])
        if splitter is None:
            continue
        for doc in splitter.create_documents([text]):
            start = int(doc.metadata["start_index"])
            first = text.count("\n", 0, start) + 1
            body = doc.page_content
            chunks.append(PeerChunk(path, first, first + body.rstrip("\n").count("\n"), body))
    return chunks


class PeerIndex:
    """Exact dense and BM25 rankings over the peer's chunks."""

    def __init__(self, chunks: list[PeerChunk], embedder: Any, batch: int = 64) -> None:
        self.chunks = chunks
        self.embedder = embedder
        texts = [c.text for c in chunks]
        parts = [np.asarray(embedder.embed(texts[i : i + batch]), dtype=np.float32)
                 for i in range(0, len(texts), batch)]
        self.vectors = np.vstack(parts) if parts else np.zeros((0, 384), np.float32)
        self.vectors /= np.maximum(np.linalg.norm(self.vectors, axis=1, keepdims=True), 1e-12)
        import qdrant_edge as qe

        self._bm25 = qe.Bm25(qe.Bm25Config(tokenizer=qe.TokenizerType.Code))
        self._postings: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        rows: dict[int, tuple[list[int], list[float]]] = {}
        for i, text in enumerate(texts):
            v = self._bm25.embed_document(text)
            for term, weight in zip(v.indices, v.values, strict=True):
                docs, weights = rows.setdefault(term, ([], []))
                docs.append(i)
                weights.append(weight)
        n = len(texts)
        for term, (docs, weights) in rows.items():
            idf = math.log((n - len(docs) + 0.5) / (len(docs) + 0.5) + 1)  # Qdrant's IDF modifier
            self._postings[term] = (np.asarray(docs), np.asarray(weights, dtype=np.float64) * idf)

    def dense(self, queries: Sequence[str], limit: int = 10) -> list[list[int]]:
        """Chunk numbers, best first, for each query, by cosine."""
        q = np.asarray(self.embedder.embed(list(queries)), dtype=np.float32)
        q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        scores = q @ self.vectors.T
        return [_top(row, limit) for row in scores]

    def bm25(self, queries: Sequence[str], limit: int = 10) -> list[list[int]]:
        """Chunk numbers, best first, for each query, by BM25 (chunks without a query word are not ranked)."""
        out = []
        for text in queries:
            scores = np.zeros(len(self.chunks))
            for term in set(self._bm25.embed_query(text).indices):
                if term in self._postings:
                    docs, weights = self._postings[term]
                    scores[docs] += weights
            out.append([i for i in _top(scores, limit) if scores[i] > 0])
        return out


def _top(scores: np.ndarray, limit: int) -> list[int]:
    if len(scores) <= limit:
        return [int(i) for i in np.argsort(-scores, kind="stable")]
    part = np.argpartition(-scores, limit)[:limit]
    return [int(i) for i in part[np.argsort(-scores[part], kind="stable")]]


def rrf(rankings: Sequence[list[int]], k: int = 60, limit: int = 10) -> list[int]:
    """Reciprocal rank fusion of several rankings (as Qdrant's Fusion.Rrf, equal weights)."""
    score: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            score[item] = score.get(item, 0.0) + 1.0 / (k + rank + 1)
    return sorted(score, key=lambda i: (-score[i], i))[:limit]
