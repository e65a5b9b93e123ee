"""Property tests: random histories, synced step by step with random interruptions, always
leave the index equal to a fresh index of the same tree (hypothesis draws the histories).

An interruption is a run cut short by --max-files, or a sync in its own process SIGKILLed at a
random named step (the test-only switch of gitindex/faults.py, as tests/test_faults.py uses it).
A fixed handful runs in `make test`; `make test-slow` runs a few hundred."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CountingEmbedder, GitRepo, git, open_index, python_source
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitindex import faults

NAMES = ("a.py", "b.py", "docs/c.md", "pkg/d.py", "pkg/e.go")
KINDS = ("add", "modify", "delete", "rename", "copy", "mode", "binary", "symlink", "revert", "empty", "branch")
_counter = itertools.count()


def _content(name: str, version: int) -> str:
    if name.endswith(".md"):
        return f"# Notes {version}\n\nHow the project parses configuration files, revision {version}.\n"
    if name.endswith(".go"):
        return f"package pkg\n\n// Value{version} returns {version}.\nfunc Value{version}() int {{\n\treturn {version}\n}}\n"
    return python_source(f"v{version}", functions=1 + version % 3)


def _apply(repo: GitRepo, kind: str, pick: int, version: int) -> None:
    """One step of a history: change the tree and commit (some steps commit nothing new)."""
    tracked = [p for p in NAMES if (repo.path / p).exists() or (repo.path / p).is_symlink()]
    name = NAMES[pick % len(NAMES)]
    other = tracked[pick % len(tracked)] if tracked else None
    if kind in ("add", "modify") or other is None:
        repo.commit({name: _content(name, version)}, message=f"{kind} {name}")
    elif kind == "delete":
        repo.git("rm", "-q", other)
        repo.commit(message=f"delete {other}")
    elif kind in ("rename", "copy"):
        target = f"moved/{version}-{Path(other).name}"
        (repo.path / target).parent.mkdir(parents=True, exist_ok=True)
        if kind == "rename":
            repo.git("mv", other, target)
            repo.commit(message=f"rename {other}")
        else:
            source = repo.path / other
            data = os.readlink(source) if source.is_symlink() else source.read_bytes()
            repo.commit({target: data if isinstance(data, bytes) else data.encode()}, message=f"copy {other}")
    elif kind == "mode":
        path = repo.path / other
        if not path.is_symlink():
            path.chmod(path.stat().st_mode ^ 0o111)
        repo.git("add", "-A")
        repo.commit(message=f"mode {other}")
    elif kind == "binary":
        repo.commit({name: b"\x00\x01binary" + bytes([version % 256])}, message=f"binary {name}")
    elif kind == "symlink":
        link = repo.path / f"link{version}"
        link.symlink_to(other)
        repo.git("add", "-A")
        repo.commit(message="symlink")
    elif kind == "revert":  # (of a commit that changed something; an empty one has nothing to revert)
        root = repo.git("rev-list", "--count", "HEAD").strip() == "1"
        if root or repo.git("rev-parse", "HEAD^{tree}") != repo.git("rev-parse", "HEAD~1^{tree}"):
            repo.git("revert", "--no-edit", "HEAD")
    elif kind == "empty":
        repo.git("commit", "-q", "--allow-empty", "-m", "empty")
    elif kind == "branch":  # a branch that changes a file, then back: HEAD's tree is the same
        repo.git("checkout", "-q", "-b", f"side{version}")
        repo.commit({name: _content(name, version + 1000)}, message="side")
        repo.git("checkout", "-q", "-")


def _points(path: Path) -> set[tuple[str, str, int, int]]:
    with open_index(path) as ix, ix.workspace.store.session():
        return {(p["path"], p["hash"], int(p["start_line"]), int(p["end_line"])) for _, p in ix.workspace.store.scroll()}


# How a step's first sync ends: not at all (None), cut short after one file, or killed at a step.
CUTS = st.one_of(st.sampled_from((None, None, "max-files")), st.sampled_from(faults.STEPS).map(lambda s: f"kill:{s}"))
STEPS = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 20), CUTS), min_size=2, max_size=6)
Step = tuple[str, int, str | None]


def _killed_sync(repo: GitRepo, step: str) -> None:
    """A sync in its own process that SIGKILLs itself at `step` (or, when this change never
    reaches it, e.g. `deleted` with nothing to delete, ends normally)."""
    done = subprocess.run([sys.executable, "-m", "gitindex", "sync", "--quiet", "--batch-size", "2"],
                          cwd=repo.path, env={**os.environ, "_GITINDEX_TEST_KILL_AT": step},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode in (-signal.SIGKILL, 0), (step, done.returncode, done.stderr)


def _history_equals_fresh(tmp: Path, embedder: CountingEmbedder, steps: list[Step]) -> None:
    repo = GitRepo(tmp / "repo")
    repo.commit({"a.py": _content("a.py", 0), "docs/c.md": _content("docs/c.md", 0)})
    with open_index(repo.path, embedder) as ix:
        ix.sync()
    for i, (kind, pick, cut) in enumerate(steps, 1):
        _apply(repo, kind, pick, next(_counter))
        if cut == "max-files":  # a run cut short after one file: the next one must finish the work
            with open_index(repo.path, embedder, max_files=1) as ix:
                ix.sync()
        elif cut is not None:  # killed at a named step: the next one must finish the work
            _killed_sync(repo, cut.removeprefix("kill:"))
        with open_index(repo.path, embedder) as ix:
            assert ix.sync().complete
            result = ix.verify()
            assert result.ok, (i, kind, result)
    git(tmp, "clone", "-q", str(repo.path), "fresh")
    with open_index(tmp / "fresh", embedder) as ix:
        ix.sync()
    assert _points(repo.path) == _points(tmp / "fresh")


@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_random_histories_equal_a_fresh_index(tmp_path_factory: pytest.TempPathFactory,
                                              embedder: CountingEmbedder, steps: list[Step]) -> None:
    _history_equals_fresh(tmp_path_factory.mktemp("history"), embedder, steps)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_many_random_histories_equal_a_fresh_index(tmp_path_factory: pytest.TempPathFactory,
                                                   embedder: CountingEmbedder,
                                                   steps: list[Step]) -> None:
    _history_equals_fresh(tmp_path_factory.mktemp("history"), embedder, steps)


# -- many refs -----------------------------------------------------------------------------------
# Branches forked from one another (a new one is an overlay on the closest tracked view), changed,
# merged over and deleted, all synced in one index; `main` stays checked out. After each step
# verify() re-chunks every branch's tree from git and checks each point's views.
BRANCHES = ("main", "b1", "b2", "b3")
REF_KINDS = ("add", "modify", "delete", "rename", "revert", "fork", "drop", "catch-up")
REF_CUTS = st.one_of(st.just(None), st.sampled_from(faults.STEPS + faults.REF_STEPS).map(lambda s: f"kill:{s}"))
REF_HISTORY = st.lists(st.tuples(st.sampled_from(BRANCHES), st.sampled_from(REF_KINDS), st.integers(0, 20), REF_CUTS),
                       min_size=2, max_size=6)
RefStep = tuple[str, str, int, str | None]


def _branches(repo: GitRepo) -> list[str]:
    return sorted(repo.git("for-each-ref", "--format=%(refname:short)", "refs/heads").split())


def _apply_to_branch(repo: GitRepo, branch: str, kind: str, pick: int, version: int) -> None:
    existing = _branches(repo)
    if kind == "drop":  # delete a branch (never the checked-out main)
        if branch != "main" and branch in existing:
            repo.git("branch", "-q", "-D", branch)
        return
    if kind == "fork" or branch not in existing:  # (re)start `branch` at another branch, one change away
        start = existing[pick % len(existing)]
        if branch == "main" or start == branch:
            start = "main"
        if branch != "main":
            repo.git("branch", "-q", "-f", branch, start)
        kind = "modify"
    if kind == "catch-up":  # `branch` moves to main's tree plus what it had (a merge), or main to it
        if branch != "main":
            repo.git("checkout", "-q", branch)
            try:
                repo.git("merge", "-q", "--no-edit", "-X", "theirs", "main")
            except subprocess.CalledProcessError:  # modify/delete, which -X theirs leaves: main's side wins
                for path in repo.git("diff", "--name-only", "--diff-filter=U").split():
                    if repo.git("ls-tree", "main", "--", path):
                        repo.git("checkout", "main", "--", path)
                    else:
                        repo.git("rm", "-q", "--", path)
                repo.git("commit", "-q", "--no-edit")
            repo.git("checkout", "-q", "main")
        return
    if branch != "main":
        repo.git("checkout", "-q", branch)
    _apply(repo, kind, pick, version)
    if branch != "main":
        repo.git("checkout", "-q", "main")


def _refs_history_is_exact(tmp: Path, embedder: CountingEmbedder, steps: list[RefStep]) -> None:
    repo = GitRepo(tmp / "repo")
    repo.commit({"a.py": _content("a.py", 0), "docs/c.md": _content("docs/c.md", 0)})
    with open_index(repo.path, embedder) as ix:
        ix.sync()
    for i, (branch, kind, pick, cut) in enumerate(steps, 1):
        _apply_to_branch(repo, branch, kind, pick, next(_counter))
        refs = _branches(repo)
        if cut is not None:  # killed at a named step: the next sync must finish the work
            args = [a for ref in refs for a in ("--ref", ref)]
            done = subprocess.run([sys.executable, "-m", "gitindex", "sync", "--quiet", "--batch-size", "2", *args],
                                  cwd=repo.path, env={**os.environ, "_GITINDEX_TEST_KILL_AT": cut.removeprefix("kill:")},
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode in (-signal.SIGKILL, 0), (cut, done.returncode, done.stderr)
        with open_index(repo.path, embedder) as ix:
            assert ix.sync(refs).complete
            result = ix.verify()
            assert result.ok and set(result.refs) == set(refs), (i, branch, kind, result)


@settings(max_examples=3, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=REF_HISTORY)
def test_random_histories_of_many_refs_keep_every_view_exact(tmp_path_factory: pytest.TempPathFactory,
                                                             embedder: CountingEmbedder, steps: list[RefStep]) -> None:
    _refs_history_is_exact(tmp_path_factory.mktemp("refs"), embedder, steps)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=REF_HISTORY)
def test_many_random_histories_of_many_refs_keep_every_view_exact(tmp_path_factory: pytest.TempPathFactory,
                                                                  embedder: CountingEmbedder,
                                                                  steps: list[RefStep]) -> None:
    _refs_history_is_exact(tmp_path_factory.mktemp("refs"), embedder, steps)
