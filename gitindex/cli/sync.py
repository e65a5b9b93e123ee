"""`gitindex sync` and `gitindex index`: one command, two defaults."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gitindex.cli.options import (
    BackendOpt,
    BatchOpt,
    CollOpt,
    DeviceOpt,
    ExcludeOpt,
    ForgetOpt,
    IncludeOpt,
    JsonOpt,
    MaxFilesOpt,
    MaxSizeOpt,
    MemoryOpt,
    ModelOpt,
    NoWaitOpt,
    PathArg,
    QuietOpt,
    RebuildOpt,
    RefsOpt,
    StagedOpt,
    UrlOpt,
    err,
    open_index,
)

if TYPE_CHECKING:
    from gitindex.sync import SyncResult

SYNC_HELP = """Index the repository: the first run indexes everything, later runs only what changed.

Example: gitindex sync --json
"""
INDEX_HELP = """Index PATH: `sync` in a git repository; in a plain directory, its files on disk
(hashed as git blobs, .gitignore honoured).

Example: gitindex index ~/src/project --max-files 500
"""


def command(plain: bool) -> Callable[..., None]:
    """The sync command; `plain` lets PATH be a directory outside any git repository."""

    def sync_command(
        path: PathArg = Path("."), ref: RefsOpt = None, forget: ForgetOpt = None, staged: StagedOpt = False,
        as_json: JsonOpt = False,
        quiet: QuietOpt = False, batch_size: BatchOpt = None, max_file_size: MaxSizeOpt = None,
        max_files: MaxFilesOpt = None, model: ModelOpt = None, qdrant_url: UrlOpt = None,
        collection: CollOpt = None, include: IncludeOpt = None, exclude: ExcludeOpt = None,
        device: DeviceOpt = None, backend: BackendOpt = None, no_wait: NoWaitOpt = False,
        rebuild: RebuildOpt = False, memory_limit: MemoryOpt = None,
        shard: Annotated[str | None, typer.Option("--shard", metavar="K/N", help="Only the paths of shard K of N (a CI matrix of N jobs syncs one collection together).")] = None,
    ) -> None:
        from gitindex.memory import fewer_malloc_arenas
        from gitindex.repo import index_file_from

        fewer_malloc_arenas()  # for the process the CLI owns, before the sync starts its threads
        with open_index(path, plain=plain, batch_size=batch_size, max_file_size=max_file_size,
                        max_files=max_files, model=model, qdrant_url=qdrant_url, collection=collection,
                        include=include, exclude=exclude, device=device, backend=backend,
                        memory_limit_mb=memory_limit) as index:
            show = not quiet and not as_json
            with _progress(show and sys.stderr.isatty()) as progress, _ctrl_c() as should_stop:
                result = index.sync(
                    ref, staged=staged, index_file=index_file_from(os.environ) if staged else None,
                    rebuild=rebuild, wait=not no_wait, progress=progress, should_stop=should_stop, shard=shard,
                    forget=forget or (),
                    on_wait=(lambda: err("gitindex: waiting for another sync to finish…")) if show else None,
                )
        if as_json:
            typer.echo(json.dumps(result.to_json()))
        elif result.label == "empty":
            if not quiet:
                err("gitindex: nothing to index yet: the repository has no commits")
        elif not quiet:
            typer.echo(summary(result))

    return sync_command


def summary(result: SyncResult) -> str:
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


@contextmanager
def _ctrl_c() -> Iterator[Callable[[], bool]]:
    """The first Ctrl-C asks the run to stop at the next batch boundary; a second one stops now."""
    asked: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if asked:
            raise KeyboardInterrupt
        asked.append(signum)
        # os.write, not print: a handler that writes to sys.stderr while the main thread is in the
        # middle of a write there raises "reentrant call" (a bug's exit 3, seen once).
        with contextlib.suppress(OSError):
            os.write(2, b"gitindex: stopping after the current batch (Ctrl-C again to stop now)\n")

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield lambda: False
        return
    try:
        yield lambda: bool(asked)
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from gitindex.progress import RichProgress

    with RichProgress() as progress:
        yield progress
