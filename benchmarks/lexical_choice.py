"""`python -m benchmarks.lexical_choice`: BM25 as a sparse vector (gitindex's way) or Qdrant's full-text index?

    python -m benchmarks.lexical_choice                       # requests, flask, pydantic, express
    python -m benchmarks.lexical_choice --corpora requests --max-queries 100

Lexical-only retrieval over the same chunks, compared by the lexical method alone. Each corpus
of the quality benchmark (benchmarks/quality_corpus.py) is committed to a git repository and
indexed by gitindex itself (`gitindex.open(repo, embedder=...)`, `sync()`); every point's
payload (path, symbol, start_line, end_line, text) and its stored lexical vector are read back.
Then a fresh EdgeShard per variant holds only those payloads:

- sparse-gitindex: the sparse vectors gitindex stored (BM25 of path, symbol, context lines and
  text; qdrant_edge.Bm25 with the code tokenizer, English stop words and stemming), IDF modifier,
  queried with gitindex.lexical.query: exactly what `search(mode="lexical")` ranks by.
- sparse-doc: the same embedder over path + symbol + text (the payload's text, no context lines),
  the document the text-index variants see. sparse-doc-avglen: the same with Bm25Config's
  avg_len set to --avg-len (default 64; gitindex's embedder uses the default, 256 tokens).
- text-doc: a full-text index with BM25 scoring (code tokenizer, default k/b) on a payload field
  "doc" = path + symbol + text; text-doc-english adds English stop words and Snowball stemming.
- text-chunk, text-chunk-english: the same over the chunk text alone (the existing "text" field,
  so no second copy of the text).

Metrics: MRR@10 and Recall@10 at chunk level (quality.evaluate), on the nl and identifier query
sets; write time (sparse: the embedder's time and the upserts'), disk (allocated blocks of the
segments, WAL excluded, after a flush) and the median / p95 latency of one query in an open
shard. Writes benchmarks/out/lexical-choice-latest.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from benchmarks import quality
from benchmarks import quality_corpus as qc

REPO_ROOT = Path(__file__).resolve().parent.parent
LIMIT = quality.LIMIT
PAGE = 128  # points a write carries, as gitindex's store sends them (_UPSERT_PAGE)
SPARSE = "lexical"
DOC = "doc"


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str  # sparse or text
    source: str  # sparse: stored (gitindex's vectors) or doc; text: the payload field indexed
    english: bool = False  # text: English stop words and Snowball stemming
    about: str = ""
    avg_len: float | None = None  # sparse: Bm25Config's avg_len (None: gitindex's embedder, 256)


VARIANTS = (
    Variant("sparse-gitindex", "sparse", "stored", True, "gitindex's stored vectors: path+symbol+context+text"),
    Variant("sparse-doc", "sparse", "doc", True, "Bm25 sparse vector of path+symbol+text"),
    Variant("sparse-doc-avglen", "sparse", "doc", True, "the same, Bm25Config(avg_len=--avg-len)", 64.0),
    Variant("text-doc", "text", DOC, False, "text index on path+symbol+text, code tokenizer"),
    Variant("text-doc-english", "text", DOC, True, "the same, English stop words + stemming"),
    Variant("text-chunk", "text", "text", False, "text index on the chunk text alone"),
    Variant("text-chunk-english", "text", "text", True, "the same, English stop words + stemming"),
)
METRIC_SETS = ("nl", "identifier")


def log(message: str) -> None:
    quality.log(message)


# -- gitindex's chunks -------------------------------------------------------------------------
def gitindex_points(c: qc.Corpus, embedder: Any, work: Path, chunker: str | None) -> tuple[list[dict[str, Any]], float]:
    """Index the corpus with gitindex; every point's payload (with its stored lexical vector
    under "_sparse", when the store gives it back) and the sync's seconds."""
    import gitindex

    repo = quality.write_repo(c.files, work / f"{c.name}-repo")
    kwargs = {"chunker": chunker} if chunker else {}
    with gitindex.open(repo, embedder=embedder, **kwargs) as index:
        started = time.perf_counter()
        index.sync()
        sync_s = time.perf_counter() - started
        store = index.workspace.store
        with store.session():
            points = [dict(p) for _, p in store.scroll(None)]
            vectors = _stored_sparse(store)
    for p in points:
        sparse = vectors.get(str(p.get("hash", "")), {}).get((str(p["path"]), int(p["start_line"])))
        if sparse is not None:
            p["_sparse"] = sparse
    return points, sync_s


def _stored_sparse(store: Any) -> dict[str, dict[tuple[str, int], qe.SparseVector]]:
    """hash -> (path, start line) -> the lexical vector gitindex stored (read from its shard
    directly: the store's own scroll returns payloads only). Empty if the store is not an
    embedded shard or keeps no lexical vector."""
    shard = getattr(store, "_shard", None)
    if shard is None:
        return {}
    out: dict[str, dict[tuple[str, int], qe.SparseVector]] = {}
    offset: Any = None
    try:
        while True:
            records, offset = shard.scroll(qe.ScrollRequest(offset=offset, limit=1000, with_vector=[SPARSE],
                                                            with_payload=["hash", "path", "start_line"]))
            for r in records:
                vec = (r.vector or {}).get(SPARSE)
                payload = r.payload or {}
                if vec is not None:
                    key = (str(payload["path"]), int(payload["start_line"]))
                    out.setdefault(str(payload.get("hash", "")), {})[key] = vec
            if offset is None:
                return out
    except Exception as exc:  # an older or changed store: say so, run the other variants
        log(f"cannot read gitindex's stored lexical vectors ({type(exc).__name__}: {exc}): sparse-gitindex skipped")
        return {}


# -- the shards --------------------------------------------------------------------------------
class _Bm25:
    """gitindex.lexical's document() and query() with another avg_len (queries do not depend on it)."""

    def __init__(self, avg_len: float) -> None:
        self.model = qe.Bm25(qe.Bm25Config(tokenizer=qe.TokenizerType.Code, language="english", avg_len=avg_len))

    def document(self, path: str, symbol: str, text: str) -> Any:
        return self.model.embed_document(f"{path}\n{symbol}\n{text}")

    def query(self, text: str) -> Any:
        return self.model.embed_query(text)


def _bm25(variant: Variant) -> Any:
    from gitindex import lexical

    return _Bm25(variant.avg_len) if variant.avg_len else lexical


def _config(variant: Variant) -> qe.EdgeConfig:
    # An edge shard needs at least one vector: the text variants get an unused sparse one.
    name = SPARSE if variant.kind == "sparse" else "unused"
    return qe.EdgeConfig(
        sparse_vectors={name: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf, memory=qe.Memory.Cold)},
        payload_memory=qe.Memory.Cold, id_tracker_memory=qe.Memory.Cold)


def _text_index(english: bool) -> qe.TextIndexParams:
    if english:
        return qe.TextIndexParams(tokenizer=qe.TokenizerType.Code, scoring=True, memory=qe.Memory.Cold,
                                  stopwords=qe.Language.English,
                                  stemmer=qe.SnowballParams(qe.SnowballLanguage.English))
    return qe.TextIndexParams(tokenizer=qe.TokenizerType.Code, scoring=True, memory=qe.Memory.Cold)


def document_text(p: dict[str, Any]) -> str:
    return f"{p['path']}\n{p.get('symbol') or ''}\n{p.get('text', '')}"


def base_payload(p: dict[str, Any]) -> dict[str, Any]:
    return {"path": p["path"], "symbol": p.get("symbol") or "", "start_line": int(p["start_line"]),
            "end_line": int(p["end_line"]), "text": str(p.get("text", ""))}


def disk_bytes(path: Path) -> tuple[int, int]:
    """Allocated and apparent bytes under the shard, its WAL excluded (segments preallocate
    files sparsely: the allocated size is what the disk holds)."""
    allocated = apparent = 0
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not (Path(root) == path and d == "wal")]
        for f in files:
            st = os.stat(os.path.join(root, f))
            allocated += st.st_blocks * 512
            apparent += st.st_size
    return allocated, apparent


def build(variant: Variant, points: Sequence[dict[str, Any]], path: Path) -> dict[str, Any]:
    """Create the variant's shard and write every point; the seconds spent, per part."""
    lexical = _bm25(variant)
    shard = qe.EdgeShard.create(str(path), _config(variant))
    embed_s = write_s = 0.0
    if variant.kind == "text":
        started = time.perf_counter()
        shard.update(qe.UpdateOperation.create_field_index(variant.source, _text_index(variant.english)))
        write_s += time.perf_counter() - started
    for i in range(0, len(points), PAGE):
        page = points[i: i + PAGE]
        started = time.perf_counter()
        out = []
        for n, p in enumerate(page, i):
            payload = base_payload(p)
            vectors: dict[str, Any] = {}
            if variant.kind == "sparse":
                if variant.source == "stored":
                    vectors[SPARSE] = p["_sparse"]
                else:
                    s = lexical.document(str(p["path"]), str(p.get("symbol") or ""), str(p.get("text", "")))
                    vectors[SPARSE] = qe.SparseVector(list(s.indices), list(s.values))
            elif variant.source == DOC:
                payload[DOC] = document_text(p)
            out.append(qe.Point(n, vectors, payload))
        built = time.perf_counter()
        shard.update(qe.UpdateOperation.upsert_points(out))
        done = time.perf_counter()
        if variant.kind == "sparse" and variant.source != "stored":
            embed_s += built - started
        write_s += done - built
    started = time.perf_counter()
    shard.flush()
    flush_s = time.perf_counter() - started
    shard.close()
    allocated, apparent = disk_bytes(path)
    return {"embed_s": round(embed_s, 3), "upsert_s": round(write_s, 3), "flush_s": round(flush_s, 3),
            "write_s": round(embed_s + write_s + flush_s, 3), "disk_mb": round(allocated / 2**20, 2),
            "apparent_mb": round(apparent / 2**20, 1)}


def searcher(variant: Variant, shard: qe.EdgeShard) -> Callable[[str], list[Any]]:
    lexical = _bm25(variant)
    if variant.kind == "sparse":
        def sparse(text: str) -> list[Any]:
            q = lexical.query(text)
            if not list(q.indices):
                return []
            return shard.query(qe.QueryRequest(limit=LIMIT, with_payload=["path", "start_line", "end_line"],
                                               query=qe.Query.Nearest(qe.SparseVector(list(q.indices),
                                                                                      list(q.values)),
                                                                      using=SPARSE)))
        return sparse

    def text(text: str) -> list[Any]:
        return shard.query(qe.QueryRequest(limit=LIMIT, with_payload=["path", "start_line", "end_line"],
                                           query=qe.TextQuery(variant.source, text)))  # type: ignore[arg-type]
    return text


def search_all(variant: Variant, path: Path, sets: dict[str, list[qc.Query]]) -> dict[str, Any]:
    started = time.perf_counter()
    shard = qe.EdgeShard.load(str(path))
    load_s = time.perf_counter() - started
    search = searcher(variant, shard)
    results: dict[str, list[list[quality.Span]]] = {}
    times: list[float] = []
    errors = 0
    try:
        search("warm up the shard")
        for set_name, queries in sets.items():
            rows = []
            for q in queries:
                t0 = time.perf_counter()
                try:
                    hits = search(q.text)
                except Exception:  # a query the tokenizer leaves empty, say: no hits
                    hits, errors = [], errors + 1
                times.append(time.perf_counter() - t0)
                rows.append([(str(h.payload["path"]), int(h.payload["start_line"]), int(h.payload["end_line"]))
                             for h in hits])
            results[set_name] = rows
    finally:
        shard.close()
    ms = sorted(t * 1000 for t in times)
    return {"load_s": round(load_s, 3), "query_ms_median": round(statistics.median(ms), 3) if ms else None,
            "query_ms_p95": round(ms[int(0.95 * (len(ms) - 1))], 3) if ms else None, "query_errors": errors,
            "metrics": quality.evaluate(sets, results)}


def run_corpus(c: qc.Corpus, sets: dict[str, list[qc.Query]], variants: Sequence[Variant], embedder: Any,
               work: Path, chunker: str | None) -> dict[str, Any]:
    log(f"{c.name}: indexing with gitindex")
    points, sync_s = gitindex_points(c, embedder, work, chunker)
    chunkers = sorted({str(p.get("chunker", "?")) for p in points})
    log(f"{c.name}: {len(points)} chunks ({', '.join(chunkers)}), sync {sync_s:.1f} s")
    out: dict[str, Any] = {"chunks": len(points), "chunker": ", ".join(chunkers), "sync_s": round(sync_s, 1),
                           "queries": {s: len(q) for s, q in sets.items()}, "variants": {}}
    for v in variants:
        if v.source == "stored" and not all("_sparse" in p for p in points):
            out["variants"][v.name] = {"status": "skipped", "message": "gitindex's stored lexical vectors unreadable"}
            continue
        path = work / f"{c.name}-{v.name}"
        entry = {"status": "ok", **build(v, points, path), **search_all(v, path, sets)}
        shutil.rmtree(path, ignore_errors=True)
        out["variants"][v.name] = entry
        m = entry["metrics"]
        log(f"{c.name}: {v.name}: nl MRR@10 {m['nl']['chunk']['mrr@10']:.3f}, identifier MRR@10 "
            f"{m['identifier']['chunk']['mrr@10']:.3f}, write {entry['write_s']:.2f} s, {entry['disk_mb']} MB, "
            f"{entry['query_ms_median']} ms")
    return out


# -- report ------------------------------------------------------------------------------------
COLUMNS = ("nl MRR@10", "nl R@10", "id MRR@10", "id R@10", "write s", "disk MB", "query ms")


def row(entry: dict[str, Any]) -> list[float | None]:
    m = entry["metrics"]
    return [m["nl"]["chunk"]["mrr@10"], m["nl"]["chunk"]["recall@10"], m["identifier"]["chunk"]["mrr@10"],
            m["identifier"]["chunk"]["recall@10"], entry["write_s"], entry["disk_mb"], entry["query_ms_median"]]


def average(corpora: dict[str, Any], variants: Sequence[Variant]) -> dict[str, list[float | None]]:
    out: dict[str, list[float | None]] = {}
    for v in variants:
        rows = [row(c["variants"][v.name]) for c in corpora.values() if c["variants"].get(v.name, {}).get("status") == "ok"]
        if rows and len(rows) == len(corpora):
            out[v.name] = [round(statistics.fmean(float(x) for x in col if x is not None), 4) for col in zip(*rows, strict=True)]
    return out


def _cell(x: float | None, i: int) -> str:
    if x is None:
        return "-"
    return f"{x:.3f}" if i < 4 else f"{x:.2f}"


def _table(rows: dict[str, list[float | None]]) -> list[str]:
    lines = ["| variant | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    lines += [f"| {name} | " + " | ".join(_cell(x, i) for i, x in enumerate(r)) + " |" for name, r in rows.items()]
    return lines


def markdown(r: dict[str, Any]) -> str:
    lines = [f"# Lexical method: sparse BM25 vector vs full-text index, {r['started']}", "",
             f"Machine: {r['machine']}. qdrant-edge-py {r['qdrant_edge']}. Chunks: gitindex's own "
             f"({r['chunker']}). Lexical-only, {LIMIT} hits, chunk level (a hit's lines overlap the target "
             "definition's). Write s: all points (sparse: Bm25 embedding + upserts + flush; text: index "
             "creation + upserts + flush). Disk: allocated MB of the segments after a flush (WAL excluded). "
             "Query ms: median of one query in an open shard (sparse: including the query's vector).", "",
             "## Variants", ""]
    lines += [f"- **{v['name']}**: {v['about']}" for v in r["variants"]]
    for name, c in r["corpora"].items():
        lines += ["", f"## {name} ({c['chunks']} chunks; {c['queries'].get('nl', 0)} nl, "
                      f"{c['queries'].get('identifier', 0)} identifier queries)", ""]
        lines += _table({v: row(e) for v, e in c["variants"].items() if e.get("status") == "ok"})
        skipped = [f"- {v}: {e['message']}" for v, e in c["variants"].items() if e.get("status") != "ok"]
        if skipped:
            lines += ["", *skipped]
    lines += ["", "## Average over the corpora", "", *_table(r["average"])]
    return "\n".join(lines) + "\n"


def benchmark(cache: Path, names: Sequence[str], max_queries: int, variants: Sequence[Variant],
              chunker: str | None) -> dict[str, Any]:
    import platform
    from importlib.metadata import version

    r: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                         "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                                    f"Python {platform.python_version()}",
                         "qdrant_edge": version("qdrant-edge-py"), "max_queries": max_queries,
                         "variants": [{"name": v.name, "about": v.about} for v in variants], "corpora": {}}
    embedder = quality.default_embedder()
    work = Path(tempfile.mkdtemp(prefix="gitindex-lexical-"))
    started = time.perf_counter()
    try:
        for name in names:
            log(f"{name}: fetching and stripping")
            c = qc.build(name, qc.fetch(name, cache))
            sets = {s: q for s, q in qc.queries(c, max_queries).items() if s in METRIC_SETS}
            r["corpora"][name] = run_corpus(c, sets, variants, embedder, work, chunker)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    r["chunker"] = ", ".join(sorted({c["chunker"] for c in r["corpora"].values()}))
    r["average"] = average(r["corpora"], variants)
    r["seconds"] = round(time.perf_counter() - started, 1)
    return r


def _names(text: str) -> Iterator[str]:
    return (n.strip() for n in text.split(",") if n.strip())


def main(argv: list[str] | None = None) -> None:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lexical_choice", description=doc.splitlines()[0])
    parser.add_argument("--corpora", default=",".join(qc.CORPORA), help=f"comma-separated, of {', '.join(qc.CORPORA)}")
    parser.add_argument("--variants", default=",".join(v.name for v in VARIANTS),
                        help=f"comma-separated, of {', '.join(v.name for v in VARIANTS)}")
    parser.add_argument("--max-queries", type=int, default=300, help="per query set and corpus")
    parser.add_argument("--avg-len", type=float, default=64.0, help="avg_len of the sparse-doc-avglen variant")
    parser.add_argument("--chunker", default=None, help="gitindex's chunker (default: its configured one)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "gitindex-bench" / "quality")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "out")
    args = parser.parse_args(argv)
    names = list(_names(args.corpora))
    by_name = {v.name: v for v in VARIANTS}
    wanted = list(_names(args.variants))
    for what, given, known in (("corpora", names, qc.CORPORA), ("variants", wanted, by_name)):
        if set(given) - set(known):
            parser.error(f"unknown {what}: {', '.join(sorted(set(given) - set(known)))}")
    by_name["sparse-doc-avglen"] = dataclasses.replace(by_name["sparse-doc-avglen"], avg_len=args.avg_len,
                                                       about=f"the same, Bm25Config(avg_len={args.avg_len:g})")
    results = benchmark(args.cache, names, args.max_queries, [by_name[n] for n in wanted], args.chunker)
    text = markdown(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lexical-choice-latest.json").write_text(json.dumps(results, indent=1))
    (args.out / "lexical-choice-latest.md").write_text(text)
    print(text)
    log(f"wrote {args.out / 'lexical-choice-latest.md'} and .json ({results['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
