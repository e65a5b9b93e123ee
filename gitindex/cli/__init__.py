"""The command line: parse, call the library (gitindex.api), print. One module per verb; one
error boundary, around every command, turns the library's errors into messages and exit codes."""

from __future__ import annotations

import errno
import importlib
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from gitindex.cli import options
from gitindex.errors import EXIT_BUG, EXIT_ERROR, EXIT_INTERRUPTED, GitindexError, Interrupted


class _ErrorBoundary(TyperGroup):
    """Every command runs inside this one boundary: expected failures print their message and
    exit with their code (README: exit codes); anything else is a bug, reported as exit 3 with
    the details in a log file, never as a traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Interrupted as exc:
            options.err(f"gitindex: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except GitindexError as exc:
            options.err(f"gitindex: error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            options.err("gitindex: interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            if _is_click(exc) or isinstance(exc, BrokenPipeError):  # the parser's own (usage errors,
                raise  # --help, Exit, Abort); a reader that went away (`| head`): main() ends quietly
            known = _environment_error(exc)
            if known is not None:  # the machine's fault, not gitindex's: say which and where
                options.err(f"gitindex: error: {known}")
                raise typer.Exit(EXIT_ERROR) from None
            import traceback

            log = _write_bug_log(traceback.format_exc())
            options.err(f"gitindex: unexpected error (a bug); details are in {log}")
            raise typer.Exit(EXIT_BUG) from None


_READ_ONLY = {errno.EROFS: "it is on a read-only file system", errno.EACCES: "permission denied",
              errno.EPERM: "permission denied"}


def _environment_error(exc: BaseException) -> str | None:
    """The message for a failure of the machine rather than of gitindex (a read-only or full
    disk, wherever in the library it was met), or None. A read that needs no writing never
    gets here; what cannot be done without writing says why."""
    import sqlite3

    where = exc.filename if isinstance(exc, OSError) and exc.filename else None
    if where is None and options.opened:
        where = options.opened[-1]  # sqlite does not say which file: the index's directory
    code = exc.errno if isinstance(exc, OSError) else None
    text = str(exc)
    if code == errno.ENOSPC or (isinstance(exc, sqlite3.OperationalError) and "disk is full" in text):
        return f"no space left on the device holding {where}; free space and run `gitindex sync` again"
    if code in _READ_ONLY:
        return (f"cannot write {where}: {_READ_ONLY[code]}; gitindex writes its index (and the "
                "lock files that keep processes apart) there: make it writable, or run gitindex "
                "on a writable copy")
    if isinstance(exc, sqlite3.OperationalError) and any(
            m in text for m in ("unable to open database file", "readonly database")):
        return (f"cannot open the index's database in {where} for writing ({text}): the directory "
                "is read-only or not yours to write; make it writable, or run gitindex on a "
                "writable copy")
    return None


def _is_click(exc: BaseException) -> bool:
    """Raised for click (or typer's copy of it, under another module since typer 0.26) to handle."""
    return any(c.__name__ in {"ClickException", "Exit", "Abort"} for c in type(exc).__mro__)

def _version(value: bool) -> None:
    if value:
        import gitindex

        typer.echo(f"gitindex {gitindex.__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Keep a semantic code index of a git repository in Qdrant, embedding only what changed."""


# Each verb and how it is registered: the module that holds it stays the one place it is defined.
# (Each module is imported when its verb is registered: a run imports only its own.)
_VERBS: dict[str, Callable[[typer.Typer], object]] = {
    "sync": lambda app: app.command("sync", help=_verb("sync").SYNC_HELP)(_verb("sync").command(plain=False)),
    "index": lambda app: app.command("index", help=_verb("sync").INDEX_HELP)(_verb("sync").command(plain=True)),
    "search": lambda app: app.command("search")(_verb("search").search),
    "status": lambda app: app.command("status")(_verb("status").status),
    "verify": lambda app: app.command("verify")(_verb("verify").verify),
    "log": lambda app: app.command("log")(_verb("hooks").log),
    "hooks": lambda app: app.add_typer(_verb("hooks").app, name="hooks"),
    "mcp": lambda app: app.command("mcp")(_verb("agents").mcp),
}


def _verb(module: str) -> Any:
    return importlib.import_module(f"gitindex.cli.{module}")


def make_app(verbs: Iterable[str] = _VERBS) -> typer.Typer:
    """The command line with these verbs (all of them by default)."""
    made = typer.Typer(
        cls=_ErrorBoundary, pretty_exceptions_show_locals=False, no_args_is_help=True, add_completion=False,
        help="Keep a semantic code index of a git repository in Qdrant, embedding only what changed.",
    )
    made.callback()(_root)
    for verb in verbs:
        _VERBS[verb](made)
    return made


def __getattr__(name: str) -> Any:
    if name == "app":  # the whole command line (tests, help), made when first asked for
        globals()["app"] = made = make_app()
        return made
    raise AttributeError(f"module 'gitindex.cli' has no attribute {name!r}")


def main() -> None:
    """The entry point (`gitindex`, `python -m gitindex`). Typer builds the parser of every verb
    it knows on each run (7 ms for all of them here): a run that names its verb gets an app with
    only that one; anything else (`--help`, a typo) the whole app, which lists them all."""
    verb = sys.argv[1] if len(sys.argv) > 1 else ""
    try:
        (make_app([verb]) if verb in _VERBS else make_app())(prog_name="gitindex")
    except BrokenPipeError:  # the reader of stdout went away (`gitindex search ... | head -1`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (the exit's flush would fail again)
        sys.exit(EXIT_ERROR)
    except SystemExit as exc:
        if exc.code == EXIT_INTERRUPTED:  # the library has unwound (a second Ctrl-C included): end
            sys.stdout.flush()  # now, not once the batch threads finish their batch (seconds)
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        raise


def _bug_log() -> Path:
    import tempfile

    where = next((d for d in reversed(options.opened) if d.is_dir()), Path(tempfile.gettempdir()))
    return where / "gitindex-error.log"


def _write_bug_log(text: str) -> Path:
    """The log where the index is, else (a read-only or full disk there) the temporary directory."""
    import tempfile

    for log in (_bug_log(), Path(tempfile.gettempdir()) / "gitindex-error.log"):
        try:
            log.write_text(text)
            return log
        except OSError:
            continue
    return log
