"""Ctrl-C during a sync, sent for real (SIGINT) to the real command line in its own process, on a
repository big enough that the sync is still embedding when the signals arrive.

The first Ctrl-C asks the sync to stop after the batches in flight; a second one must end the
process within 1 s (the design bound; asserted with a margin for a loaded 2-core CI machine),
with exit code 130 (README: Exit codes), leaving a state the next sync finishes: `verify` clean.
(A first Ctrl-C alone is tests/test_sync.py's: the sync stops at a batch boundary.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import CountingEmbedder, GitRepo, open_index, python_source, run_sync

from gitindex.errors import EXIT_INTERRUPTED

SECOND_CTRL_C_BOUND_S = 2.5  # the code's bound is 1 s; CI machines are slower and loaded
FILES = 40  # x 6 short functions: 240 chunks, one batch (256 by default) in flight for seconds on 2 cores


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("GITINDEX_", "QDRANT_")) or name in {"GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE"}:
            monkeypatch.delenv(name)


def _start_sync(repo: GitRepo) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "gitindex", "sync"], cwd=repo.path, env=os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_until_embedding(repo: GitRepo, sync: subprocess.Popen[str], timeout: float = 120.0) -> None:
    """The vector cache is made when the first batch's vectors are looked up: from then on the
    sync is embedding (and, a batch later, writing)."""
    cache = repo.path / ".git" / "gitindex" / "vectors.sqlite"
    deadline = time.monotonic() + timeout
    while not cache.exists():
        assert sync.poll() is None, sync.communicate()
        assert time.monotonic() < deadline, "the sync never started embedding"
        time.sleep(0.02)
    time.sleep(0.5)  # a batch or so into it


def test_a_second_ctrl_c_ends_a_sync_within_a_second_and_the_next_sync_finishes(
        repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({f"pkg{i % 8}/mod{i}.py": python_source(f"mod{i}", functions=6, body_lines=2) for i in range(FILES)})
    sync = _start_sync(repo)
    try:
        _wait_until_embedding(repo, sync)
        sync.send_signal(signal.SIGINT)
        assert sync.stderr is not None
        first = sync.stderr.readline()  # the handler says it stops after the current batch
        assert "Ctrl-C again to stop now" in first, first
        assert sync.poll() is None, "the sync ended before the second Ctrl-C: make the repository bigger"
        sent = time.monotonic()
        sync.send_signal(signal.SIGINT)
        _, rest = sync.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if sync.poll() is None:
            sync.kill()
            sync.wait()
    print(f"\nsecond Ctrl-C to exit: {took:.2f} s (exit {sync.returncode})")  # noqa: T201 (the figure, with -s)
    assert sync.returncode == EXIT_INTERRUPTED, (sync.returncode, rest)
    assert "Traceback" not in rest and "a bug" not in rest, rest
    assert took < SECOND_CTRL_C_BOUND_S, f"the second Ctrl-C took {took:.2f} s to end the sync"

    resumed = run_sync(repo.path, embedder)
    assert resumed.complete and resumed.added > 0
    with open_index(repo.path) as ix:
        assert ix.verify().ok
        assert ix.status()["files"] == FILES

