"""One sync at a time per repository: an inter-process file lock that waits, bounded.

On POSIX this is flock(2) on the lock file, as filelock's UnixFileLock takes it (the two
interoperate); it is written here because importing filelock 4 costs every command 14 ms, a
tenth of a no-op sync's budget. Elsewhere, filelock.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from gitindex.errors import LockedError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

_POLL = 0.05  # seconds between tries while another sync holds the lock


@contextlib.contextmanager
def sync_lock(path: Path, timeout: float, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the sync lock; wait up to `timeout` seconds (0: fail at once) for another sync."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        with _filelock(path, timeout, on_wait):
            yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try(fd):
            _busy(timeout, on_wait)
            deadline = time.monotonic() + timeout
            while not _try(fd):
                if time.monotonic() >= deadline:
                    raise _timed_out(path, timeout)
                time.sleep(_POLL)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _try(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _busy(timeout: float, on_wait: Callable[[], None] | None) -> None:
    """Another sync holds the lock: fail at once, or say that this one waits."""
    if timeout <= 0:
        raise LockedError(
            "another gitindex sync is running for this repository; run again when it is done "
            "(without --no-wait, and with lock-timeout above 0, a sync waits for it)"
        )
    if on_wait is not None:
        on_wait()


def _timed_out(path: Path, timeout: float) -> LockedError:
    return LockedError(f"another gitindex sync kept this repository locked for {timeout:.0f} s ({path}); "
                       "try again when it has finished")


@contextlib.contextmanager
def _filelock(path: Path, timeout: float, on_wait: Callable[[], None] | None) -> Iterator[None]:
    import filelock

    lock = filelock.FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        _busy(timeout, on_wait)
        try:
            lock.acquire(timeout=timeout)
        except filelock.Timeout:
            raise _timed_out(path, timeout) from None
    try:
        yield
    finally:
        lock.release()
