"""The indexed text of a file: what search hits point into, as of the last sync."""

from __future__ import annotations

from gitindex.chunking import split_lines
from gitindex.errors import NotIndexedError
from gitindex.workspace import Workspace


def indexed_lines(ws: Workspace, path: str) -> list[str]:
    """The lines (newlines kept) of `path` as indexed: its blob at the synced tree in a git
    repository, the file on disk in a plain directory. Raises NotIndexedError for a path the
    index does not hold."""
    indexed = ws.manifest.file(path)
    if indexed is None or indexed.blob is None:
        raise NotIndexedError(f"{path!r} is not in the index (a path relative to {ws.root}, as search prints it)")
    if ws.repo is not None:
        data = ws.repo.read(indexed.blob)
    else:
        target = (ws.root / path).resolve()
        if not target.is_relative_to(ws.root.resolve()) or not target.is_file():
            raise NotIndexedError(f"{path!r} is no longer on disk under {ws.root}")
        data = target.read_bytes()
    return split_lines(str(data, "utf-8", errors="replace"))
