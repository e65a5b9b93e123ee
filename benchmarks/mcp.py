"""`gitindex mcp` next to the shell commands, side by side in one run.

    python -m benchmarks.mcp                 # networkx 3.2.1 cut to about 10k chunks (indexed once, cached)
    python -m benchmarks.mcp --quick         # fewer queries and repetitions, same repository
    python -m benchmarks.mcp --small         # a generated 60-file repository (the smoke test's)

The repository is the first FILES files of the networkx 3.2.1 wheel (real code nobody here wrote,
about 10k chunks at 423 files), committed once under --cache/corpora and cloned to --cache/mcp,
where its index is kept between runs: each run resets the clone to the corpus commit and syncs
(seconds; the first run indexes it all, a few minutes on 2 cores).

One run, side by side: `gitindex mcp` over stdio, driven by the official SDK's client
(mcp.ClientSession, as an agent drives it): start-up, a warm-up query, then QUERIES searches
(natural-language and identifier queries, mode hybrid, limit 10; the client's round trip and the
server's own time, the tool's took_ms), the status and read tools. Then, beside the server, each
shell command (a new process) twice, adjacent and in alternating order: in the served repository
right after an MCP search (so the server holds the shard and the command must take it from the
server), and in a twin (a copy of the repository and its index where no server runs). Commands:
`gitindex search` (SHELL queries), a process that only takes the store's lock (the hand-over's
wait alone), `gitindex status`, `gitindex sync` after a one-file commit (SYNCS). Then a shell sync
during which a shell status runs and the status tool is called every 50 ms (never fresh while the
sync runs), and the sync tool after a one-file commit. Figures are medians (p95 with 20 samples
or more) and ratios of figures from this run; the machine's load average is recorded.
Writes benchmarks/out/mcp-<time>.{json,md} and mcp-latest.{json,md} unless --out is "-".
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import corpus
from benchmarks.measure import measure
from benchmarks.startup import small_repository  # 60 small modules, committed and indexed

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ("networkx", "3.2.1")
FILES = 423  # the first 423 files of the wheel (sorted paths): 10,048 chunks
QUICK = {"queries_n": 20, "shell_reps": 4, "statuses": 2, "syncs": 1, "mcp_statuses": 10}  # --quick, make bench --quick
TARGET_MS = 50.0  # issue 13: a search in <= 50 ms of server time on a 10k-chunk repository
EDIT = '\n\ndef mcp_bench_edit_{n}(graph, node):\n    """Benchmark edit {n}: the degree of node, plus {n}."""\n' \
       '    return graph.degree(node) + {n}\n'

# What an agent asks of a graph library, in plain words (half of the queries) ...
NL_QUERIES = (
    "shortest path between two nodes in a weighted graph",
    "compute pagerank of every node",
    "find all connected components of an undirected graph",
    "check whether a graph is bipartite",
    "minimum spanning tree with Kruskal's algorithm",
    "topological sort of a directed acyclic graph",
    "detect a cycle in a directed graph",
    "betweenness centrality of nodes",
    "maximum flow between a source and a sink",
    "read a graph from an edge list file",
    "write a graph in GML format",
    "generate a random graph with a given degree sequence",
    "clustering coefficient of a node",
    "raise an error when the node is not in the graph",
    "relabel the nodes of a graph with a mapping",
    "convert a graph to a scipy sparse adjacency matrix",
    "all pairs shortest path lengths",
    "greedy graph coloring",
    "isomorphism test between two graphs",
    "draw a graph with matplotlib",
    "minimum cut of a graph",
    "k-core decomposition",
    "breadth first search from a source node",
    "community detection by modularity",
    "add weighted edges from a list of tuples",
)
_DEF = re.compile(r"^def ([A-Za-z][A-Za-z0-9_]{5,})\(", re.M)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITINDEX_", "QDRANT_"))}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"})
    return env


def _gitindex() -> list[str]:
    script = Path(sys.executable).parent / "gitindex"  # the installed entry point, as agents start it
    return [str(script)] if script.exists() else [sys.executable, "-m", "gitindex"]


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **corpus._GIT_ENV}
    return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


# -- the repository ------------------------------------------------------------------------------
def repository(cache: Path, files: int) -> Path:
    """The corpus (built once from the wheel), cloned to where its index is kept between runs."""
    name, version = PACKAGE
    source = cache / "corpora" / f"mcp-{name}-{version}-{files}"
    try:
        git(source, "rev-parse", "--verify", "HEAD")
    except (subprocess.CalledProcessError, FileNotFoundError, NotADirectoryError):
        shutil.rmtree(source, ignore_errors=True)
        log(f"building the corpus: the first {files} files of {name} {version}")
        corpus.build_tree(source, files, cache / "wheels", packages=[f"{name}=={version}"])
    repo = cache / "mcp" / source.name
    try:
        git(repo, "rev-parse", "--verify", "HEAD")
    except (subprocess.CalledProcessError, FileNotFoundError, NotADirectoryError):
        shutil.rmtree(repo, ignore_errors=True)
        repo.parent.mkdir(parents=True, exist_ok=True)
        git(repo.parent, "clone", "-q", str(source), str(repo))
    git(repo, "checkout", "-q", "-f", "-B", "bench", git(source, "rev-parse", "HEAD"))  # drop earlier runs' edits
    git(repo, "clean", "-q", "-fdx", "--exclude=.git")
    return repo


def queries(repo: Path, n: int) -> list[dict[str, str]]:
    """n queries, alternating natural-language ones and function names defined in the repository."""
    names: set[str] = set()
    for path in git(repo, "ls-files", "*.py").splitlines():
        names.update(x for x in _DEF.findall((repo / path).read_text(errors="replace")) if not x.startswith("test_"))
    idents = random.Random(13).sample(sorted(names), min(len(names), (n + 1) // 2))
    out = []
    for i in range(n):
        if i % 2 == 0 or not idents:
            out.append({"kind": "natural language", "text": NL_QUERIES[(i // 2) % len(NL_QUERIES)]})
        else:
            out.append({"kind": "identifier", "text": idents[(i // 2) % len(idents)]})
    return out


def edit_target(repo: Path) -> str:
    """A mid-sized Python file, to which each one-file commit appends a function."""
    sized = sorted(((repo / p).stat().st_size, p) for p in git(repo, "ls-files", "*.py").splitlines())
    return sized[len(sized) // 2][1]


class Edits:
    def __init__(self, repo: Path) -> None:
        self.repo, self.target, self.n = repo, edit_target(repo), 0

    def commit(self) -> None:
        self.n += 1
        with (self.repo / self.target).open("a") as f:
            f.write(EDIT.format(n=self.n))
        git(self.repo, "commit", "-q", "-am", f"mcp bench edit {self.n}")


# -- figures -------------------------------------------------------------------------------------
def summary(values: list[float]) -> dict[str, Any]:
    """Median, p95 (nearest rank, with 20 samples or more), min, max, n; in ms."""
    if not values:
        return {"n": 0, "median_ms": None, "p95_ms": None, "min_ms": None, "max_ms": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, max(0, -(-95 * len(ordered) // 100) - 1))] if len(ordered) >= 20 else None
    return {"n": len(values), "median_ms": round(statistics.median(values) * 1000, 1),
            "p95_ms": None if p95 is None else round(p95 * 1000, 1),
            "min_ms": round(ordered[0] * 1000, 1), "max_ms": round(ordered[-1] * 1000, 1)}


class Shell:
    """The CLI in new processes, timed (wall, from spawn to exit)."""

    def __init__(self) -> None:
        self.cli, self.env = _gitindex(), _env()
        self.times: dict[str, list[float]] = {}
        self.failures: list[str] = []

    def run(self, label: str, repo: Path, *args: str) -> Any:
        m = measure([*self.cli, *args], cwd=repo, env=self.env, timeout=600, check=False)
        self.times.setdefault(label, []).append(m.wall)
        if m.rc != 0:
            self.failures.append(f"{label}: `gitindex {' '.join(args)}` exited {m.rc}: {m.stderr.strip()[-300:]}")
            return None
        return json.loads(m.stdout.strip().splitlines()[-1]) if "--json" in args and m.stdout.strip() else m.stdout

    def search(self, label: str, repo: Path, query: str) -> None:
        hits = self.run(label, repo, "search", query, "--limit", "10", "--json")
        if hits is not None and not hits:
            self.failures.append(f"{label}: no hits for {query!r}")

    def sync(self, label: str, repo: Path) -> None:
        out = self.run(label, repo, "sync", "--json")
        if out is not None and out["files"]["modified"] != 1:
            self.failures.append(f"{label}: expected one modified file, got {out['files']}")


_HANDOVER = """
import json, sys, time
import gitindex
store = gitindex.open(sys.argv[1]).workspace.store
started = time.perf_counter()
store._wait_marked()  # as any session's open: mark that we wait, take the store's lock
waited = time.perf_counter() - started
store._lock.release()
print(json.dumps(waited))
"""


def handover(shell: Shell, label: str, repo: Path) -> None:
    """How long a process waits for the embedded store's lock (nothing else: no load, no query)."""
    done = subprocess.run([sys.executable, "-c", _HANDOVER, str(repo)], cwd=repo, env=shell.env, capture_output=True,
                          text=True, timeout=600)
    if done.returncode != 0:
        shell.failures.append(f"{label}: {done.stderr.strip()[-300:]}")
        return
    shell.times.setdefault(label, []).append(json.loads(done.stdout))


def twin(repo: Path) -> Path:
    """A copy of the repository and its index (same directory name, so the same collection), where
    no server runs: the shell's figures without a server, measured beside those with one."""
    dest = repo.parent / "twin" / repo.name
    shutil.rmtree(dest.parent, ignore_errors=True)
    dest.parent.mkdir(parents=True)
    subprocess.run(["cp", "-a", str(repo), str(dest)], check=True)
    os.sync()  # or the twin's first flushes write back the whole copy
    return dest


# -- the run -------------------------------------------------------------------------------------
async def session(repo: Path, alone: Path, qs: list[dict[str, str]], shell: Shell, shell_queries: list[str],
                  statuses: int, syncs: int, mcp_statuses: int) -> dict[str, Any]:
    import anyio
    import anyio.to_thread
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    out: dict[str, Any] = {"errors": []}
    rt: dict[str, list[float]] = {}  # client round trips, seconds
    server_s: dict[str, list[float]] = {}  # the search tool's took_ms, in seconds
    edits, edits_alone = Edits(repo), Edits(alone)

    params = StdioServerParameters(command=shell.cli[0], args=[*shell.cli[1:], "mcp"], env=shell.env, cwd=str(repo))
    started = time.perf_counter()
    async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
        await client.initialize()
        out["initialize_s"] = round(time.perf_counter() - started, 3)

        async def call(label: str, tool: str, **arguments: Any) -> Any:
            t = time.perf_counter()
            result = await client.call_tool(tool, arguments)
            rt.setdefault(label, []).append(time.perf_counter() - t)
            text = result.content[0].text  # type: ignore[union-attr]
            if result.is_error:
                out["errors"].append(f"{tool}({arguments}): {text[:300]}")
                return None
            answer = json.loads(text)
            if tool == "search":
                server_s.setdefault(label, []).append(answer["took_ms"] / 1000)
                if not answer["hits"]:
                    out["errors"].append(f"search {arguments.get('query')!r}: no hits")
            return answer

        async def in_thread(fn: Any, *args: Any) -> Any:
            return await anyio.to_thread.run_sync(fn, *args)

        async def paired(i: int, served: Any, unserved: Any) -> None:
            """The same command with and without the server, adjacent, in alternating order."""
            for step in (served, unserved) if i % 2 == 0 else (unserved, served):
                await step()

        first = await call("first", "search", query=qs[0]["text"], limit=10)  # waits for the model's warm-up
        out["first_search_s"] = round(time.perf_counter() - started, 3)
        out["first_search_server_ms"] = first and first["took_ms"]
        await call("warm-up", "search", query="warm up the query path", limit=10)

        # 1. Searches, status and read through MCP.
        kinds: dict[str, list[float]] = {}
        for q in qs:
            answer = await call("search", "search", query=q["text"], limit=10)
            if answer:
                kinds.setdefault(q["kind"], []).append(answer["took_ms"] / 1000)
                top = answer["hits"][0]
                if len(rt.get("read", [])) < 10:
                    await call("read", "read", path=top["path"], start_line=top["start_line"], end_line=top["end_line"])
                if not answer["index"]["fresh"]:
                    out["errors"].append(f"search said the index is not fresh at rest: {answer['index']}")
        out["search_by_kind_server"] = {k: summary(v) for k, v in kinds.items()}
        for _ in range(mcp_statuses):
            status = await call("status", "status")
            if status and not status["fresh"]:
                out["errors"].append(f"status not fresh at rest: {status['summary']}")

        # 2. The shell beside the server: before each command an MCP search, so that the server
        # holds the shard and the command has to take it; the twin runs the same without a server.
        for i, text in enumerate(shell_queries):
            async def served(text: str = text) -> None:
                await call("hold", "search", query=text, limit=10)
                await in_thread(shell.search, "search, server running", repo, text)
                await call("after hand-over", "search", query=text, limit=10)  # the server opens the shard again

            await paired(i, served, lambda text=text: in_thread(shell.search, "search, no server", alone, text))
        for i in range(len(shell_queries)):  # the hand-over alone: a process that only takes the lock
            async def served_handover() -> None:
                await call("hold", "search", query="hold the shard", limit=10)
                await in_thread(handover, shell, "hand-over, server running", repo)

            await paired(i, served_handover, lambda: in_thread(handover, shell, "hand-over, no server", alone))
        for i in range(statuses):
            async def served_status() -> None:
                await call("hold", "search", query="hold the shard", limit=10)
                await in_thread(shell.run, "status, server running", repo, "status", "--json")

            await paired(i, served_status, lambda: in_thread(shell.run, "status, no server", alone, "status", "--json"))

        async def hold_after_commit() -> None:
            edits.commit()
            lag = await call("hold", "search", query="degree of a node", limit=10)
            if lag and lag["index"]["lags_head_by_files"] != 1:
                out["errors"].append(f"after a commit, search said it lags by {lag['index']['lags_head_by_files']}")

        async def after_sync() -> None:
            status = await call("after a sync", "status")
            if status and not status["fresh"]:
                out["errors"].append(f"status after the shell's sync is not fresh: {status['summary']}")

        for i in range(syncs):
            async def served_sync() -> None:
                await hold_after_commit()
                await in_thread(shell.sync, "sync, server running", repo)
                await after_sync()

            async def unserved_sync() -> None:
                edits_alone.commit()
                await in_thread(shell.sync, "sync, no server", alone)

            await paired(i, served_sync, unserved_sync)

        # 3. While a shell sync runs: a shell status once it has started, and the status tool every
        # 50 ms until it ends (which must never say fresh while the sync holds its lock).
        during: list[dict[str, Any]] = []
        for _ in range(max(1, syncs - 1)):
            await hold_after_commit()
            t = time.perf_counter()
            proc = subprocess.Popen([*shell.cli, "sync", "--json"], cwd=repo, env=shell.env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            await anyio.sleep(0.15)
            if proc.poll() is None:
                await in_thread(shell.run, "status, during a sync", repo, "status", "--json")
            seen = []
            while proc.poll() is None:
                status = await call("status during a sync", "status")
                if status:
                    seen.append((time.perf_counter(), status["fresh"], status["sync"]["running"]))
                await anyio.sleep(0.05)
            _, stderr = await in_thread(proc.communicate)
            ended = time.perf_counter()
            shell.times.setdefault("sync, server running, status polled", []).append(ended - t)
            if proc.returncode != 0:
                shell.failures.append(f"sync during status polling: exited {proc.returncode}: {stderr.strip()[-300:]}")
            during.append({"statuses": len(seen), "running": sum(1 for x in seen if x[2]),
                           "fresh_ms_before_exit": [round((ended - x[0]) * 1000) for x in seen if x[1]]})
            await after_sync()
        out["mcp_status_during_shell_sync"] = during

        # 4. The sync tool: the server's own sync (a thread, its own copy of the model).
        for _ in range(syncs):
            edits.commit()
            done = await call("sync tool", "sync", wait=True)
            if done and not (done.get("ok") and done["files"]["modified"] == 1):
                out["errors"].append(f"sync tool after a one-file commit: {done}")
        final = await call("final", "status")
        out["fresh_at_end"] = bool(final and final["fresh"])
        t = time.perf_counter()
    out["shutdown_s"] = round(time.perf_counter() - t, 3)  # stdin closed: the server ends
    out["round_trip"] = {k: summary(v) for k, v in rt.items()}
    out["server"] = {k: summary(v) for k, v in server_s.items()}
    out["search_samples_ms"] = [round(x * 1000, 1) for x in server_s.get("search", [])]
    return out


def benchmark(repo: Path, *, queries_n: int = 50, shell_reps: int = 10, statuses: int = 6,
              syncs: int = 4, mcp_statuses: int = 25) -> dict[str, Any]:
    """Sync `repo` (the first time: index it all), copy it to a twin, and measure."""
    import anyio

    shell = Shell()
    log(f"syncing {repo} (the first run indexes it all: minutes)")
    prep = measure([*shell.cli, "sync", "--json"], cwd=repo, env=shell.env, timeout=24 * 3600)
    prepared = json.loads(prep.stdout.strip().splitlines()[-1])
    status = shell.run("prepare", repo, "status", "--json")
    alone = twin(repo)
    qs = queries(repo, queries_n)
    shell_queries = [q["text"] for q in qs[:shell_reps]]
    r: dict[str, Any] = {
        "repo": str(repo), "files": status["files"], "chunks": status.get("chunks") or status.get("points"),
        "prepare": {"wall_s": round(prep.wall, 1), "embedded": prepared["chunks"]["embedded"]},
        "queries": qs, "edit_file": edit_target(repo)}
    log(f"gitindex mcp: {len(qs)} searches through the SDK's client, then {len(shell_queries)} shell searches, "
        f"{statuses} statuses and {syncs} syncs beside it, each next to the same without a server")
    r["mcp"] = anyio.run(session, repo, alone, qs, shell, shell_queries, statuses, syncs, mcp_statuses)
    shutil.rmtree(alone.parent, ignore_errors=True)
    r["shell"] = {k: summary(v) for k, v in shell.times.items() if k != "prepare"}
    r["failures"] = shell.failures + r["mcp"].pop("errors")
    r["ratios"] = ratios(r)
    return r


def _med(block: dict[str, Any], key: str) -> float | None:
    return (block.get(key) or {}).get("median_ms")


def ratios(r: dict[str, Any]) -> dict[str, Any]:
    m, s = r["mcp"], r["shell"]
    search_rt, search_server = _med(m["round_trip"], "search"), _med(m["server"], "search")

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a and b else None

    def diff(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round(a - b, 1)

    return {
        "MCP search: client round trip / server time": ratio(search_rt, search_server),
        "shell search, no server / MCP search round trip": ratio(_med(s, "search, no server"), search_rt),
        "shell search, server running / MCP search round trip": ratio(_med(s, "search, server running"), search_rt),
        "shell search, server running / no server": ratio(_med(s, "search, server running"), _med(s, "search, no server")),
        "shell search: extra wait with the server (ms)": diff(_med(s, "search, server running"), _med(s, "search, no server")),
        "hand-over: store lock wait with the server, median (ms)": _med(s, "hand-over, server running"),
        "shell sync, server running / no server": ratio(_med(s, "sync, server running"), _med(s, "sync, no server")),
        "shell sync: extra wait with the server (ms)": diff(_med(s, "sync, server running"), _med(s, "sync, no server")),
        "shell sync with MCP status polled / no server": ratio(_med(s, "sync, server running, status polled"),
                                                              _med(s, "sync, no server")),
        "shell status, server running / no server": ratio(_med(s, "status, server running"), _med(s, "status, no server")),
        "shell status, no server / MCP status round trip": ratio(_med(s, "status, no server"), _med(m["round_trip"], "status")),
        "MCP sync tool / shell sync, no server": ratio(_med(m["round_trip"], "sync tool"), _med(s, "sync, no server")),
        "MCP search server time <= 50 ms (median)": None if search_server is None else search_server <= TARGET_MS,
    }


def markdown(r: dict[str, Any]) -> str:
    m, s = r["mcp"], r["shell"]
    search_rt = _med(m["round_trip"], "search")

    def row(what: str, block: dict[str, Any] | None) -> list[str]:
        block = block or {}
        med = block.get("median_ms")
        return [what, "-" if med is None else f"{med:.1f}", "-" if block.get("p95_ms") is None else f"{block['p95_ms']:.1f}",
                str(block.get("n", 0)), f"{med / search_rt:.1f}x" if med and search_rt else "-"]

    kinds = m.get("search_by_kind_server", {})
    rows = [row("MCP search, server time (took_ms)", m["server"].get("search")),
            *[row(f"- {k} queries", v) for k, v in kinds.items()],
            row("MCP search, client round trip", m["round_trip"].get("search")),
            row("MCP search after a shell command took the shard (server time: it opens it again)",
                m["server"].get("after hand-over")),
            row("MCP status, round trip", m["round_trip"].get("status")),
            row("MCP read, round trip", m["round_trip"].get("read")),
            row("MCP sync tool after a one-file commit, round trip", m["round_trip"].get("sync tool")),
            row("store lock taken from the server (the hand-over alone, in a new process)",
                s.get("hand-over, server running")),
            row("`gitindex search`, no server", s.get("search, no server")),
            row("`gitindex search`, server running (takes the shard)", s.get("search, server running")),
            row("`gitindex status`, no server", s.get("status, no server")),
            row("`gitindex status`, server running", s.get("status, server running")),
            row("`gitindex sync` after a one-file commit, no server", s.get("sync, no server")),
            row("`gitindex sync` after a one-file commit, server running", s.get("sync, server running")),
            row("`gitindex sync`, server running, MCP status every 50 ms", s.get("sync, server running, status polled")),
            row("- MCP status during that sync, round trip", m["round_trip"].get("status during a sync")),
            row("- `gitindex status` during that sync", s.get("status, during a sync"))]
    head = ["measure", "median ms", "p95 ms", "n", "x MCP search round trip"]
    during = m.get("mcp_status_during_shell_sync") or []
    fresh = [x for d in during for x in d["fresh_ms_before_exit"]]
    load = r.get("load_avg")
    lines = [f"## `gitindex mcp` next to the shell ({r['files']} files, {r['chunks']} chunks)", "",
             "MCP figures come through the official SDK's client over stdio; each shell command is a new process "
             "(start-up, model load and store open included). Each shell command with the server running "
             "follows an MCP search, so the server holds the shard and the command must take it; it runs next to "
             "the same command on a copy of the repository and its index where no server runs (adjacent, in "
             "alternating order)." + (f" Load average {load['start'][0]:.1f} at the start, {load['end'][0]:.1f} "
                                     "at the end." if load else ""), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
             *["| " + " | ".join(c) + " |" for c in rows], "",
             "| ratio or difference (medians of this run) | value |", "|---|---|",
             *[f"| {k} | {'-' if v is None else v} |" for k, v in r["ratios"].items()], "",
             f"Server start to initialized: {m['initialize_s']:.2f} s; first search answered {m['first_search_s']:.2f} s "
             f"after start ({m['first_search_server_ms']} ms in the server, the model's warm-up included); exit on "
             f"stdin close: {m['shutdown_s']:.2f} s. Before the run the index was synced in {r['prepare']['wall_s']} s "
             f"({r['prepare']['embedded']} chunks embedded). MCP status during the shell's syncs: "
             f"{sum(d['statuses'] for d in during)} calls, {sum(d['running'] for d in during)} said a sync runs, "
             f"{len(fresh)} said fresh before the sync process had exited"
             + (f" ({', '.join(str(x) for x in fresh)} ms before its exit)" if fresh else "")
             + f". Fresh at the end: {m['fresh_at_end']}."]
    if r["failures"]:
        lines += ["", "Failures and anomalies:", *[f"- {f}" for f in r["failures"]]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mcp", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 queries, 4 shell searches, 1 sync per side")
    parser.add_argument("--small", action="store_true", help="a generated 60-file repository in a temporary directory")
    parser.add_argument("--files", type=int, default=FILES, help=f"files of {PACKAGE[0]} {PACKAGE[1]} to commit")
    parser.add_argument("--queries", type=int, default=50, help="MCP searches")
    parser.add_argument("--shell-reps", type=int, default=10, help="shell searches with and without the server")
    parser.add_argument("--statuses", type=int, default=6, help="shell statuses with and without the server")
    parser.add_argument("--syncs", type=int, default=4, help="one-file commits synced per side")
    parser.add_argument("--mcp-statuses", type=int, default=25, help="calls of the status tool")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "gitindex-bench",
                        help="corpus, wheels and the indexed clone (kept between runs)")
    parser.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "out"), help='report directory ("-": none)')
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, "queries" if name == "queries_n" else name, value)
    import tempfile

    from benchmarks.run import machine

    scratch = Path(tempfile.mkdtemp(prefix="gitindex-mcp-bench-"))
    try:
        repo = small_repository(scratch) if args.small else repository(args.cache, args.files)
        started, load = time.perf_counter(), os.getloadavg()
        results = benchmark(repo, queries_n=args.queries, shell_reps=args.shell_reps, statuses=args.statuses,
                            syncs=args.syncs, mcp_statuses=args.mcp_statuses)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results.update(started=time.strftime("%Y-%m-%d %H:%M:%S %Z"), seconds=round(time.perf_counter() - started, 1),
                   machine=machine(), load_avg={"start": load, "end": os.getloadavg()})
    text = markdown(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.out != "-":
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name in (f"mcp-{time.strftime('%Y%m%d-%H%M%S')}", "mcp-latest"):
            (out / f"{name}.json").write_text(json.dumps(results, indent=1))
            (out / f"{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
