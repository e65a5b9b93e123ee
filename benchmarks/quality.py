"""`make bench-quality`: does search find the right code? gitindex's modes and chunkers next to a LangChain peer.

    python -m benchmarks.quality                      # requests, flask, pydantic, express; ~300 queries a set
    python -m benchmarks.quality --corpora requests,flask --max-queries 100
    python -m benchmarks.quality --configs gitindex-lines-dense,peer-dense

Corpora and queries: benchmarks/quality_corpus.py (docstrings removed from what is indexed, their
first sentences are the natural-language queries; identifiers as written and split into words).
Each corpus is committed to a git repository in a temporary directory and indexed through the
library (`gitindex.open(repo, chunker=...)`, `index.sync()`, `index.search(q, limit=10,
mode=...)`), once per chunker. A configuration this gitindex does not support (no `mode`
argument, no `chunker` setting, a chunker that fails) is reported as such, not run.
The peer (benchmarks/quality_peer.py): LangChain's code splitter, the same model, exact cosine
and BM25 in numpy. It needs `langchain-text-splitters`, a benchmark-only requirement (not a
gitindex dependency): without it the peer is skipped with a message.

Metrics, over the 10 hits of each query: MRR@10, Recall@1 and Recall@10 at chunk level (a hit
whose lines overlap a target definition's) and file level (a hit in a target's file).
Writes benchmarks/out/quality-latest.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import corpus as wheels
from benchmarks import quality_corpus as qc

REPO_ROOT = Path(__file__).resolve().parent.parent
CHUNKERS = ("lines", "syntax")
MODES = ("dense", "lexical", "hybrid")
PEERS = ("peer-dense", "peer-bm25", "peer-hybrid")
CONFIGS = tuple(f"gitindex-{c}-{m}" for c in CHUNKERS for m in MODES) + PEERS
LIMIT = 10
LEVELS = ("chunk", "file")
SETS = ("nl", "identifier", "identifier:name", "identifier:words")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- metrics -----------------------------------------------------------------------------------
Span = tuple[str, int, int]  # path, start line, end line (1-based, inclusive)


def rank_of(hits: Sequence[Span], targets: Sequence[qc.Target], level: str) -> int | None:
    """1-based rank of the first relevant hit: one whose lines overlap a target's (chunk level)
    or one in a target's file (file level). None: no hit is."""
    for rank, (path, start, end) in enumerate(hits, 1):
        for t in targets:
            if path == t.path and (level == "file" or (start <= t.end and end >= t.start)):
                return rank
    return None


def scores(ranks: Sequence[int | None], k: int = LIMIT) -> dict[str, float | int]:
    """MRR@k, Recall@1 and Recall@k of first-relevant ranks (one per query)."""
    n = len(ranks)
    if not n:
        return {"queries": 0, "mrr@10": 0.0, "recall@1": 0.0, "recall@10": 0.0}
    return {"queries": n,
            "mrr@10": round(sum(1 / r for r in ranks if r is not None and r <= k) / n, 4),
            "recall@1": round(sum(1 for r in ranks if r == 1) / n, 4),
            "recall@10": round(sum(1 for r in ranks if r is not None and r <= k) / n, 4)}


def evaluate(sets: dict[str, list[qc.Query]], results: dict[str, list[list[Span]]]) -> dict[str, Any]:
    """Metrics per query set (nl, identifier and its two halves) and level, from each query's hits."""
    out: dict[str, Any] = {}
    for name in SETS:
        base, _, kind = name.partition(":")
        pairs = [(q, hits) for q, hits in zip(sets.get(base, []), results.get(base, []), strict=True)
                 if not kind or q.kind == kind]
        if pairs or not kind:
            out[name] = {level: scores([rank_of(h, q.targets, level) for q, h in pairs]) for level in LEVELS}
    return out


def chunk_stats(spans: Sequence[tuple[int, int, int]]) -> dict[str, Any]:
    """Count and mean size of chunks given as (start line, end line, characters)."""
    if not spans:
        return {"chunks": 0, "mean_lines": None, "mean_chars": None}
    return {"chunks": len(spans), "mean_lines": round(statistics.fmean(e - s + 1 for s, e, _ in spans), 1),
            "mean_chars": round(statistics.fmean(c for _, _, c in spans), 1)}


# -- running the configurations ----------------------------------------------------------------
def write_repo(files: dict[str, str], dest: Path) -> Path:
    """The stripped corpus as a git repository with one commit (fixed identity and date)."""
    wheels._init_repo(dest)
    for path, text in files.items():
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    wheels._commit(dest, "quality corpus", wheels._EPOCH)
    return dest


def _unsupported(message: str) -> dict[str, Any]:
    return {"status": "unsupported", "message": message}


def run_gitindex(c: qc.Corpus, sets: dict[str, list[qc.Query]], chunker: str, modes: Sequence[str],
                 embedder: Any, work: Path) -> dict[str, dict[str, Any]]:
    """Index the corpus with one chunker, then search every query in each mode."""
    import gitindex

    names = {m: f"gitindex-{chunker}-{m}" for m in modes}
    repo = write_repo(c.files, work / f"{c.name}-{chunker}")
    with gitindex.open(repo, embedder=embedder, chunker=chunker) as index:
        started = time.perf_counter()
        index.sync()
        index_s = time.perf_counter() - started
        store = index.workspace.store
        with store.session():
            points = [p for _, p in store.scroll(("start_line", "end_line", "text"))]
        stats = chunk_stats([(int(p["start_line"]), int(p["end_line"]), len(str(p.get("text", "")))) for p in points])
        out: dict[str, dict[str, Any]] = {}
        for mode, name in names.items():
            started = time.perf_counter()
            results: dict[str, list[list[Span]]] = {}
            with store.session():  # one open of the embedded shard for all the queries
                for set_name, queries in sets.items():
                    results[set_name] = [[(h.path, h.start_line, h.end_line)
                                          for h in index.search(q.text, limit=LIMIT, mode=mode)] for q in queries]
            out[name] = {"status": "ok", "index_s": round(index_s, 2),
                         "search_s": round(time.perf_counter() - started, 2), **stats,
                         "metrics": evaluate(sets, results)}
    return out


def run_peer(c: qc.Corpus, sets: dict[str, list[qc.Query]], wanted: Sequence[str],
             embedder: Any) -> dict[str, dict[str, Any]]:
    """The LangChain peer's dense, BM25 and fused rankings over its own chunks."""
    from benchmarks import quality_peer

    try:
        chunks = quality_peer.split(c.files)
    except ImportError as exc:
        return {n: _unsupported(f"peer skipped: {exc} (pip install langchain-text-splitters; benchmark-only)")
                for n in wanted}
    started = time.perf_counter()
    peer = quality_peer.PeerIndex(chunks, embedder)
    index_s = time.perf_counter() - started
    stats = chunk_stats([(ch.start_line, ch.end_line, len(ch.text)) for ch in chunks])
    out: dict[str, dict[str, Any]] = {}
    timings: dict[str, float] = {}
    ranked: dict[str, dict[str, list[list[int]]]] = {n: {} for n in PEERS}
    for set_name, queries in sets.items():
        texts = [q.text for q in queries]
        t0 = time.perf_counter()
        dense = peer.dense(texts, 50) if texts else []
        t1 = time.perf_counter()
        bm25 = peer.bm25(texts, 50)
        t2 = time.perf_counter()
        ranked["peer-dense"][set_name] = [r[:LIMIT] for r in dense]
        ranked["peer-bm25"][set_name] = [r[:LIMIT] for r in bm25]
        ranked["peer-hybrid"][set_name] = [quality_peer.rrf([d, b]) for d, b in zip(dense, bm25, strict=True)]
        for name, spent in (("peer-dense", t1 - t0), ("peer-bm25", t2 - t1), ("peer-hybrid", t2 - t0)):
            timings[name] = timings.get(name, 0.0) + spent
    for name in wanted:
        results = {s: [[(chunks[i].path, chunks[i].start_line, chunks[i].end_line) for i in r] for r in rows]
                   for s, rows in ranked[name].items()}
        out[name] = {"status": "ok", "note": None, "index_s": round(index_s, 2), "search_s": round(timings[name], 2),
                     **stats, "metrics": evaluate(sets, results)}
    return out


def run_corpus(c: qc.Corpus, sets: dict[str, list[qc.Query]], configs: Sequence[str], embedder: Any,
               work: Path) -> dict[str, Any]:
    """Every requested configuration on one corpus."""
    out: dict[str, Any] = {}
    for chunker in CHUNKERS:
        modes = [m for m in MODES if f"gitindex-{chunker}-{m}" in configs]
        if modes:
            log(f"{c.name}: gitindex, chunker={chunker}, modes {', '.join(modes)}")
            out.update(run_gitindex(c, sets, chunker, modes, embedder, work))
    peers = [p for p in PEERS if p in configs]
    if peers:
        log(f"{c.name}: the LangChain peer")
        out.update(run_peer(c, sets, peers, embedder))
    return {n: out[n] for n in configs if n in out}


def describe(c: qc.Corpus, sets: dict[str, list[qc.Query]]) -> dict[str, Any]:
    registry, package, version = qc.CORPORA.get(c.name, ("inline", c.name, "-"))
    return {"source": f"{package} {version} ({registry})", "files": len(c.files),
            "lines": sum(t.count("\n") + 1 for t in c.files.values()),
            "definitions": len(c.definitions), "docstrings_removed": c.stripped,
            "queries": {s: len(q) for s, q in sets.items()}}


# -- summary -----------------------------------------------------------------------------------
def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def average(corpora: dict[str, Any], configs: Sequence[str]) -> dict[str, Any]:
    """Each configuration's metrics and chunk sizes averaged over the corpora where it ran."""
    out: dict[str, Any] = {}
    for name in configs:
        runs = [c["configs"][name] for c in corpora.values() if c["configs"].get(name, {}).get("status") == "ok"]
        if not runs:
            continue
        metrics: dict[str, Any] = {}
        for s in SETS:
            if all(s in r["metrics"] for r in runs):
                metrics[s] = {level: {k: _mean([r["metrics"][s][level][k] for r in runs])
                                      for k in ("mrr@10", "recall@1", "recall@10")} for level in LEVELS}
        out[name] = {"corpora": len(runs), "metrics": metrics,
                     "mean_lines": _mean([r["mean_lines"] for r in runs if r["mean_lines"] is not None]),
                     "mean_chars": _mean([r["mean_chars"] for r in runs if r["mean_chars"] is not None])}
    return out


def _nl_mrr(entry: dict[str, Any] | None) -> float | None:
    if not entry or "metrics" not in entry or "nl" not in entry["metrics"]:
        return None
    return float(entry["metrics"]["nl"]["chunk"]["mrr@10"])


def ratios(r: dict[str, Any]) -> dict[str, Any]:
    """hybrid / dense and hybrid / peer (natural-language MRR@10, chunk level), per corpus and averaged.
    gitindex's chunker: syntax where it ran (the default), else lines."""
    ok = {n for c in r["corpora"].values() for n, v in c["configs"].items() if v.get("status") == "ok"}
    chunker = "syntax" if "gitindex-syntax-hybrid" in ok else "lines"
    pairs = {"hybrid_vs_before": (f"gitindex-{chunker}-hybrid", "gitindex-lines-dense"),  # search before hybrid
             "hybrid_vs_dense": (f"gitindex-{chunker}-hybrid", f"gitindex-{chunker}-dense"),
             "hybrid_vs_peer": (f"gitindex-{chunker}-hybrid", "peer-dense"),
             "dense_vs_peer": (f"gitindex-{chunker}-dense", "peer-dense")}
    out: dict[str, Any] = {"metric": "natural-language MRR@10, chunk level", "chunker": chunker}
    for key, (a, b) in pairs.items():
        row: dict[str, Any] = {"of": a, "to": b}
        for name, c in r["corpora"].items():
            x, y = _nl_mrr(c["configs"].get(a)), _nl_mrr(c["configs"].get(b))
            row[name] = round(x / y, 3) if x is not None and y else None
        x, y = _nl_mrr(r["average"].get(a)), _nl_mrr(r["average"].get(b))
        row["average"] = round(x / y, 3) if x is not None and y else None
        out[key] = row
    return out


def _f(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *["| " + " | ".join(r) + " |" for r in rows]]


def markdown(r: dict[str, Any]) -> str:
    """The report: averages per query set, chunk sizes, ratios, timings, per-corpus details."""
    names = list(r["corpora"])
    lines = [f"# gitindex search quality, {r['started']}", "",
             f"Machine: {r['machine']}. Run took {r.get('seconds', 0) / 60:.1f} min. Model: all-MiniLM-L6-v2 "
             f"({r['backend']}) for gitindex and the peer alike. {LIMIT} hits per query. Chunk level: a hit's lines "
             "overlap the target definition's; file level: a hit in the target's file.", "", "## Corpora", ""]
    lines += _table(["corpus", "source", "files", "lines", "definitions", "docstrings removed", "nl queries",
                     "identifier queries"],
                    [[n, c["source"], str(c["files"]), str(c["lines"]), str(c["definitions"]),
                      str(c["docstrings_removed"]), str(c["queries"].get("nl", 0)),
                      str(c["queries"].get("identifier", 0))] for n, c in r["corpora"].items()])
    for s, title in (("nl", "Natural-language queries (docstring first sentences)"),
                     ("identifier", "Identifier queries (names as written, and split into words)"),
                     ("identifier:name", "Identifier queries, names as written"),
                     ("identifier:words", "Identifier queries, split into words")):
        rows = []
        for cfg in r["configs"]:
            avg = r["average"].get(cfg, {}).get("metrics", {}).get(s)
            per = [_f(c["configs"].get(cfg, {}).get("metrics", {}).get(s, {}).get("chunk", {}).get("mrr@10"))
                   for c in r["corpora"].values()]
            if avg is None:
                rows.append([cfg, *per, *["-"] * 6])
                continue
            ch, fi = avg["chunk"], avg["file"]
            rows.append([cfg, *per, f"**{_f(ch['mrr@10'])}**", _f(ch["recall@1"]), _f(ch["recall@10"]),
                         _f(fi["mrr@10"]), _f(fi["recall@1"]), _f(fi["recall@10"])])
        lines += ["", f"## {title}", "", "MRR@10 at chunk level per corpus, then averages over the corpora.", ""]
        lines += _table(["config", *names, "avg MRR@10", "R@1", "R@10", "file MRR@10", "file R@1", "file R@10"], rows)
    lines += ["", "## Chunk sizes and timings", "",
              "Index s: gitindex's sync (chunk, embed, store; one per chunker, shared by its modes) or the peer's "
              "split + embed + BM25 weights. Search s: all the queries of both sets.", ""]
    rows = []
    for cfg in r["configs"]:
        cells = []
        for c in r["corpora"].values():
            v = c["configs"].get(cfg, {})
            cells.append(f"{v['chunks']} / {_f(v['mean_lines'], 1)} / {_f(v['mean_chars'], 0)} / "
                         f"{_f(v['index_s'], 1)} / {_f(v['search_s'], 1)}" if v.get("status") == "ok" else "-")
        rows.append([cfg, *cells])
    lines += _table(["config (chunks / mean lines / mean chars / index s / search s)", *names], rows)
    ra = r["ratios"]
    lines += ["", f"## Ratios ({ra['metric']}; gitindex chunker: {ra['chunker']})", ""]
    lines += _table(["ratio", *names, "average"],
                    [[f"{k.replace('_', ' ')} ({v['of']} / {v['to']})",
                      *[_f(v.get(n)) for n in names], f"**{_f(v['average'])}**"]
                     for k, v in ra.items() if isinstance(v, dict)])
    notes = sorted({v["note"] for c in r["corpora"].values() for v in c["configs"].values() if v.get("note")})
    if notes:
        lines += ["", "## Notes", ""] + [f"- {m}" for m in notes]
    if r["unsupported"]:
        lines += ["", "## Not run", ""] + [f"- {m}" for m in r["unsupported"]]
    return "\n".join(lines) + "\n"


# -- entry points ------------------------------------------------------------------------------
def default_embedder() -> Any:
    """gitindex's default embedder (model and backend), loaded once for every configuration."""
    from gitindex.embedding import DEFAULT_BACKEND, make_embedder, resolve_model

    return make_embedder(resolve_model("all-MiniLM-L6-v2"), DEFAULT_BACKEND)


def run(corpora: dict[str, qc.Corpus], configs: Sequence[str], max_queries: int, embedder: Any,
        work: Path) -> dict[str, Any]:
    """The whole benchmark over built corpora: the JSON report."""
    import platform

    started = time.perf_counter()
    r: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                         "machine": f"{platform.processor() or platform.machine()}, {_cores()} cores, "
                                    f"Python {platform.python_version()}",
                         "backend": getattr(embedder, "model_id", "?"), "configs": list(configs),
                         "max_queries": max_queries, "corpora": {}}
    for name, c in corpora.items():
        sets = qc.queries(c, max_queries)
        entry = describe(c, sets)
        t0 = time.perf_counter()
        entry["configs"] = run_corpus(c, sets, configs, embedder, work)
        entry["seconds"] = round(time.perf_counter() - t0, 1)
        r["corpora"][name] = entry
        log(f"{name}: done in {entry['seconds']:.0f} s")
    r["unsupported"] = sorted({f"{n}: {v['message']}" for c in r["corpora"].values()
                               for n, v in c["configs"].items() if v.get("status") != "ok"})
    r["average"] = average(r["corpora"], configs)
    r["ratios"] = ratios(r)
    r["seconds"] = round(time.perf_counter() - started, 1)
    return r


def benchmark(cache: Path, max_queries: int = 300, configs: Sequence[str] = CONFIGS,
              names: Sequence[str] = tuple(qc.CORPORA)) -> dict[str, Any]:
    """Fetch and strip the named corpora, then run(): what `python -m benchmarks.quality` and
    benchmarks/run.py's `quality` scenario report. Repositories live in a temporary directory."""
    corpora = {}
    for name in names:
        log(f"{name}: fetching and stripping")
        corpora[name] = qc.build(name, qc.fetch(name, cache))
    work = Path(tempfile.mkdtemp(prefix="gitindex-quality-"))
    try:
        return run(corpora, configs, max_queries, default_embedder(), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", default=",".join(qc.CORPORA), help=f"comma-separated, of {', '.join(qc.CORPORA)}")
    parser.add_argument("--max-queries", type=int, default=300, help="per query set and corpus")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, of {', '.join(CONFIGS)}")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "gitindex-bench" / "quality",
                        help="downloaded wheels and npm tarballs")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "out")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.corpora.split(",") if n.strip()]
    configs = [n.strip() for n in args.configs.split(",") if n.strip()]
    for what, given, known in (("corpora", names, qc.CORPORA), ("configs", configs, CONFIGS)):
        if set(given) - set(known):
            parser.error(f"unknown {what}: {', '.join(sorted(set(given) - set(known)))}")

    results = benchmark(args.cache, args.max_queries, configs, names)
    text = markdown(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "quality-latest.json").write_text(json.dumps(results, indent=1))
    (args.out / "quality-latest.md").write_text(text)
    print(text)
    log(f"wrote {args.out / 'quality-latest.md'} and .json ({results['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
