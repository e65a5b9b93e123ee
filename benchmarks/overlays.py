"""A new ref on a large index (overlays): listed on its changed file's points only, beside listed on all.

    python -m benchmarks.overlays              # networkx 3.2.1 copied 3 times, ~30k chunks, ~4 min (2 cores)
    python -m benchmarks.overlays --quick      # one copy (~10k chunks), 2 rounds, no big overlay, ~1 min
    python -m benchmarks.overlays --json out.json --copies 2 --rounds 3

What is measured is the store's and the manifest's work, not the model's: every sync embeds with
benchmarks/fake_embedder.FakeEmbedder (a hash-seeded unit vector per text, under the configured
model's id), wrapped to count the texts it is asked to embed; searches embed their queries with it
too and run in the default mode, hybrid (its dense ranking means nothing, but it is filtered by ref
like the lexical one). The store is the embedded one (GITINDEX_*/QDRANT_* variables are ignored).

The repository: the networkx corpus of benchmarks/mcp.py (the first 423 files of the 3.2.1 wheel,
~10k chunks, built once under CACHE/corpora) read into COPIES top-level directories copy_0/,
copy_1/, ... and committed on `main` in a fresh work directory (CACHE/overlays-work, removed first).

1. Index `main` in-process (`Index.sync("main")`): wall time, chunks embedded, the store's points,
   the shard's segments (directories under its segments/).
2. New refs one file away from main (a function appended to one file, another file each time),
   ROUNDS of each kind, every `listed` one first (a sync with OVERLAY_MOST -1 materializes every
   overlay there is, so the overlays come after):
   - listed-K: `gitindex.sync.OVERLAY_MOST` set to -1, so the new ref's overlay is materialized in
     the same sync: listed on every point of its view, the cost of every new ref before overlays;
   - overlay-K: the default settings: an overlay on main, listed on its changed file's points only.
   Per sync: wall (perf_counter), chunks embedded, the points whose `refs` payload names the ref
   (scrolled) and their paths. Headline: median overlay / median listed; target: <= 2 s a ref.
3. The base moves: a commit on main appends a function to a file every overlay inherits and adds
   a file; `Index.sync("main")` is timed (the overlays are first listed on what they hold at the
   changed path). Then QUERIES identifiers and phrases of the corpus (benchmarks.refs.queries),
   plus the names the edits added, are searched (limit 20) in main and in every overlay and listed
   ref: each hit must be in that ref's tree (`git show REF:PATH` holds its lines,
   benchmarks.refs.check_hit) and list the ref. Wrong hits must be 0.
4. Search latency, in-process with the shard kept open between reads (as `gitindex mcp` keeps
   it): per query the median of REPS searches, then the median over queries, in main, overlay-1
   and a big overlay: a branch appending a line to OVERLAY_MOST files (as many as there are if
   fewer), which stays an overlay whose search filter names that many paths (its hits are checked
   too; its sync, context only, writes every chunk of those files: new blobs are new points).
   Skipped with --quick.

A Markdown report goes to stdout, `--json PATH` writes every figure. Times are wall seconds on a
shared machine (its load average is reported): the ratios are the figures to compare.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks import corpus, mcp
from benchmarks.fake_embedder import FakeEmbedder
from benchmarks.refs import CountingEmbedder, GitFiles, _append_function, check_hit, git, queries, report

DEFAULT_CACHE = Path.home() / ".cache" / "gitindex-bench"
TARGET_ONE_FILE_S = 2.0  # issue: a ref one file away from a tracked one is synced in <= 2 s
LIMIT = 20  # hits per search
REPS = 3  # searches per query and ref in the latency phase
MOVED_NAME = "overlays_bench_base_moved"  # appended on main in phase 3
ADDED_NAME = "overlays_bench_added_file"  # defined in the file main adds in phase 3


def log(msg: str) -> None:
    print(f"[overlays {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- the repository ----------------------------------------------------------------------------
def corpus_source(cache: Path) -> Path:
    """The networkx corpus of benchmarks/mcp.py, built from the wheel once."""
    name, version = mcp.PACKAGE
    source = cache / "corpora" / f"mcp-{name}-{version}-{mcp.FILES}"
    if not (source / ".git").is_dir() or git(source, "rev-parse", "--verify", "HEAD", check=False).returncode:
        shutil.rmtree(source, ignore_errors=True)
        log(f"building the corpus: the first {mcp.FILES} files of {name} {version}")
        corpus.build_tree(source, mcp.FILES, cache / "wheels", packages=[f"{name}=={version}"])
    return source


def build_repository(repo: Path, source: Path, copies: int) -> None:
    """`main`: the corpus's tree read under copy_0/ ... copy_{copies-1}/, one commit."""
    shutil.rmtree(repo.parent, ignore_errors=True)
    corpus._init_repo(repo)
    corpus._git(repo, "fetch", "-q", str(source), "HEAD")
    for i in range(copies):
        corpus._git(repo, "read-tree", f"--prefix=copy_{i}/", "FETCH_HEAD^{tree}")
    corpus._git(repo, "commit", "-q", "-m", f"{mcp.PACKAGE[0]} {mcp.PACKAGE[1]} x {copies}")
    corpus._git(repo, "reset", "-q", "--hard")  # the work tree, for the commits that edit it


def spread(items: list[str], k: int) -> list[str]:
    step = len(items) / k
    return [items[int(i * step)] for i in range(k)]


# -- figures -------------------------------------------------------------------------------------
def listing(ix: Any, ref: str) -> Counter[str]:
    """Points whose `refs` payload names `ref`, by path (scrolled)."""
    store, paths = ix.workspace.store, Counter[str]()
    with store.session():
        for _pid, p in store.scroll(fields=("path", "refs")):
            if ref in (p.get("refs") or ()):
                paths[str(p["path"])] += 1
    return paths


def store_figures(ix: Any) -> dict[str, Any]:
    store = ix.workspace.store
    with store.session():
        points = store.count()
    segments = Path(store.location) / "segments"
    return {"points": points, "segments": sum(1 for p in segments.iterdir() if p.is_dir()) if segments.is_dir() else None}


def timed_sync(ix: Any, counting: CountingEmbedder, ref: str, path: str | None = None) -> dict[str, Any]:
    before = len(counting.texts)
    t = time.perf_counter()
    res = ix.sync(ref)
    wall = time.perf_counter() - t
    if not res.complete:
        raise SystemExit(f"sync of {ref} did not complete: {res.notes}")
    m = ix.workspace.manifest
    state = m.ref_state(ref)
    out = {"ref": ref, "path": path, "wall_s": round(wall, 3), "embedded": len(counting.texts) - before,
           "base": state.base if state else None, "overrides": len(m.overrides(ref)), "notes": res.notes,
           "phases": {k: round(v, 3) for k, v in sorted(res.phases.items())}}
    if ref != "main":
        paths = listing(ix, ref)
        out.update(listed_points=sum(paths.values()), listed_paths=len(paths))
        if path is not None:
            out["listed_only_changed_file"] = set(paths) == {path}
    log(f"  {ref}: {wall:.2f} s, {out['embedded']} embedded, {out.get('listed_points', '-')} points list it")
    return out


def check_searches(ix: Any, files: GitFiles, qs: list[str], refs: list[str]) -> dict[str, Any]:
    """Every hit of every query in every ref: in that ref's tree (git) and listing the ref."""
    wrong: list[str] = []
    checked = 0
    for q in qs:
        for ref in refs:
            for hit in ix.search(q, limit=LIMIT, ref=ref):
                checked += 1
                why = check_hit(files, None, ref, hit)
                if why is None and ref not in hit.refs:
                    why = f"{hit.path}:{hit.start_line} found with ref={ref} but lists {hit.refs}"
                if why:
                    wrong.append(f"{q!r} ref={ref}: {why}")
    return {"queries": len(qs), "refs": refs, "hits_checked": checked, "wrong_hits": len(wrong), "examples": wrong[:10]}


def latency(ix: Any, qs: list[str], refs: list[str]) -> dict[str, float]:
    """Median over queries of each query's median of REPS searches, per ref (seconds)."""
    per_ref: dict[str, list[float]] = {r: [] for r in refs}
    for ref in refs:
        ix.search(qs[0], limit=LIMIT, ref=ref)  # warm: the shard is loaded and kept
    for q in qs:
        walls: dict[str, list[float]] = {r: [] for r in refs}
        for _ in range(REPS):
            for ref in refs:  # interleaved: load changes hit every ref alike
                t = time.perf_counter()
                ix.search(q, limit=LIMIT, ref=ref)
                walls[ref].append(time.perf_counter() - t)
        for ref in refs:
            per_ref[ref].append(statistics.median(walls[ref]))
    return {r: round(statistics.median(v), 5) for r, v in per_ref.items()}


# -- the benchmark -------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict[str, Any]:
    import gitindex
    import gitindex.sync

    started = time.perf_counter()
    cache: Path = args.cache
    out: dict[str, Any] = {"copies": args.copies, "rounds": args.rounds, "quick": args.quick,
                           "cores": os.cpu_count(), "load_before": os.getloadavg(),
                           "overlay_most": gitindex.sync.OVERLAY_MOST, "embedder": "FakeEmbedder (counted)",
                           "search_mode": "hybrid (query embedded by FakeEmbedder)"}
    source = corpus_source(cache)
    repo = cache / "overlays-work" / "repo"
    build_repository(repo, source, args.copies)
    py = sorted(git(repo, "ls-files", "*.py").stdout.decode().splitlines())
    out["files"] = len(py)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITINDEX_", "QDRANT_"))}
    ix = gitindex.open(repo, env=env)
    counting = CountingEmbedder(FakeEmbedder(ix.workspace.model_key))
    ix.workspace.embedder = counting

    # 1. index main ------------------------------------------------------------------------------
    log(f"indexing main: {len(py)} files ({args.copies} copies of the corpus)")
    out["index"] = {**timed_sync(ix, counting, "main"), **store_figures(ix)}

    # 2. new refs one file away: listed first, then overlays ---------------------------------------
    rounds = args.rounds
    targets = spread(py, 2 * rounds + 1)  # a file per new ref, the last one for phase 3
    date = corpus._EPOCH + 86_400
    new: dict[str, list[dict[str, Any]]] = {"listed": [], "overlay": []}
    for kind in ("listed", "overlay"):
        log(f"{rounds} {kind} refs one file away from main")
        for k in range(1, rounds + 1):
            ref = f"{kind}-{k}"
            path = targets[(k - 1) * 2 + (kind == "overlay")]
            _append_function(repo, ref, "main", path, f"take_{kind}_items_{k}", date)
            saved = gitindex.sync.OVERLAY_MOST
            gitindex.sync.OVERLAY_MOST = -1 if kind == "listed" else saved
            try:
                new[kind].append(timed_sync(ix, counting, ref, path))
            finally:
                gitindex.sync.OVERLAY_MOST = saved
    over, listed = (_median([r["wall_s"] for r in new[k]]) for k in ("overlay", "listed"))
    out["new_ref"] = {**new, "overlay_median_s": round(over, 3), "listed_median_s": round(listed, 3),
                      "ratio": round(over / listed, 4),
                      "first_ratio": round(new["overlay"][0]["wall_s"] / new["listed"][0]["wall_s"], 4)}
    out["store_after_new_refs"] = store_figures(ix)

    # 3. the base moves; search in every ref, checked with git ------------------------------------
    moved = targets[-1]
    with (repo / moved).open("a") as f:
        f.write(f'\n\ndef {MOVED_NAME}(graph):\n    """Benchmark edit on main: the nodes of graph, sorted."""\n'
                "    return sorted(graph.nodes)\n")
    added = "copy_0/overlays_bench_added.py"
    (repo / added).write_text(f'def {ADDED_NAME}(graph, node):\n    """A file main adds: the neighbours of node."""\n'
                              "    return list(graph.neighbors(node))\n")
    corpus._git(repo, "add", "-A")
    corpus._git(repo, "commit", "-q", "-m", "the base moves: one file changed, one added", date=date + 3600)
    log("the base moves: one file changed, one added on main")
    out["base_move"] = {**timed_sync(ix, counting, "main"), "changed": moved, "added": added}
    files = GitFiles(repo)
    qs = queries(source, "HEAD", args.queries)
    edits = [MOVED_NAME, ADDED_NAME, *(f"take_{kind}_items_{k}" for kind in new for k in range(1, rounds + 1))]
    refs = ["main", *(r["ref"] for kind in ("overlay", "listed") for r in new[kind])]
    log(f"searching {len(qs) + len(edits)} queries in {len(refs)} refs, every hit checked with git")
    out["check"] = check_searches(ix, files, [*qs, *edits], refs)
    log(f"  {out['check']['hits_checked']} hits checked, {out['check']['wrong_hits']} wrong")

    # 4. search latency: main, an overlay, a big overlay --------------------------------------------
    search_refs = ["main", "overlay-1"]
    if not args.quick:
        many = min(gitindex.sync.OVERLAY_MOST, len(py))
        log(f"a big overlay: a line appended to {many} files")
        corpus._git(repo, "checkout", "-q", "-b", "overlay-big")
        for path in py[:many]:
            with (repo / path).open("a") as f:
                f.write("# overlays benchmark: a line appended\n")
        corpus._git(repo, "commit", "-q", "-am", f"a line appended to {many} files", date=date + 7200)
        corpus._git(repo, "checkout", "-q", "main")
        out["big_overlay"] = {**timed_sync(ix, counting, "overlay-big"), "files_changed": many}
        search_refs.append("overlay-big")
        out["big_overlay"]["check"] = check_searches(ix, files, [*qs, *edits], ["overlay-big"])
    ix.workspace.store.keep_reads = True  # as a resident process (gitindex mcp) reads
    log(f"search latency: {len(qs)} queries x {REPS} in {', '.join(search_refs)}")
    lat = latency(ix, qs, search_refs)
    out["search"] = {"queries": qs, "limit": LIMIT, "reps": REPS, "median_s": lat,
                     "overlay_vs_main": round(lat["overlay-1"] / lat["main"], 3),
                     "big_vs_main": round(lat["overlay-big"] / lat["main"], 3) if "overlay-big" in lat else None}
    ix.close()
    out["load_after"] = os.getloadavg()
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


# -- the report ----------------------------------------------------------------------------------
def _met(ok: bool) -> str:
    return "met" if ok else "**NOT met**"


def markdown(r: dict[str, Any]) -> str:
    ix, n, b, c, s = r["index"], r["new_ref"], r["base_move"], r["check"], r["search"]
    lb, la = r["load_before"], r["load_after"]
    ov, li = n["overlay"], n["listed"]

    def walls(rows: list[dict[str, Any]]) -> str:
        return ", ".join(f"{x['wall_s']:.2f}" for x in rows)

    ov_points = ", ".join(f"{x['listed_points']} ({x['listed_paths']})" for x in ov)
    li_points = ", ".join(f"{x['listed_points']:,}" for x in li)

    lines = [f"# A new ref on a large index: overlay vs listed on every point ({r['copies']} x networkx, "
             f"{ix['points']:,} points)", "",
             f"{r['files']} files; {r['cores']} cores; load average {lb[0]:.2f} before, {la[0]:.2f} after (a shared "
             f"machine: times are context, ratios are the figures). Embedder: {r['embedder']}, so what is measured is "
             f"store and manifest work, not the model. Searches: {r['search_mode']}. Run {r['seconds'] / 60:.1f} min.",
             "", "| figure | value | target |", "|---|---|---|",
             f"| index main: Index.sync wall, chunks embedded | {ix['wall_s']:.1f} s, {ix['embedded']:,} | context |",
             f"| store: points, shard segments (after indexing / after the new refs) | {ix['points']:,}, "
             f"{ix['segments']} / {r['store_after_new_refs']['points']:,}, {r['store_after_new_refs']['segments']} | |",
             f"| new ref one file away, **overlay** (default): Index.sync wall, median of {len(ov)} | "
             f"**{n['overlay_median_s']:.2f} s** ({walls(ov)}) | <= {TARGET_ONE_FILE_S:.0f} s "
             f"({_met(n['overlay_median_s'] <= TARGET_ONE_FILE_S)}) |",
             f"| new ref one file away, **listed** on every point (OVERLAY_MOST = -1), median of {len(li)} | "
             f"**{n['listed_median_s']:.2f} s** ({walls(li)}; the first on the shard as indexed) | context "
             "(before overlays) |",
             f"| **overlay / listed** (medians; first rounds: {n['first_ratio']:.3f}) | **{n['ratio']:.3f}** "
             f"({1 / n['ratio']:.1f}x faster) | headline |",
             f"| chunks embedded per new ref: overlay / listed | {', '.join(str(x['embedded']) for x in ov)} / "
             f"{', '.join(str(x['embedded']) for x in li)} | the changed file's |",
             f"| points listing the ref explicitly: overlay (paths) | "
             f"{ov_points} | the changed file's only "
             f"({_met(all(x['listed_only_changed_file'] for x in ov))}) |",
             f"| points listing the ref explicitly: listed | {li_points} | "
             f"every point of its view |",
             f"| base moves (one file changed, one added): Index.sync('main') wall, embedded | {b['wall_s']:.2f} s, "
             f"{b['embedded']} | context |",
             f"| search in main and every new ref after the move ({c['queries']} queries x {len(c['refs'])} refs, "
             f"limit {LIMIT}): wrong hits | {c['wrong_hits']} of {c['hits_checked']} | 0 ({_met(c['wrong_hits'] == 0)}) |",
             f"| search latency, median over {len(s['queries'])} queries (of {s['reps']} each): main | "
             f"{s['median_s']['main'] * 1000:.1f} ms | |",
             f"| overlay-1 ({ov[0]['overrides']} override) / main | {s['median_s']['overlay-1'] * 1000:.1f} ms, "
             f"{s['overlay_vs_main']:.2f}x | |"]
    big = r.get("big_overlay")
    if big:
        bc = big["check"]
        lines += [f"| big overlay ({big['overrides']} overrides, base {big['base']}) / main | "
                  f"{s['median_s']['overlay-big'] * 1000:.1f} ms, {s['big_vs_main']:.2f}x | |",
                  f"| big overlay: Index.sync wall, embedded, points listing it (paths) | {big['wall_s']:.2f} s, "
                  f"{big['embedded']:,}, {big['listed_points']:,} ({big['listed_paths']:,}) | context |",
                  f"| big overlay: wrong hits | {bc['wrong_hits']} of {bc['hits_checked']} | 0 "
                  f"({_met(bc['wrong_hits'] == 0)}) |"]
    examples = [*c["examples"], *(big["check"]["examples"] if big else [])]
    if examples:
        lines += ["", "Wrong hits (first ones):", "", *[f"- {e}" for e in examples]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overlays", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one copy, 2 rounds, 10 queries, no big overlay")
    parser.add_argument("--copies", type=int, default=None, help="copies of the corpus (default 3, quick 1)")
    parser.add_argument("--rounds", type=int, default=None, help="new refs of each kind (default 3, quick 2)")
    parser.add_argument("--queries", type=int, default=None, help="corpus queries (default 20, quick 10)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="corpus and scratch (default %(default)s)")
    parser.add_argument("--json", type=Path, help="write every figure here too")
    args = parser.parse_args(argv)
    args.copies = args.copies or (1 if args.quick else 3)
    args.rounds = args.rounds or (2 if args.quick else 3)
    args.queries = args.queries or (10 if args.quick else 20)
    report(args, run, markdown)


if __name__ == "__main__":
    main()
