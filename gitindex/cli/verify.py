"""`gitindex verify`: compare the store with the tree, point by point."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from gitindex.cli.options import CollOpt, JsonOpt, ModelOpt, PathArg, RefOpt, StagedOpt, UrlOpt, err, open_index
from gitindex.errors import EXIT_ERROR


def verify(
    path: PathArg = Path("."), ref: RefOpt = None, staged: StagedOpt = False, as_json: JsonOpt = False,
    qdrant_url: UrlOpt = None, collection: CollOpt = None, model: ModelOpt = None,
) -> None:
    """Compare the store with the target tree; exit 1 if any point is stale, missing or duplicated."""
    from gitindex.repo import index_file_from

    with open_index(path, plain=True, qdrant_url=qdrant_url, collection=collection, model=model) as index:
        result = index.verify(ref, staged=staged, index_file=index_file_from(os.environ) if staged else None)
    if result.note:
        err(f"gitindex: {result.note}")
    if as_json:
        typer.echo(json.dumps(result.to_json()))
    elif result.ok:
        typer.echo(f"ok: the store holds exactly the {result.expected} chunks of the tree")
    else:
        typer.echo(f"not ok: {result.stale} stale, {result.missing} missing, {result.duplicates} duplicate points")
    if not result.ok:
        raise typer.Exit(EXIT_ERROR)
