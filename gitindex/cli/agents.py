"""`gitindex mcp`: serve the index to coding agents over the Model Context Protocol."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from gitindex.cli.options import BackendOpt, CollOpt, ModelOpt, PathArg, UrlOpt

HttpOpt = Annotated[int | None, typer.Option(
    "--http", metavar="PORT", min=1, max=65535,
    help="Serve streamable HTTP on 127.0.0.1:PORT (path /mcp) instead of stdio.")]


def mcp(
    path: PathArg = Path("."), http: HttpOpt = None, qdrant_url: UrlOpt = None,
    collection: CollOpt = None, model: ModelOpt = None, backend: BackendOpt = None,
) -> None:
    """Serve search, status, sync and read to coding agents over MCP (stdio by default): the model
    stays loaded and the index open, so a search takes milliseconds; shell commands and hooks keep
    working beside it (README: coding agents)."""
    from gitindex.api import open as open_library_index
    from gitindex.cli.options import opened
    from gitindex.embedding import Embedder
    from gitindex.mcp_server import serve
    from gitindex.resident import Resident

    flags: dict[str, Any] = {"qdrant_url": qdrant_url, "collection": collection, "model": model, "backend": backend}

    def opener(embedder: Embedder | None) -> Any:
        index = open_library_index(path, env=os.environ, origin="command line", embedder=embedder, **flags)
        opened.append(index.workspace.data_dir)
        return index

    resident = Resident(opener)

    def stop(*_: object) -> None:
        # The transports read stdin (or accept) in threads that no exception reaches: end here,
        # once a sync in progress has finished its batch and the shard is released.
        resident.close()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        serve(resident, http)
    finally:
        resident.close()
