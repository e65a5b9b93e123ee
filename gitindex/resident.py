"""A resident index: one repository's index held open for many requests (`gitindex mcp`).

The model stays loaded and the embedded shard stays open between searches, so a query costs
its embedding and the store's answer, not a process start, a model load and a shard open. The
shard is still shared: anyone who waits for it (a hook's sync, `gitindex search` from a shell)
gets it within one batch or 50 ms (store/embedded.py, `keep_reads`), and the next search here
opens it again. A sync asked for here runs in a thread with its own Index and its own copy of
the model, so searches go on while it runs, and the two hand the shard over like two processes.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from gitindex.api import Index
from gitindex.embedding import Embedder
from gitindex.errors import ConfigError, GitindexError
from gitindex.lock import FileLock, Timeout

MAX_QUERY_CHARS = 4_000  # a longer "query" is a file pasted by mistake: say so, do not embed it
MAX_LIMIT = 100
MAX_READ_LINES = 2_000  # one read; a longer file is read in parts


@dataclass
class SyncState:
    """The sync this process runs, or ran last."""

    running: bool = False
    started: float = 0.0  # time.time()
    files_total: int | None = None
    files_done: int = 0
    chunks_done: int = 0
    result: dict[str, Any] | None = None  # the last finished run's summary (sync --json)
    error: str | None = None  # the last run's failure
    done: threading.Event = field(default_factory=threading.Event)

    # The sync's Progress protocol (sync.Progress)
    def start(self, total_files: int | None) -> None:
        self.files_total = total_files

    def advance(self, files: int, chunks: int) -> None:
        self.files_done += files
        self.chunks_done += chunks


class Resident:
    """Search, status, read and sync for one repository, kept open between requests. Safe to
    call from several threads: reads take turns (each takes milliseconds), one sync at a time
    runs beside them."""

    def __init__(self, opener: Callable[[Embedder | None], Index]) -> None:
        """`opener(embedder)` opens the repository's index (with that model, if one is given):
        once for reads here, and once for each sync."""
        self._open = opener
        self.index = opener(None)
        if not self.index.is_git:
            self.index.close()
            raise ConfigError(f"{self.index.root} is not in a git repository: the MCP server serves one")
        store = self.index.workspace.store
        if hasattr(store, "keep_reads"):  # the embedded store: keep the shard open between reads
            store.keep_reads = True
        self._reads = threading.Lock()
        self._sync_lock = threading.Lock()
        self._sync_embedder: Embedder | None = None
        self._stop = threading.Event()
        self._manifest_file: tuple[int, int] | None = None  # (device, inode) of the manifest read
        self.sync_state = SyncState()
        self.sync_state.done.set()

    def warm_up(self) -> None:
        """Load the model before the first query needs it (a second or so)."""
        with self._reads:
            self.index.workspace.embedder.embed(["warm up"])

    def close(self) -> None:
        """Stop a sync in progress at its next batch, wait for it, and release the shard."""
        self._stop.set()
        self.sync_state.done.wait(timeout=60)
        with self._reads:
            self.index.close()

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Index]:
        with self._reads:
            self._follow_manifest()
            self._follow_head()
            yield self.index

    def _follow_head(self) -> None:
        """The checked-out branch may have changed since the last request: reads use its view."""
        ws = self.index.workspace
        if ws.repo is None:
            return
        from gitindex.refs import current

        ws.ref = current(ws.repo)
        if "manifest" in ws.__dict__:
            ws.manifest.ref = ws.ref

    def _follow_manifest(self) -> None:
        """A sync elsewhere may have set an unreadable manifest aside and started a new one:
        read the file now at the manifest's path, not the one opened earlier."""
        ws = self.index.workspace
        try:
            st = ws.manifest_path.stat()
            now: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            now = None
        if now != self._manifest_file and "manifest" in ws.__dict__:
            ws.__dict__.pop("manifest").close()  # (Workspace.manifest opens it again when asked)
        self._manifest_file = now

    # -- what agents ask ------------------------------------------------------------------------

    def search(self, query: str, *, limit: int = 10, path: str | None = None, lang: str | None = None,
               mode: str = "hybrid", ref: str | None = None) -> dict[str, Any]:
        """Hits, best first, and how the index compares with HEAD."""
        if not isinstance(query, str) or not query.strip():
            raise ConfigError("the query is empty: describe the code to find, or name it")
        if len(query) > MAX_QUERY_CHARS:
            raise ConfigError(f"the query is {len(query):,} characters; at most {MAX_QUERY_CHARS:,}: "
                              "describe the code, or name the function, rather than pasting it")
        if not 1 <= limit <= MAX_LIMIT:
            raise ConfigError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
        started = time.perf_counter()
        with self._reading() as index:
            hits = index.search(query, limit=limit, path=path or None, lang=lang or None, mode=mode, ref=ref or None)
            index_state = self._freshness(index, ref or None)
        return {"hits": [h.to_json() for h in hits], "index": index_state,
                "took_ms": round((time.perf_counter() - started) * 1000, 1)}

    def status(self) -> dict[str, Any]:
        """How the index compares with HEAD and the working tree, what runs, what ran last."""
        with self._reading() as index:
            info = index.status()
            state = self._freshness(index)
            uncommitted = _uncommitted(index)
        info.pop("hooks", None)
        sync = self._sync_summary()
        fresh = state["fresh"] and not sync["running"]
        if sync["running"]:
            summary = "a sync is running: " + sync.get("by", "")
        elif state["fresh"]:
            summary = f"the index matches HEAD ({(info['head'] or '')[:12]})"
        else:
            summary = state["note"]
        if uncommitted:
            summary += (f"; {uncommitted} files have uncommitted changes, which the index does not "
                        "hold (it follows commits)")
        return {"fresh": fresh, "summary": summary, **info, "uncommitted_files": uncommitted,
                "sync": sync}

    def read(self, path: str, start_line: int = 1, end_line: int | None = None) -> dict[str, Any]:
        """Lines start_line..end_line (1-based, inclusive) of `path` as indexed."""
        clean = _repository_path(path)
        if start_line < 1:
            raise ConfigError(f"start_line counts from 1, not {start_line}")
        if end_line is not None and end_line < start_line:
            raise ConfigError(f"end_line ({end_line}) is before start_line ({start_line})")
        end = end_line if end_line is not None else start_line + MAX_READ_LINES - 1
        if end - start_line + 1 > MAX_READ_LINES:
            raise ConfigError(f"at most {MAX_READ_LINES} lines at a time; read {path} in parts")
        with self._reading() as index:
            lines = index.read(clean, start_line, end)
            commit = index.workspace.manifest.get("synced_commit")
        last = start_line + len(lines) - 1
        return {"path": clean, "start_line": start_line, "end_line": last if lines else None,
                "commit": commit, "text": "".join(lines)}

    def sync(self, wait: bool = True, timeout: float | None = None) -> dict[str, Any]:
        """Run an incremental sync (or join the one this process runs); with `wait` False,
        return at once (status shows its progress)."""
        with self._sync_lock:
            state = self.sync_state
            if not state.running:
                state = self.sync_state = SyncState(running=True, started=time.time())
                threading.Thread(target=self._run_sync, args=(state,), name="gitindex-mcp-sync",
                                 daemon=True).start()
                started_here = True
            else:
                started_here = False
        if not wait:
            return {"started": started_here, "running": True,
                    "note": ("a sync started" if started_here else "a sync was already running")
                    + "; call status to follow it"}
        state.done.wait(timeout)
        if state.running:
            return {"running": True, "note": "the sync is still running; call status to follow it"}
        if state.error:
            return {"ok": False, "error": state.error}
        return {"ok": True, **(state.result or {})}

    # -- inside -------------------------------------------------------------------------------

    def _run_sync(self, state: SyncState) -> None:
        try:
            with self._open(self._sync_embedder) as index:
                result = index.sync(progress=state, should_stop=self._stop.is_set)
                self._sync_embedder = index.workspace.embedder  # loaded once, kept for the next
            state.result = {"label": result.label, **result.to_json()}
        except GitindexError as exc:
            state.error = str(exc)
        except Exception as exc:  # a bug: the server stays up and says what happened
            state.error = f"unexpected error (a bug): {type(exc).__name__}: {exc}"
        finally:
            state.running = False
            state.done.set()

    def _sync_summary(self) -> dict[str, Any]:
        state = self.sync_state
        if state.running:
            done = f"{state.files_done} of {state.files_total} files" if state.files_total else f"{state.files_done} files"
            return {"running": True, "by": f"this server, {done} so far", "files_done": state.files_done,
                    "files_total": state.files_total, "seconds": round(time.time() - state.started, 1)}
        if self._other_sync_running():
            return {"running": True, "by": "another gitindex process (a hook or a shell)"}
        last: dict[str, Any] = {"running": False}
        if state.result is not None or state.error is not None:
            last["last_here"] = {"ok": state.error is None, "error": state.error, "result": state.result}
        return last

    def _other_sync_running(self) -> bool:
        lock = FileLock(self.index.workspace.sync_lock_path)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return True
        except OSError:
            return False
        lock.release()
        return False

    def _freshness(self, index: Index, ref: str | None = None) -> dict[str, Any]:
        fresh = index.freshness(ref)
        dirty = len(index.workspace.manifest.dirty(fresh.ref if fresh is not None else None))
        if fresh is None:
            return {"fresh": True, "note": "a plain directory"}
        stale = fresh.stale or dirty > 0
        if not fresh.synced:
            note = "the index has not been synced yet: call sync"
        elif fresh.files_differ:
            note = (f"the index lags HEAD by {fresh.files_differ} files (indexed "
                    f"{(fresh.synced_commit or 'the staged tree')[:12]}, HEAD {(fresh.head or '')[:12]}): "
                    "call sync for results from HEAD")
        elif dirty:
            note = f"a sync was interrupted with {dirty} files half-written: call sync"
        else:
            note = f"the index matches HEAD ({(fresh.head or '')[:12]})"
        return {"ref": fresh.ref, "fresh": not stale, "lags_head_by_files": fresh.files_differ, "indexed_commit": fresh.synced_commit,
                "head": fresh.head, "note": note}


def _uncommitted(index: Index) -> int:
    """Files whose working-tree or staged content differs from HEAD (untracked ones included,
    ignored ones not)."""
    repo = index.workspace.repo
    if repo is None or repo.workdir is None:
        return 0
    import pygit2

    try:
        return sum(1 for flags in repo.git.status().values() if flags != pygit2.enums.FileStatus.CURRENT
                   and not flags & pygit2.enums.FileStatus.IGNORED)
    except pygit2.GitError:
        return 0


def _repository_path(path: str) -> str:
    """A path as search prints it: relative to the repository's top, inside it."""
    if not isinstance(path, str) or not path.strip():
        raise ConfigError("path is empty: give a file path as search returned it")
    if "\0" in path:
        raise ConfigError("path contains a NUL character")
    pure = PurePosixPath(path.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts:
        raise ConfigError(f"{path!r} is outside the repository: give a path relative to its top, as search returns it")
    return str(pure)

