"""The command line: parse, call the library (gitindex.api), print. One module per verb; one
error boundary, around every command, turns the library's errors into messages and exit codes."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from gitindex.cli import options
from gitindex.errors import EXIT_BUG, EXIT_INTERRUPTED, GitindexError, Interrupted


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
            if _is_click(exc):  # the parser's own: usage errors, --help, Exit, Abort
                raise
            import traceback

            log = _bug_log()
            log.write_text(traceback.format_exc())
            options.err(f"gitindex: unexpected error (a bug); details are in {log}")
            raise typer.Exit(EXIT_BUG) from None


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
    (make_app([verb]) if verb in _VERBS else make_app())(prog_name="gitindex")


def _bug_log() -> Path:
    import tempfile

    where = next((d for d in reversed(options.opened) if d.is_dir()), Path(tempfile.gettempdir()))
    return where / "gitindex-error.log"
