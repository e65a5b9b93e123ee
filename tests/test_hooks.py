"""Git hooks end to end: real git commands fire real hooks that sync in the background."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import filelock
import pytest
import yaml
from conftest import GIT_ENV, GitRepo, git, python_source
from typer.testing import CliRunner

from gitindex.cli import app
from gitindex.hooks import (
    CHAINED,
    EVENTS,
    RunnerFiles,
    hooks_dir,
    pending_events,
    read_log,
    record_event,
    render,
)
from gitindex.repo import Repo
from gitindex.runner import serve, spawn

ROOT = Path(__file__).resolve().parents[1]
BIN = str(Path(sys.executable).parent)
# Content that a sync indexes without the model (empty files and secrets are skipped): for the
# tests about plumbing, so only the tests about indexing pay for loading the model.
NO_MODEL = {"empty.txt": "", ".env": "TOKEN=1\n"}


def gi(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=env)


def wait_idle(path: Path, ok: bool = True) -> None:
    result = gi("hooks", "wait", str(path), "--timeout", "120")
    assert (result.exit_code == 0) == ok, result.output


def runs(path: Path) -> list[dict[str, Any]]:
    return json.loads(gi("log", str(path), "--json", "-n", "1000").stdout)


def events(record: dict[str, Any]) -> list[str]:
    return [e.split(" ", 1)[0] for e in record["events"]]


def verified(path: Path, *args: str) -> bool:
    result = gi("verify", str(path), "--json", *args)
    return bool(json.loads(result.stdout)["ok"])


def state_dir(path: Path) -> Path:
    return Path(git(path, "rev-parse", "--absolute-git-dir")) / "gitindex" / "hooks"


def commit_quietly(repo: GitRepo, files: dict[str, str], message: str) -> None:
    """A commit with every hook switched off (to build history without firing syncs)."""
    repo.write(dict(files))
    repo.git("add", "-A")
    repo.git("-c", "core.hooksPath=/dev/null", "commit", "-q", "-m", message)


def test_shipped_scripts_and_pre_commit_manifest() -> None:
    from pre_commit.clientlib import load_manifest

    for event in EVENTS:
        script = ROOT / "hooks" / event
        assert script.read_text() == render(event), f"hooks/{event} is stale: regenerate it with render()"
        assert os.access(script, os.X_OK)
        subprocess.run(["sh", "-n", str(script)], check=True)
    manifest = {h["id"]: h for h in load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))}
    # pre-commit 4.4+ reads `system` as its new name `unsupported`; 3.x knows only `system`.
    languages = {h["id"]: h["language"] for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(manifest) == {"gitindex", "gitindex-system", "gitindex-staged", "gitindex-staged-system"}
    for hook_id, hook in manifest.items():
        assert hook["always_run"] and not hook["pass_filenames"]
        assert languages[hook_id] == ("system" if hook_id.endswith("-system") else "python")
        twin = manifest[hook_id.removesuffix("-system")]
        assert (hook["entry"], hook["stages"]) == (twin["entry"], twin["stages"])
    assert manifest["gitindex"]["stages"] == list(EVENTS)
    assert manifest["gitindex-staged"]["stages"] == ["pre-commit"]


def test_commit_switch_merge_rebase_each_leave_the_index_verified(repo: GitRepo) -> None:
    repo.commit({"app.py": python_source("app"), "lib.py": python_source("lib")})
    assert gi("hooks", "install", str(repo.path)).exit_code == 0

    repo.commit({"util.py": python_source("util")}, "add util")
    wait_idle(repo.path)
    assert verified(repo.path)
    assert events(runs(repo.path)[-1]) == ["post-commit"]

    # History to switch to and rebase, made with the hooks off. (The files reuse text that is
    # indexed already, so only the first sync pays for loading the model.)
    repo.git("checkout", "-q", "-b", "feature")
    for i in range(10):
        commit_quietly(repo, {f"feature/f{i}.py": python_source(("app", "lib", "util")[i % 3])}, f"feature {i}")
    repo.git("checkout", "-q", "main")  # a branch switch
    wait_idle(repo.path)
    assert verified(repo.path)
    assert events(runs(repo.path)[-1])[-1] == "post-checkout"
    repo.git("mv", "lib.py", "library.py")
    repo.commit(message="rename lib")
    wait_idle(repo.path)
    assert verified(repo.path) and runs(repo.path)[-1]["summary"]["files"]["renamed"] == 1

    # A file checkout is not a branch switch: no event, no sync.
    before = len(runs(repo.path))
    repo.git("checkout", "HEAD~1", "--", "util.py")
    repo.git("checkout", "HEAD", "--", "util.py")
    assert not (state_dir(repo.path) / "pending").exists()

    repo.git("checkout", "-q", "feature")
    wait_idle(repo.path)
    assert verified(repo.path)
    assert len(runs(repo.path)) == before + 1

    # A 10-commit rebase fires a dozen hooks; they coalesce into one sync of the final state.
    # How many syncs a burst makes depends on timing (a runner may start before the burst ends);
    # here the test holds the runner lock during the rebase, as a runner busy with an earlier
    # sync would: every event is then provably pending (each runner a hook starts finds the lock
    # taken and exits) when the next runner takes them, and it takes them all at once.
    before = len(runs(repo.path))
    files = RunnerFiles(state_dir(repo.path))
    with filelock.FileLock(str(files.lock)):
        repo.git("rebase", "-q", "main")
        pending = pending_events(files)
        assert [e.split(" ", 1)[0] for e in pending].count("post-commit") == 10, pending
        assert "post-rewrite" in {e.split(" ", 1)[0] for e in pending}, pending
        assert len(runs(repo.path)) == before and not files.syncing.exists()  # nothing synced yet
    spawn([sys.executable, "-m", "gitindex", "hooks", "run", "--detached", "post-rewrite"], repo.path)
    wait_idle(repo.path)
    assert verified(repo.path)
    new = runs(repo.path)[before:]
    assert [r["events"] for r in new] == [pending]  # one sync, for every event of the burst
    assert new[0]["ok"] and new[0]["commit"] == repo.git("rev-parse", "HEAD")

    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "-m", "merge feature", "feature")
    wait_idle(repo.path)
    assert verified(repo.path)
    assert "post-merge" in events(runs(repo.path)[-1])
    assert runs(repo.path)[-1]["commit"] == repo.git("rev-parse", "HEAD")


class Recorder:
    """What serve() is given to sync with: records the events of each call. (The sync itself is
    not what these tests are about; the end-to-end tests above run real ones.)"""

    def __init__(self, during: Any = None) -> None:
        self.calls: list[list[str]] = []
        self.during = during  # called while "syncing", with the call's number

    def __call__(self, taken: list[str]) -> dict[str, Any]:
        self.calls.append(taken)
        if self.during is not None:
            self.during(len(self.calls))
        return {"ok": True, "events": taken}


def test_the_runner_waits_for_a_burst_to_end_and_syncs_once_for_it(tmp_path: Path) -> None:
    files = RunnerFiles(tmp_path / "hooks")
    record_event(files, "post-commit", [])
    burst = iter(["post-commit", "post-commit", "post-rewrite", None, None])
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # more events arrive while the runner waits for quiet
        waits.append(seconds)
        if (event := next(burst)) is not None:
            record_event(files, event, ["amend"] if event == "post-rewrite" else [])

    recorder = Recorder()
    assert serve(files, recorder, sleep=sleep) == 1
    assert recorder.calls == [["post-commit", "post-commit", "post-commit", "post-rewrite amend"]]
    assert len(waits) == 4  # three waits that saw a new event, then one quiet one
    assert not files.pending.exists() and not files.syncing.exists() and not files.pid.exists()
    assert [r["events"] for r in read_log(files)] == recorder.calls  # each sync's record, logged


def test_events_that_arrive_during_a_sync_get_one_more_sync(tmp_path: Path) -> None:
    files = RunnerFiles(tmp_path / "hooks")
    record_event(files, "post-commit", [])

    def during(call: int) -> None:
        assert files.syncing.read_text() == ("post-commit\n" if call == 1 else "post-merge\npost-checkout a b 1\n")
        if call == 1:  # a merge and a switch while the first sync runs
            record_event(files, "post-merge", [])
            record_event(files, "post-checkout", ["a", "b", "1"])

    recorder = Recorder(during)
    assert serve(files, recorder, sleep=lambda s: None) == 2
    assert recorder.calls == [["post-commit"], ["post-merge", "post-checkout a b 1"]]


def test_a_second_runner_leaves_the_events_to_the_one_holding_the_lock(tmp_path: Path) -> None:
    files = RunnerFiles(tmp_path / "hooks")
    record_event(files, "post-commit", [])
    recorder = Recorder()
    with filelock.FileLock(str(files.lock)):
        assert serve(files, recorder, sleep=lambda s: None) == 0
    assert recorder.calls == [] and pending_events(files) == ["post-commit"]


def test_pull_from_a_second_clone(tmp_path: Path) -> None:
    upstream = GitRepo(tmp_path / "upstream")
    upstream.commit({"server.py": python_source("server")})
    git(tmp_path, "clone", "-q", str(upstream.path), "clone")
    clone = tmp_path / "clone"
    assert gi("hooks", "install", str(clone)).exit_code == 0

    upstream.commit({"client.py": python_source("client")}, "add client")
    git(clone, "pull", "-q", "--no-rebase", "origin", "main")
    wait_idle(clone)
    assert verified(clone)
    last = runs(clone)[-1]
    assert events(last) == ["post-merge"] and last["summary"]["files"]["added"] == 2


def test_chains_to_an_existing_hook_and_uninstall_restores_it(repo: GitRepo, tmp_path: Path) -> None:
    repo.commit(NO_MODEL)
    hooks = repo.path / ".git" / "hooks"
    old = '#!/bin/sh\necho "old hook: $#" >> "$(git rev-parse --git-dir)/old-hook.log"\necho "old hook says hi" >&2\nexit 3\n'
    (hooks / "post-commit").write_text(old)
    (hooks / "post-commit").chmod(0o750)
    elsewhere = tmp_path / "team-post-merge"
    elsewhere.write_text("#!/bin/sh\nexit 0\n")
    (hooks / "post-merge").symlink_to(elsewhere)

    result = gi("hooks", "install", str(repo.path))
    assert result.exit_code == 0 and f"post-commit{CHAINED}" in result.stdout
    assert gi("hooks", "install", str(repo.path)).exit_code == 0  # again: updates, never chains to itself
    assert (hooks / f"post-commit{CHAINED}").read_text() == old
    assert not (hooks / f"post-commit{CHAINED}{CHAINED}").exists()
    listed = {h["event"]: h for h in json.loads(gi("hooks", "status", str(repo.path), "--json").stdout)["hooks"]}
    assert listed["post-commit"]["chained"] and listed["post-merge"]["chained"]
    assert listed["post-checkout"] == {**listed["post-checkout"], "state": "gitindex", "chained": False}

    done = subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "x"], cwd=repo.path,
                          capture_output=True, text=True, env={**os.environ, **GIT_ENV})
    assert done.returncode == 0 and "old hook says hi" in done.stderr
    assert (repo.path / ".git" / "old-hook.log").read_text() == "old hook: 0\n"
    wait_idle(repo.path)
    assert [r["ok"] for r in runs(repo.path)] == [True] and verified(repo.path)

    assert gi("hooks", "uninstall", str(repo.path)).exit_code == 0
    assert (hooks / "post-commit").read_text() == old
    assert stat.S_IMODE((hooks / "post-commit").stat().st_mode) == 0o750
    assert (hooks / "post-merge").is_symlink() and (hooks / "post-merge").resolve() == elsewhere
    assert not any(p.name.endswith(CHAINED) for p in hooks.iterdir())
    assert not (hooks / "post-checkout").exists() and not (hooks / "post-rewrite").exists()

    repo.commit({"more.txt": ""})
    assert (repo.path / ".git" / "old-hook.log").read_text() == "old hook: 0\n" * 2
    assert not (state_dir(repo.path) / "pending").exists() and len(runs(repo.path)) == 1


def test_install_never_overwrites_silently(repo: GitRepo) -> None:
    hooks = repo.path / ".git" / "hooks"
    (hooks / "post-rewrite").write_text("#!/bin/sh\necho mine\n")
    (hooks / f"post-rewrite{CHAINED}").write_text("#!/bin/sh\necho older\n")
    result = gi("hooks", "install", str(repo.path))
    assert result.exit_code == 1 and "move one of them away" in result.output
    assert (hooks / "post-rewrite").read_text() == "#!/bin/sh\necho mine\n"
    assert not (hooks / "post-commit").exists()  # all or nothing


def test_hooks_dir_is_where_git_itself_runs_hooks(repo: GitRepo, tmp_path: Path) -> None:
    repo.commit(NO_MODEL)
    (repo.path / "sub").mkdir()
    repo.git("worktree", "add", "-q", str(tmp_path / "wt"))

    def agrees(where: Path) -> Path:
        by_git = Path(git(where, "rev-parse", "--path-format=absolute", "--git-path", "hooks")).resolve()
        found = hooks_dir(Repo(where))
        assert found == by_git, (where, found, by_git)
        return found

    for where in (repo.path, repo.path / "sub", tmp_path / "wt"):
        assert agrees(where) == repo.path / ".git" / "hooks"  # worktrees share the hooks
    repo.git("config", "core.hooksPath", "githooks")  # relative: to the top of the worktree
    assert agrees(repo.path / "sub") == repo.path / "githooks"
    repo.git("config", "core.hooksPath", str(tmp_path / "shared"))
    assert agrees(tmp_path / "wt") == tmp_path / "shared"


def test_core_hooks_path_and_worktrees(repo: GitRepo, tmp_path: Path) -> None:
    repo.commit(NO_MODEL)
    shared = tmp_path / "shared-hooks"
    repo.git("config", "core.hooksPath", str(shared))
    assert gi("hooks", "install", str(repo.path)).exit_code == 0
    assert sorted(p.name for p in shared.iterdir()) == sorted(EVENTS)
    assert not (repo.path / ".git" / "hooks" / "post-commit").exists()
    repo.commit({"a.txt": ""})
    wait_idle(repo.path)
    assert runs(repo.path)[-1]["ok"] and verified(repo.path)

    # Worktrees share the hooks; each keeps its own index, log and runner.
    repo.git("config", "--unset", "core.hooksPath")
    assert gi("hooks", "install", str(repo.path)).exit_code == 0
    wt = tmp_path / "wt"
    repo.git("worktree", "add", "-q", "-b", "side", str(wt))  # runs post-checkout in the new worktree
    wait_idle(wt)
    assert events(runs(wt)[-1]) == ["post-checkout"] and verified(wt)
    info = json.loads(gi("hooks", "status", str(wt), "--json").stdout)
    assert Path(info["dir"]) == (repo.path / ".git" / "hooks").resolve() and len(info["installed"]) == 4
    git(wt, "commit", "-q", "--allow-empty", "-m", "in the worktree")
    wait_idle(wt)
    assert runs(wt)[-1]["commit"] == git(wt, "rev-parse", "HEAD") and verified(wt)
    assert state_dir(wt) != state_dir(repo.path)


def test_a_killed_runner_leaves_its_events_to_the_next(repo: GitRepo) -> None:
    repo.commit({"app.py": python_source("app")})
    assert gi("hooks", "install", str(repo.path)).exit_code == 0
    repo.commit({"lib.py": python_source("lib")})
    state = state_dir(repo.path)
    deadline = time.monotonic() + 30
    while not ((state / "syncing").exists() and (state / "runner.pid").exists()):  # mid-sync (loading the model)
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(int((state / "runner.pid").read_text()), signal.SIGKILL)
    wait_idle(repo.path)  # finds the events orphaned and starts a runner for them
    last = runs(repo.path)[-1]
    assert events(last) == ["post-commit"] and last["commit"] == repo.git("rev-parse", "HEAD")
    assert verified(repo.path)


def test_a_failing_sync_never_fails_git_and_is_shown(repo: GitRepo) -> None:
    repo.commit(NO_MODEL)
    assert gi("hooks", "install", str(repo.path)).exit_code == 0
    done = subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "x"], cwd=repo.path, capture_output=True,
                          text=True, env={**os.environ, **GIT_ENV, "GITINDEX_BATCH_SIZE": "0"})
    assert done.returncode == 0 and done.stderr == ""
    wait_idle(repo.path, ok=False)  # `hooks wait` exits 1: the last run failed
    last = runs(repo.path)[-1]
    assert not last["ok"] and "GITINDEX_BATCH_SIZE" in last["error"]

    status = gi("status", str(repo.path))
    assert status.exit_code == 0, status.output
    assert "last background run" in status.stdout and "FAILED" in status.stdout
    assert "GITINDEX_BATCH_SIZE" in status.stdout
    log = gi("log", str(repo.path))
    assert log.exit_code == 1 and "FAILED" in log.stdout
    assert json.loads(gi("status", str(repo.path), "--json").stdout)["hooks"]["last_run"]["ok"] is False

    repo.commit({"fixed.txt": ""}, "the next commit syncs again")
    wait_idle(repo.path)
    assert runs(repo.path)[-1]["ok"] and verified(repo.path)


def test_foreground_hooks_sync_before_git_returns(repo: GitRepo) -> None:
    repo.commit(NO_MODEL)
    assert gi("hooks", "install", str(repo.path), "--foreground").exit_code == 0
    done = subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "x"], cwd=repo.path,
                          capture_output=True, text=True, env={**os.environ, **GIT_ENV})
    assert done.returncode == 0 and "gitindex:" in done.stderr
    last = runs(repo.path)[-1]  # no waiting: the run is already logged
    assert last["mode"] == "foreground" and last["ok"] and last["commit"] == repo.git("rev-parse", "HEAD")
    assert not (state_dir(repo.path) / "pending").exists()


# -- the pre-commit framework ------------------------------------------------------------------
@pytest.fixture
def hook_repo(tmp_path: Path) -> GitRepo:
    """A repository publishing our .pre-commit-hooks.yaml (try-repo ignores uncommitted new files)."""
    published = GitRepo(tmp_path / "hook-repo")
    published.commit({".pre-commit-hooks.yaml": (ROOT / ".pre-commit-hooks.yaml").read_text()})
    return published


def pc_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, **GIT_ENV, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), **extra}


def test_pre_commit_try_repo_runs_the_system_hooks_at_each_stage(
    repo: GitRepo, hook_repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo.commit(NO_MODEL)  # the model's part is in the next test; here, the stages

    def try_repo(hook_id: str, stage: str, *extra: str, **env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [f"{BIN}/pre-commit", "try-repo", str(hook_repo.path), hook_id, "--hook-stage", stage, *extra],
            cwd=repo.path, capture_output=True, text=True, env=pc_env(tmp_path, **env))
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    try_repo("gitindex-system", "post-commit")
    wait_idle(repo.path)
    assert verified(repo.path) and events(runs(repo.path)[-1]) == ["post-commit"]
    try_repo("gitindex-system", "post-checkout", "--from-ref", "HEAD", "--to-ref", "HEAD", "--checkout-type", "0")
    assert not (state_dir(repo.path) / "pending").exists()
    for stage, extra in (("post-checkout", ("--from-ref", "HEAD", "--to-ref", "HEAD", "--checkout-type", "1")),
                         ("post-merge", ("--is-squash-merge", "0")),
                         ("post-rewrite", ("--rewrite-command", "rebase"))):
        try_repo("gitindex-system", stage, *extra)
        wait_idle(repo.path)
        assert events(runs(repo.path)[-1]) == [stage] and verified(repo.path)

    repo.write({"extra.py": python_source("extra", functions=1)})
    repo.git("add", "extra.py")
    try_repo("gitindex-staged-system", "pre-commit")
    assert runs(repo.path)[-1]["mode"] == "pre-commit" and verified(repo.path, "--staged")
    # A failure to index never blocks the commit...
    done = try_repo("gitindex-staged-system", "pre-commit", "--verbose", GITINDEX_BATCH_SIZE="0")
    assert "staged tree was not indexed" in done.stdout
    # ...unless the user asks for --strict (`args: [--strict]` in their config).
    monkeypatch.chdir(repo.path)
    strict = gi("hooks", "run", "pre-commit", "--strict", env={"GITINDEX_BATCH_SIZE": "0"})
    assert strict.exit_code == 1


def test_pre_commit_install_fires_on_real_git_commands(repo: GitRepo, hook_repo: GitRepo, tmp_path: Path) -> None:
    config = {"repos": [{"repo": str(hook_repo.path), "rev": hook_repo.git("rev-parse", "HEAD"),
                         "hooks": [{"id": "gitindex-system"}]}]}
    repo.commit({".pre-commit-config.yaml": json.dumps(config), "app.py": python_source("app")})
    env = pc_env(tmp_path)
    subprocess.run([f"{BIN}/pre-commit", "install", *(f"--hook-type={e}" for e in EVENTS)],
                   cwd=repo.path, check=True, capture_output=True, env=env)

    repo.write({"lib.py": python_source("lib")})
    git(repo.path, "add", "lib.py")
    git(repo.path, "commit", "-q", "-m", "via pre-commit", env=env)
    wait_idle(repo.path)
    assert verified(repo.path) and events(runs(repo.path)[-1]) == ["post-commit"]
    subprocess.run(["git", "checkout", "-q", "-b", "other"], cwd=repo.path, check=True, env=env)
    wait_idle(repo.path)
    assert events(runs(repo.path)[-1]) == ["post-checkout"] and verified(repo.path)

