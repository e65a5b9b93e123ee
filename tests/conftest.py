"""Fixtures: real git repositories, the real bundled model, the real embedded Qdrant."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gitindex
from gitindex.api import Index
from gitindex.embedding import DEFAULT_BACKEND, make_embedder, resolve_model
from gitindex.sync import SyncResult

# The ONNX export of the model goes to a cache of this test session, never the user's
# (~/.cache/gitindex): set before anything runs, in the environment, so that the CLI (which reads
# XDG_CACHE_HOME) and every subprocess (syncs started by git hooks included) use it too. The
# export is built once per session; the directory is removed when the session ends.
SESSION_CACHE = Path(tempfile.mkdtemp(prefix="gitindex-test-cache-"))
os.environ["XDG_CACHE_HOME"] = str(SESSION_CACHE)
MODEL_CACHE = SESSION_CACHE / "gitindex" / "onnx"  # where config.load puts model_cache from it


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(SESSION_CACHE, ignore_errors=True)


GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}


class CountingEmbedder:
    """The real model on the default backend (as the CLI runs it), counting what it is asked to
    embed, so reuse can be asserted."""

    def __init__(self, backend: str = DEFAULT_BACKEND) -> None:
        self.inner = make_embedder(resolve_model("all-MiniLM-L6-v2"), backend, cache_dir=MODEL_CACHE)
        self.model_id = self.inner.model_id
        self.texts: list[str] = []
        self.calls: list[int] = []  # texts per call: one call per batch with something new

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        self.calls.append(len(texts))
        return self.inner.embed(texts)

    def reset(self) -> None:
        self.texts.clear()
        self.calls.clear()


@pytest.fixture(scope="session")
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture(autouse=True)
def _reset_embedder_counts(request: pytest.FixtureRequest) -> None:
    if "embedder" in request.fixturenames:
        request.getfixturevalue("embedder").reset()


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
        env={**os.environ, **GIT_ENV, **(env or {})},
    )
    return out.stdout.strip()


class GitRepo:
    """A real repository in a temporary directory, with helpers to change and commit it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        git(path, "init", "-q", "-b", "main")

    def git(self, *args: str, env: dict[str, str] | None = None) -> str:
        return git(self.path, *args, env=env)

    def write(self, files: dict[str, str | bytes]) -> None:
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)

    def commit(self, files: dict[str, str | bytes] | None = None, message: str = "change") -> str:
        if files:
            self.write(files)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GITINDEX_*, QDRANT_* or git location variables from the caller's environment (a test
    module uses it for all its tests with pytestmark = pytest.mark.usefixtures("isolated_env"))."""
    for name in list(os.environ):
        if name.startswith(("GITINDEX_", "QDRANT_")) or name in {"GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE"}:
            monkeypatch.delenv(name)


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "repo")


def mount(*args: str) -> None:
    """mount(8), as root can (tmpfs for a full disk, a read-only bind mount); the test is
    skipped with the reason where it cannot."""
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here (mount {' '.join(args)}: {done.stderr.strip() or done.returncode})")


def umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True)


@contextmanager
def index_on_tmpfs(repo: GitRepo, size: str) -> Iterator[Path]:
    """The repository's .git/gitindex on a tmpfs of `size` (40m...): a disk that fills up."""
    data = repo.path / ".git" / "gitindex"
    data.mkdir(parents=True)
    mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(data))
    try:
        yield data
    finally:
        umount(data)


def open_index(path: Path, embedder: CountingEmbedder | None = None, **settings: Any) -> Index:
    """The library's index of a repository (or plain directory) at `path`, as gitindex.open
    gives it, with the session's model cache; with `embedder`, the shared real model instead of
    loading another."""
    return gitindex.open(path, plain=True, embedder=embedder, **{"model_cache": str(MODEL_CACHE), **settings})


def run_sync(path: Path, embedder: CountingEmbedder, ref: str = "HEAD", **settings: Any) -> SyncResult:
    """Sync the repository at `path` to `ref` with the shared real model."""
    with open_index(path, embedder, **settings) as index:
        return index.sync(ref if index.is_git else None)


def python_source(name: str, functions: int = 3, body_lines: int = 6) -> str:
    """A small, realistic Python module whose functions each make their own chunk."""
    parts = [f'"""The {name} module."""\n\nimport os\n']
    for i in range(functions):
        body = "\n".join(f"    value_{j} = os.path.join('{name}', '{i}', str({j}))" for j in range(body_lines))
        parts.append(f"\ndef {name}_function_{i}(argument):\n    \"\"\"Handle {name} case {i}.\"\"\"\n{body}\n    return value_0\n")
    return "".join(parts)
