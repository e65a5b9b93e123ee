"""The command line through CliRunner: JSON contracts, messages and exit codes, on real
repositories with the real model and the real embedded store (the CLI loads the model itself)."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import filelock
import pytest
import typer
from click.testing import Result
from conftest import GitRepo, open_index
from typer.testing import CliRunner

from gitindex import memory
from gitindex.cli import app
from gitindex.errors import EXIT_LOCKED, EXIT_USAGE

runner = CliRunner()
# qdrant-client checks the server's version in a background thread; with no server it warns.
pytestmark = pytest.mark.filterwarnings("ignore:Failed to obtain server version:UserWarning")

SYNC_KEYS = {"commit", "files", "chunks", "seconds", "peak_rss_mb", "memory_limit_mb"}
SYNC_FILES_KEYS = {"added", "modified", "deleted", "renamed", "unchanged", "skipped"}
SYNC_CHUNKS_KEYS = {"embedded", "reused", "deleted"}
STATUS_KEYS = {"synced_commit", "head", "files", "points", "pending_files", "store", "collection", "model"}
HIT_KEYS = {"path", "start_line", "end_line", "score", "text", "symbol", "kind", "language", "refs"}
VERIFY_KEYS = {"stale", "missing", "duplicates", "ok"}
ROOMY_MB = 64_000  # a memory limit no test process comes near

RETRY = '''"""Uploads to the storage bucket."""

import time


def upload_with_retry(client, blob, attempts=5):
    """Retry failed uploads with exponential backoff."""
    for attempt in range(attempts):
        try:
            return client.put(blob)
        except ConnectionError:
            time.sleep(2 ** attempt)
    raise RuntimeError("upload failed after retries")
'''
PARSE = '''import tomllib


def load_settings(path):
    """Parse the configuration file into a dictionary of settings."""
    with open(path, "rb") as handle:
        return tomllib.load(handle)
'''
GUIDE = "# User guide\n\nInstall the package, then run the command line tool on your project.\n"


def cli(*args: str, code: int = 0, env: dict[str, str] | None = None) -> Result:
    result = runner.invoke(app, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    return result


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def _clean_env(mp: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("GITINDEX_", "QDRANT_")) or name in {"GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE"}:
            mp.delenv(name)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GitRepo, dict[str, Any]]]:
    """A small repository synced once through the CLI; tests that use it only read it."""
    repo = GitRepo(tmp_path_factory.mktemp("indexed") / "project")
    repo.commit({"src/retry.py": RETRY, "src/parse.py": PARSE, "docs/guide.md": GUIDE, ".env": "TOKEN=hunter2\n"})
    with pytest.MonkeyPatch.context() as mp:
        _clean_env(mp)
        # A limit given, so that the summary does not depend on the memory free at the moment.
        summary = as_json(cli("sync", str(repo.path), "--json", env={"GITINDEX_MEMORY_LIMIT_MB": str(ROOMY_MB)}))
        yield repo, summary


# -- JSON contracts ------------------------------------------------------------------------------
def test_sync_json_contract(indexed: tuple[GitRepo, dict[str, Any]]) -> None:
    repo, out = indexed
    assert set(out) >= SYNC_KEYS
    assert set(out["files"]) >= SYNC_FILES_KEYS and set(out["chunks"]) == SYNC_CHUNKS_KEYS
    assert out["commit"] == repo.git("rev-parse", "HEAD")
    assert out["files"]["added"] == 3 and out["files"]["skipped"] == 1  # .env holds secrets
    assert out["chunks"]["embedded"] >= 3 and out["chunks"]["reused"] == 0
    assert all(isinstance(out["files"][k], int) for k in SYNC_FILES_KEYS)
    assert isinstance(out["seconds"], float) and out["seconds"] > 0
    assert isinstance(out["peak_rss_mb"], float) and out["peak_rss_mb"] > 10
    assert out["memory_limit_mb"] == ROOMY_MB > out["peak_rss_mb"] and not out["notes"]  # no memory notes under it

    again = as_json(cli("sync", str(repo.path), "--json"))
    assert again["files"]["unchanged"] == 3 and again["files"]["added"] == 0
    assert again["chunks"] == {"embedded": 0, "reused": 0, "deleted": 0}
    assert again["memory_limit_mb"] is None  # nothing applied: no memory figures read (start-up)
    assert as_json(cli("sync", str(repo.path), "--json", "--memory-limit", "3000"))["memory_limit_mb"] == 3000


def test_without_a_limit_a_sync_keeps_under_a_share_of_the_memory_available(repo: GitRepo) -> None:
    repo.commit({"a.py": PARSE})
    out = as_json(cli("sync", str(repo.path), "--json"))
    # A share of the memory available (its formula: test_memory.py), which is at most that share
    # of all the memory there is.
    total_mb = next(int(line.split()[1]) / 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                    if line.startswith("MemTotal:"))
    assert out["files"]["added"] == 1 and 0 < out["memory_limit_mb"] <= total_mb * memory.DEFAULT_SHARE


def test_status_json_contract(indexed: tuple[GitRepo, dict[str, Any]]) -> None:
    repo, summary = indexed
    out = as_json(cli("status", str(repo.path), "--json"))
    assert set(out) >= STATUS_KEYS
    head = repo.git("rev-parse", "HEAD")
    assert out["synced_commit"] == out["head"] == head
    assert out["files"] == 3 and out["pending_files"] == 0
    assert out["points"] == summary["chunks"]["embedded"]
    assert Path(out["store"]).is_relative_to(repo.path / ".git")
    assert out["collection"] == "project" and out["model"].partition("#")[0] == "all-MiniLM-L6-v2"
    assert out["model"] == open_index(repo.path).workspace.model_key  # with the int8 variant where it runs


def test_status_from_a_subdirectory(indexed: tuple[GitRepo, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    repo, _ = indexed
    monkeypatch.chdir(repo.path / "src")
    text = cli("status").stdout
    assert repo.git("rev-parse", "HEAD")[:12] in text and "3 files" in text


def test_search_json_best_first_with_limit_and_path(indexed: tuple[GitRepo, dict[str, Any]]) -> None:
    repo, _ = indexed
    where = ("--repo", str(repo.path))
    hits = as_json(cli("search", "retry failed uploads with backoff", *where, "--json"))
    assert hits and all(set(h) == HIT_KEYS for h in hits)
    assert hits[0]["path"] == "src/retry.py" and "upload_with_retry" in hits[0]["text"]
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(1 <= h["start_line"] <= h["end_line"] for h in hits)

    assert len(as_json(cli("search", "retry failed uploads", *where, "--json", "--limit", "1"))) == 1
    md = as_json(cli("search", "retry failed uploads", *where, "--json", "--path", "*.md"))
    assert md and {h["path"] for h in md} == {"docs/guide.md"}
    assert as_json(cli("search", "anything", *where, "--json", "--path", "nothing/*.rs")) == []

    human = cli("search", "parse the configuration file", *where, "--limit", "1").stdout
    assert human.startswith("src/parse.py:") and "score" in human
    cli("search", "x", *where, "--limit", "0", code=EXIT_USAGE)


def test_verify_json_ok(indexed: tuple[GitRepo, dict[str, Any]]) -> None:
    repo, _ = indexed
    out = as_json(cli("verify", str(repo.path), "--json"))
    assert set(out) >= VERIFY_KEYS
    assert out["ok"] is True and (out["stale"], out["missing"], out["duplicates"]) == (0, 0, 0)


# -- verify and freshness when the index is not exact -------------------------------------------
def test_verify_fails_when_a_point_is_missing(repo: GitRepo) -> None:
    repo.commit({"retry.py": RETRY})
    cli("sync", str(repo.path), "--quiet")
    ix = open_index(repo.path)
    with ix.workspace.store.session():
        ix.workspace.store.delete_path("retry.py")
    ix.close()
    out = as_json(cli("verify", str(repo.path), "--json", code=1))
    assert out["ok"] is False and out["missing"] >= 1 and out["stale"] == 0
    assert "not ok" in cli("verify", str(repo.path), code=1).stdout


def test_stale_index_warns_verify_fails_and_refresh_syncs(repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    synced = repo.commit({"retry.py": RETRY, "parse.py": PARSE})
    cli("sync", str(repo.path), "--quiet")
    head = repo.commit({"parse.py": PARSE.replace("dictionary of settings", "mapping of options")})
    monkeypatch.chdir(repo.path)

    out = as_json(cli("verify", "--json", code=1))  # HEAD moved: parse.py's points are stale
    assert out["stale"] >= 1 and out["missing"] >= 1

    result = cli("search", "retry failed uploads", "--json")
    assert f"index at {synced[:12]}, HEAD at {head[:12]}, 1 files differ" in result.stderr
    assert as_json(result)[0]["path"] == "retry.py"  # results still come, from the old index

    refreshed = cli("search", "mapping of options", "--json", "--refresh")
    assert "HEAD at" not in refreshed.stderr
    assert as_json(refreshed)[0]["path"] == "parse.py" and "mapping of options" in as_json(refreshed)[0]["text"]
    status = as_json(cli("status", "--json"))
    assert status["synced_commit"] == head and status["pending_files"] == 0
    cli("verify")


# -- exit codes ----------------------------------------------------------------------------------
def test_empty_repository_is_not_an_error(repo: GitRepo) -> None:
    result = cli("sync", str(repo.path))
    assert "no commits" in result.stderr
    out = as_json(cli("sync", str(repo.path), "--json"))
    assert set(out) >= SYNC_KEYS and out["commit"] is None and out["chunks"]["embedded"] == 0
    status = as_json(cli("status", str(repo.path), "--json"))
    assert status["head"] is None and status["files"] == 0
    assert "no commits" in cli("verify", str(repo.path)).stderr
    verified = as_json(cli("verify", str(repo.path), "--json"))  # JSON even with nothing to verify
    assert set(verified) >= VERIFY_KEYS and verified["ok"] is True
    assert as_json(cli("search", "anything", "--repo", str(repo.path), "--json")) == []


def test_not_a_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    result = cli("sync", str(plain), code=1)
    assert "not inside a git repository" in result.stderr and "gitindex index" in result.stderr
    assert "not inside a git repository" in cli("sync", str(tmp_path / "missing"), code=1).stderr


def test_every_command_shares_one_error_boundary(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    for args in (["log", str(plain)], ["hooks", "wait", str(plain)], ["hooks", "status", str(plain)],
                 ["hooks", "install", str(plain)]):
        result = cli(*args, code=1)
        assert result.stderr.startswith("gitindex: error:") and "git repository" in result.stderr, args
    assert "is not a directory" in cli("status", str(tmp_path / "missing"), code=1).stderr


def test_a_bug_exits_3_with_its_traceback_in_a_log_not_on_screen(repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    repo.commit({"a.py": "x = 1\n"})
    cli("sync", str(repo.path), "--quiet")
    import gitindex.status

    def broken(ws: object) -> None:  # a stand-in for a bug: one cannot be caused for real
        raise RuntimeError("a bug in status")

    monkeypatch.setattr(gitindex.status, "status", broken)
    result = cli("status", str(repo.path), code=3)
    log = repo.path / ".git" / "gitindex" / "gitindex-error.log"
    assert str(log) in result.stderr and "a bug in status" in log.read_text()
    assert "Traceback" in log.read_text()


def test_bad_ref_is_a_clear_error(repo: GitRepo) -> None:
    repo.commit({"a.py": "x = 1\n"})
    for command in ("sync", "verify"):
        result = cli(command, str(repo.path), "--ref", "no-such-branch", code=1)
        assert "no-such-branch" in result.stderr and result.stderr.startswith("gitindex: error:")


@pytest.mark.parametrize("where", ["pyproject.toml", ".gitindex.toml"])
def test_unknown_config_key_is_a_usage_error(repo: GitRepo, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    text = "batch-sise = 8\n"
    repo.commit({
        where: f"[tool.gitindex]\n{text}" if where == "pyproject.toml" else text,
        "sub/a.py": "x = 1\n",
    })
    monkeypatch.chdir(repo.path / "sub")  # the config of the repository's top applies
    for command in ("sync", "status", "verify"):
        result = cli(command, code=EXIT_USAGE)
        assert "batch-sise" in result.stderr and where in result.stderr


def test_bad_config_values_from_env_and_flags_are_usage_errors(repo: GitRepo) -> None:
    repo.commit({"a.py": "x = 1\n"})
    result = cli("sync", str(repo.path), env={"GITINDEX_BATCH_SIZE": "lots"}, code=EXIT_USAGE)
    assert "GITINDEX_BATCH_SIZE" in result.stderr
    assert "batch_size" in cli("sync", str(repo.path), "--batch-size", "0", code=EXIT_USAGE).stderr
    cli("sync", str(repo.path), "--qdrant-api-key", "k", code=EXIT_USAGE)  # never a flag
    assert "memory_limit_mb" in cli("sync", str(repo.path), "--memory-limit", "0", code=EXIT_USAGE).stderr
    assert "GITINDEX_MEMORY_LIMIT_MB" in cli("sync", str(repo.path), env={"GITINDEX_MEMORY_LIMIT_MB": "1G"},
                                            code=EXIT_USAGE).stderr
    assert as_json(cli("sync", str(repo.path), "--memory-limit", "5000", "--json"))["memory_limit_mb"] == 5000


def test_staged_and_ref_exclude_each_other(repo: GitRepo) -> None:
    repo.commit({"a.py": "x = 1\n"})
    result = cli("sync", str(repo.path), "--staged", "--ref", "HEAD", code=EXIT_USAGE)
    assert "--staged" in result.stderr and "--ref" in result.stderr


def test_unreachable_server_is_an_error_not_a_bug(repo: GitRepo) -> None:
    repo.commit({"a.py": "x = 1\n"})
    env = {"QDRANT_URL": "http://127.0.0.1:9", "QDRANT_API_KEY": "very-secret-key", "GITINDEX_QDRANT_TIMEOUT": "0.5"}
    with pytest.warns(UserWarning):  # qdrant-client: key over http, and no server version
        result = cli("status", str(repo.path), env=env, code=1)
    assert "127.0.0.1:9" in result.stderr and "very-secret-key" not in result.output


def test_switching_collection_and_back_leaves_no_stale_points(repo: GitRepo) -> None:
    repo.commit({"retry.py": RETRY, "parse.py": PARSE})
    cli("sync", str(repo.path), "--quiet")
    cli("sync", str(repo.path), "--quiet", "--collection", "other")
    repo.git("rm", "-q", "parse.py")
    repo.commit(message="remove parse.py")
    cli("sync", str(repo.path), "--quiet")  # back to the default collection
    cli("verify", str(repo.path))  # parse.py's points are still in it: 1 stale


# -- one sync at a time --------------------------------------------------------------------------
def test_second_sync_while_locked(repo: GitRepo) -> None:
    repo.commit({"a.py": "x = 1\n"})
    ix = open_index(repo.path)
    lock = filelock.FileLock(str(ix.workspace.sync_lock_path))
    ix.workspace.sync_lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock:
        result = cli("sync", str(repo.path), "--no-wait", code=EXIT_LOCKED)
        assert "another gitindex sync is running" in result.stderr

        result = cli("sync", str(repo.path), env={"GITINDEX_LOCK_TIMEOUT": "0.3"}, code=EXIT_LOCKED)
        assert "waiting for another sync" in result.stderr and "locked" in result.stderr
        assert cli("sync", str(repo.path), "--json", "--no-wait", code=EXIT_LOCKED).stdout == ""
    ix.close()
    assert as_json(cli("status", str(repo.path), "--json"))["synced_commit"] is None  # nothing ran


# -- --staged, as a pre-commit hook runs it ------------------------------------------------------
def test_staged_with_hook_style_environment(repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    repo.commit({"retry.py": RETRY})
    # `git commit -a` and partial commits run hooks with GIT_INDEX_FILE set to a temporary index.
    hook_index = repo.path / ".git" / "next-index-test.lock"
    hook_env = {"GIT_INDEX_FILE": str(hook_index)}
    repo.git("read-tree", "HEAD", env=hook_env)
    repo.write({"sub/staged.py": PARSE})
    repo.git("add", "sub/staged.py", env=hook_env)
    assert "sub/staged.py" not in repo.git("ls-files")  # not in the ordinary index

    monkeypatch.chdir(repo.path / "sub")
    env = {"GIT_DIR": str(repo.path / ".git"), **hook_env}
    out = as_json(cli("sync", "--staged", "--json", env=env))
    assert out["commit"] is None and out["files"]["added"] == 2
    assert as_json(cli("verify", "--staged", "--json", env=env))["ok"] is True
    # git may give the path relative to the working directory
    relative = {**env, "GIT_INDEX_FILE": os.path.relpath(hook_index, repo.path / "sub")}
    assert as_json(cli("verify", "--staged", "--json", env=relative))["ok"] is True
    # The ordinary index lacks sub/staged.py: against it, its points are stale.
    assert as_json(cli("verify", "--staged", "--json", code=1))["stale"] >= 1
    hits = as_json(cli("search", "parse the configuration file", "--json", "--limit", "1", env=env))
    assert hits[0]["path"] == "sub/staged.py"


def test_staged_uses_the_index_not_the_working_tree(repo: GitRepo) -> None:
    repo.commit({"retry.py": RETRY})
    repo.write({"parse.py": PARSE, "unstaged.py": "print('not added')\n"})
    repo.git("add", "parse.py")
    out = as_json(cli("sync", str(repo.path), "--staged", "--json"))
    assert out["files"]["added"] == 2
    ix = open_index(repo.path)
    assert {f.path for f in ix.workspace.manifest.files()} == {"retry.py", "parse.py"}
    ix.close()


# -- a plain directory ---------------------------------------------------------------------------
def test_index_a_plain_directory(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    (root / "src").mkdir(parents=True)
    (root / "src" / "retry.py").write_text(RETRY)
    (root / "build").mkdir()
    (root / "build" / "generated.py").write_text(PARSE)
    (root / ".gitignore").write_text("build/\n")
    out = as_json(cli("index", str(root), "--json"))
    assert set(out) >= SYNC_KEYS and out["commit"] is None
    assert out["files"]["added"] == 2  # .gitignore and src/retry.py; build/ is ignored
    assert as_json(cli("verify", str(root), "--json"))["ok"] is True
    hits = as_json(cli("search", "retry failed uploads", "--repo", str(root), "--json"))
    assert hits[0]["path"] == "src/retry.py"
    assert as_json(cli("index", str(root), "--json"))["chunks"]["embedded"] == 0
    assert as_json(cli("status", str(root), "--json"))["files"] == 2


# -- the module entry point ----------------------------------------------------------------------
def test_python_dash_m_help() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITINDEX_", "QDRANT_"))}
    out = subprocess.run([sys.executable, "-m", "gitindex", "--help"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    for command in ("sync", "index", "search", "status", "verify"):
        assert command in out.stdout


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group under `command` that a user can see, with its path of names.
    (Duck-typed: typer's groups are click groups, or, in newer typer, groups of its own copy.)"""
    if command.hidden:
        return
    yield path, command
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from _commands(sub, (*path, name))


def _words(text: str) -> str:
    return " ".join(text.split())


def test_every_command_has_help() -> None:
    """Walks the app's command tree, so a command added later (or moved into a group) is covered."""
    tree = dict(_commands(typer.main.get_command(app)))
    found = {" ".join(path) for path in tree}
    # The walk reaches into groups: the commands of the README are all there.
    assert {"sync", "index", "search", "status", "verify", "log", "hooks", "hooks install",
            "hooks uninstall", "hooks status", "hooks log", "hooks wait"} <= found, found
    assert "hooks run" not in found  # hidden: what the hook scripts call
    for path, command in tree.items():
        doc = inspect.getdoc(command.callback) if command.callback is not None else None
        summary = (doc or command.help or "").strip().splitlines()
        assert summary and command.help, f"{' '.join(path) or 'gitindex'}: no help text"
        text = _words(cli(*path, "--help", env={"COLUMNS": "200"}).stdout)  # exit code 0, checked by cli()
        assert _words(summary[0]) in text, (path, summary[0])
        for param in command.params:
            if getattr(param, "param_type_name", None) == "option" and not param.hidden:
                assert max(param.opts, key=len) in text, (path, param.opts)
        for name in getattr(command, "commands", None) or {}:
            if (*path, name) in tree:
                assert name in text, (path, name)  # a group lists what is under it



# -- freshness compares trees; queries use the index's model; reads leave no trace ---------------
def test_freshness_compares_trees_not_commits(repo: GitRepo) -> None:
    repo.commit({"retry.py": RETRY})
    cli("sync", str(repo.path), "--quiet")
    repo.git("commit", "-q", "--allow-empty", "-m", "nothing changed")
    assert as_json(cli("status", str(repo.path), "--json"))["pending_files"] == 0
    result = cli("search", "retry uploads", "--repo", str(repo.path), "--json")
    assert "files differ" not in result.stderr and as_json(result)

    repo.write({"parse.py": PARSE})
    repo.git("add", "parse.py")
    cli("sync", str(repo.path), "--staged", "--quiet")
    repo.git("commit", "-q", "-m", "add parse.py")  # HEAD's tree is now the staged tree
    result = cli("search", "parse the configuration", "--repo", str(repo.path), "--json")
    assert "files differ" not in result.stderr and "not been synced" not in result.stderr
    assert as_json(result)[0]["path"] == "parse.py"


def test_search_refuses_a_model_other_than_the_index_s(repo: GitRepo) -> None:
    repo.commit({"retry.py": RETRY})
    cli("sync", str(repo.path), "--quiet")
    ix = open_index(repo.path)
    ix.workspace.manifest.set(model="another-model")  # as if another model had built the index
    ix.close()
    result = cli("search", "retry", "--repo", str(repo.path), code=1)
    assert "built with model 'another-model'" in result.stderr


def test_reading_commands_leave_no_trace_in_a_plain_directory(tmp_path: Path) -> None:
    plain = tmp_path / "notes"
    plain.mkdir()
    (plain / "a.txt").write_text("hello\n")
    for args in (["status", str(plain)], ["verify", str(plain)], ["search", "hello", "--repo", str(plain)]):
        result = cli(*args, code=1)
        assert "is not indexed" in result.stderr
    assert not (plain / ".gitindex").exists()


def test_backend_switch_reembeds_and_search_follows(repo: GitRepo) -> None:
    repo.commit({"retry.py": RETRY, "parse.py": PARSE})
    first = as_json(cli("sync", str(repo.path), "--json"))
    assert first["chunks"]["embedded"] > 0
    torch_run = as_json(cli("sync", str(repo.path), "--json", "--backend", "torch"))
    assert any("model, chunker or store layout changed" in note for note in torch_run["notes"])
    assert as_json(cli("status", str(repo.path), "--json", ))["model"] == "all-MiniLM-L6-v2"
    assert as_json(cli("verify", str(repo.path), "--json"))["ok"]
    hits = as_json(cli("search", "retry failed uploads", "--repo", str(repo.path), "--json", "--backend", "torch"))
    assert hits[0]["path"] == "retry.py"
    cli("sync", str(repo.path), "--backend", "tensorflow", code=EXIT_USAGE)


def test_the_one_verb_app_main_builds_parses_as_the_whole_app() -> None:
    from gitindex.cli import _VERBS, make_app

    for verb in _VERBS:
        whole = runner.invoke(app, [verb, "--help"])
        alone = runner.invoke(make_app([verb]), [verb, "--help"])
        assert whole.exit_code == alone.exit_code == 0 and whole.stdout == alone.stdout, verb
    assert runner.invoke(make_app(["sync"]), ["sync", "--bogus"]).exit_code == EXIT_USAGE

