"""What a file is indexed as: its chunks, or the reason it is skipped."""

from __future__ import annotations

import contextlib
import mmap
from collections.abc import Iterator

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


@contextlib.contextmanager
def opened(ix: Index, entry: Entry) -> Iterator[bytes | mmap.mmap]:
    """A file's content: a blob straight from the object database, or a file on disk mapped
    into memory (read in place, not copied into the process). A file truncated by another
    process while mapped would end this one with SIGBUS; the window is the few milliseconds a
    file of at most max_file_size takes to check and decode, and editors replace files rather
    than truncate them (a replaced file's old pages stay valid)."""
    if ix.repo is not None:
        yield ix.repo.read(entry.oid)
        return
    with open(ix.root / entry.path, "rb") as f:
        try:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            yield b""
            return
        with mapped:
            yield mapped


def examine(ix: Index, target: Target | None, entry: Entry, counter: TokenCounter) -> tuple[str | None, list[Chunk]]:
    """The chunks a file is indexed as, or the reason it is skipped."""
    reason = skip_reason(ix, target, entry)
    if reason is not None:
        return reason, []
    with opened(ix, entry) as data:
        reason = ix.selector.by_content(data)
        if reason is not None:
            return reason, []
        text = str(data, "utf-8", errors="replace")  # the one copy: the text that is chunked
    chunks = chunk_text(text, counter, ix.spec.budget)
    return (None, chunks) if chunks else ("empty", [])
