"""One sync at a time per repository: an inter-process file lock that waits, bounded."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import filelock

from gitindex.errors import LockedError


@contextlib.contextmanager
def sync_lock(path: Path, timeout: float, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the sync lock; wait up to `timeout` seconds (0: fail at once) for another sync."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        if timeout <= 0:
            raise LockedError(
                "another gitindex sync is running for this repository; run again when it is done "
                "(without --no-wait, and with lock-timeout above 0, a sync waits for it)"
            ) from None
        if on_wait is not None:
            on_wait()
        try:
            lock.acquire(timeout=timeout)
        except filelock.Timeout:
            raise LockedError(
                f"another gitindex sync kept this repository locked for {timeout:.0f} s ({path}); "
                "try again when it has finished"
            ) from None
    try:
        yield
    finally:
        lock.release()
