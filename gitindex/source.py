"""What a sync indexes: a git tree, or a plain directory's files on disk, behind one interface."""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol

from gitindex.repo import Change, Entry, Repo, Target, os_path, text_path
from gitindex.selection import Selector

DirState = Mapping[str, tuple[str, int, int, int]]  # path -> (blob id, mode, size, mtime_ns)


class Source(Protocol):
    """A tree of files to index, and how it differs from what the last completed run indexed."""

    label: str  # what to show the user: a short commit id, "staged" or "directory"
    commit: str | None  # the commit indexed (None: the staged tree, or a plain directory)
    tree: str | None  # the git tree indexed (None: a plain directory)

    def entries(self) -> Iterator[Entry]:
        """Every file, in a stable order."""
        ...

    def entry(self, path: str) -> Entry | None:
        """One file, or None when the source does not have it."""
        ...

    def changes(self) -> Iterator[Change] | None:
        """What differs from the state the last completed run indexed (the baseline); None
        when there is no baseline to compare with, and every file must be looked at."""
        ...

    def count(self) -> int | None:
        """How many files entries() yields, when that is cheap to know (for progress)."""
        ...

    def skip_reason(self, entry: Entry, selector: Selector) -> str | None:
        """Why the file is not indexed, judged by its size and attributes without reading it."""
        ...

    def read(self, entry: Entry) -> contextlib.AbstractContextManager[bytes | mmap.mmap]:
        """The file's content."""
        ...

    def snapshot(self) -> list[tuple[str, str, int, int, int]] | None:
        """What the next run's baseline is, beyond the tree id (a directory's file stats)."""
        ...


class GitSource:
    """A commit's tree, or the staged tree; the baseline is the tree the last completed run indexed."""

    def __init__(self, repo: Repo, target: Target, baseline: str | None) -> None:
        self.repo = repo
        self.target = target
        self.label = target.label
        self.commit = target.commit
        self.tree: str | None = target.tree
        self._baseline = baseline

    def entries(self) -> Iterator[Entry]:
        return self.repo.walk(self.target.tree)

    def entry(self, path: str) -> Entry | None:
        return self.repo.entry(self.target.tree, path)

    def changes(self) -> Iterator[Change] | None:
        base = self._baseline
        if base is None or base not in self.repo.git:  # never synced, or history rewritten or gc'd
            return None
        return self.repo.diff_trees(base, self.target.tree)

    def count(self) -> int | None:
        return sum(1 for _ in self.repo.walk(self.target.tree))  # 4 ms for 2k files

    def skip_reason(self, entry: Entry, selector: Selector) -> str | None:
        return selector.by_size(self.repo.size(entry.oid)) or \
            selector.by_attributes(self.repo.attributes(entry.path, self.target))

    @contextlib.contextmanager
    def read(self, entry: Entry) -> Iterator[bytes | mmap.mmap]:
        yield self.repo.read(entry.oid)  # straight from the object database

    def snapshot(self) -> None:
        return None


class DirectorySource:
    """A plain directory's files, hashed as git hashes blobs, .gitignore honoured; the baseline
    is the file list the last completed run saw (a file whose size and mtime did not change
    keeps its blob id without being read again)."""

    label = "directory"
    commit: str | None = None
    tree: str | None = None

    def __init__(self, root: Path, baseline: DirState) -> None:
        self.root = root
        self._baseline = baseline
        self._scanned: dict[str, tuple[str, int, int, int]] | None = None

    def _scan(self) -> Iterator[Entry]:
        from gitindex.directory import scan

        # scan() walks with os (undecodable bytes as surrogates); paths here are repo.text_path()'s.
        known = {os_path(path): row for path, row in self._baseline.items()}
        seen: dict[str, tuple[str, int, int, int]] = {}
        for entry, size, mtime in scan(self.root, known):
            entry = entry._replace(path=text_path(os.fsencode(entry.path)))
            seen[entry.path] = (entry.oid, entry.mode, size, mtime)
            yield entry
        self._scanned = seen

    def entries(self) -> Iterator[Entry]:
        return self._scan()

    def entry(self, path: str) -> Entry | None:
        if self._scanned is None:
            for _ in self._scan():
                pass
        assert self._scanned is not None
        found = self._scanned.get(path)
        return Entry(path, found[0], found[1]) if found else None

    def changes(self) -> Iterator[Change] | None:
        if not self._baseline:
            return None
        return self._changes()

    def _changes(self) -> Iterator[Change]:
        known = self._baseline
        for entry in self._scan():
            prev = known.get(entry.path)
            if prev is None:
                yield Change("A", None, entry)
            elif (prev[0], prev[1]) != (entry.oid, entry.mode):
                yield Change("M", Entry(entry.path, prev[0], prev[1]), entry)
        assert self._scanned is not None
        for path in sorted(set(known) - set(self._scanned)):
            yield Change("D", Entry(path, known[path][0], known[path][1]), None)

    def count(self) -> int | None:
        return None  # counting would mean walking the directory twice

    def skip_reason(self, entry: Entry, selector: Selector) -> str | None:
        return selector.by_size((self.root / os_path(entry.path)).stat().st_size)

    @contextlib.contextmanager
    def read(self, entry: Entry) -> Iterator[bytes | mmap.mmap]:
        """The file mapped into memory (read in place, not copied into the process). A file
        truncated by another process while mapped would end this one with SIGBUS; the window
        is the few milliseconds a file of at most max_file_size takes to check and decode, and
        editors replace files rather than truncate them (a replaced file's old pages stay valid)."""
        with open(self.root / os_path(entry.path), "rb") as f:
            try:
                mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except ValueError:  # an empty file cannot be mapped
                yield b""
                return
            with mapped:
                yield mapped

    def snapshot(self) -> list[tuple[str, str, int, int, int]] | None:
        if self._scanned is None:
            return None
        return [(path, *row) for path, row in self._scanned.items()]
