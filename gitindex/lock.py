"""Inter-process file locks: one sync at a time per repository, one process in the embedded
store at a time, one background runner per worktree, one export of a model at a time.

On POSIX a lock is flock(2) on its file, as filelock's UnixFileLock takes it (the two
interoperate). It is written here because importing filelock 4 costs every command 14 ms, a
tenth of a no-op sync's budget; on Windows, filelock itself does the work.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gitindex.errors import LockedError, LockFileError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

_POLL = 0.02  # seconds between tries while another process holds a lock (a hand-over: 2 of them)


class Timeout(Exception):
    """The lock stayed held by another process for the whole timeout."""


class FileLock:
    """An exclusive lock on `path` (created if needed). Not reentrant, and not tied to a thread:
    one thread may take it and another release it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._other: Any = None  # filelock's lock, where there is no flock

    def acquire(self, timeout: float = -1) -> None:
        """Take the lock, waiting up to `timeout` seconds (0: not at all; negative: forever);
        raises Timeout."""
        if fcntl is None:
            self._acquire_elsewhere(timeout)
            return
        fd = self._open()
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if timeout >= 0 and time.monotonic() >= deadline:
                        raise Timeout(str(self.path)) from None
                    time.sleep(_POLL if timeout < 0 else max(0.0, min(_POLL, deadline - time.monotonic())))
        except BaseException:  # a timeout, or Ctrl-C while waiting: no descriptor left open
            os.close(fd)
            raise
        self._fd = fd

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except IsADirectoryError:
            raise LockFileError(
                f"{self.path} is a directory, where gitindex keeps an empty lock file (it holds no "
                "data): remove that directory and run again") from None

    def check(self) -> None:
        """Raise what acquire() would for a lock file that cannot be used (LockFileError for a
        directory in its place, PermissionError), without taking the lock."""
        if fcntl is not None:
            os.close(self._open())

    def release(self) -> None:
        if self._other is not None:
            self._other.release()
            return
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _acquire_elsewhere(self, timeout: float) -> None:
        import filelock

        if self._other is None:
            self._other = filelock.FileLock(str(self.path), thread_local=False)
        try:
            self._other.acquire(timeout=timeout)
        except filelock.Timeout:
            raise Timeout(str(self.path)) from None


@contextlib.contextmanager
def sync_lock(path: Path, timeout: float, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the sync lock; wait up to `timeout` seconds (0: fail at once) for another sync."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if timeout <= 0:
            raise LockedError(
                "another gitindex sync is running for this repository; run again when it is done "
                "(without --no-wait, and with lock-timeout above 0, a sync waits for it)"
            ) from None
        if on_wait is not None:
            on_wait()
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise LockedError(
                f"another gitindex sync kept this repository locked for {timeout:.0f} s ({path}); "
                "try again when it has finished"
            ) from None
    try:
        yield
    finally:
        lock.release()
