"""`gitindex mcp`: the resident index (resident.py) as a Model Context Protocol server, over
stdio or streamable HTTP on 127.0.0.1, built on the official `mcp` SDK.

Each tool runs in a worker thread (the event loop only carries messages), so a long sync never
holds up a search. An error in a tool is a tool error with its message, never the server's end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any, Literal, TypeVar

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from gitindex.errors import GitindexError
from gitindex.resident import MAX_LIMIT, MAX_QUERY_CHARS, Resident

T = TypeVar("T")

INSTRUCTIONS = """\
gitindex searches this git repository's code by meaning and by name (hybrid semantic + keyword
search over syntax-aware chunks: functions, classes, methods). Use `search` before grepping when
you do not know where something lives; `read` expands a hit; `status` says whether the index
matches HEAD (it follows commits, not uncommitted edits); `sync` brings it up to date."""


def build(resident: Resident) -> MCPServer:
    server: MCPServer = MCPServer("gitindex", instructions=INSTRUCTIONS, log_level="WARNING")

    async def call(fn: Callable[[], T]) -> T:
        try:
            return await anyio.to_thread.run_sync(fn)
        except GitindexError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(description=(
        "Search the repository's code. `query`: what the code does in plain words (\"retry a request "
        "after a timeout\") or a name (`Session.send`, `parse_config`). Returns up to `limit` hits, best "
        "first: path, start_line/end_line, symbol (the function or class), language, score and text. "
        "`path`: a gitignore-style pattern to keep (`src/**/*.py`, `*.go`); `lang`: one language "
        "(python, typescript, go...); `mode`: hybrid (default, best), dense (meaning only) or lexical "
        "(words only); `ref`: another tracked branch or tag (default: the checked-out branch). `index` "
        "in the answer says whether the index matches HEAD and, if not, by "
        f"how many files it lags (call sync then). At most {MAX_LIMIT} hits, {MAX_QUERY_CHARS} characters."))
    async def search(query: str, limit: int = 10, path: str | None = None, lang: str | None = None,
                     mode: Literal["hybrid", "dense", "lexical"] = "hybrid", ref: str | None = None) -> dict[str, Any]:
        return await call(partial(resident.search, query, limit=limit, path=path, lang=lang, mode=mode, ref=ref))

    @server.tool(description=(
        "How fresh the index is: `fresh` is true only when the indexed tree is HEAD's and no sync is "
        "running. Also: the indexed commit and HEAD, files that differ between them (pending_files), "
        "files with uncommitted changes (not indexed: the index follows commits), files and chunks "
        "indexed, a sync in progress (here or in a hook) with its progress, and the last run."))
    async def status() -> dict[str, Any]:
        return await call(resident.status)

    @server.tool(description=(
        "Bring the index up to HEAD: an incremental sync that embeds only changed code (seconds after "
        "a commit; the first index of a large repository takes minutes). wait=true returns the "
        "summary when done; wait=false returns at once, and status shows the progress. A sync "
        "already running (started here) is joined, not repeated."))
    async def sync(wait: bool = True) -> dict[str, Any]:
        return await call(partial(resident.sync, wait))

    @server.tool(description=(
        "Read lines of a file as indexed (at the indexed commit), to expand a search hit without a "
        "file-system tool. `path` as search returned it (relative to the repository's top); "
        "start_line and end_line are 1-based and inclusive (end_line omitted: up to 2000 lines)."))
    async def read(path: str, start_line: int = 1, end_line: int | None = None) -> dict[str, Any]:
        return await call(partial(resident.read, path, start_line, end_line))

    return server


def serve(resident: Resident, http_port: int | None = None) -> None:
    """Answer until stdin closes (stdio) or the process is told to stop (SIGTERM, Ctrl-C)."""
    server = build(resident)
    threading.Thread(target=_quietly(resident.warm_up), name="gitindex-warm-up", daemon=True).start()
    if http_port is None:
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=http_port)


def _quietly(fn: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            fn()
        except Exception:  # the first search loads the model again and reports what fails
            return
    return run
