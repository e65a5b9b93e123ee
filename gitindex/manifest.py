"""What has been indexed: path -> blob id, each blob's chunks, the last synced tree (sqlite)."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from gitindex.chunking import Chunk
from gitindex.errors import GitindexError

# Each entry moves the schema one version up; never edit one that has shipped.
_MIGRATIONS = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE files (
        path TEXT PRIMARY KEY, blob TEXT NOT NULL, mode INTEGER NOT NULL, chunks INTEGER NOT NULL
    );
    CREATE INDEX files_blob ON files (blob);
    CREATE TABLE chunks (
        blob TEXT NOT NULL, idx INTEGER NOT NULL, start_line INTEGER NOT NULL,
        end_line INTEGER NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (blob, idx)
    );
    CREATE TABLE dirty (path TEXT PRIMARY KEY);
    CREATE TABLE dir_state (
        path TEXT PRIMARY KEY, blob TEXT NOT NULL, mode INTEGER NOT NULL,
        size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL
    );
    """,
    # Paths recorded since the last completed run: an interrupted run may have indexed them at
    # a target the next run no longer diffs against, so the next plan compares them too.
    """
    CREATE TABLE touched (path TEXT PRIMARY KEY);
    """,
)

# Keys of the meta table.
MODEL, CHUNKER, STORE, COLLECTION, SELECTION = "model", "chunker", "store", "collection", "selection"
LAYOUT = "layout"  # the store layout the points were written in (store.LAYOUT); absent: "1"
SYNCED_TREE, SYNCED_COMMIT, LAST_RUN = "synced_tree", "synced_commit", "last_run"
STORE_POINTS = "store_points"  # the store's point count when a sync last wrote to it
REPO_KEY = "repo_key"  # the repository key the points were written under
REBUILDING = "rebuilding"  # the collection a blue/green rebuild writes into, until it completes
# A switch of model or chunker (or a rebuild) built beside the embedded index searches use
# (store/swap.py): JSON {"phase": "building" | "swapping", "model", "chunker", "layout": what is
# built}. Absent when none is under way; the build's own state is in manifest.next.sqlite.
SWITCH = "switch"
_TABLES = ("files", "chunks", "dirty", "touched", "dir_state", "meta")


class ManifestError(GitindexError):
    """The manifest cannot be read (garbage, a truncated file): sync sets it aside and rebuilds it."""

    def __init__(self, path: Path, why: object) -> None:
        super().__init__(f"the manifest {path} is unreadable ({why}): run `gitindex sync`, which "
                         "sets it aside and rebuilds it from the store")
        self.why = str(why)


class IndexedFile(NamedTuple):
    path: str
    blob: str
    mode: int
    chunks: int


class FileRecord(NamedTuple):
    """A path's new state after a batch: indexed with these chunks, or removed (chunks None)."""

    path: str
    blob: str | None
    mode: int
    chunks: list[Chunk] | None


class Manifest:
    """The sqlite manifest under the git dir (WAL: readers never block the writer)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # A directory this process cannot write (a read-only mount, another user's index): the
        # manifest is opened as an immutable file, so status, search and verify still read it.
        self.read_only = path.is_file() and not os.access(path.parent, os.W_OK)
        if self.read_only:
            self.db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True,
                                      isolation_level=None, check_same_thread=False)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        try:  # garbage or a truncated file fails here, at the first read of its header
            if not self.read_only:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self._migrate()
            else:
                self.db.execute("PRAGMA user_version").fetchone()
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise ManifestError(path, exc) from None

    def check(self) -> None:
        """Raise ManifestError unless every page reads back (PRAGMA quick_check: about 1 ms a
        MB, so a sync runs it, not a search)."""
        try:
            problems = [r[0] for r in self.db.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            raise ManifestError(self.path, exc) from None
        if problems != ["ok"]:
            raise ManifestError(self.path, "; ".join(map(str, problems[:3])))

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                for statement in filter(str.strip, script.split(";")):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {number}")

    def close(self) -> None:
        self.db.close()

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set(self, **values: str | None) -> None:
        """Write meta keys (None deletes one); keys that already hold their value are not
        written again, so that a no-op sync writes as little as it can."""
        values = {k: v for k, v in values.items() if self.get(k) != v}
        if not values:
            return
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for key, value in values.items():
                if value is None:
                    self.db.execute("DELETE FROM meta WHERE key = ?", (key,))
                else:
                    self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def file(self, path: str) -> IndexedFile | None:
        row = self.db.execute(
            "SELECT path, blob, mode, chunks FROM files WHERE path = ?", (path,)
        ).fetchone()
        return IndexedFile(*row) if row else None

    def files(self) -> Iterator[IndexedFile]:
        for row in self.db.execute("SELECT path, blob, mode, chunks FROM files ORDER BY path"):
            yield IndexedFile(*row)

    def counts(self) -> tuple[int, int]:
        """(files indexed, chunks indexed)."""
        row = self.db.execute("SELECT COUNT(*), COALESCE(SUM(chunks), 0) FROM files").fetchone()
        return int(row[0]), int(row[1])

    def blob_chunks(self, blob: str) -> list[tuple[int, int, str]] | None:
        rows = self.db.execute(
            "SELECT start_line, end_line, hash FROM chunks WHERE blob = ? ORDER BY idx", (blob,)
        ).fetchall()
        return [tuple(r) for r in rows] or None

    def mark_dirty(self, paths: Iterable[str]) -> None:
        """Record, before the store is touched, which paths a batch is about to change."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR IGNORE INTO dirty VALUES (?)", ((p,) for p in paths))

    def dirty(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT path FROM dirty ORDER BY path")]

    def touched(self) -> list[str]:
        """Paths recorded since the last completed run (see finish())."""
        return [r[0] for r in self.db.execute("SELECT path FROM touched ORDER BY path")]

    def set_mode(self, path: str, mode: int) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("UPDATE files SET mode = ? WHERE path = ?", (mode, path))
            self.db.execute("INSERT OR IGNORE INTO touched VALUES (?)", (path,))

    def record(self, records: Iterable[FileRecord], clear_dirty: Iterable[str] = ()) -> None:
        """Commit a batch that the store has acknowledged, and clear its paths' dirty marks."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("DELETE FROM dirty WHERE path = ?", ((p,) for p in clear_dirty))
            for rec in records:
                self.db.execute("INSERT OR IGNORE INTO touched VALUES (?)", (rec.path,))
                if rec.chunks is None or rec.blob is None:
                    self.db.execute("DELETE FROM files WHERE path = ?", (rec.path,))
                    continue
                self.db.execute(
                    "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
                    (rec.path, rec.blob, rec.mode, len(rec.chunks)),
                )
                self.db.executemany(
                    "INSERT OR IGNORE INTO chunks VALUES (?, ?, ?, ?, ?)",
                    ((rec.blob, i, c.start, c.end, c.hash) for i, c in enumerate(rec.chunks)),
                )

    def finish(self, tree: str | None, commit: str | None, *, sweep: bool = True,
               snapshot: Iterable[tuple[str, str, int, int, int]] | None = None) -> None:
        """A run completed: the store now holds exactly the chunks of `tree` (or, for a plain
        directory, of `snapshot`: path, blob, mode, size, mtime_ns). `sweep` drops the chunk
        rows of blobs no file has any more (a scan of every chunk: only after changes)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM dirty")
            self.db.execute("DELETE FROM touched")
            if snapshot is not None:
                self.db.execute("DELETE FROM dir_state")
                self.db.executemany("INSERT INTO dir_state VALUES (?, ?, ?, ?, ?)", snapshot)
            if sweep:
                self.db.execute("DELETE FROM chunks WHERE blob NOT IN (SELECT blob FROM files)")
            for key, value in ((SYNCED_TREE, tree), (SYNCED_COMMIT, commit)):
                if value is None:
                    self.db.execute("DELETE FROM meta WHERE key = ?", (key,))
                else:
                    self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def reset(self) -> None:
        """Forget everything indexed (the store is being rebuilt from scratch)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for table in ("files", "chunks", "dirty", "touched", "dir_state", "meta"):
                self.db.execute(f"DELETE FROM {table}")

    def replace_with(self, other: Path, *, keep: Iterable[str] = (), **values: str) -> None:
        """Become a copy of the manifest at `other` in one transaction (a switch's swap, see
        store/swap.py): every table, but for the meta keys in `keep`, which stay as they are,
        and `values`, written over the copy."""
        kept = {k: v for k in keep if (v := self.get(k)) is not None}
        self.db.execute("ATTACH DATABASE ? AS other", (str(other),))
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                for table in _TABLES:
                    self.db.execute(f"DELETE FROM main.{table}")
                    self.db.execute(f"INSERT INTO main.{table} SELECT * FROM other.{table}")
                self.db.executemany("INSERT OR REPLACE INTO main.meta VALUES (?, ?)",
                                    [*kept.items(), *values.items()])
        finally:
            self.db.execute("DETACH DATABASE other")

    # The plain-directory source keeps its last snapshot here (git keeps ours as a tree).
    def dir_state(self) -> dict[str, tuple[str, int, int, int]]:
        return {
            r[0]: (r[1], r[2], r[3], r[4])
            for r in self.db.execute("SELECT path, blob, mode, size, mtime_ns FROM dir_state")
        }


def set_aside(path: Path) -> Path:
    """Rename an unreadable manifest (and its WAL and shared-memory files, which a new database
    must not replay) to `<name>.corrupt-<timestamp>`; never delete it. Returns the new name."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    for suffix in ("-wal", "-shm"):  # first: a WAL left beside a new database would be replayed into it
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, aside.with_name(aside.name + suffix))
    if path.exists():
        os.replace(path, aside)
    return aside
