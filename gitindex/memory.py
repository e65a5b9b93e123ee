"""Memory: the process's resident size, a default limit, and a budget that keeps a sync under it.

What a sync holds in memory is mostly constant (the model and its runtime, a batch or two, the
store's appendable segment and the file pages it maps). The part a run controls is the batch size
and how much the store buffers before writing a segment out; the budget lowers both when the
process nears its limit and raises them again when it has room.
"""

from __future__ import annotations

import gc
import resource
import sys
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

HIGH = 0.85  # above this share of the limit: halve the batch size and the store's buffer
LOW = 0.6  # below it: double them back, up to the configured size
MIN_SCALE = 1 / 16  # 256-chunk batches go down to 16 chunks (the store floors its segments at 1/4)
RELIEVE_EVERY = 10.0  # seconds between reliefs once at the floor and still above HIGH
DEFAULT_SHARE = 0.5  # of the memory available when a run starts, when no limit is given
_FALLBACK_MB = 4096  # when the available memory cannot be read
_MB = 1024 * 1024
CGROUP = Path("/sys/fs/cgroup")  # cgroup v2: memory.max and memory.current


@cache
def _process() -> Any:
    import psutil  # 10-15 ms: imported by the first run that needs it

    return psutil.Process()


def rss_mb() -> float:
    """The process's resident size now (psutil)."""
    return float(_process().memory_info().rss) / _MB


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / _MB if sys.platform == "darwin" else rss / 1024


def host_available_mb() -> float | None:
    """What the system could still give (psutil: the kernel's MemAvailable on Linux)."""
    import psutil

    try:
        return float(psutil.virtual_memory().available) / _MB
    except (OSError, RuntimeError):
        return None


def cgroup_available_mb(cgroup: Path = CGROUP, read_rss: Callable[[], float] = rss_mb) -> float | None:
    """What a cgroup v2 limit (a container, a CI runner) leaves this process, on top of what it
    holds: psutil does not read cgroup limits, so this part is ours. None without a limit."""
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int((cgroup / "memory.current").read_text())
        return max(0, int(limit) - used) / _MB + read_rss()
    except (OSError, ValueError):
        return None


def available_mb(host: Callable[[], float | None] = host_available_mb,
                 cgroup: Callable[[], float | None] = cgroup_available_mb) -> float | None:
    """Memory this process could still take: the system's available memory, or less when a
    cgroup sets a lower limit. None when neither can be read. (The readings are parameters so
    that tests can give fixed ones.)"""
    found = [x for x in (host(), cgroup()) if x is not None]
    return min(found) if found else None


def default_limit_mb(available: Callable[[], float | None] = available_mb) -> int:
    """A safe share of the memory available now."""
    now = available()
    return int(now * DEFAULT_SHARE) if now else _FALLBACK_MB


def _glibc(function: str) -> Callable[..., int] | None:
    """A C library function of this process (ctypes.util.find_library would run ldconfig)."""
    import ctypes

    try:
        return getattr(ctypes.CDLL(None), function)  # type: ignore[no-any-return]
    except (OSError, AttributeError, TypeError):  # not glibc, or no process handle (Windows)
        return None


def give_back_freed() -> None:
    """Collect garbage and return freed heap pages to the system (glibc keeps them otherwise)."""
    gc.collect()
    trim = _glibc("malloc_trim")
    if trim is not None:
        trim(0)


def fewer_malloc_arenas() -> None:
    """Let glibc's malloc use 2 arenas instead of one per thread per core (as MALLOC_ARENA_MAX=2
    would): a sync's three threads fragmented more (first index of a 50k-file tree, cheap
    embedder: peak RSS 384 MB, 360 MB with it). For a process the CLI owns, not the library."""
    mallopt = _glibc("mallopt")
    if mallopt is not None:
        mallopt(-8, 2)  # M_ARENA_MAX


class MemoryBudget:
    """Checked after each batch: the batch size and a scale in (0, 1] for the store's buffer."""

    def __init__(self, limit_mb: float, batch_size: int,
                 read_rss: Callable[[], float] = rss_mb,
                 relieve: Callable[[], None] = give_back_freed,
                 relieve_every: float = RELIEVE_EVERY) -> None:
        self.limit_mb = limit_mb
        self.max_batch = batch_size
        self.scale = 1.0
        self.smallest_batch = batch_size
        self.tightened = 0  # how many times the budget had to halve
        self._read_rss = read_rss
        self._relieve = relieve
        self._relieve_every = relieve_every
        self._relieved_at = -relieve_every

    @property
    def batch_size(self) -> int:
        return max(1, round(self.max_batch * self.scale))

    def check(self) -> bool:
        """Adjust to the resident size now. True when the store should apply `scale` again
        (it changed, or memory was given back and the store should drop its mapped pages too)."""
        rss = self._read_rss()
        if rss > HIGH * self.limit_mb:
            now = time.monotonic()
            if self.scale > MIN_SCALE:
                self.scale = max(MIN_SCALE, self.scale / 2)
                self.tightened += 1
                self.smallest_batch = min(self.smallest_batch, self.batch_size)
            elif now - self._relieved_at < self._relieve_every:
                return False  # at the floor: give back what can be, now and then
            self._relieve()
            self._relieved_at = now
            return True
        if rss < LOW * self.limit_mb and self.scale < 1.0:
            self.scale = min(1.0, self.scale * 2)
            return True
        return False
