"""`gitindex hooks ...` and `gitindex log`: install the git hooks, and what they run."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from gitindex import config as config_mod
from gitindex import hooks
from gitindex.errors import EXIT_ERROR, EXIT_OK, GitindexError
from gitindex.index import locate
from gitindex.repo import Repo, index_file_from

hooks_app = typer.Typer(
    pretty_exceptions_show_locals=False, no_args_is_help=True, add_completion=False,
    help="Keep the index fresh from git hooks: a detached background sync after each commit, "
         "merge, branch switch and rebase.",
)

PathArg = Annotated[Path, typer.Argument(help="A directory inside the repository.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
# What the pre-commit framework tells a hook about the git hook that runs it, in its environment
# (pre_commit/commands/run.py); with pass_filenames: false the hook gets no arguments.
_PRE_COMMIT_ENV = (
    ("PRE_COMMIT_CHECKOUT_TYPE", "post-checkout"),
    ("PRE_COMMIT_IS_SQUASH_MERGE", "post-merge"),
    ("PRE_COMMIT_REWRITE_COMMAND", "post-rewrite"),
)


def _err(message: str) -> None:
    typer.echo(message, err=True)


def _repo(path: Path) -> tuple[Repo, Path]:
    from gitindex.cli import _errors  # imported here: cli.py registers this module

    with _errors():
        repo, root = locate(path.resolve())
        assert repo is not None
    return repo, root


@hooks_app.command("install")
def install_cmd(
    path: PathArg = Path("."),
    foreground: Annotated[bool, typer.Option("--foreground", help="Sync before git returns (blocking) instead of in the background.")] = False,
) -> None:
    """Install the post-commit, post-merge, post-checkout and post-rewrite hooks.

    They go where git runs hooks from: core.hooksPath if set, else the repository's hooks
    directory (shared by its worktrees). A hook already there is kept and run first;
    `uninstall` puts it back.

    Example: gitindex hooks install
    """
    from gitindex.cli import _errors

    _, root = _repo(path)
    with _errors():
        directory = hooks.hooks_dir(root)
        for line in hooks.install(directory, sys.executable, foreground=foreground):
            typer.echo(line)
        typer.echo(f"hooks in {directory}; each sync runs {'before git returns' if foreground else 'in the background'} "
                   "(see `gitindex log`)")


@hooks_app.command("uninstall")
def uninstall_cmd(path: PathArg = Path(".")) -> None:
    """Remove gitindex's hooks and put back the hooks they replaced."""
    from gitindex.cli import _errors

    _, root = _repo(path)
    with _errors():
        directory = hooks.hooks_dir(root)
        lines = hooks.uninstall(directory)
        for line in lines or ["no gitindex hooks were installed"]:
            typer.echo(line)


@hooks_app.command("status")
def status_cmd(path: PathArg = Path("."), as_json: JsonOpt = False) -> None:
    """Show which hooks are installed, whether a background sync runs, and the last one's result."""
    from gitindex.cli import _errors

    repo, root = _repo(path)
    with _errors():
        directory = hooks.hooks_dir(root)
        files = hooks.inspect(directory)
        info = hooks.summary(repo, root)
        if as_json:
            typer.echo(json.dumps({**info, "hooks": [h.to_json() for h in files]}))
            return
        typer.echo(f"hooks directory: {directory}")
        for h in files:
            if h.state == "gitindex":
                what = "gitindex" + (" (foreground)" if h.foreground else "")
                what += f", runs the previous hook first ({h.event}{hooks.CHAINED})" if h.chained else ""
            else:
                what = "another tool's hook (not gitindex)" if h.state == "other" else "not installed"
            typer.echo(f"  {h.event:14} {what}")
        for line in status_lines(info)[1:]:
            typer.echo(line)


def status_lines(info: Mapping[str, Any] | None) -> list[str]:
    """Lines about hooks and background runs, as `gitindex status` shows them."""
    if not info:
        return []
    installed = info["installed"]
    lines = [f"hooks:    {' '.join(installed) if installed else 'not installed'}"
             + (f" ({'foreground' if info['foreground'] else 'background'})" if installed else "")]
    if info["runner_pid"]:
        lines.append(f"background: syncing (pid {info['runner_pid']}), {info['pending']} events waiting")
    elif info["pending"]:
        lines.append(f"background: {info['pending']} events waiting for a sync")
    last = info["last_run"]
    if last:
        lines.append(f"last background run: {hooks.describe(last)}")
        if not last.get("ok"):
            lines.append(f"  the git command was not affected; details: `gitindex log`, {info['log']}")
    return lines


def log_cmd(
    path: PathArg = Path("."),
    last: Annotated[int, typer.Option("--last", "-n", min=1, help="How many runs to show.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Show the last syncs the hooks ran, with their result (exit 1 if the last one failed).

    Example: gitindex log -n 3
    """
    repo, _ = _repo(path)
    files = hooks.RunnerFiles.of(repo)
    records = hooks.read_log(files, last)
    if as_json:
        typer.echo(json.dumps(records))
    elif not records:
        typer.echo("no background runs yet (`gitindex hooks install` sets them up)")
    for record in [] if as_json else records:
        typer.echo(hooks.describe(record))
    pid, pending = hooks.runner_pid(files), hooks.pending_events(files)
    if not as_json and (pid or pending):
        typer.echo(f"now: {f'syncing (pid {pid})' if pid else 'not syncing'}, {len(pending)} events waiting")
    if records and not records[-1].get("ok"):
        raise typer.Exit(EXIT_ERROR)


hooks_app.command("log")(log_cmd)


def _runner_argv(event: str) -> list[str]:
    return [sys.executable, "-m", "gitindex", "hooks", "run", "--detached", event]


@hooks_app.command("wait")
def wait_cmd(
    path: PathArg = Path("."),
    timeout: Annotated[float, typer.Option("--timeout", help="Give up after this many seconds (exit 1).")] = 600.0,
) -> None:
    """Wait until the background sync has caught up with every event (for scripts and tests).

    Exits 1 on timeout, or if the last background run failed.
    """
    repo, root = _repo(path)
    files = hooks.RunnerFiles.of(repo)
    if not hooks.wait(files, timeout, lambda: hooks.spawn(_runner_argv("wait"), root)):
        _err(f"gitindex: the background sync did not finish within {timeout:.0f} s")
        raise typer.Exit(EXIT_ERROR)
    last = hooks.read_log(files, 1)
    if last and not last[-1].get("ok"):
        _err(f"gitindex: the last background sync failed: {last[-1].get('error')}")
        raise typer.Exit(EXIT_ERROR)


def _from_pre_commit(env: Mapping[str, str]) -> tuple[str, list[str]]:
    """Which git hook the pre-commit framework is running (it says so only in the environment)."""
    for name, event in _PRE_COMMIT_ENV:
        if name in env:
            if event == "post-checkout":
                return event, [env.get("PRE_COMMIT_FROM_REF", ""), env.get("PRE_COMMIT_TO_REF", ""), env[name]]
            return event, [env[name]]
    return "post-commit", []


def _run(event: str, args: Sequence[str], foreground: bool, detached: bool, strict: bool,
         env: Mapping[str, str]) -> int:
    if event == "auto":
        event, args = _from_pre_commit(env)
    if event == "post-checkout" and len(args) >= 3 and args[2] != "1":
        return EXIT_OK  # a file checkout, not a branch switch
    repo, root = locate(Path.cwd())
    assert repo is not None
    files = hooks.RunnerFiles.of(repo)
    job = hooks.HookSync(root, lambda r: config_mod.load(r, env, {}), errors_to=files.output)
    if event == "pre-commit":
        # Index what is about to be committed. Only --strict waits for a running sync and fails the commit.
        job.mode = "pre-commit"
        record = job([event], staged=True, staged_index=index_file_from(env), wait=strict)
        hooks.append_log(files, record)
        if not record["ok"]:
            _err(f"gitindex: the staged tree was not indexed: {record['error']}")
            return EXIT_ERROR if strict else EXIT_OK
        return EXIT_OK
    if foreground:
        job.mode = "foreground"
        record = job([" ".join([event, *args])])
        hooks.append_log(files, record)
        _err(f"gitindex: {hooks.describe(record)}")
        return EXIT_ERROR if strict and not record["ok"] else EXIT_OK
    if detached:  # the runner itself: started in the background by the hook script or by us
        with contextlib.suppress(OSError):  # OSError: already a session leader
            os.setsid()  # out of git's process group: a Ctrl-C meant for git does not stop it
        os.nice(max(0, 10 - os.nice(0)))  # low priority: never compete with the user's git commands
        hooks.redirect_output(files)
        hooks.serve(files, job)
        return EXIT_OK
    hooks.record_event(files, event, args)
    hooks.clear_stale_pid(files)
    if hooks.runner_pid(files) is None:
        hooks.spawn(_runner_argv(event), root)
    return EXIT_OK


@hooks_app.command("run", hidden=True)
def run_cmd(
    event: Annotated[str, typer.Argument(help="post-commit, post-merge, post-checkout, post-rewrite, pre-commit, "
                                              "or auto (under the pre-commit framework).")],
    args: Annotated[list[str] | None, typer.Argument(help="The git hook's arguments.")] = None,
    foreground: Annotated[bool, typer.Option("--foreground", help="Sync now, before returning.")] = False,
    detached: Annotated[bool, typer.Option("--detached", help="Be the background runner.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when the sync fails (pre-commit: block the commit).")] = False,
) -> None:
    """What the hook scripts call: record EVENT and make sure a background sync will see it.
    Never fails (and so never fails git) unless --strict."""
    try:
        code = _run(event, args or [], foreground, detached, strict, os.environ)
    except Exception as exc:  # a bug included: a hook must not fail the git command
        detail = str(exc) if isinstance(exc, GitindexError | OSError) else f"{type(exc).__name__}: {exc} (a bug)"
        _err(f"gitindex: the hook did not start a sync: {detail}")
        code = EXIT_ERROR if strict else EXIT_OK
    raise typer.Exit(code)
