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


# BM25's expected document length, in tokens: chunks are short (a definition, ~400 characters),
# and with the embedder's default of 256 every chunk counted as short, which flattened the length
# normalisation. Measured (benchmarks/lexical_choice.py, four corpora, natural-language MRR@10):
# 256: 0.467, 128: 0.490, 64: 0.511, 32: 0.526, 16: 0.532; identifier queries best at 32-128.
_AVG_LEN = 32


@functools.cache
def _bm25() -> qe.Bm25:
    # English stop words and stemming: natural-language queries ("retries failed uploads")
    # meet the code's words ("retry", "upload"); identifiers are kept whole as well.
    return qe.Bm25(qe.Bm25Config(tokenizer=qe.TokenizerType.Code, language="english", avg_len=_AVG_LEN))


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
    """The names a chunk answers to (`search --symbol`): its symbol's, and those of every
    definition starting in it (the `names` payload field)."""
    return sorted({name for qualified in (symbol, *defines) for name in symbol_names(qualified)})


def defined_names(defines: tuple[str, ...]) -> list[str]:
    """The names of the definitions that start in a chunk, as a query may write them: for
    `Session.send`, session.send and send, but not session (the `defines` payload field, which
    the named-definition ranking of a hybrid search matches: a class's methods do not answer to
    the class's name, nor the later pieces of a long function to the function's)."""
    found: set[str] = set()
    for qualified in defines:
        parts = [p for p in re.split(r"\.|::", qualified.lower()) if p]
        found.update(".".join(parts[i:]) for i in range(len(parts)))
    return sorted(found)


def query_names(text: str) -> list[str]:
    """The identifiers a query names, lower-cased and as qualified as written (`HTTPAdapter`,
    `parse_retry_after`, `Session.send`; a one-word query counts as one), and for a query of two to four plain words
    the name they spell (`http adapter` -> httpadapter, http_adapter): definitions with these
    names are searched first. A longer sentence names nothing: "where do we retry" boosts nothing."""
    words = text.split()
    names: set[str] = set()
    for word in _IDENTIFIER.findall(text):
        if len(words) == 1 or _CODE_LIKE.search(word):
            names.add(word.lower().replace("::", "."))  # Session.send: that method, not every send
    if 2 <= len(words) <= 4 and all(w.isalnum() for w in words):
        spelled = [w.lower() for w in words]
        names.update(("".join(spelled), "_".join(spelled)))
    return sorted(names)[:32]
