"""What has been indexed, per tracked ref: path -> blob id, each blob's chunks, the last synced
tree (sqlite). A Manifest reads and writes one ref's view at a time (`ref`); chunks are shared."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

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
    # Refs (refs.py): every per-path table gains the ref whose view it belongs to; what was
    # indexed before is the view "" (refs.LEGACY) until the next sync names it.
    """
    CREATE TABLE files3 (
        ref TEXT NOT NULL, path TEXT NOT NULL, blob TEXT NOT NULL, mode INTEGER NOT NULL,
        chunks INTEGER NOT NULL, PRIMARY KEY (ref, path)
    );
    INSERT INTO files3 SELECT '', path, blob, mode, chunks FROM files;
    DROP TABLE files;
    ALTER TABLE files3 RENAME TO files;
    CREATE INDEX files_blob ON files (blob);
    CREATE INDEX files_path ON files (path, blob);
    CREATE TABLE dirty3 (ref TEXT NOT NULL, path TEXT NOT NULL, PRIMARY KEY (ref, path));
    INSERT INTO dirty3 SELECT '', path FROM dirty;
    DROP TABLE dirty;
    ALTER TABLE dirty3 RENAME TO dirty;
    CREATE TABLE touched3 (ref TEXT NOT NULL, path TEXT NOT NULL, PRIMARY KEY (ref, path));
    INSERT INTO touched3 SELECT '', path FROM touched;
    DROP TABLE touched;
    ALTER TABLE touched3 RENAME TO touched;
    CREATE TABLE refs (
        ref TEXT PRIMARY KEY, tree TEXT, commit_id TEXT, origin TEXT NOT NULL, synced_at REAL
    );
    INSERT INTO refs SELECT '', (SELECT value FROM meta WHERE key = 'synced_tree'),
        (SELECT value FROM meta WHERE key = 'synced_commit'), 'head', NULL
        WHERE EXISTS (SELECT 1 FROM files) OR EXISTS (SELECT 1 FROM meta WHERE key = 'synced_tree');
    DELETE FROM meta WHERE key IN ('synced_tree', 'synced_commit')
    """,
    # Overlays (refs.py): a ref may inherit its base's points instead of being listed on each;
    # `overrides` holds the paths such a ref lists itself (where its view may differ).
    """
    ALTER TABLE refs ADD COLUMN base TEXT;
    CREATE TABLE overrides (ref TEXT NOT NULL, path TEXT NOT NULL, PRIMARY KEY (ref, path))
    """,
)

# Keys of the meta table.
MODEL, CHUNKER, STORE, COLLECTION, SELECTION = "model", "chunker", "store", "collection", "selection"
LAYOUT = "layout"  # the store layout the points were written in (store.LAYOUT); absent: "1"
SYNCED_TREE, SYNCED_COMMIT, LAST_RUN = "synced_tree", "synced_commit", "last_run"
STORE_POINTS = "store_points"  # the store's point count when a sync last wrote to it
REPO_KEY = "repo_key"  # the repository key the points were written under
REBUILDING = "rebuilding"  # the collection a blue/green rebuild writes into, until it completes
SERVING = "serving"  # meanwhile, [model, chunker, layout] of the collection searchers still reach
# A switch of model or chunker (or a rebuild) built beside the embedded index searches use
# (store/swap.py): JSON {"phase": "building" | "swapping", "model", "chunker", "layout": what is
# built}. Absent when none is under way; the build's own state is in manifest.next.sqlite.
SWITCH = "switch"


def switch_of(raw: str | None) -> dict[str, Any] | None:
    """The SWITCH key's value read back: None when no switch is under way, {} when it does not
    read back as an object (a damaged value: each reader falls back on its own default)."""
    if raw is None:
        return None
    try:
        found = json.loads(raw)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


_TABLES = ("files", "chunks", "dirty", "touched", "dir_state", "meta", "refs", "overrides")
_PER_REF = ("files", "dirty", "touched", "refs", "overrides")  # the tables that hold one row set per ref


class ManifestError(GitindexError):
    """The manifest cannot be read (garbage, a truncated file): sync sets it aside and rebuilds it."""

    def __init__(self, path: Path, why: object) -> None:
        super().__init__(f"the manifest {path} is unreadable ({why}): run `gitindex sync`, which "
                         "sets it aside and rebuilds it from the store")
        self.why = str(why)


class RefState(NamedTuple):
    """A tracked ref: the tree (and commit) its last completed sync indexed, where it came from
    (head: a worktree's checked-out branch; given: --ref; config: a `refs` pattern; store: read
    back from a shared server collection, another machine's), and the
    ref whose points it inherits (an overlay, see refs.py; None: its points list it)."""

    ref: str
    tree: str | None
    commit: str | None
    origin: str
    synced_at: float | None
    base: str | None = None


_REF_COLUMNS = "ref, tree, commit_id, origin, synced_at, base"
_ORIGIN_RANK = {"store": 0, "config": 1}  # head and given: 2
# The (ref, path, blob, chunks) rows whose points list their ref: every row of a ref without a
# base, an overlay's rows at the paths it overrides.
_EXPLICIT = ("SELECT f.ref, f.path, f.blob, f.chunks FROM files f LEFT JOIN refs r ON r.ref = f.ref "
             "WHERE r.base IS NULL OR EXISTS (SELECT 1 FROM overrides o WHERE o.ref = f.ref AND o.path = f.path)")


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

    def __init__(self, path: Path, ref: str = "") -> None:
        self.path = path
        self.ref = ref  # the view file(), files(), counts(), dirty(), record() and finish() use
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
        """A meta key; SYNCED_TREE and SYNCED_COMMIT are the current ref's."""
        if key in (SYNCED_TREE, SYNCED_COMMIT):
            column = "tree" if key == SYNCED_TREE else "commit_id"
            row = self.db.execute(f"SELECT {column} FROM refs WHERE ref = ?", (self.ref,)).fetchone()
        else:
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
            "SELECT path, blob, mode, chunks FROM files WHERE ref = ? AND path = ?", (self.ref, path)
        ).fetchone()
        return IndexedFile(*row) if row else None

    def files(self) -> Iterator[IndexedFile]:
        for row in self.db.execute("SELECT path, blob, mode, chunks FROM files WHERE ref = ? ORDER BY path",
                                   (self.ref,)):
            yield IndexedFile(*row)

    def counts(self, ref: str | None = None) -> tuple[int, int]:
        """(files indexed, chunks indexed) in the current ref's view (or `ref`'s)."""
        row = self.db.execute("SELECT COUNT(*), COALESCE(SUM(chunks), 0) FROM files WHERE ref = ?",
                              (self.ref if ref is None else ref,)).fetchone()
        return int(row[0]), int(row[1])

    def distinct_counts(self) -> tuple[int, int]:
        """(files, chunks) across every ref, each (path, blob) once: what the store holds."""
        row = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(chunks), 0) FROM (SELECT DISTINCT path, blob, chunks FROM files)"
        ).fetchone()
        return int(row[0]), int(row[1])

    # -- refs ----------------------------------------------------------------------------------
    def tracked(self) -> list[RefState]:
        """Every ref the index holds, in name order."""
        return [RefState(*r) for r in self.db.execute(f"SELECT {_REF_COLUMNS} FROM refs ORDER BY ref")]

    def ref_state(self, ref: str) -> RefState | None:
        row = self.db.execute(f"SELECT {_REF_COLUMNS} FROM refs WHERE ref = ?", (ref,)).fetchone()
        return RefState(*row) if row else None

    def track(self, ref: str, origin: str) -> None:
        """Start tracking `ref` (nothing indexed yet) or note a stronger origin for it: given or
        checked out (kept even when no pattern matches) over config, over store (read from a
        shared collection: another machine's, never dropped or synced here unless it becomes ours)."""
        known = self.ref_state(ref)
        if known is not None and _ORIGIN_RANK.get(origin, 2) <= _ORIGIN_RANK.get(known.origin, 2):
            return  # a no-op sync writes nothing
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR IGNORE INTO refs VALUES (?, NULL, NULL, ?, NULL, NULL)", (ref, origin))
            self.db.execute("UPDATE refs SET origin = ? WHERE ref = ?", (origin, ref))

    def holders(self, path: str, blob: str) -> frozenset[str]:
        """The refs listed on the points of `path` at `blob`: the refs whose view holds it, but
        for overlays that inherit it from their base (the base is listed)."""
        return frozenset(r[0] for r in self.db.execute(f"SELECT ref FROM ({_EXPLICIT}) WHERE path = ? AND blob = ?",
                                                       (path, blob)))

    def blobs_elsewhere(self, path: str, ref: str | None = None) -> frozenset[str]:
        """The blobs of `path` that refs other than the current one (or `ref`) hold: their
        points stay."""
        return frozenset(r[0] for r in self.db.execute("SELECT DISTINCT blob FROM files WHERE path = ? AND ref != ?",
                                                       (path, self.ref if ref is None else ref)))

    def seed(self, ref: str, start: str) -> None:
        """Give `ref` a copy of `start`'s view and synced tree, as an overlay on `start` (or on
        `start`'s base, with `start`'s overrides, whose points already list `ref`): its first
        sync is then incremental from there."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for table in ("files", "dirty", "touched", "overrides"):
                self.db.execute(f"DELETE FROM {table} WHERE ref = ?", (ref,))
            self.db.execute("INSERT INTO files SELECT ?, path, blob, mode, chunks FROM files WHERE ref = ?", (ref, start))
            # What an interrupted run of `start` left half-done is `ref`'s to compare too.
            for table in ("dirty", "touched", "overrides"):
                self.db.execute(f"INSERT INTO {table} SELECT ?, path FROM {table} WHERE ref = ?", (ref, start))
            self.db.execute("UPDATE refs SET tree = s.tree, commit_id = s.commit_id, base = COALESCE(s.base, s.ref) "
                            "FROM (SELECT * FROM refs WHERE ref = ?) AS s WHERE refs.ref = ?", (start, ref))

    # -- overlays (refs.py) ---------------------------------------------------------------------
    def dependents(self, ref: str | None = None) -> list[str]:
        """The overlays whose base is `ref` (by default the current ref)."""
        return [r[0] for r in self.db.execute("SELECT ref FROM refs WHERE base = ? ORDER BY ref",
                                              (self.ref if ref is None else ref,))]

    def overrides(self, ref: str) -> list[str]:
        """The paths overlay `ref` lists itself (its view there may differ from its base's)."""
        return [r[0] for r in self.db.execute("SELECT path FROM overrides WHERE ref = ? ORDER BY path", (ref,))]

    def views(self, listed: Sequence[str], path: str) -> tuple[str, ...]:
        """The refs whose views hold a point of `path` that lists `listed`: those refs, and the
        overlays on one of them that do not override `path`; sorted."""
        marks = ", ".join("?" * len(listed))
        inheriting = self.db.execute(
            f"SELECT ref FROM refs r WHERE base IN ({marks}) AND NOT EXISTS "
            "(SELECT 1 FROM overrides o WHERE o.ref = r.ref AND o.path = ?)", (*listed, path)) if listed else []
        return tuple(sorted({*listed, *(str(r[0]) for r in inheriting)}))

    def overlays_over(self, most: int) -> list[str]:
        """The overlays that override more than `most` paths."""
        return [r[0] for r in self.db.execute(
            "SELECT ref FROM overrides GROUP BY ref HAVING COUNT(*) > ? ORDER BY ref", (most,))]

    def inheriting(self, paths: Iterable[str]) -> dict[tuple[str, str | None, int], list[str]]:
        """Of the current ref's overlays, those that inherit `paths` from it: by (path, blob,
        chunks) of what they hold there (blob None: nothing), which overlays."""
        found: dict[tuple[str, str | None, int], list[str]] = {}
        if not self.dependents():
            return found
        for path in paths:
            for ref, blob, chunks in self.db.execute(
                    "SELECT r.ref, f.blob, f.chunks FROM refs r LEFT JOIN files f ON f.ref = r.ref AND f.path = ?1 "
                    "WHERE r.base = ?2 AND NOT EXISTS (SELECT 1 FROM overrides o WHERE o.ref = r.ref AND o.path = ?1)",
                    (path, self.ref)):
                found.setdefault((path, blob, int(chunks or 0)), []).append(ref)
        return found

    def override(self, ref: str, paths: Iterable[str]) -> None:
        """Overlay `ref` lists itself at `paths` from now on (their points list it)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR IGNORE INTO overrides VALUES (?, ?)", ((ref, p) for p in paths))

    def materialize(self, ref: str) -> None:
        """`ref` is an overlay no more: every point of its view lists it (the caller re-listed them)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM overrides WHERE ref = ?", (ref,))
            self.db.execute("UPDATE refs SET base = NULL WHERE ref = ?", (ref,))

    def view_groups(self, ref: str, inherited: bool = False,
                    ) -> Iterator[tuple[frozenset[str], list[tuple[str, str, int]]]]:
        """The (path, blob, chunks) whose points list `ref` (with `inherited`: those overlay
        `ref` inherits from its base instead), grouped by the refs their points list."""
        groups: dict[frozenset[str], list[tuple[str, str, int]]] = {}
        if inherited:
            mine = ("SELECT f.path, f.blob, f.chunks FROM files f WHERE f.ref = ?1 AND NOT EXISTS "
                    "(SELECT 1 FROM overrides o WHERE o.ref = ?1 AND o.path = f.path)")
        else:
            mine = "SELECT e.path, e.blob, e.chunks FROM explicit e WHERE e.ref = ?1"
        rows = self.db.execute(
            f"WITH explicit AS ({_EXPLICIT}), mine AS ({mine}) "
            "SELECT m.path, m.blob, m.chunks, GROUP_CONCAT(e.ref, char(0)) FROM mine m "
            "JOIN explicit e ON e.path = m.path AND e.blob = m.blob GROUP BY m.path, m.blob", (ref,))
        for path, blob, chunks, holders in rows:
            groups.setdefault(frozenset(str(holders).split("\0")), []).append((path, blob, int(chunks)))
        yield from groups.items()

    def forget(self, ref: str) -> None:
        """Stop tracking `ref` (its points were dropped or re-listed first)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for table in _PER_REF:
                self.db.execute(f"DELETE FROM {table} WHERE ref = ?", (ref,))
            self.db.execute("DELETE FROM chunks WHERE blob NOT IN (SELECT blob FROM files)")

    def rename(self, old: str, new: str) -> None:
        """Name a view (the legacy view "" becomes the branch it was synced on)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for table in _PER_REF:
                self.db.execute(f"DELETE FROM {table} WHERE ref = ?", (new,))
                self.db.execute(f"UPDATE {table} SET ref = ? WHERE ref = ?", (new, old))
            self.db.execute("UPDATE refs SET base = ? WHERE base = ?", (new, old))

    def blob_chunks(self, blob: str) -> list[tuple[int, int, str]] | None:
        rows = self.db.execute(
            "SELECT start_line, end_line, hash FROM chunks WHERE blob = ? ORDER BY idx", (blob,)
        ).fetchall()
        return [tuple(r) for r in rows] or None

    def mark_dirty(self, paths: Iterable[str]) -> None:
        """Record, before the store is touched, which paths a batch is about to change (an
        overlay lists itself at them from now on)."""
        paths = list(paths)
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR IGNORE INTO dirty VALUES (?, ?)", ((self.ref, p) for p in paths))
            if self.db.execute("SELECT 1 FROM refs WHERE ref = ? AND base IS NOT NULL", (self.ref,)).fetchone():
                self.db.executemany("INSERT OR IGNORE INTO overrides VALUES (?, ?)", ((self.ref, p) for p in paths))

    def dirty(self, ref: str | None = None) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT path FROM dirty WHERE ref = ? ORDER BY path",
                                              (self.ref if ref is None else ref,))]

    def touched(self) -> list[str]:
        """Paths recorded since the last completed run (see finish())."""
        return [r[0] for r in self.db.execute("SELECT path FROM touched WHERE ref = ? ORDER BY path", (self.ref,))]

    def set_mode(self, path: str, mode: int) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("UPDATE files SET mode = ? WHERE ref = ? AND path = ?", (mode, self.ref, path))
            self.db.execute("INSERT OR IGNORE INTO touched VALUES (?, ?)", (self.ref, path))

    def record(self, records: Iterable[FileRecord], clear_dirty: Iterable[str] = ()) -> None:
        """Commit a batch that the store has acknowledged, and clear its paths' dirty marks."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("DELETE FROM dirty WHERE ref = ? AND path = ?", ((self.ref, p) for p in clear_dirty))
            for rec in records:
                self.db.execute("INSERT OR IGNORE INTO touched VALUES (?, ?)", (self.ref, rec.path))
                if rec.chunks is None or rec.blob is None:
                    self.db.execute("DELETE FROM files WHERE ref = ? AND path = ?", (self.ref, rec.path))
                    continue
                self.db.execute(
                    "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
                    (self.ref, rec.path, rec.blob, rec.mode, len(rec.chunks)),
                )
                self.db.executemany(
                    "INSERT OR IGNORE INTO chunks VALUES (?, ?, ?, ?, ?)",
                    ((rec.blob, i, c.start, c.end, c.hash) for i, c in enumerate(rec.chunks)),
                )

    def finish(self, tree: str | None, commit: str | None, *, sweep: bool = True,
               snapshot: Iterable[tuple[str, str, int, int, int]] | None = None) -> None:
        """A run completed: the store now holds exactly the chunks of `tree` in the current
        ref's view (or, for a plain directory, of `snapshot`: path, blob, mode, size,
        mtime_ns). `sweep` drops the chunk rows of blobs no file has any more (a scan of every
        chunk: only after changes)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM dirty WHERE ref = ?", (self.ref,))
            self.db.execute("DELETE FROM touched WHERE ref = ?", (self.ref,))
            if snapshot is not None:
                self.db.execute("DELETE FROM dir_state")
                self.db.executemany("INSERT INTO dir_state VALUES (?, ?, ?, ?, ?)", snapshot)
            if sweep:
                self.db.execute("DELETE FROM chunks WHERE blob NOT IN (SELECT blob FROM files)")
            self.db.execute("INSERT OR IGNORE INTO refs VALUES (?, NULL, NULL, 'head', NULL, NULL)", (self.ref,))
            self.db.execute("UPDATE refs SET tree = ?, commit_id = ?, synced_at = ? WHERE ref = ?",
                            (tree, commit, time.time(), self.ref))

    def reset(self) -> None:
        """Forget everything indexed (the store is being rebuilt from scratch); the refs stay
        tracked, with nothing synced."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for table in ("files", "chunks", "dirty", "touched", "dir_state", "meta", "overrides"):
                self.db.execute(f"DELETE FROM {table}")
            self.db.execute("UPDATE refs SET tree = NULL, commit_id = NULL, base = NULL")  # still tracked: synced again

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


@contextlib.contextmanager
def reading(path: Path) -> Iterator[None]:
    """A page of the manifest at `path` that fails to read (a damaged file) is a ManifestError,
    not a crash."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise ManifestError(path, exc) from None


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
