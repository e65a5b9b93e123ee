"""The lexical side of the index: a BM25 sparse vector per point, and the names it defines.

Each point's words (its path, the qualified name of the definition it holds and its text) are
turned into a sparse vector by Qdrant's own BM25 embedder (qdrant_edge.Bm25, with Qdrant's
`code` tokenizer: `getUserId` and `parse_retry_after` are both indexed whole and split into
words). The store keeps it beside the dense vector with the IDF modifier, so the server and
the embedded shard rank words the same way; nothing is downloaded. Chosen over Qdrant's
full-text index with BM25 scoring (README: Search) because the path and symbol can be part of
the document without a second copy of the text in the payload, and IDF can later be scoped by
a filter (several repositories in one collection).
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

from gitindex.lazy import lazy_module
from gitindex.store import Sparse

if TYPE_CHECKING:
    import qdrant_edge as qe
else:
    qe = lazy_module("qdrant_edge")

# Bumped with store.LAYOUT whenever the words of a document or the tokenizer change: the
# stored vectors must have been made the way queries are.
_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*(?:(?:\.|::)[A-Za-z_$][\w$]*)*")
_CODE_LIKE = re.compile(r"_|\.|::|\d|[a-z][A-Z]|[A-Z]{2,}[a-z]")  # snake_case, a.b, camelCase, HTTPAdapter


@functools.cache
def _bm25() -> qe.Bm25:
    # English stop words and stemming: natural-language queries ("retries failed uploads")
    # meet the code's words ("retry", "upload"); identifiers are kept whole as well.
    return qe.Bm25(qe.Bm25Config(tokenizer=qe.TokenizerType.Code, language="english"))


def document(path: str, symbol: str, text: str) -> Sparse:
    """A point's lexical vector: BM25 term weights of its path, symbol and (embedded) text."""
    vector = _bm25().embed_document(f"{path}\n{symbol}\n{text}")
    return Sparse(list(vector.indices), list(vector.values))


def query(text: str) -> Sparse:
    """A query's lexical vector: each distinct word weighs 1 (IDF is applied by the store)."""
    vector = _bm25().embed_query(text)
    return Sparse(list(vector.indices), list(vector.values))


def symbol_names(symbol: str) -> list[str]:
    """What a definition answers to, lower-cased: `HTTPAdapter.send` -> httpadapter.send,
    httpadapter, send. Kept in the `names` payload field (a keyword index)."""
    if not symbol:
        return []
    parts = [p for p in re.split(r"\.|::", symbol.lower()) if p]
    names = {".".join(parts[i:]) for i in range(len(parts))} | set(parts)
    return sorted(names)


def chunk_names(symbol: str, defines: tuple[str, ...]) -> list[str]:
    """The names a chunk answers to: its symbol's, and those of every definition starting in it."""
    return sorted({name for qualified in (symbol, *defines) for name in symbol_names(qualified)})


def query_names(text: str) -> list[str]:
    """The identifiers a query names, lower-cased (`HTTPAdapter`, `parse_retry_after`,
    `Session.send`; a one-word query counts as one): definitions with these names are searched
    first. Plain words in a sentence are not names: "where do we retry" boosts nothing."""
    found = _IDENTIFIER.findall(text)
    single = len(text.split()) == 1
    names: list[str] = []
    for word in found:
        if single or _CODE_LIKE.search(word):
            dotted = re.sub(r"::", ".", word.lower())
            names.append(dotted)
            names.append(dotted.rsplit(".", 1)[-1])
    return sorted(set(names))[:32]
