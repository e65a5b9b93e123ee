"""`make bench`: gitindex on real code (PyPI release histories, large trees) next to LangChain's indexing API.

    python -m benchmarks.run            # the default run (about 30 minutes on 2 cores)
    python -m benchmarks.run --quick    # a few minutes: fewer releases, the 1k tree only
    python -m benchmarks.run --scenarios backends,first,replay --no-peer

Every gitindex run is a child process (`python -m benchmarks.gi_run ... -- sync --json`, or the
installed `gitindex` script where no backend choice is needed), so wall time, CPU time and peak
RSS include interpreter start-up and imports. Writes benchmarks/out/bench-<time>.{json,md} and
latest.{json,md}; corpora, clones and the peer's venv live under --cache.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import corpus
from benchmarks.measure import Measured, measure

REPO_ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("backends", "first", "replay", "noop", "edit", "search", "trees", "startup", "mcp", "quality")
DEFAULT_SCENARIOS = SCENARIOS
QUERIES = ("parse an HTTP date header", "where are cookies serialized", "route a URL to an endpoint")
EDIT = '\n\ndef bench_edit_{n}(value):\n    """Benchmark edit {n}: return the value doubled."""\n    return value * 2 + {n}\n'
PEER_BEST_BATCH = 1_000_000  # one batch holds the whole corpus


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- set-up ------------------------------------------------------------------------------------
def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITINDEX_")}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))})
    return env


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **corpus._GIT_ENV}
    out = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _valid_repo(path: Path, tags: list[str] | None = None) -> bool:
    if not (path / ".git").is_dir():
        return False
    try:
        git(path, "rev-parse", "--verify", "HEAD")
        for tag in tags or []:
            git(path, "rev-parse", "--verify", f"refs/tags/{tag}")
    except subprocess.CalledProcessError:
        return False
    return True


def history_corpus(cache: Path, package: str, versions: list[str]) -> Path:
    dest = cache / "corpora" / f"history-{package}-{versions[0]}-{versions[-1]}-{len(versions)}"
    if not _valid_repo(dest, [f"v{v}" for v in versions]):
        shutil.rmtree(dest, ignore_errors=True)
        log(f"building release history {package} {versions[0]}..{versions[-1]}")
        corpus.build_release_history(dest, package, versions, cache / "wheels")
    return dest


def tree_corpus(cache: Path, n: int) -> Path:
    dest = cache / "corpora" / f"tree-{n}"
    if not _valid_repo(dest):
        shutil.rmtree(dest, ignore_errors=True)
        log(f"building a tree of {n} files")
        corpus.build_tree(dest, n, cache / "wheels")
    return dest


def clone(src: Path, dest: Path, rev: str) -> Path:
    shutil.rmtree(dest, ignore_errors=True)
    git(src.parent, "clone", "-q", str(src), str(dest))
    checkout(dest, rev)
    return dest


def checkout(repo: Path, rev: str) -> None:
    git(repo, "checkout", "-q", "-B", "bench", rev)


def peer_venv(path: Path) -> Path:
    """The peer's own venv from benchmarks/peers/requirements.txt (torch==2.13.0 first)."""
    python = path / "bin" / "python"
    marker = path / ".requirements"
    wanted = (REPO_ROOT / "benchmarks" / "peers" / "requirements.txt").read_text()
    if python.exists() and marker.is_file() and marker.read_text() == wanted:
        return python
    log(f"creating the peer's venv at {path} (about a minute)")
    shutil.rmtree(path, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, "-r", str(REPO_ROOT / "benchmarks" / "peers" / "requirements.txt")], check=True)
    marker.write_text(wanted)
    return python


def model_dir() -> str:
    from gitindex.embedding import resolve_model

    return resolve_model("all-MiniLM-L6-v2").location


# -- running the two systems -------------------------------------------------------------------
def _last_json(text: str) -> Any:
    for line in reversed(text.strip().splitlines()):
        if line.startswith(("{", "[")):
            return json.loads(line)
    raise ValueError(f"no JSON in output: {text[-500:]}")


@dataclass
class Run:
    """One child process: what the OS measured, what it printed, and its phase split."""

    m: Measured
    out: Any
    phases: dict[str, float] = field(default_factory=dict)
    startup_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {**self.m.to_json(), "startup_s": None if self.startup_s is None else round(self.startup_s, 3),
                "phases_s": {k: round(v, 3) for k, v in sorted(self.phases.items())}, "output": self.out}


class Gitindex:
    def __init__(self, backend: str, onnx_cache: Path | None, work: Path) -> None:
        self.backend = backend
        self.onnx_cache = onnx_cache
        self.work = work
        script = Path(sys.executable).with_name("gitindex")
        self.cli = [str(script)] if script.exists() else [sys.executable, "-m", "gitindex"]
        self._n = 0

    def run(self, repo: Path, *args: str, backend: str | None = None, timeout: float = 3600,
            check: bool = True) -> Run:
        """The CLI with `backend` (default: the chosen one), through benchmarks.gi_run."""
        self._n += 1
        phases_file = self.work / f"phases-{self._n}.json"
        cmd = [sys.executable, "-m", "benchmarks.gi_run", "--backend", backend or self.backend,
               "--phases", str(phases_file)]
        if self.onnx_cache:
            cmd += ["--onnx-cache", str(self.onnx_cache)]
        m = measure([*cmd, "--", *args], cwd=repo, env=_child_env(), timeout=timeout, check=check)
        out = _last_json(m.stdout) if "--json" in args and m.rc == 0 else m.stdout
        side = json.loads(phases_file.read_text()) if phases_file.exists() else {}
        phases = (out.get("phases") if isinstance(out, dict) else None) or side.get("phases_s", {})
        return Run(m, out, dict(phases), side.get("startup_s"))

    def shipped(self, repo: Path, *args: str) -> Run:
        """The installed `gitindex` script as it is (torch backend, no wrapper)."""
        m = measure([*self.cli, *args], cwd=repo, env=_child_env())
        out = _last_json(m.stdout) if "--json" in args else m.stdout
        return Run(m, out, dict(out.get("phases", {})) if isinstance(out, dict) else {})


class Peer:
    def __init__(self, python: Path, mode: str, state: Path, model: str) -> None:
        self.python, self.mode, self.state, self.model = python, mode, state, model
        shutil.rmtree(state, ignore_errors=True)
        self._n = 0

    def run(self, repo: Path, files: Path | None, fake: bool = False) -> tuple[Run, set[str]]:
        self._n += 1
        keys = self.state.parent / f"{self.state.name}-keys-{self._n}.txt"
        cmd = [str(self.python), str(REPO_ROOT / "benchmarks" / "peers" / "langchain_peer.py"),
               "--repo", str(repo), "--state", str(self.state), "--model", self.model, "--keys-out", str(keys)]
        if files is not None:
            cmd += ["--files", str(files)]
        if self.mode == "best":
            cmd += ["--batch-size", str(PEER_BEST_BATCH)]
        if fake:
            cmd.append("--fake-embeddings")
        m = measure(cmd, cwd=repo, env=_child_env())
        out = _last_json(m.stdout)
        s = out["seconds"]
        phases = {"startup": s["import"] + s["model_load"] + s["open"], "read_split": s["read_split"],
                  "embed": s["embed"], "index_other": s["index"] - s["embed"]}
        return Run(m, out, phases, s["import"] + s["model_load"]), set(keys.read_text().split())


# -- the benchmark -----------------------------------------------------------------------------
def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cache: Path = args.cache
        self.work = self.cache / "work"
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.results: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(),
                                        "options": {k: str(v) for k, v in vars(args).items()}}
        self.scenarios = set(args.scenarios)
        self.backend = args.backend if args.backend != "auto" else "onnx-int8"
        self.gi: Gitindex | None = None

    def want(self, *names: str) -> bool:
        return any(n in self.scenarios for n in names)

    def execute(self) -> dict[str, Any]:
        a = self.args
        versions = a.versions
        history = history_corpus(self.cache, a.package, versions)
        self.results["corpus"] = {"history": f"{a.package} {', '.join(versions)}", "path": str(history)}
        if self.want("backends"):
            self.backends(history, f"v{versions[0]}")
        self.gi = Gitindex(self.backend, a.onnx_cache, self.work)
        self.results["gitindex_backend"] = self.backend
        log(f"gitindex backend: {self.backend}")
        if self.want("first", "replay", "noop", "edit", "search"):
            self.history(history, versions)
        if self.want("startup"):
            from benchmarks import startup

            log("start-up: the CLI's hot commands next to the import floor, on a 60-file repository")
            self.results["startup"] = startup.run([("60 files", startup.small_repository(self.work))],
                                                  self.args.startup_rounds)
        if self.want("trees"):
            self.trees()
        if self.want("mcp"):
            from benchmarks import mcp

            log("MCP: `gitindex mcp` through the SDK's client next to the shell, on about 10k chunks "
                "(its own report: python -m benchmarks.mcp)")
            self.results["mcp"] = mcp.benchmark(mcp.repository(self.cache, mcp.FILES),
                                                **(mcp.QUICK if self.args.quick else {}))
        if self.want("quality"):
            from benchmarks import quality

            log("search quality: benchmarks/quality.py (its own report: python -m benchmarks.quality)")
            self.results["quality"] = quality.benchmark(self.cache / "quality", 100 if self.args.quick else 300)
        self.results["targets"] = targets(self.results)
        self.results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        return self.results

    # (backends) ------------------------------------------------------------------------------
    def backends(self, history: Path, rev: str) -> None:
        log(f"backends: torch, onnx, onnx-int8 on {self.args.backend_chunks} real chunks")
        out = self.work / "backends.json"
        cmd = [sys.executable, "-m", "benchmarks.backends", "--repo", str(history), "--rev", rev,
               "--chunks", str(self.args.backend_chunks), "--rounds", str(self.args.rounds), "--out", str(out)]
        if self.args.onnx_cache:
            cmd += ["--onnx-cache", str(self.args.onnx_cache)]
        measure(cmd, env=_child_env(), cwd=REPO_ROOT)
        self.results["backends"] = json.loads(out.read_text())
        if self.args.backend == "auto":
            self.backend = self.results["backends"]["default"]

    # (1)-(5) on the release history ----------------------------------------------------------
    def history(self, history: Path, versions: list[str]) -> None:
        from benchmarks.chunks import tree_chunks

        assert self.gi is not None
        tags = [f"v{v}" for v in versions]
        log("lower bounds: chunking every release with gitindex's own chunker")
        trees = [tree_chunks(history, t) for t in tags]
        lists = []
        for tag, tc in zip(tags, trees, strict=True):
            listing = self.work / f"files-{tag}.txt"
            listing.write_text("\n".join(tc.paths))
            lists.append(listing)
        seen: set[str] = set()
        bounds = []
        for i, tc in enumerate(trees):
            bounds.append({"version": versions[i], "files": len(tc.paths), "chunks": tc.chunks,
                           "distinct": len(tc.hashes),
                           "new_vs_previous": len(tc.hashes - trees[i - 1].hashes) if i else len(tc.hashes),
                           "new_vs_all_earlier": len(tc.hashes - seen)})
            seen |= tc.hashes
        h: dict[str, Any] = {"lower_bound": bounds}
        self.results["history"] = h

        repo = clone(history, self.work / "gi", tags[0])
        log(f"(1) first index of {tags[0]} with {self.backend}")
        first = self.gi.run(repo, "sync", "--json")
        h["first"] = {self.backend: first.to_json()}
        if self.args.torch_first and self.backend != "torch":
            log(f"(1) first index of {tags[0]} with torch (the reference)")
            torch_repo = clone(history, self.work / "gi-torch", tags[0])
            h["first"]["torch"] = self.gi.run(torch_repo, "sync", "--json", backend="torch").to_json()
            shutil.rmtree(torch_repo, ignore_errors=True)

        steps = []
        if self.want("replay", "noop", "edit", "search"):
            for tag in tags[1:]:
                checkout(repo, tag)
                log(f"(2) replay: sync to {tag}")
                steps.append(self.gi.run(repo, "sync", "--json").to_json())
            h["replay"] = steps
            h["verify"] = self.gi.shipped(repo, "verify", "--json").out
        if self.want("noop"):
            log(f"(3) no-op sync x{self.args.reps}")
            h["noop"] = [self.gi.shipped(repo, "sync", "--json").to_json() for _ in range(self.args.reps)]
        edits = []
        if self.want("edit"):
            target = max((p for p in trees[-1].paths if p.endswith(".py")),
                         key=lambda p: (repo / p).stat().st_size)
            h["edit_file"] = target
            for n in range(self.args.edit_reps):
                edits.append(self._edit(repo, target, n))
                log(f"(4) one-file change {n + 1}/{self.args.edit_reps}")
                run = self.gi.run(repo, "sync", "--json").to_json()
                run["lower_bound"] = self._edit_bound(repo, target)
                h.setdefault("edit", []).append(run)
            edits.append(self._edit(repo, target, 99))
            log("(4) one-file change with the CLI as shipped (torch)")
            h["edit_shipped"] = self.gi.shipped(repo, "sync", "--json").to_json()
        if self.want("search"):
            h["search"] = []
            for n in range(self.args.search_reps):
                log(f"(5) search {n + 1}/{self.args.search_reps}")
                h["search"].append(self.gi.run(repo, "search", QUERIES[n % len(QUERIES)], "--json",
                                               "--limit", "5").to_json())
            log("(5) search with the CLI as shipped (torch)")
            h["search_shipped"] = self.gi.shipped(repo, "search", QUERIES[0], "--json", "--limit", "5").to_json()
            h["search_shipped"]["output"] = len(h["search_shipped"]["output"])
            for s in h["search"]:
                s["output"] = [f"{x['path']}:{x['start_line']}" for x in s["output"]]
        if not self.args.no_peer and self.want("first", "replay", "noop", "edit"):
            python = peer_venv(self.args.peer_venv)
            h["peer"] = {mode: self.peer(python, mode, history, tags, lists, edits, target_file=h.get("edit_file"))
                         for mode in ("defaults", "best")}

    def _edit(self, repo: Path, path: str, n: int) -> str:
        with (repo / path).open("a") as f:
            f.write(EDIT.format(n=n))
        git(repo, "commit", "-q", "-am", f"bench edit {n}")
        return EDIT.format(n=n)

    def _edit_bound(self, repo: Path, path: str) -> int:
        from gitindex.chunking import chunk_text
        from gitindex.embedding import resolve_model

        spec = resolve_model("all-MiniLM-L6-v2")
        counter = spec.token_counter()

        def hashes(rev: str) -> set[str]:
            text = git(repo, "show", f"{rev}:{path}")
            return {c.hash for c in chunk_text(text + "\n", counter, spec.budget)}

        return len(hashes("HEAD") - hashes("HEAD~1"))

    def peer(self, python: Path, mode: str, history: Path, tags: list[str], lists: list[Path],
             edits: list[str], target_file: str | None) -> dict[str, Any]:
        repo = clone(history, self.work / f"peer-{mode}", tags[0])
        peer = Peer(python, mode, self.work / f"peer-{mode}-state", model_dir())
        out: dict[str, Any] = {"batch_size": PEER_BEST_BATCH if mode == "best" else "default (100)",
                               "cleanup": "incremental"}
        log(f"peer ({mode}): (1) first index of {tags[0]}")
        run, keys = peer.run(repo, lists[0])
        out["first"] = run.to_json()
        out["replay"] = []
        if self.want("replay", "noop", "edit"):
            for tag, listing in zip(tags[1:], lists[1:], strict=True):
                checkout(repo, tag)
                log(f"peer ({mode}): (2) replay to {tag}")
                run, new_keys = peer.run(repo, listing)
                step = run.to_json()
                step["lower_bound"] = len(new_keys - keys)
                out["replay"].append(step)
                keys = new_keys
        if self.want("noop"):
            reps = min(self.args.reps, self.args.peer_reps)
            log(f"peer ({mode}): (3) no-op x{reps}")
            out["noop"] = [peer.run(repo, lists[-1])[0].to_json() for _ in range(reps)]
        if self.want("edit") and target_file:
            out["edit"] = []
            for n, text in enumerate(edits[: min(self.args.edit_reps, self.args.peer_reps)]):
                with (repo / target_file).open("a") as f:
                    f.write(text)
                git(repo, "commit", "-q", "-am", f"bench edit {n}")
                log(f"peer ({mode}): (4) one-file change {n + 1}")
                run, new_keys = peer.run(repo, lists[-1])
                step = run.to_json()
                step["lower_bound"] = len(new_keys - keys)
                keys = new_keys
                out["edit"].append(step)
        return out

    # (6) trees ---------------------------------------------------------------------------------
    def trees(self) -> None:
        assert self.gi is not None
        fake = self.args.tree_embedder == "fake"
        backend = "fake" if fake else self.backend
        t: dict[str, Any] = {"embedder": "cheap deterministic stand-in (hash-seeded vectors): memory, not the model, "
                                         "is measured here" if fake else self.backend, "runs": {}}
        self.results["trees"] = t
        limit = self.args.tree_memory_limit
        for n in self.args.trees:
            repo = tree_corpus(self.cache, n)
            shutil.rmtree(repo / ".git" / "gitindex", ignore_errors=True)
            run = self._tree_first(repo, n, backend)
            t["runs"][str(n)] = {"first": run}
            if limit == 0 and run["finished"]:  # auto: 10% over the smallest tree's peak
                limit = round(run["peak_rss_mb"] * 1.1)
            if n == 10_000 and self.want("noop") and run["finished"]:
                log(f"(3) no-op sync on the {n}-file tree x{self.args.reps}")
                t["runs"][str(n)]["noop"] = [self.gi.shipped(repo, "sync", "--json").to_json()
                                             for _ in range(self.args.reps)]
                if not self.args.no_peer and self.args.peer_tree:
                    t["runs"][str(n)]["peer_noop"] = self._peer_tree_noop(repo)
            if n == 10_000 and self.want("startup") and run["finished"]:
                from benchmarks import startup

                log(f"start-up on the {n}-file tree")
                self.results.setdefault("startup", []).extend(
                    startup.run([(f"{n} files", repo)], self.args.startup_rounds, large=True))
            shutil.rmtree(repo / ".git" / "gitindex", ignore_errors=True)  # the index takes disk space
            if limit > 0:
                t["memory_limit_mb"] = limit
                t["runs"][str(n)]["limited"] = self._tree_first(repo, n, backend, "--memory-limit", str(limit))
                shutil.rmtree(repo / ".git" / "gitindex", ignore_errors=True)

    def _tree_first(self, repo: Path, n: int, backend: str, *flags: str) -> dict[str, Any]:
        assert self.gi is not None
        cap = self.args.tree_timeout or 24 * 3600
        log(f"(6) first index of the {n}-file tree ({backend}; cap {cap:.0f} s) {' '.join(flags)}")
        run = self.gi.run(repo, "sync", "--json", *flags, backend=backend, timeout=cap, check=False).to_json()
        run["finished"] = run["rc"] == 0
        if not run["finished"]:  # killed at the cap (or failed): how far it got
            run["status"] = self.gi.shipped(repo, "status", "--json").out
            run["output"] = None
        return run

    def _peer_tree_noop(self, repo: Path) -> dict[str, Any]:
        """The peer's no-op on the 10k tree, with its documented defaults: indexed once, then run
        again on the unchanged tree. Both runs use cheap vectors (so the documents its incremental
        cleanup re-embeds cost it almost nothing: a figure in the peer's favour). Measured here at
        12 + 9 minutes, hence opt-in (--peer-tree)."""
        from benchmarks.chunks import tree_chunks

        python = peer_venv(self.args.peer_venv)
        listing = self.work / "files-tree.txt"
        listing.write_text("\n".join(tree_chunks(repo).paths))
        peer = Peer(python, "defaults", self.work / "peer-tree-state", model_dir())
        log("peer: indexing the 10k tree with cheap vectors")
        build = peer.run(repo, listing, fake=True)[0].to_json()
        log("peer: no-op on the 10k tree")
        runs = [peer.run(repo, listing, fake=True)[0].to_json()]
        shutil.rmtree(peer.state, ignore_errors=True)
        return {"build": build, "noop": runs}


# -- summary -----------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = {}
    for name in ("onnxruntime", "torch", "sentence-transformers", "qdrant-edge-py", "tokenizers"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:
            versions[name] = None
    from gitindex.embedding import int8_support

    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem, 1), "python": platform.python_version(),
            "int8": int8_support(), "packages": versions}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 5's targets, each with the measured value and met / missed."""
    out: list[dict[str, Any]] = []

    def add(name: str, value: Any, goal: str, met: bool | None) -> None:
        out.append({"target": name, "measured": value, "goal": goal, "met": met})

    for run in r.get("startup", []):
        for name, c in run["commands"].items():
            if c["goal"] is not None:
                add(f"start-up, {run['label']}: {name}", f"{c['ratio']:.2f}x the floor ({c['median_s'] * 1000:.0f} ms)",
                    f"<= {c['goal']}x", c["met"])
            elif c.get("goal_s"):
                add(f"start-up, {run['label']}: {name}", f"{c['median_s']:.3f} s ({c['ratio']:.2f}x the floor)",
                    f"<= {c['goal_s']} s", c["met"])
    m = r.get("mcp")
    if m and m["mcp"]["server"].get("search"):
        from benchmarks.mcp import TARGET_MS

        s = m["mcp"]["server"]["search"]
        add(f"MCP search, server time, {m['chunks']} chunks (median; p95)",
            f"{s['median_ms']:.1f} ms; {s['p95_ms'] if s['p95_ms'] is not None else '-'} ms",
            f"<= {TARGET_MS:.0f} ms", s["median_ms"] <= TARGET_MS)
    tree10 = r.get("trees", {}).get("runs", {}).get("10000", {})
    if tree10.get("noop"):
        wall = median([x["wall_s"] for x in tree10["noop"]])
        add("no-op sync, 10k-file tree (wall)", f"{wall:.3f} s", "<= 0.3 s", wall <= 0.3)
        if tree10.get("peer_noop"):
            peer = median([x["wall_s"] for x in tree10["peer_noop"]["noop"]])
            add("no-op sync, 10k tree, peer / gitindex", f"{peer / wall:.1f}x ({peer:.1f} s vs {wall:.3f} s)",
                ">= 30x", peer / wall >= 30)
    h = r.get("history", {})
    if h.get("edit"):
        wall = median([x["wall_s"] for x in h["edit"]])
        add("one-file change end to end (wall)", f"{wall:.2f} s", "<= 2 s", wall <= 2.0)
    if h.get("replay"):
        bounds = h["lower_bound"][1:]
        emb = [s["output"]["chunks"]["embedded"] for s in h["replay"]]
        over = [e - b["new_vs_previous"] for e, b in zip(emb, bounds, strict=True)]
        add("replay: chunks embedded per step = new chunks (lower bound)",
            f"embedded {emb} vs bound {[b['new_vs_previous'] for b in bounds]}", "equal", all(o <= 0 for o in over))
        peer = h.get("peer", {}).get("defaults", {}).get("replay")
        if peer:
            gi_med = median([s["wall_s"] for s in h["replay"]])
            peer_med = median([s["wall_s"] for s in peer])
            add("replay: median per-step sync, peer defaults / gitindex", f"{peer_med / gi_med:.1f}x "
                f"({peer_med:.2f} s vs {gi_med:.2f} s)", ">= 10x", peer_med / gi_med >= 10)
        if h.get("verify") is not None:
            add("replay: final index exact (gitindex verify)", h["verify"], "ok", bool(h["verify"].get("ok")))
    first = h.get("first", {})
    backend = r.get("gitindex_backend")
    if backend in first:
        f = first[backend]
        emb = f["output"]["chunks"]["embedded"]
        rate = emb / f["wall_s"]
        torch_rate = None
        if "torch" in first and backend != "torch":
            t = first["torch"]
            torch_rate = t["output"]["chunks"]["embedded"] / t["wall_s"]
        elif r.get("backends"):
            torch_rate = r["backends"]["backends"]["torch"]["chunks_per_s"]
        if torch_rate:
            add("first full index: chunks/s vs torch backend", f"{rate / torch_rate:.2f}x ({rate:.1f} vs "
                f"{torch_rate:.1f} chunks/s end to end)", ">= 2x", rate / torch_rate >= 2)
        busy = f["phases_s"].get("embed")
        if busy:
            add("first full index: embedder busy share of wall", f"{busy / f['wall_s']:.0%}", ">= 90%",
                busy / f["wall_s"] >= 0.9)
        add("peak RSS with the model loaded (first index)", f"{f['peak_rss_mb']:.0f} MB", "< 1024 MB",
            f["peak_rss_mb"] < 1024)
    runs = r.get("trees", {}).get("runs", {})
    if len(runs) >= 2:
        rss = {int(n): v["first"]["peak_rss_mb"] for n, v in runs.items()}
        done = all(v["first"]["finished"] for v in runs.values())
        lo, hi = rss[min(rss)], max(rss.values())
        flat: bool | None = hi <= lo * 1.1 if done else (False if hi > lo * 1.1 else None)
        shown = ", ".join(f"{n}: {v:.0f} MB{'' if runs[str(n)]['first']['finished'] else ' (stopped at the cap)'}"
                          for n, v in sorted(rss.items()))
        add(f"peak RSS flat from {min(rss)} to {max(rss)} files", f"{shown} ({hi / lo - 1:+.0%})", "within 10%", flat)
        limited = {int(n): v["limited"] for n, v in runs.items() if "limited" in v}
        if limited:
            cap = r["trees"]["memory_limit_mb"]
            shown = ", ".join(f"{n}: {v['peak_rss_mb']:.0f} MB in {v['wall_s'] / runs[str(n)]['first']['wall_s']:.2f}x "
                              f"the time{'' if v['finished'] else ' (stopped at the cap)'}" for n, v in sorted(limited.items()))
            add(f"peak RSS with --memory-limit {cap} (10% over the smallest tree's peak)", shown,
                f"<= {cap} MB", all(v["peak_rss_mb"] <= cap for v in limited.values()))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a few minutes: 4 releases, the 1k tree, fewer chunks and repetitions")
    parser.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS),
                        help=f"comma-separated, of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--trees", default="1000,10000,50000", help="tree sizes in files for (6)")
    parser.add_argument("--tree-embedder", choices=("fake", "real"), default="fake",
                        help="for (6) only: a cheap deterministic embedder (default) or the chosen backend")
    parser.add_argument("--backend", choices=("auto", "torch", "onnx", "onnx-int8"), default="auto",
                        help="gitindex's backend for (1)-(5); auto: the fastest with mean cosine >= 0.98")
    parser.add_argument("--no-torch-first", dest="torch_first", action="store_false",
                        help="skip the first index with the torch backend (the 2x reference)")
    parser.add_argument("--backend-chunks", type=int, default=400, help="chunks per backend in the backends step")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds in the backends step")
    parser.add_argument("--reps", type=int, default=5, help="no-op syncs per system")
    parser.add_argument("--edit-reps", type=int, default=3, help="one-file changes")
    parser.add_argument("--search-reps", type=int, default=3, help="searches")
    parser.add_argument("--startup-rounds", type=int, default=15, help="interleaved rounds of the start-up step")
    parser.add_argument("--peer-reps", type=int, default=3, help="at most this many peer no-ops / edits")
    parser.add_argument("--no-peer", action="store_true", help="skip the LangChain peer")
    parser.add_argument("--peer-tree", action="store_true",
                        help="also time the peer's no-op on the 10k tree (about 20 more minutes)")
    parser.add_argument("--tree-timeout", type=float, default=900,
                        help="stop each (6) first index after this many seconds, reporting how far it got "
                             "and its peak RSS so far (0: no limit)")
    parser.add_argument("--tree-memory-limit", type=int, default=0,
                        help="index each tree again with --memory-limit MB (0: 10%% over the smallest tree's "
                             "peak; -1: skip)")
    parser.add_argument("--package", default=corpus.DEFAULT_HISTORY[0])
    parser.add_argument("--versions", default=",".join(corpus.DEFAULT_HISTORY[1]), help="releases, oldest first")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "gitindex-bench",
                        help="corpora, wheels, clones and the peer venv")
    parser.add_argument("--peer-venv", type=Path, help="the peer's venv (default: CACHE/peer-venv)")
    parser.add_argument("--onnx-cache", type=Path, help="ONNX export cache (default: gitindex's own)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "out")
    args = parser.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    args.versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    args.trees = [int(n) for n in args.trees.split(",") if n.strip()]
    if args.quick:
        args.versions = args.versions[:4]
        args.trees = [1000]
        args.backend_chunks, args.rounds = min(args.backend_chunks, 150), min(args.rounds, 3)
        args.reps, args.edit_reps, args.search_reps, args.peer_reps = 3, 2, 2, 2
        args.startup_rounds = 7
        args.torch_first = False
        args.tree_timeout = min(args.tree_timeout or 120, 120)
    args.peer_venv = args.peer_venv or args.cache / "peer-venv"

    from benchmarks.report import markdown

    started = time.perf_counter()
    results = Bench(args).execute()
    results["seconds"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = markdown(results)
    for name in (f"bench-{stamp}", "latest"):
        (args.out / f"{name}.json").write_text(json.dumps(results, indent=1))
        (args.out / f"{name}.md").write_text(text)
    print(text)
    log(f"wrote {args.out / f'bench-{stamp}.md'} and .json ({results['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
