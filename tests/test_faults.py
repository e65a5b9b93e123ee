"""Faults of the machine, caused for real: a full disk (a small tmpfs), a read-only repository
(a read-only bind mount), and file names that are not UTF-8. Mounting needs root; where it
fails, the test is skipped with the reason."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CountingEmbedder, GitRepo, index_on_tmpfs, mount, open_index, python_source, run_sync, umount
from typer.testing import CliRunner, Result

from gitindex import faults
from gitindex.cli import app
from gitindex.errors import StoreError
from gitindex.repo import display_path, os_path, raw_path, text_path
from gitindex.store.embedded import EmbeddedStore

runner = CliRunner()
pytestmark = pytest.mark.filterwarnings("ignore:Failed to obtain server version:UserWarning")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("GITINDEX_", "QDRANT_")) or name in {"GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE"}:
            monkeypatch.delenv(name)


def cli(*args: str, code: int = 0) -> Result:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output and "a bug" not in result.output
    return result


def gitindex(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A separate process: a SIGBUS there ends that process (returncode -7), not the tests."""
    return subprocess.run([sys.executable, "-m", "gitindex", *args], cwd=cwd, capture_output=True,
                          text=True, env=os.environ.copy(), timeout=300)


# -- a full disk ---------------------------------------------------------------------------------
@pytest.fixture
def small_disk(repo: GitRepo) -> Iterator[Path]:
    """The repository's .git/gitindex on a 40 MB tmpfs."""
    with index_on_tmpfs(repo, "40m") as data:
        yield data


def test_a_full_disk_stops_a_sync_with_a_message_and_the_next_sync_completes(
        repo: GitRepo, small_disk: Path) -> None:
    repo.commit({f"src/module_{i}.py": python_source(f"module_{i}", functions=8) for i in range(20)})
    # Fill the disk: what is left is less than a write needs.
    (small_disk / "filler").write_bytes(b"\0" * (30 << 20))

    failed = gitindex("sync", cwd=repo.path)
    assert failed.returncode == 1, (failed.returncode, failed.stderr[-2000:])
    assert "no space left on the device holding" in failed.stderr
    assert "MB free" in failed.stderr and "gitindex sync" in failed.stderr
    assert "Traceback" not in failed.stderr + failed.stdout

    (small_disk / "filler").unlink()
    mount("-o", "remount,size=256m", str(small_disk))
    done = gitindex("sync", cwd=repo.path)
    assert done.returncode == 0, done.stderr[-2000:]
    verified = gitindex("verify", cwd=repo.path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("ok")


def test_the_store_checks_the_room_a_batch_needs_before_writing(tmp_path: Path) -> None:
    data = tmp_path / "disk"
    data.mkdir()
    mount("-t", "tmpfs", "-o", "size=80m", "tmpfs", str(data))
    try:
        store = EmbeddedStore(data / "shard", "c", lock_timeout=5)
        with store.session(write=True):
            store._dim = 384
            store.check_space(10)  # a small batch fits
            with pytest.raises(StoreError, match=r"no space left on the device holding .*MB needed"):
                store.check_space(100_000)  # 100k points of 384 floats do not
        store.close()
        assert not (data / "shard").exists() or not any((data / "shard").iterdir())
    finally:
        umount(data)


# -- read-only -----------------------------------------------------------------------------------
@pytest.fixture
def read_only(repo: GitRepo) -> Iterator[GitRepo]:
    """An indexed repository, then bind-mounted read-only over itself."""
    repo.commit({"src/retry.py": python_source("retry"), "docs/guide.md": "# Guide\n\nRun the tool.\n"})
    cli("sync", str(repo.path))
    repo.commit({"src/more.py": python_source("more")})  # something a sync would have to write
    mount("--bind", str(repo.path), str(repo.path))
    try:
        mount("-o", "remount,bind,ro", str(repo.path))
        yield repo
    finally:
        umount(repo.path)


def test_sync_on_a_read_only_repository_says_it_cannot_write(read_only: GitRepo) -> None:
    out = cli("sync", str(read_only.path), code=1)
    assert "read-only file system" in out.output and str(read_only.path / ".git" / "gitindex") in out.output


@pytest.mark.parametrize("verb", [["search", "retry"], ["status"], ["verify"]])
def test_reads_on_a_read_only_repository_work_or_say_why_not(read_only: GitRepo, verb: list[str]) -> None:
    """The manifest is read as an immutable file; status works. qdrant-edge 0.9 cannot open a
    shard on a read-only file system at all, so search and verify say so (exit 1)."""
    where = ["--repo", str(read_only.path)] if verb[0] == "search" else [str(read_only.path)]
    result = runner.invoke(app, [*verb, *where], catch_exceptions=False)
    assert result.exit_code == (0 if verb == ["status"] else 1), (result.exit_code, result.output)
    assert "Traceback" not in result.output and "a bug" not in result.output
    if result.exit_code == 1:  # why not: the read-only directory, by name
        assert "read-only" in result.output or "for writing" in result.output, result.output


def test_the_store_reads_a_read_only_directory_without_its_lock(tmp_path: Path) -> None:
    """No writer can be in a directory nobody may write: a read goes without the lock file (which
    cannot be made there), and qdrant_edge's own refusal to open read-only data is said in words."""
    data = tmp_path / "data"
    data.mkdir()
    store = EmbeddedStore(data / "shard", "c", lock_timeout=5)
    with store.session(write=True):
        store.upsert([_point()])
    store.close()
    (data / "c.lock").unlink()
    mount("--bind", str(data), str(data))
    try:
        mount("-o", "remount,bind,ro", str(data))
        reader = EmbeddedStore(data / "shard", "c", lock_timeout=5)
        try:
            with reader.session():
                assert reader.count() == 1  # (a future qdrant_edge that opens read-only data)
        except StoreError as exc:
            assert "read-only file system" in str(exc) and str(data / "shard") in str(exc)
        assert not (data / "c.lock").exists()
    finally:
        umount(data)


def _point() -> Any:
    from gitindex.store import DENSE, PointData

    return PointData("00000000-0000-0000-0000-000000000001", {DENSE: [0.1] * 8},
                     {"path": "a.py", "blob": "b", "hash": "h", "text": "x", "repo": ""})


# -- names that are not UTF-8 ---------------------------------------------------------------------
@pytest.mark.parametrize("raw", [b"caf\xe9.py", b"plain.py", b"\xff\xfe/x.py", b"ok-\xc3\xa9.py",
                                 "real-\U0010ff90.py".encode(), b"caf\xf4\x8f\xbe\x90.py"])
def test_a_path_is_text_and_back_without_loss(raw: bytes) -> None:
    text = text_path(raw)
    text.encode("utf-8")  # valid Unicode: sqlite, the store's payload and JSON take it
    assert raw_path(text) == raw
    assert os.fsencode(os_path(text)) == raw
    assert json.loads(json.dumps(display_path(text))) == display_path(text)
    if raw.decode("utf-8", errors="replace") == raw.decode("utf-8", errors="ignore") and b"\xf4\x8f" not in raw:
        assert text == raw.decode("utf-8")  # a UTF-8 name is itself


def _commit_raw(repo: GitRepo, raw: bytes, content: bytes) -> None:
    with open(os.fsencode(repo.path) + b"/" + raw, "wb") as f:
        f.write(content)
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "raw name")


def test_a_file_name_that_is_not_utf8_is_indexed_searched_and_verified(repo: GitRepo) -> None:
    _commit_raw(repo, b"caf\xe9.py", b'def brew_espresso_shot(beans):\n    """Brew coffee."""\n    return beans\n')
    repo.commit({"other.py": python_source("other")})
    cli("sync", str(repo.path))
    hits = json.loads(cli("search", "brew coffee espresso", "--repo", str(repo.path), "--json").stdout)
    top = hits[0]["path"]
    assert raw_path(top) == b"caf\xe9.py"
    assert "brew_espresso_shot" in cli("search", "brew coffee espresso", "--repo", str(repo.path)).stdout
    assert cli("verify", str(repo.path)).stdout.startswith("ok")

    # A rename, a diff between trees (pygit2's deltas), and a name with another invalid byte.
    os.rename(os.fsencode(repo.path) + b"/caf\xe9.py", os.fsencode(repo.path) + b"/caf\xe8-\xff.py")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "rename")
    cli("sync", str(repo.path))
    hits = json.loads(cli("search", "brew coffee espresso", "--repo", str(repo.path), "--json").stdout)
    assert raw_path(hits[0]["path"]) == b"caf\xe8-\xff.py"
    assert cli("verify", str(repo.path)).stdout.startswith("ok")


@pytest.mark.parametrize("step", faults.STEPS)
def test_a_sync_killed_at_any_step_is_finished_by_the_next(repo: GitRepo, embedder: CountingEmbedder, step: str) -> None:
    """SIGKILL at each named step of a sync (the test-only switch in gitindex/faults.py), on a
    change that adds, modifies, renames and deletes: the next sync finishes, `verify` is clean,
    and nothing already embedded is embedded again (the vector cache and the store have it)."""
    repo.commit({f"pkg/m{i}.py": python_source(f"m{i}", functions=2) for i in range(4)})
    run_sync(repo.path, embedder)
    repo.git("mv", "pkg/m1.py", "pkg/moved.py")
    repo.git("rm", "-q", "pkg/m2.py")
    repo.commit({"pkg/m0.py": python_source("m0", functions=3), "pkg/new.py": python_source("new")})
    env = {**os.environ, "_GITINDEX_TEST_KILL_AT": step}
    killed = subprocess.run([sys.executable, "-m", "gitindex", "sync", "--quiet", "--batch-size", "2"],
                            cwd=repo.path, env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr)
    embedder.reset()
    resumed = run_sync(repo.path, embedder, batch_size=2)
    assert resumed.complete
    with open_index(repo.path) as ix:
        assert ix.verify().ok
    new_texts = 1 + 2 + 3  # at most: m0's added function and changed ones, new.py's chunks (no double work)
    assert resumed.embedded <= new_texts, (step, resumed.embedded, embedder.texts)
