"""A plain directory as a tree: files hashed the way git hashes blobs, .gitignore honoured."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

import pathspec
import pygit2

from gitindex.repo import Entry

_SKIP_DIRS = {".git", ".gitindex", ".hg", ".svn"}


def scan(root: Path, known: Mapping[str, tuple[str, int, int, int]]) -> Iterator[tuple[Entry, int, int]]:
    """Yield (entry, size, mtime_ns) for every file not ignored; a file whose size and mtime
    match `known` keeps its recorded blob id without being read again."""
    yield from _scan(root, "", [], known)


def _scan(
    root: Path, prefix: str, specs: list[tuple[str, pathspec.GitIgnoreSpec]],
    known: Mapping[str, tuple[str, int, int, int]],
) -> Iterator[tuple[Entry, int, int]]:
    here = root / prefix if prefix else root
    ignore = here / ".gitignore"
    if ignore.is_file():
        lines = ignore.read_text(encoding="utf-8", errors="replace").splitlines()
        specs = [*specs, (prefix, pathspec.GitIgnoreSpec.from_lines(lines))]
    try:
        entries = sorted(os.scandir(here), key=lambda e: e.name)
    except OSError:
        return
    for item in entries:
        path = prefix + item.name
        is_dir = item.is_dir(follow_symlinks=False)
        if is_dir and item.name in _SKIP_DIRS:
            continue
        if _ignored(path + ("/" if is_dir else ""), specs):
            continue
        if is_dir:
            yield from _scan(root, path + "/", specs, known)
            continue
        st = item.stat(follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(item.path).encode()
            yield Entry(path, str(pygit2.hash(target)), 0o120000), len(target), st.st_mtime_ns
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        mode = 0o100755 if st.st_mode & stat.S_IXUSR else 0o100644
        prev = known.get(path)
        if prev is not None and prev[2] == st.st_size and prev[3] == st.st_mtime_ns:
            oid = prev[0]
        else:
            oid = str(pygit2.hashfile(item.path))
        yield Entry(path, oid, mode), st.st_size, st.st_mtime_ns


def _ignored(path: str, specs: list[tuple[str, pathspec.GitIgnoreSpec]]) -> bool:
    ignored = False
    for base, spec in specs:
        if path.startswith(base):
            result = spec.check_file(path[len(base) :])
            if result.include is not None:
                ignored = result.include
    return ignored
