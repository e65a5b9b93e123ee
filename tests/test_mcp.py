"""`gitindex mcp` through the official SDK's own client, over stdio (and streamable HTTP),
against real repositories, the real model and the real embedded store; shell commands and git
hooks run beside the server as they would beside an agent."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
from conftest import GIT_ENV, GitRepo, python_source
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

GITINDEX = [sys.executable, "-m", "gitindex"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITINDEX_", "QDRANT_"))}
    return {**env, **GIT_ENV, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}


class Agent:
    """An MCP client session, as an agent holds one: tool calls return the decoded answer."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session

    async def call(self, tool: str, **arguments: Any) -> Any:
        result = await self.session.call_tool(tool, arguments)
        assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
        return json.loads(result.content[0].text)  # type: ignore[union-attr]

    async def error(self, tool: str, **arguments: Any) -> str:
        result = await self.session.call_tool(tool, arguments)
        assert result.is_error, result.content
        text: str = result.content[0].text  # type: ignore[union-attr]
        assert "Traceback" not in text
        return text


@asynccontextmanager
async def agent(cwd: Path, *args: str) -> AsyncIterator[Agent]:
    params = StdioServerParameters(command=GITINDEX[0], args=[*GITINDEX[1:], "mcp", *args], env=_env(), cwd=str(cwd))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield Agent(session)


def run(test: Callable[[], Awaitable[None]]) -> None:
    anyio.run(test)


def shell(repo: GitRepo, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GITINDEX, *args], cwd=repo.path, capture_output=True, text=True, env=_env(),
                          timeout=timeout)


def _server_pids() -> list[int]:
    """Our `gitindex mcp` processes (children of this test process)."""
    return [p.pid for p in psutil.Process().children(recursive=True)
            if "mcp" in p.cmdline() and "gitindex" in " ".join(p.cmdline())]


@pytest.fixture
def project(repo: GitRepo) -> GitRepo:
    repo.commit({
        "net/retry.py": "def retry_with_backoff(request, attempts):\n    \"\"\"Retry a failed HTTP request, "
                        "waiting longer after each timeout.\"\"\"\n    for attempt in range(attempts):\n"
                        "        if request():\n            return True\n    return False\n",
        "store/cache.py": python_source("cache", functions=3),
        "docs/guide.md": "# Guide\n\nHow to configure the cache and the retry policy.\n",
    })
    return repo


def test_an_agent_lists_tools_searches_checks_freshness_syncs_and_reads(project: GitRepo) -> None:
    async def test() -> None:
        async with agent(project.path / "net") as gi:  # started from a subdirectory
            tools = {t.name: t for t in (await gi.session.list_tools()).tools}
            assert set(tools) == {"search", "status", "sync", "read"}
            assert tools["search"].input_schema["required"] == ["query"]
            assert set(tools["search"].input_schema["properties"]) == {"query", "limit", "path", "lang", "mode", "ref"}
            assert all(len(t.description or "") > 80 for t in tools.values())

            before = await gi.call("status")
            assert before["fresh"] is False and "not been synced" in before["summary"]

            done = await gi.call("sync", wait=True)
            assert done["ok"] and done["complete"] and done["files"]["added"] == 3

            status = await gi.call("status")
            assert status["fresh"] is True and status["files"] == 3 and status["pending_files"] == 0
            assert status["head"] == project.git("rev-parse", "HEAD") and status["uncommitted_files"] == 0

            found = await gi.call("search", query="retry a request after a timeout", limit=3)
            top = found["hits"][0]
            assert top["path"] == "net/retry.py" and top["symbol"] == "retry_with_backoff"
            assert found["index"]["fresh"] is True and found["index"]["lags_head_by_files"] == 0

            lines = await gi.call("read", path=top["path"], start_line=top["start_line"], end_line=top["end_line"])
            on_disk = (project.path / "net/retry.py").read_text().splitlines(keepends=True)
            assert lines["text"] == "".join(on_disk[top["start_line"] - 1: top["end_line"]])
            assert lines["commit"] == status["head"]

            # A commit the index has not seen: never "fresh", and search says by how much it lags.
            project.commit({"net/pool.py": "def connection_pool_size(limit):\n    return max(1, limit)\n"})
            (project.path / "docs/guide.md").write_text("# Guide, being edited\n")
            lagging = await gi.call("status")
            assert lagging["fresh"] is False and lagging["pending_files"] == 1 and lagging["uncommitted_files"] == 1
            assert "lags HEAD by 1 files" in lagging["summary"] and "uncommitted" in lagging["summary"]
            stale = await gi.call("search", query="connection pool size")
            assert stale["index"]["fresh"] is False and stale["index"]["lags_head_by_files"] == 1
            assert "call sync" in stale["index"]["note"]

            again = await gi.call("sync")
            assert again["ok"] and again["files"]["added"] == 1 and again["chunks"]["embedded"] == 1
            fresh = await gi.call("search", query="connection pool size", limit=1)
            assert fresh["hits"][0]["path"] == "net/pool.py" and fresh["index"]["fresh"] is True
            assert (await gi.call("status"))["fresh"] is True  # uncommitted edits do not make it stale

    run(test)


def test_the_server_follows_a_branch_switch_and_searches_other_refs(project: GitRepo) -> None:
    assert shell(project, "sync", "-q").returncode == 0
    project.git("checkout", "-q", "-b", "topic")
    project.commit({"net/pool.py": "def connection_pool_size(limit):\n    return max(1, limit)\n"})
    assert shell(project, "sync", "-q").returncode == 0

    async def test() -> None:
        async with agent(project.path) as gi:
            on_topic = await gi.call("search", query="connection pool size", limit=1)
            assert on_topic["hits"][0]["path"] == "net/pool.py" and on_topic["index"]["ref"] == "topic"
            project.git("checkout", "-q", "main")  # while the server runs
            on_main = await gi.call("search", query="connection pool size", limit=5)
            assert on_main["index"]["ref"] == "main" and on_main["index"]["fresh"] is True
            assert "net/pool.py" not in [h["path"] for h in on_main["hits"]]
            other = await gi.call("search", query="connection pool size", limit=1, ref="topic")
            assert other["hits"][0]["path"] == "net/pool.py" and other["hits"][0]["refs"] == ["topic"]
            assert "not indexed" in await gi.error("search", query="pool", ref="no-such-branch")

    run(test)


def test_bad_input_is_a_tool_error_and_the_server_keeps_answering(project: GitRepo) -> None:
    assert shell(project, "sync", "-q").returncode == 0

    async def test() -> None:
        async with agent(project.path) as gi:
            assert "Unknown tool" in await gi.error("no_such_tool")
            assert "limit" in await gi.error("search", query="retry", limit="ten")
            assert "query" in await gi.error("search", limit=3)  # missing
            assert "query" in await gi.error("search", query=["a", "list"])
            assert "empty" in await gi.error("search", query="   ")
            assert "at most" in await gi.error("search", query="x" * 100_000)
            assert "between 1 and" in await gi.error("search", query="retry", limit=0)
            assert "mode" in await gi.error("search", query="retry", mode="fuzzy")
            assert "outside the repository" in await gi.error("read", path="../../etc/passwd")
            assert "outside the repository" in await gi.error("read", path="/etc/passwd")
            assert "not in the index" in await gi.error("read", path="no/such/file.py")
            assert "start_line" in await gi.error("read", path="net/retry.py", start_line=0)
            assert "before start_line" in await gi.error("read", path="net/retry.py", start_line=5, end_line=2)
            assert "wait" in await gi.error("sync", wait="sometimes")
            hits = (await gi.call("search", query="retry a request", limit=1))["hits"]
            assert hits[0]["path"] == "net/retry.py"  # still up

    run(test)


def test_shell_commands_and_hooks_work_while_the_server_holds_the_index(project: GitRepo) -> None:
    assert shell(project, "sync", "-q").returncode == 0
    assert shell(project, "hooks", "install").returncode == 0

    async def test() -> None:
        async with agent(project.path) as gi:
            await gi.call("search", query="retry")  # the server now keeps the shard open
            started = time.monotonic()
            found = shell(project, "search", "retry a request after a timeout", "--limit", "1")
            waited = time.monotonic() - started
            assert found.returncode == 0, found.stderr
            assert "net/retry.py" in found.stdout
            assert shell(project, "status").returncode == 0
            assert waited < 30, "it waited for the store lock's whole timeout"  # (figures: benchmarks/mcp.py)

            # A commit fires the post-commit hook: its background sync gets the shard from the server.
            project.commit({"net/pool.py": "def connection_pool_size(limit):\n    return max(1, limit)\n"})
            waited_for = shell(project, "hooks", "wait", "--timeout", "120")
            assert waited_for.returncode == 0, waited_for.stderr
            assert (await gi.call("status"))["fresh"] is True
            hit = (await gi.call("search", query="connection pool size", limit=1))["hits"][0]
            assert hit["path"] == "net/pool.py"  # the server sees what the hook's sync wrote

            # And a sync from the shell, while the server searches in between.
            project.commit({"net/pool.py": "def connection_pool_size(limit, floor=2):\n    return max(floor, limit)\n"})
            assert (await gi.call("search", query="retry"))["index"]["lags_head_by_files"] == 1
            synced = shell(project, "sync", "-q", "--no-wait")
            assert synced.returncode == 0, synced.stderr
            assert (await gi.call("status"))["fresh"] is True
            assert "floor=2" in (await gi.call("search", query="connection pool size", limit=1))["hits"][0]["text"]

        verified = shell(project, "verify", "--json")
        assert verified.returncode == 0 and json.loads(verified.stdout)["ok"], verified.stdout

    run(test)


def test_sync_without_waiting_and_its_progress(project: GitRepo) -> None:
    project.commit({f"pkg/module_{i}.py": python_source(f"module_{i}", functions=4) for i in range(40)})

    async def test() -> None:
        async with agent(project.path) as gi:
            started = await gi.call("sync", wait=False)
            assert started["started"] is True and started["running"] is True
            seen_running = False
            for _ in range(600):
                status = await gi.call("status")
                if not status["sync"]["running"]:
                    break
                seen_running = True
                assert status["fresh"] is False  # never fresh while a sync runs
                await anyio.sleep(0.05)
            assert seen_running
            assert status["fresh"] is True and status["files"] == 43
            assert status["sync"]["last_here"]["ok"] is True
            joined = await gi.call("sync", wait=True)  # nothing left to do: a no-op run
            assert joined["ok"] and joined["chunks"]["embedded"] == 0

    run(test)


def test_a_killed_server_blocks_nothing(project: GitRepo) -> None:
    assert shell(project, "sync", "-q").returncode == 0

    async def kill_during_use(sig: int) -> None:
        async with agent(project.path) as gi:
            await gi.call("search", query="retry")  # holds the shard open
            [pid] = _server_pids()
            os.kill(pid, sig)
            ended = time.monotonic()
            while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                assert time.monotonic() - ended < 30
                await anyio.sleep(0.05)

    for sig in (signal.SIGKILL, signal.SIGTERM):
        with contextlib.suppress(Exception):  # the client sees its server vanish: that is the point
            run(lambda sig=sig: kill_during_use(sig))  # type: ignore[misc]
        found = shell(project, "search", "retry a request", "--limit", "1", timeout=30)
        assert found.returncode == 0 and "net/retry.py" in found.stdout, found.stderr


def test_sigterm_exits_zero(project: GitRepo) -> None:
    assert shell(project, "sync", "-q").returncode == 0
    server = subprocess.Popen([*GITINDEX, "mcp", str(project.path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=_env())
    time.sleep(2)
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0, server.stderr.read()  # type: ignore[union-attr]
    assert b"Traceback" not in server.stderr.read()  # type: ignore[union-attr]


def test_stdin_closed_ends_the_server(project: GitRepo) -> None:
    server = subprocess.Popen([*GITINDEX, "mcp", str(project.path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=_env())
    server.stdin.close()  # type: ignore[union-attr]
    assert server.wait(timeout=30) == 0
    assert b"Traceback" not in server.stderr.read()  # type: ignore[union-attr]


def test_outside_a_repository_it_says_so(tmp_path: Path) -> None:
    done = subprocess.run([*GITINDEX, "mcp", str(tmp_path)], capture_output=True, text=True, env=_env(),
                          stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode == 1 and "not inside a git repository" in done.stderr
    assert "Traceback" not in done.stderr


def test_streamable_http_on_loopback(project: GitRepo) -> None:
    from mcp.client.streamable_http import streamable_http_client

    assert shell(project, "sync", "-q").returncode == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([*GITINDEX, "mcp", str(project.path), "--http", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())

    async def test() -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, server.stderr.read()  # type: ignore[union-attr]
                await anyio.sleep(0.1)
        async with streamable_http_client(f"http://127.0.0.1:{port}/mcp") as streams, \
                ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            result = await session.call_tool("search", {"query": "retry a request", "limit": 1})
            assert not result.is_error
            assert json.loads(result.content[0].text)["hits"][0]["path"] == "net/retry.py"  # type: ignore[union-attr]

    try:
        run(test)
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0


def test_a_manifest_recovered_by_another_process_is_followed(project: GitRepo) -> None:
    assert shell(project, "sync", "-q").returncode == 0
    manifest = project.path / ".git" / "gitindex" / "manifest.sqlite"

    async def test() -> None:
        async with agent(project.path) as gi:
            assert (await gi.call("status"))["fresh"] is True
            manifest.write_bytes(b"not a database" * 1000)  # garbled while the server has it open
            recovered = shell(project, "sync")
            assert recovered.returncode == 0 and "set aside" in recovered.stdout + recovered.stderr
            status = await gi.call("status")
            assert status["fresh"] is True and status["files"] == 3  # the new manifest, not the old file
            assert (await gi.call("search", query="retry a request", limit=1))["hits"][0]["path"] == "net/retry.py"

    run(test)
