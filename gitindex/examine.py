"""What a file is indexed as: its chunks, or the reason it is skipped."""

from __future__ import annotations

from gitindex.chunking import Chunk, TokenCounter, chunk_text
from gitindex.index import Index
from gitindex.repo import Entry, Target, is_regular, mode_kind


def skip_reason(ix: Index, target: Target | None, entry: Entry) -> str | None:
    """Why a file is not indexed, judged without reading it (None: read it)."""
    sel = ix.selector
    if not is_regular(entry.mode):
        return mode_kind(entry.mode)
    reason = sel.by_path(entry.path)
    if reason is not None:
        return reason
    if ix.repo is None:
        return sel.by_size((ix.root / entry.path).stat().st_size)
    assert target is not None
    return sel.by_size(ix.repo.size(entry.oid)) or sel.by_attributes(ix.repo.attributes(entry.path, target))


def read_file(ix: Index, entry: Entry) -> bytes:
    if ix.repo is not None:
        return ix.repo.read(entry.oid)
    return (ix.root / entry.path).read_bytes()


def examine(ix: Index, target: Target | None, entry: Entry, counter: TokenCounter) -> tuple[str | None, list[Chunk]]:
    """The chunks a file is indexed as, or the reason it is skipped."""
    reason = skip_reason(ix, target, entry)
    if reason is not None:
        return reason, []
    data = read_file(ix, entry)
    reason = ix.selector.by_content(data)
    if reason is not None:
        return reason, []
    chunks = chunk_text(data.decode("utf-8", errors="replace"), counter, ix.spec.budget)
    return (None, chunks) if chunks else ("empty", [])
