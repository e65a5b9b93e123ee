"""What the commands share: option definitions, opening the index, and messages."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from gitindex.api import Index

PathArg = Annotated[Path, typer.Argument(help="A directory inside the repository.", show_default=False)]
RefOpt = Annotated[str | None, typer.Option("--ref", help="Use this branch, tag or commit instead of HEAD.")]
RefsOpt = Annotated[list[str] | None, typer.Option("--ref", help="Sync this branch, tag or commit and keep it tracked (repeatable; default: the checked-out branch, the configured refs and every tracked ref that moved).")]
ForgetOpt = Annotated[list[str] | None, typer.Option("--forget", metavar="REF", help="Stop tracking REF (repeatable): it is taken off every point, and the points no other tracked ref holds go.")]
StagedOpt = Annotated[bool, typer.Option("--staged", help="Use the staged tree (the git index).")]
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
RebuildOpt = Annotated[bool, typer.Option("--rebuild", help="Drop the collection and re-index everything.")]
MemoryOpt = Annotated[int | None, typer.Option("--memory-limit", metavar="MB", help="Stay under this resident size, in MB, by shrinking batches as needed (default: half the available memory).")]

# Data directories of the indexes this process opened: where the error boundary writes the
# details of a bug (the last one that exists).
opened: list[Path] = []


def err(message: str) -> None:
    typer.echo(message, err=True)


def open_index(path: Path, *, plain: bool = False, **flags: Any) -> Index:
    """The index around `path`, with settings from the repository, the environment and `flags`."""
    from gitindex.api import open as open_library_index
    from gitindex.repo import limit_pack_windows

    limit_pack_windows()  # this process is the CLI's own
    given: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in flags.items()}
    index = open_library_index(path, plain=plain, env=os.environ, origin="command line", **given)
    opened.append(index.workspace.data_dir)
    return index
