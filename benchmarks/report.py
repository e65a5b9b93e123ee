"""The markdown report of a benchmark run (benchmarks/run.py's JSON, rendered)."""

from __future__ import annotations

import statistics
from typing import Any


def _f(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _med(runs: list[dict[str, Any]] | None, key: str) -> float | None:
    vals = [r[key] for r in runs or [] if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *["| " + " | ".join(r) + " |" for r in rows]]


def _embedded(run: dict[str, Any] | None) -> str:
    if not run:
        return "-"
    out = run.get("output")
    if isinstance(out, dict) and "chunks" in out:
        return str(out["chunks"]["embedded"])
    if isinstance(out, dict) and "embedded" in out:
        return str(out["embedded"])
    return "-"


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [f"# gitindex benchmark, {r['started']}", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}, int8 path: "
             f"{m['int8']}. Packages: " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()) + ".",
             f"Run took {r.get('seconds', 0) / 60:.1f} min. Corpus: {r['corpus']['history']} (PyPI wheels "
             "committed one release per commit). Every gitindex and peer run is its own process: wall, CPU "
             "(user+sys) and peak RSS are the OS's figures for that process, start-up included.", ""]
    b = r.get("backends")
    if b:
        lines += [f"## Embedding backends ({b['chunks']} real chunks of {b['corpus']}, mean {b['mean_chars']} chars, "
                  f"{b['rounds']} interleaved rounds)", ""]
        rows = [[name, v.get("variant", "torch"), _f(v["chunks_per_s"], 1), _f(v["chunks_per_cpu_s"], 1),
                 f"{v['speedup_vs_torch']:.2f}x", _f(v["mean_cosine"], 4), _f(v["min_cosine"], 4),
                 _f(v["cold_start_s"])] for name, v in b["backends"].items()]
        lines += _table(["backend", "runs", "chunks/s", "chunks/CPU-s", "vs torch", "mean cos", "min cos",
                         "cold start s (import+load+1 query)"], rows)
        lines += ["", f"Default backend by the rule ({b['rule']}): **{b['default']}**.", ""]

    h = r.get("history")
    if h:
        backend = r["gitindex_backend"]
        peer = h.get("peer", {})
        pd, pb = peer.get("defaults", {}), peer.get("best", {})
        lines += [f"## Scenarios on the release history (gitindex backend: {backend})", "",
                  "Ratio columns: peer wall / gitindex wall (above 1: gitindex is faster). Medians where repeated.", ""]
        rows = []

        def row(name: str, gi: list[dict[str, Any]] | None, d: list[dict[str, Any]] | None,
                best: list[dict[str, Any]] | None) -> None:
            gw, dw, bw = _med(gi, "wall_s"), _med(d, "wall_s"), _med(best, "wall_s")
            rows.append([name, _f(gw), _f(_med(gi, "cpu_s")), _f(_med(gi, "peak_rss_mb"), 0),
                         _f(dw), _f(_med(d, "peak_rss_mb"), 0), _f(bw), _f(_med(best, "peak_rss_mb"), 0),
                         f"{dw / gw:.1f}x" if gw and dw else "-", f"{bw / gw:.1f}x" if gw and bw else "-"])

        first = h.get("first", {})
        row(f"(1) first index ({_embedded(first.get(backend))} chunks embedded)", [first[backend]] if backend in first
            else None, [pd["first"]] if "first" in pd else None, [pb["first"]] if "first" in pb else None)
        if "torch" in first and backend != "torch":
            row("(1) first index, gitindex torch backend", [first["torch"]], None, None)
        if h.get("replay"):
            row(f"(2) replay, per step ({len(h['replay'])} steps)", h["replay"], pd.get("replay"), pb.get("replay"))
        if h.get("noop"):
            row("(3) no-op sync", h["noop"], pd.get("noop"), pb.get("noop"))
        if h.get("edit"):
            row("(4) one-file change, end to end", h["edit"], pd.get("edit"), pb.get("edit"))
        if h.get("edit_shipped"):
            row("(4) one-file change, CLI as shipped (torch)", [h["edit_shipped"]], None, None)
        if h.get("search"):
            row("(5) search, end to end", h["search"], None, None)
        if h.get("search_shipped"):
            row("(5) search, CLI as shipped (torch)", [h["search_shipped"]], None, None)
        lines += _table(["scenario", "gitindex wall s", "CPU s", "RSS MB", "peer defaults wall s", "RSS MB",
                         "peer best wall s", "RSS MB", "defaults / gitindex", "best / gitindex"], rows)
        if h.get("verify") is not None:
            lines += ["", f"`gitindex verify` after the replay: {h['verify']}"]

        if h.get("replay"):
            lines += ["", "### Replay, per step: chunks embedded next to the lower bound", "",
                      "Lower bound: distinct chunk texts (gitindex's chunker and file selection) in this release and "
                      "not in the previous one; gitindex's vector cache may go below it when a text comes back from "
                      "an earlier release. The peer's bound is the same count over its own documents.", ""]
            rows = []
            bounds = h["lower_bound"]
            for i, step in enumerate(h["replay"]):
                bd = bounds[i + 1]
                d = (pd.get("replay") or [None] * len(h["replay"]))[i]
                best = (pb.get("replay") or [None] * len(h["replay"]))[i]
                rows.append([bd["version"], str(bd["new_vs_previous"]), str(bd["new_vs_all_earlier"]), _embedded(step),
                             _f(step["wall_s"]), _embedded(d), str(d["lower_bound"]) if d else "-",
                             _f(d["wall_s"]) if d else "-", _embedded(best), _f(best["wall_s"]) if best else "-"])
            lines += _table(["release", "bound", "bound vs all earlier", "gitindex embedded", "gitindex s",
                             "peer defaults embedded", "peer bound", "peer defaults s", "peer best embedded",
                             "peer best s"], rows)
            lines += ["", f"First release: {bounds[0]['files']} files, {bounds[0]['chunks']} gitindex chunks "
                      f"({bounds[0]['distinct']} distinct); the peer split it into "
                      f"{pd.get('first', {}).get('output', {}).get('docs', '-')} documents."]

        phase_rows = []
        for name, run in [(f"(1) first index, {backend}", first.get(backend)), ("(1) first index, torch", first.get("torch")),
                          *[(f"(2) replay {bounds[i + 1]['version']}", s) for i, s in enumerate(h.get("replay", []))],
                          *[(f"(4) one-file change {i + 1}", s) for i, s in enumerate(h.get("edit", []))]]:
            if run and run.get("phases_s"):
                p = run["phases_s"]
                phase_rows.append([name, _f(run["wall_s"]), _f(run.get("startup_s")), *[_f(p.get(k)) for k in
                                   ("git", "read_chunk", "lookup", "embed", "store", "manifest")]])
        if phase_rows:
            lines += ["", "### Phase split (gitindex, seconds)", "",
                      "start-up: interpreter and imports until the CLI runs. Phases come from the engine's own "
                      "`sync --json` timings; embedding, reading and writing run on different threads, so they "
                      "overlap and may add up to more than wall.", ""]
            lines += _table(["run", "wall", "start-up", "git", "read+chunk", "lookup", "embed", "store", "manifest"],
                            phase_rows)

    t = r.get("trees")
    if t:
        lines += ["", "## (6) First index of large trees", "", f"Embedder: **{t['embedder']}**.", ""]
        rows = []
        for n, v in sorted(t["runs"].items(), key=lambda kv: int(kv[0])):
            f = v["first"]
            if f["finished"]:
                out = f["output"]
                done, chunks = str(out["files"]["added"]), str(out["chunks"]["embedded"] + out["chunks"]["reused"])
            else:
                st = f.get("status") if isinstance(f.get("status"), dict) else {}
                done, chunks = f"{st.get('files', '?')} (stopped)", f"{st.get('points', '?')} (stopped)"
            lim = v.get("limited")
            limited = ([] if "memory_limit_mb" not in t else ["-"] if lim is None else
                       [f"{_f(lim['peak_rss_mb'], 0)} MB, {_f(lim['wall_s'], 1)} s"
                        f"{'' if lim['finished'] else ' (stopped)'}"])
            rows.append([n, "yes" if f["finished"] else f"**no**, stopped at {f['wall_s']:.0f} s", done, chunks,
                         _f(f["wall_s"], 1), _f(f["cpu_s"], 1), _f(f["peak_rss_mb"], 0), *limited])
        extra = [f"with --memory-limit {t['memory_limit_mb']}: peak RSS, wall"] if "memory_limit_mb" in t else []
        lines += _table(["files in tree", "finished", "files indexed", "chunks", "wall s", "CPU s", "peak RSS MB",
                         *extra], rows)
        ten = t["runs"].get("10000", {})
        if ten.get("noop"):
            gw = _med(ten["noop"], "wall_s")
            lines += ["", f"No-op sync on the 10k-file tree (median of {len(ten['noop'])}): {_f(gw, 3)} s wall, "
                      f"{_f(_med(ten['noop'], 'peak_rss_mb'), 0)} MB."]
            pn = ten.get("peer_noop")
            if pn:
                pw = _med(pn["noop"], "wall_s")
                lines += [f"Peer no-op on the same tree (its documented defaults; cheap vectors in both runs, "
                          f"in the peer's favour): {_f(pw)} s, "
                          f"{_f(_med(pn['noop'], 'peak_rss_mb'), 0)} MB, "
                          f"{pn['noop'][0]['output']['embedded']} embedded: **{pw / gw:.0f}x** gitindex's time."]

    if r.get("startup"):
        from benchmarks.startup import markdown as startup_table

        lines += ["", "## Start-up: each command in a new process, ratio to `python -c \"import pygit2, typer, "
                  "sqlite3\"` (interleaved rounds, medians)", "", startup_table(r["startup"])]
    if r.get("mcp"):
        from benchmarks.mcp import markdown as mcp_section

        lines += ["", mcp_section(r["mcp"]).rstrip("\n")]
    if r.get("targets"):
        lines += ["", "## Targets", ""]
        lines += _table(["target", "measured", "goal", "met"],
                        [[x["target"], str(x["measured"]), x["goal"],
                          {True: "yes", False: "**no**", None: "-"}[x["met"]]] for x in r["targets"]])
    return "\n".join(lines) + "\n"
