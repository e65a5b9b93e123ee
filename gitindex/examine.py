"""What a file is indexed as: its chunks, or the reason it is skipped."""

from __future__ import annotations

from gitindex.chunking import Chunk, TokenCounter, chunk_text
from gitindex.repo import Entry, is_regular, mode_kind
from gitindex.selection import Selector
from gitindex.source import Source


def skip_reason(source: Source, selector: Selector, entry: Entry) -> str | None:
    """Why a file is not indexed, judged without reading it (None: read it)."""
    if not is_regular(entry.mode):
        return mode_kind(entry.mode)
    return selector.by_path(entry.path) or source.skip_reason(entry, selector)


def examine(source: Source, selector: Selector, entry: Entry, counter: TokenCounter,
            budget: int) -> tuple[str | None, list[Chunk]]:
    """The chunks a file is indexed as (at most `budget` tokens each), or the reason it is skipped."""
    reason = skip_reason(source, selector, entry)
    if reason is not None:
        return reason, []
    with source.read(entry) as data:
        reason = selector.by_content(data)
        if reason is not None:
            return reason, []
        text = str(data, "utf-8", errors="replace")  # the one copy: the text that is chunked
    chunks = chunk_text(text, counter, budget)
    return (None, chunks) if chunks else ("empty", [])
