"""`gitindex hooks ...` and `gitindex log`: install the git hooks, and what they run."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gitindex.cli.options import JsonOpt, PathArg, err
from gitindex.errors import EXIT_ERROR

if TYPE_CHECKING:
    from gitindex.repo import Repo

app = typer.Typer(
    pretty_exceptions_show_locals=False, no_args_is_help=True, add_completion=False,
    help="Keep the index fresh from git hooks: a detached background sync after each commit, "
         "merge, branch switch and rebase.",
)


def _repo(path: Path) -> tuple[Repo, Path]:
    from gitindex.workspace import locate

    repo, root = locate(path.resolve())
    assert repo is not None
    return repo, root


@app.command("install")
def install(
    path: PathArg = Path("."),
    foreground: Annotated[bool, typer.Option("--foreground", help="Sync before git returns (blocking) instead of in the background.")] = False,
) -> None:
    """Install the post-commit, post-merge, post-checkout and post-rewrite hooks.

    They go where git runs hooks from: core.hooksPath if set, else the repository's hooks
    directory (shared by its worktrees). A hook already there is kept and run first;
    `uninstall` puts it back.

    Example: gitindex hooks install
    """
    from gitindex import hooks

    repo, _ = _repo(path)
    directory = hooks.hooks_dir(repo)
    for line in hooks.install(directory, sys.executable, foreground=foreground):
        typer.echo(line)
    typer.echo(f"hooks in {directory}; each sync runs {'before git returns' if foreground else 'in the background'} "
               "(see `gitindex log`)")


@app.command("uninstall")
def uninstall(path: PathArg = Path(".")) -> None:
    """Remove gitindex's hooks and put back the hooks they replaced."""
    from gitindex import hooks

    repo, _ = _repo(path)
    for line in hooks.uninstall(hooks.hooks_dir(repo)) or ["no gitindex hooks were installed"]:
        typer.echo(line)


@app.command("status")
def status(path: PathArg = Path("."), as_json: JsonOpt = False) -> None:
    """Show which hooks are installed, whether a background sync runs, and the last one's result."""
    from gitindex import hooks
    from gitindex.cli.status import hook_lines

    repo, root = _repo(path)
    directory = hooks.hooks_dir(repo)
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
    for line in hook_lines(info)[1:]:
        typer.echo(line)


def log(
    path: PathArg = Path("."),
    last: Annotated[int, typer.Option("--last", "-n", min=1, help="How many runs to show.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Show the last syncs the hooks ran, with their result (exit 1 if the last one failed).

    Example: gitindex log -n 3
    """
    from gitindex import hooks

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


app.command("log")(log)


@app.command("wait")
def wait(
    path: PathArg = Path("."),
    timeout: Annotated[float, typer.Option("--timeout", help="Give up after this many seconds (exit 1).")] = 600.0,
) -> None:
    """Wait until the background sync has caught up with every event (for scripts and tests).

    Exits 1 on timeout, or if the last background run failed.
    """
    from gitindex import hooks, runner

    if not math.isfinite(timeout) or timeout < 0:  # nan and inf too: a wait must end
        raise typer.BadParameter(f"{timeout} (expected 0 or more seconds)", param_hint="'--timeout'")
    repo, root = _repo(path)
    files = hooks.RunnerFiles.of(repo)  
    if not runner.wait(files, timeout, lambda: runner.spawn(runner.runner_argv("wait"), root)):
        err(f"gitindex: the background sync did not finish within {timeout:.0f} s")
        raise typer.Exit(EXIT_ERROR)
    last = hooks.read_log(files, 1)
    if last and not last[-1].get("ok"):
        err(f"gitindex: the last background sync failed: {last[-1].get('error')}")
        raise typer.Exit(EXIT_ERROR)


@app.command("run", hidden=True)
def run(
    event: Annotated[str, typer.Argument(help="post-commit, post-merge, post-checkout, post-rewrite, pre-commit, "
                                              "or auto (under the pre-commit framework).")],
    args: Annotated[list[str] | None, typer.Argument(help="The git hook's arguments.")] = None,
    foreground: Annotated[bool, typer.Option("--foreground", help="Sync now, before returning.")] = False,
    detached: Annotated[bool, typer.Option("--detached", help="Be the background runner.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when the sync fails (pre-commit: block the commit).")] = False,
) -> None:
    """What the hook scripts call: record EVENT and make sure a background sync will see it.
    Never fails (and so never fails git) unless --strict."""
    from gitindex.errors import GitindexError
    from gitindex.memory import fewer_malloc_arenas
    from gitindex.repo import limit_pack_windows
    from gitindex.runner import run_hook

    fewer_malloc_arenas()  # the runner syncs: before any thread starts
    limit_pack_windows()
    try:
        code = run_hook(event, args or [], foreground=foreground, detached=detached, strict=strict,
                        env=os.environ, cwd=Path.cwd(), say=err)
    except Exception as exc:  # a bug included: a hook must not fail the git command
        detail = str(exc) if isinstance(exc, GitindexError | OSError) else f"{type(exc).__name__}: {exc} (a bug)"
        err(f"gitindex: the hook did not start a sync: {detail}")
        code = EXIT_ERROR if strict else 0
    raise typer.Exit(code)
