"""The memory budget: real resident sizes, and a sync that shrinks its batches under a limit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CountingEmbedder, GitRepo, open_index, python_source, run_sync

from gitindex import memory
from gitindex.memory import MemoryBudget


def test_resident_size_follows_real_allocations() -> None:
    before = memory.rss_mb()
    block = bytearray(b"x" * (200 * 1024 * 1024))  # written, so its pages are resident
    grown = memory.rss_mb()
    assert grown - before > 150
    del block
    memory.give_back_freed()
    assert memory.rss_mb() < grown - 150
    assert memory.peak_rss_mb() >= grown - 1


def cgroup_dir(tmp_path: Path, limit: str, current: str) -> Path:
    """A cgroup v2 directory with fixed readings."""
    group = tmp_path / "cgroup"
    group.mkdir()
    (group / "memory.max").write_text(limit + "\n")
    (group / "memory.current").write_text(current + "\n")
    return group


@pytest.mark.parametrize(("limit", "current", "rss", "available"), [
    ("max", str(900 << 20), 100.0, None),  # a cgroup without a limit
    # A limit of 2 GiB with 1.5 GiB used by the group: this process can take the other 512 MB
    # on top of what it holds already (its resident size is part of the group's use).
    (str(2 << 30), str(1536 << 20), 100.0, 612.0),
    (str(2 << 30), str(3 << 30), 100.0, 100.0),  # over its limit: only what it holds
    ("garbled", "0", 100.0, None),
])
def test_a_cgroup_limit_leaves_what_the_group_has_not_used(tmp_path: Path, limit: str, current: str,
                                                            rss: float, available: float | None) -> None:
    group = cgroup_dir(tmp_path, limit, current)
    assert memory.cgroup_available_mb(group, read_rss=lambda: rss) == available
    assert memory.cgroup_available_mb(tmp_path / "no-cgroup") is None


@pytest.mark.parametrize(("host", "cgroup", "available"), [
    (8192.0, None, 8192.0),  # no cgroup limit: what the system has
    (8192.0, 612.0, 612.0),  # a container's limit below it
    (8192.0, 65536.0, 8192.0),  # a limit above what the host has
    (None, 100.0, 100.0),
    (None, None, None),  # nothing readable
])
def test_available_memory_is_the_lowest_reading(host: float | None, cgroup: float | None,
                                                 available: float | None) -> None:
    assert memory.available_mb(lambda: host, lambda: cgroup) == available


def test_the_default_limit_is_a_share_of_what_is_available() -> None:
    assert memory.default_limit_mb(lambda: 8192.0) == 4096
    assert memory.default_limit_mb(lambda: 1001.0) == int(1001 * memory.DEFAULT_SHARE) == 500
    assert memory.default_limit_mb(lambda: None) == 4096  # unreadable: a fixed fallback


def test_the_default_readings_are_this_host_s() -> None:
    total = next(int(line.split()[1]) / 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                 if line.startswith("MemTotal:"))
    available = memory.available_mb()
    assert available is not None and 0 < available <= total
    assert 0 < memory.default_limit_mb() <= total * memory.DEFAULT_SHARE
    statm = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)
    assert abs(memory.rss_mb() - statm) < 20  # psutil reads what the kernel says


def test_the_budget_halves_near_the_limit_and_grows_back_with_room() -> None:
    readings = iter([900, 900, 900, 900, 900, 900, 500, 500, 500, 500, 500, 700])
    relieved: list[int] = []
    budget = MemoryBudget(1000, 256, read_rss=lambda: next(readings), relieve=lambda: relieved.append(1),
                          relieve_every=0.0)
    sizes, told = [], []
    for _ in range(12):
        told.append(budget.check())
        sizes.append(budget.batch_size)
    # 900 MB is above 85% of 1000: halve down to the floor (1/16), then keep giving memory back;
    # 500 MB is below 60%: double back up to the configured size; 700 MB is in between: stay.
    assert sizes == [128, 64, 32, 16, 16, 16, 32, 64, 128, 256, 256, 256]
    assert told == [True] * 10 + [False] * 2
    assert budget.smallest_batch == 16 and budget.tightened == 4 and len(relieved) == 6


def test_at_the_floor_the_budget_gives_memory_back_only_now_and_then() -> None:
    relieved: list[int] = []
    budget = MemoryBudget(1000, 256, read_rss=lambda: 900, relieve=lambda: relieved.append(1),
                          relieve_every=3600.0)
    told = [budget.check() for _ in range(8)]
    assert told == [True] * 4 + [False] * 4 and len(relieved) == 4  # halvings only, then wait


def chunky_repo(repo: GitRepo, files: int) -> None:
    repo.commit({f"pkg/mod_{i}.py": python_source(f"mod{i}", functions=6, body_lines=14) for i in range(files)})


def test_a_sync_under_a_tight_limit_shrinks_its_batches_and_says_so(
    tmp_path: Path, embedder: CountingEmbedder
) -> None:
    roomy, tight = GitRepo(tmp_path / "roomy"), GitRepo(tmp_path / "tight")
    chunky_repo(roomy, 40)
    chunky_repo(tight, 40)
    run_sync(roomy.path, embedder, batch_size=64, memory_limit_mb=1_000_000)
    roomy_calls = list(embedder.calls)
    embedder.reset()  # the second repository has its own vector cache: it embeds everything too
    result = run_sync(tight.path, embedder, batch_size=64, memory_limit_mb=1)
    tight_calls = list(embedder.calls)
    assert sum(roomy_calls) == sum(tight_calls) > 64 * 6
    assert min(roomy_calls[:-1]) >= 64  # full batches all along
    # Under the limit from the start: halved after each batch written (two are in flight) down
    # to 4 chunks, so a batch is then one file (a file's chunks stay together).
    file_chunks = sum(roomy_calls) // 40
    assert len(tight_calls) > 3 * len(roomy_calls)
    assert max(tight_calls[6:]) <= file_chunks + 1
    assert result.complete and result.memory_limit_mb == 1
    assert any("went over the memory limit of 1 MB" in note for note in result.notes)
    ix = open_index(tight.path)
    try:
        assert ix.verify().ok
    finally:
        ix.close()


ARENAS_PROBE = """
import ctypes, ctypes.util, sys, tempfile, threading
from gitindex.memory import fewer_malloc_arenas
if sys.argv[1] == "fewer":
    fewer_malloc_arenas()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.fopen.restype = ctypes.c_void_p
barrier = threading.Barrier(8)
def work():
    barrier.wait()  # all alive at once, each asking malloc for memory
    blocks = [libc.malloc(4096) for _ in range(200)]
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
with tempfile.NamedTemporaryFile(suffix=".xml") as out:
    fp = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(fp))
    libc.fclose(ctypes.c_void_p(fp))
    print(open(out.name).read().count("<heap nr="))
"""


def test_fewer_malloc_arenas_caps_glibc_at_two() -> None:
    # In a fresh process whose environment sets no arena limit of its own (MALLOC_ARENA_MAX, or
    # glibc.malloc.arena_max in GLIBC_TUNABLES), so that the default case is glibc's default.
    env = {k: v for k, v in os.environ.items() if k not in {"MALLOC_ARENA_MAX", "GLIBC_TUNABLES"}}

    def heaps(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", ARENAS_PROBE, mode], capture_output=True, text=True,
                              check=True, env=env)
        return int(done.stdout.strip())

    assert heaps("fewer") <= 2
    assert heaps("default") > 2  # eight threads at once: glibc gives them arenas of their own
