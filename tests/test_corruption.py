"""Corruption of the files gitindex keeps besides the manifest and the store (tests/test_recovery.py
covers those): the vector cache and the lock files. Each case, on a real repository with the
real model and the real embedded store, ends in a correct index (the next sync completes and
`verify` is clean) or a clear message with its documented exit code; never a traceback.

Damage is done for real, to the real files: garbage bytes, a truncated file, a zero-length
file, a directory in a file's place, and (where the tests do not run as root, who may read and
write anything) a file without permissions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CountingEmbedder, GitRepo, open_index, python_source, run_sync
from typer.testing import CliRunner

from gitindex.cli import app
from gitindex.errors import EXIT_ERROR

pytestmark = pytest.mark.filterwarnings("ignore:Failed to obtain server version:UserWarning")
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
NOT_AS_ROOT = pytest.mark.skipif(AS_ROOT, reason="root reads and writes files whatever their permissions")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("GITINDEX_", "QDRANT_")) or name in {"GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE"}:
            monkeypatch.delenv(name)


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert "Traceback" not in result.output and "a bug" not in result.output, result.output
    return result.exit_code, result.output


def gitindex(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real command line in its own process: what it prints to stderr is what a user sees."""
    return subprocess.run([sys.executable, "-m", "gitindex", *args], cwd=cwd, capture_output=True, text=True,
                          env=os.environ.copy(), timeout=300)


def verified(path: Path) -> None:
    with open_index(path) as ix:
        result = ix.verify()
        assert result.ok, result


@pytest.fixture
def indexed(repo: GitRepo, embedder: CountingEmbedder) -> GitRepo:
    repo.commit({f"pkg/m{i}.py": python_source(f"m{i}", functions=2) for i in range(3)})
    run_sync(repo.path, embedder)
    embedder.reset()
    return repo


def data(repo: GitRepo) -> Path:
    return repo.path / ".git" / "gitindex"


def change(repo: GitRepo) -> None:
    """A change for the next sync: a modified file and a new one."""
    repo.commit({"pkg/m0.py": python_source("m0", functions=3), "pkg/new.py": python_source("new")})


def chmod_back(path: Path) -> None:
    path.chmod(0o755 if path.is_dir() else 0o644)


# -- the vector cache ------------------------------------------------------------------------------
def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(max(path.stat().st_size, 16384)))


def _garbled_pages(path: Path) -> None:  # a valid header, pages past it that do not read back
    with path.open("r+b") as f:
        f.seek(8192)
        f.write(b"\xde\xad" * 8192)


def _truncated(path: Path) -> None:
    with path.open("r+b") as f:
        f.truncate(10000)


def _zero_length(path: Path) -> None:
    path.write_bytes(b"")


def _directory(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "left-here").write_text("x")


CACHE_DAMAGE: dict[str, Callable[[Path], None]] = {
    "garbage": _garbage, "garbled pages": _garbled_pages, "truncated": _truncated,
    "zero-length": _zero_length, "a directory": _directory,
}


@pytest.mark.parametrize("damage", CACHE_DAMAGE)
def test_a_damaged_vector_cache_is_set_aside_and_rebuilt(indexed: GitRepo, embedder: CountingEmbedder,
                                                         damage: str) -> None:
    """The cache is read for every chunk by `sync --rebuild`: a damaged one is set aside as
    `vectors.sqlite.corrupt-<time>` (never deleted), one line on stderr says so, the vectors are
    computed again, and the new cache serves the next sync. A zero-length file is an empty
    database to sqlite: nothing to set aside."""
    cache = data(indexed) / "vectors.sqlite"
    for side in ("-wal", "-shm"):
        Path(f"{cache}{side}").unlink(missing_ok=True)  # the file alone is the cache at rest
    CACHE_DAMAGE[damage](cache)

    rebuilt = gitindex("sync", "--rebuild", cwd=indexed.path)

    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "Traceback" not in rebuilt.stderr
    aside = sorted(p.name for p in data(indexed).glob("vectors.sqlite.corrupt-*"))
    said = [line for line in rebuilt.stderr.splitlines() if "the vector cache" in line]
    if damage == "zero-length":
        assert (aside, said) == ([], [])
    else:
        assert len(aside) == 1 and len(said) == 1, (aside, rebuilt.stderr)
        assert "was unreadable" in said[0] and f"set aside as {aside[0]}" in said[0], said
        assert (data(indexed) / aside[0]).exists()  # kept, not deleted
    verified(indexed.path)

    change(indexed)  # the new cache works: what the rebuild cached is reused, the change embedded
    result = run_sync(indexed.path, embedder)
    assert result.complete and result.reused > 0 and 0 < result.embedded <= 1 + 2 + 3, result
    verified(indexed.path)


@NOT_AS_ROOT
def test_a_vector_cache_without_permissions_is_a_message_not_a_traceback(indexed: GitRepo) -> None:
    cache = data(indexed) / "vectors.sqlite"
    change(indexed)
    cache.chmod(0)
    try:
        code, output = cli("sync", str(indexed.path))
        assert code == EXIT_ERROR and "cannot open the index's database" in output, output
    finally:
        chmod_back(cache)
    assert cli("sync", str(indexed.path))[0] == 0
    verified(indexed.path)


# -- the lock files --------------------------------------------------------------------------------
def _store_file(repo: GitRepo, suffix: str) -> Path:
    """The embedded store's `<collection>.lock` or `<collection>.readers`, beside its shard."""
    shards = [p for p in (data(repo) / "qdrant").iterdir() if p.is_dir()]
    assert len(shards) == 1, shards
    return shards[0].with_name(shards[0].name + suffix)


LOCKS: dict[str, Callable[[GitRepo], Path]] = {
    "sync.lock": lambda repo: data(repo) / "sync.lock",
    "<collection>.lock": lambda repo: _store_file(repo, ".lock"),
    "<collection>.readers": lambda repo: _store_file(repo, ".readers"),
}
# The commands that take each lock: a directory in its place stops them with a message.
# (status reads the manifest only: it never opens the shard, so it takes no store lock)
TAKEN_BY = {"sync.lock": ("sync",), "<collection>.lock": ("sync", "search", "verify"),
            "<collection>.readers": ("sync", "search", "verify")}


def _run_all(repo: GitRepo, commands: tuple[str, ...]) -> dict[str, tuple[int, str]]:
    args = {"sync": ("sync", str(repo.path)), "search": ("search", "parse", "--repo", str(repo.path)),
            "status": ("status", str(repo.path)), "verify": ("verify", str(repo.path))}
    return {name: cli(*args[name]) for name in commands}


@pytest.mark.parametrize("lock", LOCKS)
def test_garbage_in_a_lock_file_changes_nothing(indexed: GitRepo, lock: str) -> None:
    """A lock is flock(2) on its file; what the file holds is never read. (A readers marker
    left behind is an hour old: a fresh one makes a writer wait a moment for a reader.)"""
    path = LOCKS[lock](indexed)
    path.write_bytes(os.urandom(3000))
    an_hour_ago = time.time() - 3600
    os.utime(path, (an_hour_ago, an_hour_ago))
    change(indexed)
    outcomes = _run_all(indexed, ("sync", "search", "status", "verify"))
    assert {name: code for name, (code, _) in outcomes.items()} == dict.fromkeys(outcomes, 0), outcomes
    verified(indexed.path)


@pytest.mark.parametrize("lock", [
    "sync.lock", "<collection>.lock",
    "<collection>.readers",
])
def test_a_directory_in_place_of_a_lock_file_is_a_message_and_removing_it_recovers(
        indexed: GitRepo, lock: str) -> None:
    path = LOCKS[lock](indexed)
    path.unlink(missing_ok=True)
    path.mkdir()
    (path / "left-here").write_text("x")
    change(indexed)

    for name, (code, output) in _run_all(indexed, TAKEN_BY[lock]).items():
        assert code == EXIT_ERROR, (name, code, output)
        assert f"{path} is a directory" in output and "remove that directory" in output, (name, output)

    shutil.rmtree(path)  # what the message says to do
    assert cli("sync", str(indexed.path))[0] == 0
    assert cli("verify", str(indexed.path))[0] == 0
    verified(indexed.path)


@NOT_AS_ROOT
@pytest.mark.parametrize("lock", ["sync.lock", "<collection>.lock"])
def test_a_lock_file_without_permissions_is_a_message(indexed: GitRepo, lock: str) -> None:
    path = LOCKS[lock](indexed)
    path.touch()
    path.chmod(0)
    change(indexed)
    try:
        code, output = cli("sync", str(indexed.path))
        assert code == EXIT_ERROR and f"cannot write {path}: permission denied" in output, output
    finally:
        chmod_back(path)
    assert cli("sync", str(indexed.path))[0] == 0
    verified(indexed.path)


def test_the_hook_runners_lock_garbled_or_a_directory(indexed: GitRepo) -> None:
    """The background runner's lock (.git/gitindex/hooks/runner.lock): garbage in it changes
    nothing; a directory in its place stops every runner, and `hooks wait` says why at once
    (exit 1) instead of waiting for its timeout; once it is removed, the runner syncs."""
    hooks = data(indexed) / "hooks"
    hooks.mkdir()
    lock = hooks / "runner.lock"
    lock.mkdir()
    change(indexed)
    recorded = gitindex("hooks", "run", "post-commit", cwd=indexed.path)  # what the git hook runs
    assert recorded.returncode == 0, recorded.stderr

    started = time.monotonic()
    code, output = cli("hooks", "wait", str(indexed.path), "--timeout", "60")
    assert code == EXIT_ERROR and f"{lock} is a directory" in output, output
    assert time.monotonic() - started < 10

    shutil.rmtree(lock)
    lock.write_bytes(os.urandom(100))  # garbage: a lock file's content is never read
    assert gitindex("hooks", "run", "post-commit", cwd=indexed.path).returncode == 0
    code, output = cli("hooks", "wait", str(indexed.path), "--timeout", "120")
    assert code == 0, output
    assert cli("verify", str(indexed.path))[0] == 0
    verified(indexed.path)
