"""What a file is indexed as: its chunks, or the reason it is skipped."""

from __future__ import annotations

from gitindex.chunking import Chunk, TokenCounter, chunk_text, language
from gitindex.repo import Entry, is_regular, mode_kind
from gitindex.selection import Selector
from gitindex.source import Source


def skip_reason(source: Source, selector: Selector, entry: Entry) -> str | None:
    """Why a file is not indexed, judged without reading it (None: read it)."""
    if not is_regular(entry.mode):
        return mode_kind(entry.mode)
    return selector.by_path(entry.path) or source.skip_reason(entry, selector)


def chunk(path: str, text: str, counter: TokenCounter, budget: int, syntax: bool) -> list[Chunk]:
    """A file's chunks: along its definitions where a grammar fits and it parses (`syntax`),
    else on line boundaries."""
    if syntax:
        from gitindex.syntax import SUPPORTED, chunk_syntax

        lang = language(path)
        if lang in SUPPORTED:
            chunks = chunk_syntax(text, lang, counter, budget)
            if chunks is not None:
                return chunks
    return chunk_text(text, counter, budget)


def examine(source: Source, selector: Selector, entry: Entry, counter: TokenCounter,
            budget: int, syntax: bool = True) -> tuple[str | None, list[Chunk]]:
    """The chunks a file is indexed as (at most `budget` tokens each), or the reason it is skipped."""
    reason = skip_reason(source, selector, entry)
    if reason is not None:
        return reason, []
    with source.read(entry) as data:
        reason = selector.by_content(data)
        if reason is not None:
            return reason, []
        text = str(data, "utf-8", errors="replace")  # the one copy: the text that is chunked
    chunks = chunk(entry.path, text, counter, budget, syntax)
    return (None, chunks) if chunks else ("empty", [])
