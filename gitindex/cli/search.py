"""`gitindex search`: the chunks closest in meaning to a query."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gitindex.cli.options import BackendOpt, CollOpt, DeviceOpt, JsonOpt, ModelOpt, UrlOpt, err, open_index


def search(
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
    with open_index(path, plain=True, model=model, qdrant_url=qdrant_url, collection=collection,
                    device=device, backend=backend) as index:
        fresh = index.freshness()
        if fresh is not None and fresh.stale and refresh:
            index.sync()
            fresh = index.freshness()
        if fresh is not None and fresh.stale:
            err(f"gitindex: {fresh.describe()}")
        hits = index.search(query, limit=limit, path=path_glob)
    if as_json:
        typer.echo(json.dumps([h.to_json() for h in hits]))
        return
    if not hits:
        err("gitindex: no results (is the repository indexed? run `gitindex sync`)")
    for hit in hits:
        typer.echo(f"{hit.path}:{hit.start_line}-{hit.end_line}  score {hit.score:.3f}")
        for line in hit.text.splitlines()[:4]:
            typer.echo(f"    {line}")
