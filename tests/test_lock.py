"""The sync lock: one sync per repository, across processes, waiting a bounded time."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import filelock
import pytest

from gitindex.errors import LockedError
from gitindex.lock import sync_lock

HOLDER = """
import sys
from pathlib import Path
from gitindex.lock import sync_lock
with sync_lock(Path(sys.argv[1]), 0):
    print("held", flush=True)
    sys.stdin.readline()  # until the test says so
"""


def test_another_process_s_lock_fails_at_once_or_after_the_wait(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "sync.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(LockedError, match="another gitindex sync is running"), sync_lock(path, 0):
            pass
        waited: list[float] = []
        started = time.monotonic()
        with pytest.raises(LockedError, match="locked for 0 s"), sync_lock(path, 0.3, lambda: waited.append(1)):
            pass
        assert waited == [1] and time.monotonic() - started >= 0.3
        holder.stdin.write("go\n")
        holder.stdin.flush()
        with sync_lock(path, 30):  # waits until the holder lets go
            pass
    finally:
        if holder.poll() is None and holder.stdin is not None and not holder.stdin.closed:
            holder.stdin.close()
        holder.wait(timeout=30)


def test_it_is_the_lock_filelock_takes(tmp_path: Path) -> None:
    path = tmp_path / "sync.lock"
    with filelock.FileLock(str(path)), pytest.raises(LockedError), sync_lock(path, 0):
        pass
    with sync_lock(path, 0), pytest.raises(filelock.Timeout):
        filelock.FileLock(str(path)).acquire(timeout=0)
    with sync_lock(path, 0):  # released: free again
        pass


def test_a_lock_taken_in_one_thread_is_released_in_another(tmp_path: Path) -> None:
    import threading

    from gitindex.lock import FileLock, Timeout

    path = tmp_path / "store.lock"
    held = FileLock(path)
    held.acquire(timeout=0)
    other = FileLock(path)
    started = time.monotonic()
    with pytest.raises(Timeout):
        other.acquire(timeout=0.2)
    assert time.monotonic() - started >= 0.2
    releaser = threading.Thread(target=held.release)
    releaser.start()
    releaser.join()
    other.acquire(timeout=5)
    other.release()
