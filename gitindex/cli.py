"""The command line: parse, load config, call the library, map errors to exit codes."""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from gitindex import config as config_mod
from gitindex.errors import (
    EXIT_BUG,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ConfigError,
    GitindexError,
    Interrupted,
    NotIndexedError,
)
from gitindex.index import Index, locate
from gitindex.repo import EmptyRepositoryError, Target, index_file_from

app = typer.Typer(
    pretty_exceptions_show_locals=False, no_args_is_help=True, add_completion=False,
    help="Keep a semantic code index of a git repository in Qdrant, embedding only what changed.",
)

# -- shared options ---------------------------------------------------------------------------
PathArg = Annotated[Path, typer.Argument(help="A directory inside the repository.", show_default=False)]
RefOpt = Annotated[str | None, typer.Option("--ref", help="Index this commit-ish instead of HEAD.")]
StagedOpt = Annotated[bool, typer.Option("--staged", help="Index the staged tree (the git index).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object (see README).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, no summary.")]
BatchOpt = Annotated[int | None, typer.Option("--batch-size", help="Chunks embedded and written per batch.")]
MaxSizeOpt = Annotated[int | None, typer.Option("--max-file-size", help="Skip files larger than this (bytes).")]
MaxFilesOpt = Annotated[int | None, typer.Option("--max-files", help="Stop after this many files; the next run continues.")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="sentence-transformers model name or directory.")]
UrlOpt = Annotated[str | None, typer.Option("--qdrant-url", help="Qdrant server URL (key: QDRANT_API_KEY env).")]
CollOpt = Annotated[str | None, typer.Option("--collection", help="Collection name (default: the repository's name).")]
IncludeOpt = Annotated[list[str] | None, typer.Option("--include", help="Only index paths matching this gitignore-style pattern (repeatable).")]
ExcludeOpt = Annotated[list[str] | None, typer.Option("--exclude", help="Never index paths matching this gitignore-style pattern (repeatable).")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="Torch device for the model, e.g. cpu or cuda (cuda implies --backend torch).")]
BackendOpt = Annotated[str | None, typer.Option("--backend", help="torch, onnx or onnx-int8 (default: onnx-int8, the fastest; see README).")]
NoWaitOpt = Annotated[bool, typer.Option("--no-wait", help="Exit with code 75 at once if another sync is running.")]
RebuildOpt = Annotated[bool, typer.Option("--rebuild", help="Drop the collection and re-embed everything.")]
MemoryOpt = Annotated[int | None, typer.Option("--memory-limit", metavar="MB", help="Stay under this resident size, in MB, by shrinking batches as needed (default: half the available memory).")]


def _err(message: str) -> None:
    typer.echo(message, err=True)


@contextmanager
def _errors(data_dir: Callable[[], Path | None] = lambda: None) -> Iterator[None]:
    """Expected failures: message and exit code. Anything else: exit 3 with a log file."""
    try:
        yield
    except typer.Exit:
        raise
    except GitindexError as exc:
        _err(f"gitindex: error: {exc}")
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        _err("gitindex: interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception:  # the last resort: report a bug, never a bare traceback
        where = data_dir()
        log_dir = where if where is not None and where.is_dir() else Path(tempfile.gettempdir())
        log = log_dir / "gitindex-error.log"
        log.write_text(traceback.format_exc())
        _err(f"gitindex: unexpected error (a bug); details are in {log}")
        raise typer.Exit(EXIT_BUG) from None


def _open(path: Path, *, plain: bool = False, **flags: Any) -> Index:
    repo, root = locate(path.resolve(), allow_plain=plain)
    cfg = config_mod.load(root, os.environ, flags)
    return Index(repo, root, cfg)


def _open_indexed(path: Path, **flags: Any) -> Index:
    """For commands that only read: a plain directory must have been indexed already (they
    never leave a .gitindex/ behind in, say, the home directory)."""
    ix = _open(path, plain=True, **flags)
    if ix.repo is None and not ix.data_dir.is_dir():
        raise NotIndexedError(f"{ix.root} is not indexed: run `gitindex index {ix.root}` first")
    return ix


def _target(ix: Index, ref: str | None, staged: bool) -> Target | None:
    """The tree to index; None for a plain directory. Raises EmptyRepositoryError."""
    if ix.repo is None:
        return None
    if staged and ref:
        raise ConfigError("--staged and --ref exclude each other")
    if staged:
        return ix.repo.staged(index_file_from(os.environ))
    return ix.repo.resolve(ref or "HEAD")


@contextmanager
def _ctrl_c() -> Iterator[Callable[[], bool]]:
    """The first Ctrl-C asks the run to stop at the next batch boundary; a second one stops now."""
    asked: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if asked:
            raise KeyboardInterrupt
        asked.append(signum)
        _err("gitindex: stopping after the current batch (Ctrl-C again to stop now)")

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield lambda: False
        return
    try:
        yield lambda: bool(asked)
    finally:
        signal.signal(signal.SIGINT, previous)


def _summary(result: Any) -> str:
    r = result
    skipped = ", ".join(f"{k} {v}" for k, v in sorted(r.skipped.items()))
    text = (
        f"{'indexed' if r.complete else 'partly indexed'} {r.label}: files +{r.added} ~{r.modified} "
        f"-{r.deleted} renamed {r.renamed}, {r.unchanged} unchanged, "
        f"{sum(r.skipped.values())} skipped{f' ({skipped})' if skipped else ''}; "
        f"chunks {r.embedded} embedded, {r.reused} reused, {r.deleted_chunks} deleted; "
        f"{r.seconds:.1f} s, peak {r.peak_rss_mb:.0f} MB"
    )
    return "\n".join([text, *r.notes])


def _do_sync(path: Path, plain: bool, ref: str | None, staged: bool, as_json: bool, quiet: bool,
             no_wait: bool, rebuild: bool, **flags: Any) -> None:
    from gitindex.sync import SyncResult, sync

    ix: Index | None = None
    with _errors(lambda: ix.data_dir if ix else None):
        ix = _open(path, plain=plain, **flags)
        try:
            target = _target(ix, ref, staged)
        except EmptyRepositoryError:
            if as_json:
                typer.echo(json.dumps(SyncResult(commit=None, label="empty").to_json()))
            elif not quiet:
                _err("gitindex: nothing to index yet: the repository has no commits")
            raise typer.Exit(EXIT_OK) from None
        show = not quiet and not as_json
        with _progress(show and sys.stderr.isatty()) as progress, _ctrl_c() as should_stop:
            try:
                result = sync(
                    ix, target, progress=progress, should_stop=should_stop, rebuild=rebuild,
                    wait=not no_wait, on_wait=(lambda: _err("gitindex: waiting for another sync to finish…")) if show else None,
                )
            except Interrupted as exc:
                _err(f"gitindex: {exc}")
                raise typer.Exit(exc.exit_code) from None
        if as_json:
            typer.echo(json.dumps(result.to_json()))
        elif not quiet:
            typer.echo(_summary(result))
        ix.close()


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from gitindex.progress import RichProgress

    with RichProgress() as progress:
        yield progress


def _flags(batch_size: int | None, max_file_size: int | None, max_files: int | None, model: str | None,
           qdrant_url: str | None, collection: str | None, include: list[str] | None,
           exclude: list[str] | None, device: str | None, backend: str | None,
           memory_limit: int | None) -> dict[str, Any]:
    return {"batch_size": batch_size, "max_file_size": max_file_size, "max_files": max_files,
            "model": model, "qdrant_url": qdrant_url, "collection": collection,
            "include": tuple(include or ()), "exclude": tuple(exclude or ()), "device": device,
            "backend": backend, "memory_limit_mb": memory_limit}


@app.command("sync")
def sync_cmd(
    path: PathArg = Path("."), ref: RefOpt = None, staged: StagedOpt = False, as_json: JsonOpt = False,
    quiet: QuietOpt = False, batch_size: BatchOpt = None, max_file_size: MaxSizeOpt = None,
    max_files: MaxFilesOpt = None, model: ModelOpt = None, qdrant_url: UrlOpt = None,
    collection: CollOpt = None, include: IncludeOpt = None, exclude: ExcludeOpt = None,
    device: DeviceOpt = None, backend: BackendOpt = None, no_wait: NoWaitOpt = False,
    rebuild: RebuildOpt = False, memory_limit: MemoryOpt = None,
) -> None:
    """Index the repository: the first run indexes everything, later runs only what changed.

    Example: gitindex sync --json
    """
    _do_sync(path, False, ref, staged, as_json, quiet, no_wait, rebuild,
             **_flags(batch_size, max_file_size, max_files, model, qdrant_url, collection, include, exclude, device, backend, memory_limit))


@app.command("index")
def index_cmd(
    path: PathArg = Path("."), as_json: JsonOpt = False, quiet: QuietOpt = False,
    batch_size: BatchOpt = None, max_file_size: MaxSizeOpt = None, max_files: MaxFilesOpt = None,
    model: ModelOpt = None, qdrant_url: UrlOpt = None, collection: CollOpt = None,
    include: IncludeOpt = None, exclude: ExcludeOpt = None, device: DeviceOpt = None,
    backend: BackendOpt = None, no_wait: NoWaitOpt = False, rebuild: RebuildOpt = False,
    memory_limit: MemoryOpt = None,
) -> None:
    """Index PATH: `sync` in a git repository; in a plain directory, its files on disk
    (hashed as git blobs, .gitignore honoured).

    Example: gitindex index ~/src/project --max-files 500
    """
    _do_sync(path, True, None, False, as_json, quiet, no_wait, rebuild,
             **_flags(batch_size, max_file_size, max_files, model, qdrant_url, collection, include, exclude, device, backend, memory_limit))


@app.command("search")
def search_cmd(
    query: Annotated[str, typer.Argument(help="What to look for, in plain words.")],
    path: Annotated[Path, typer.Option("--repo", help="A directory inside the repository.")] = Path("."),
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many results.")] = 10,
    path_glob: Annotated[str | None, typer.Option("--path", help="Only paths matching this glob, e.g. 'src/**/*.py'.")] = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Sync first if the index lags HEAD.")] = False,
    as_json: JsonOpt = False, model: ModelOpt = None, qdrant_url: UrlOpt = None,
    collection: CollOpt = None, device: DeviceOpt = None, backend: BackendOpt = None,
) -> None:
    """Find the chunks of code closest in meaning to QUERY.

    Example: gitindex search "where do we retry failed uploads" --path '*.py'
    """
    from gitindex.search import freshness, search

    ix: Index | None = None
    with _errors(lambda: ix.data_dir if ix else None):
        ix = _open_indexed(path, model=model, qdrant_url=qdrant_url, collection=collection, device=device,
                           backend=backend)
        embedder = ix.embedder()  # loaded once, when first used
        fresh = freshness(ix)
        if fresh is not None and fresh.stale and refresh:
            from gitindex.sync import sync

            sync(ix, ix.repo.resolve("HEAD") if ix.repo else None, embedder=embedder)
            fresh = freshness(ix)
        if fresh is not None and fresh.stale:
            _err(f"gitindex: {fresh.describe()}")
        hits = search(ix, query, limit=limit, path_glob=path_glob, embedder=embedder)
        if as_json:
            typer.echo(json.dumps([h.to_json() for h in hits]))
            return
        if not hits:
            _err("gitindex: no results (is the repository indexed? run `gitindex sync`)")
        for hit in hits:
            typer.echo(f"{hit.path}:{hit.start_line}-{hit.end_line}  score {hit.score:.3f}")
            for line in hit.text.splitlines()[:4]:
                typer.echo(f"    {line}")


@app.command("status")
def status_cmd(
    path: PathArg = Path("."), as_json: JsonOpt = False, qdrant_url: UrlOpt = None,
    collection: CollOpt = None, model: ModelOpt = None,
) -> None:
    """Show what is indexed, how it compares with HEAD, and where it is stored."""
    from gitindex.status import status

    ix: Index | None = None
    with _errors(lambda: ix.data_dir if ix else None):
        ix = _open_indexed(path, qdrant_url=qdrant_url, collection=collection, model=model)
        info = status(ix)
        if as_json:
            typer.echo(json.dumps(info))
            return
        synced = (info["synced_commit"] or "nothing")[:12]
        head = (info["head"] or "no commit")[:12]
        typer.echo(f"indexed:  {synced} (HEAD {head}); {info['files']} files, {info['points']} points")
        if info["pending_files"]:
            typer.echo(f"pending:  {info['pending_files']} files differ from HEAD: run `gitindex sync`")
        typer.echo(f"store:    {info['store']} (collection {info['collection']})")
        typer.echo(f"model:    {info['model']}")
        last = info["last_run"]
        if last:
            outcome = f"failed: {last['error']}" if last["error"] else "ok"
            typer.echo(f"last run: {last['label']} {outcome}")
        for line in status_lines(info.get("hooks")):
            typer.echo(line)


@app.command("verify")
def verify_cmd(
    path: PathArg = Path("."), ref: RefOpt = None, staged: StagedOpt = False, as_json: JsonOpt = False,
    qdrant_url: UrlOpt = None, collection: CollOpt = None, model: ModelOpt = None,
) -> None:
    """Compare the store with the target tree; exit 1 if any point is stale, missing or duplicated."""
    from gitindex.verify import VerifyResult, verify

    ix: Index | None = None
    with _errors(lambda: ix.data_dir if ix else None):
        ix = _open_indexed(path, qdrant_url=qdrant_url, collection=collection, model=model)
        try:
            target = _target(ix, ref, staged)
        except EmptyRepositoryError:
            target = None
        if target is None and ix.repo is not None:
            # No commits: the tree is empty, so any stored point is stale; --json still gets JSON.
            _err("gitindex: nothing to verify: the repository has no commits")
            stored = 0
            if ix.store.exists():
                with ix.store.session():
                    stored = ix.store.count()
            result = VerifyResult(stale=stored, missing=0, duplicates=0, expected=0)
        else:
            result = verify(ix, target)
        if as_json:
            typer.echo(json.dumps(result.to_json()))
        elif result.ok:
            typer.echo(f"ok: the store holds exactly the {result.expected} chunks of the tree")
        else:
            typer.echo(f"not ok: {result.stale} stale, {result.missing} missing, {result.duplicates} duplicate points")
        if not result.ok:
            raise typer.Exit(1)


from gitindex.hooks_cli import hooks_app, log_cmd, status_lines  # noqa: E402 - it imports _errors from here

app.add_typer(hooks_app, name="hooks")
app.command("log")(log_cmd)


def main() -> None:
    from gitindex.memory import fewer_malloc_arenas

    fewer_malloc_arenas()  # before any thread starts
    app()
