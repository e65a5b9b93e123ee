"""The background runner the git hooks start: it coalesces bursts of events into one sync.

The hook scripts (hooks.py) append events to a file and start this runner unless one is alive;
a file lock keeps one runner per worktree. Nothing here is a library's job: the event queue
and its hand-over between runners are gitindex's own.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitindex.embedding import Embedder
from gitindex.errors import EXIT_ERROR, EXIT_OK, GitindexError
from gitindex.hooks import RunnerFiles, append_log, read_lines, record_event, redirect_output, runner_pid
from gitindex.lock import FileLock, Timeout
from gitindex.repo import index_file_from

QUIET_S = 0.3  # a burst of events is over once none arrived for this long...
SETTLE_MAX_S = 3.0  # ...but a sync never waits longer than this for it to end
# What the pre-commit framework tells a hook about the git hook that runs it, in its environment
# (pre_commit/commands/run.py); with pass_filenames: false the hook gets no arguments.
_PRE_COMMIT_ENV = (
    ("PRE_COMMIT_CHECKOUT_TYPE", "post-checkout"),
    ("PRE_COMMIT_IS_SQUASH_MERGE", "post-merge"),
    ("PRE_COMMIT_REWRITE_COMMAND", "post-rewrite"),
)


def spawn(argv: Sequence[str], cwd: Path) -> None:
    """Start `argv` detached: its own session, no terminal, nothing the caller waits on."""
    subprocess.Popen(list(argv), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)


def runner_argv(event: str) -> list[str]:
    return [sys.executable, "-m", "gitindex", "hooks", "run", "--detached", event]


def _settle(files: RunnerFiles, sleep: Callable[[float], None]) -> None:
    """Return once no event arrived for QUIET_S, or after SETTLE_MAX_S."""
    def size() -> int:
        try:
            return files.pending.stat().st_size
        except FileNotFoundError:
            return -1

    last, deadline = size(), time.monotonic() + SETTLE_MAX_S
    while time.monotonic() < deadline:
        sleep(QUIET_S)
        if (now := size()) == last:
            return
        last = now


def _take(files: RunnerFiles, sleep: Callable[[float], None]) -> list[str] | None:
    """Every pending event, once the burst is over; None when there is none. The events stay in
    `syncing` until their sync is done, so a runner that is killed leaves them to the next one."""
    left_over = read_lines(files.syncing)  # a runner died before finishing these
    if not left_over and not files.pending.exists():
        return None
    _settle(files, sleep)
    taking = files.dir / f"taking.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):  # only left-over events
        os.replace(files.pending, taking)  # events that come later start a new file
    events = left_over + read_lines(taking)
    tmp = files.dir / f"syncing.{os.getpid()}"
    tmp.write_text("".join(f"{e}\n" for e in events))
    os.replace(tmp, files.syncing)
    taking.unlink(missing_ok=True)
    return events or ["(event)"]


def serve(files: RunnerFiles, sync_once: Callable[[list[str]], dict[str, Any]],
          sleep: Callable[[float], None] = time.sleep) -> int:
    """The background runner: while events are pending, sync once for all of them.

    At most one runner per worktree (a file lock); a runner that finds it taken exits at once,
    leaving its event to the one that holds it. Returns how many syncs ran.
    """
    files.dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(files.lock)
    runs = 0
    while True:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return runs
        try:
            files.pid.write_text(f"{os.getpid()}\n")
            while (events := _take(files, sleep)) is not None:
                append_log(files, sync_once(events))
                files.syncing.unlink()
                runs += 1
        finally:
            files.pid.unlink(missing_ok=True)
            lock.release()
        # An event recorded after our last look found our pid and left its runner unstarted:
        # look once more now that the pid file is gone (the shell checks it after recording).
        if not files.pending.exists():
            return runs


def clear_stale_pid(files: RunnerFiles) -> None:
    """Forget a pid file that no runner holds (its runner was killed and the pid reused).

    Holding the lock for a moment can turn away a runner that starts just then: callers start
    one themselves afterwards if events are waiting."""
    if not files.pid.exists():
        return
    lock = FileLock(files.lock)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return  # a runner holds the lock: the pid is real
    try:
        files.pid.unlink(missing_ok=True)
    finally:
        lock.release()


def _check_lock(files: RunnerFiles) -> None:
    """Raises LockFileError when the runner's lock file cannot be used at all (a directory in
    its place): the runners started would each fail on it, and only their output log would say
    so. Takes no lock (a runner starting now must not be turned away)."""
    FileLock(files.lock).check()


def wait(files: RunnerFiles, timeout: float, kick: Callable[[], None], poll: float = 0.1) -> bool:
    """Wait until no event is pending and no runner runs; True if that happened in time.

    `kick` starts a runner: called when events stay pending with no runner alive (one was
    killed, or never got to start)."""
    deadline = time.monotonic() + timeout
    since = time.monotonic()
    if (files.pending.exists() or files.syncing.exists()) and runner_pid(files) is None:
        _check_lock(files)  # say now, not at the timeout, why no runner can start
    while True:
        busy = runner_pid(files) is not None
        waiting = files.pending.exists() or files.syncing.exists()
        if not busy and not waiting:
            return True
        now = time.monotonic()
        if now - since > 5.0:  # no progress for a while: is anyone working on it?
            clear_stale_pid(files)
            if waiting and runner_pid(files) is None:
                _check_lock(files)  # a runner that cannot take its lock would fail again, unseen
                kick()
            since = now
        if now >= deadline:
            return False
        time.sleep(poll)




# -- one sync, as a hook runs it ----------------------------------------------------------------
@dataclass
class HookSync:
    """Syncs the worktree at `root` to HEAD (or the staged tree) and returns a log record;
    never raises. Keeps the model loaded between the runs of one runner."""

    root: Path
    env: Mapping[str, str]
    mode: str = "background"
    errors_to: Path | None = None  # where to write tracebacks of bugs
    _embedders: dict[tuple[str, str], Embedder] = field(default_factory=dict)

    def __call__(self, events: list[str], *, staged_index: str | None = None, staged: bool = False,
                 wait: bool = True) -> dict[str, Any]:
        from gitindex.api import open as open_index

        started = time.time()
        record: dict[str, Any] = {"started_at": round(started, 3), "events": events, "mode": self.mode,
                                  "pid": os.getpid(), "ok": False, "commit": None, "error": None}
        try:
            with open_index(self.root, env=self.env) as index:
                ws = index.workspace  # settings are read afresh each run; the model is kept
                ws.embedder = self._embedders.setdefault((ws.spec.location, ws.model_key), ws.embedder)
                result = index.sync(staged=staged, index_file=staged_index, wait=wait)
            record.update(ok=True, commit=result.commit, label=result.label, summary=result.to_json())
            if result.label == "empty":
                record.update(note="nothing to index yet: no commits")
        except GitindexError as exc:
            record["error"] = str(exc)
        except Exception as exc:  # a hook must never fail; the bug is logged
            record["error"] = f"unexpected error (a bug): {type(exc).__name__}: {exc}"
            if self.errors_to is not None:
                with self.errors_to.open("a") as f:
                    f.write(traceback.format_exc())
        record["seconds"] = round(time.time() - started, 3)
        return record


def _from_pre_commit(env: Mapping[str, str]) -> tuple[str, list[str]]:
    """Which git hook the pre-commit framework is running (it says so only in the environment)."""
    for name, event in _PRE_COMMIT_ENV:
        if name in env:
            if event == "post-checkout":
                return event, [env.get("PRE_COMMIT_FROM_REF", ""), env.get("PRE_COMMIT_TO_REF", ""), env[name]]
            return event, [env[name]]
    return "post-commit", []


def run_hook(event: str, args: Sequence[str], *, foreground: bool, detached: bool, strict: bool,
             env: Mapping[str, str], cwd: Path, say: Callable[[str], None]) -> int:
    """What a hook does for `event` (its git arguments `args`); returns the exit code. Records
    the event and makes sure a background runner will sync it; or, `foreground`, syncs now;
    or, `detached`, is that runner. `say` reports to the user (stderr)."""
    from gitindex.workspace import locate

    if event == "auto":
        event, args = _from_pre_commit(env)
    if event == "post-checkout" and len(args) >= 3 and args[2] != "1":
        return EXIT_OK  # a file checkout, not a branch switch
    repo, root = locate(cwd)
    assert repo is not None
    files = RunnerFiles.of(repo)
    job = HookSync(root, env, errors_to=files.output)
    if event == "pre-commit":
        # Index what is about to be committed. Only --strict waits for a running sync and fails the commit.
        job.mode = "pre-commit"
        record = job([event], staged=True, staged_index=index_file_from(env, str(cwd)), wait=strict)
        append_log(files, record)
        if not record["ok"]:
            say(f"gitindex: the staged tree was not indexed: {record['error']}")
            return EXIT_ERROR if strict else EXIT_OK
        return EXIT_OK
    if foreground:
        from gitindex.hooks import describe

        job.mode = "foreground"
        record = job([" ".join([event, *args])])
        append_log(files, record)
        say(f"gitindex: {describe(record)}")
        return EXIT_ERROR if strict and not record["ok"] else EXIT_OK
    if detached:  # the runner itself: started in the background by the hook script or by us
        with contextlib.suppress(OSError):  # OSError: already a session leader
            os.setsid()  # out of git's process group: a Ctrl-C meant for git does not stop it
        os.nice(max(0, 10 - os.nice(0)))  # low priority: never compete with the user's git commands
        redirect_output(files)
        serve(files, job)
        return EXIT_OK
    record_event(files, event, args)
    clear_stale_pid(files)
    if runner_pid(files) is None:
        spawn(runner_argv(event), root)
    return EXIT_OK
