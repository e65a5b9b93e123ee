"""Exact scan vs HNSW (with and without int8 scalar quantization) in the embedded store's EdgeShard.

    python -m benchmarks.ann --points 250000 --out /tmp/ann-250k.json
    python -m benchmarks.ann --points 50000 --variants m0,h16e100 --no-switch
    python -m benchmarks.ann --shipped --points 250000 --out /tmp/shipped-250k.json

Vectors. Random Gaussian vectors are the worst case for a graph index (no structure, every
neighbour about as far as any other); real embeddings sit on a low-dimensional, clustered
manifold. So: a few thousand real code chunks (40-line windows of the .py files installed in
this venv, files taken in a fixed shuffled order) are embedded with gitindex's default embedder
(all-MiniLM-L6-v2, onnx-int8), and serve as anchors. Every other point is a noisy convex mix of
one anchor and two of its 16 nearest anchors (Dirichlet(4, 1, 1) weights) plus isotropic
Gaussian noise of norm --noise (0.15 by default), normalised: points fill the neighbourhoods of real chunks
(near-duplicates, functions of one module) rather than the whole sphere. The noise keeps the
local structure Gaussian, hence still somewhat pessimistic. Queries are held out: half are
docstring first lines, half 40-line chunks, all from files that gave no anchor, embedded the
same way and perturbed by noise of norm 0.05. Embeddings are cached (--work).

Store. Every shard has embedded.py's layout (named dense vector, Cosine, Memory.Cold vectors,
payload and id tracker, keyword indexes on path/blob/hash, 16 MB segments: indexing_threshold
and max_segment_size in KB as in _config) and is written as a sync writes: batches of 1000
points upserted in pages of 128, and after each batch, once the appendable segment holds
16 MB of unindexed vectors, optimize() and a reopen (embedded.py's _keep). No sparse vectors:
they cost every variant the same. Each build and each query run is its own process (peak RSS,
cold opens); ground truth is numpy's exact top 10 over the same vectors.

Measured per variant: build wall time (upserts, optimize() calls), peak RSS, disk size; a cold
query (new process: import, EdgeShard.load, first query), once with the shard's pages evicted
from the page cache (posix_fadvise DONTNEED) and once with them cached; warm latency (median,
p95) and Recall@10 for each set of search params. Also (unless --no-switch) whether an m=0 shard
loaded with an HNSW EdgeConfig gets graphs from optimize(), and at what cost.

--shipped measures what ships instead: gitindex.store.embedded.EmbeddedStore itself builds the
shard (one write session per batch of SYNC_BATCH points, upsert, close() at the end, as a first
sync), each point with the dense vector above and the lexical one (lexical.document) of the real
chunk it was derived from, under a synthetic path (pkg{n}/mod{m}.py), with writer.payload's
fields (symbol, kind and names from the chunk's def/class lines). Queries: the docstring lines
above (natural language) and real function names from the chunks (identifiers: hybrid adds the
names prefetch), each in mode dense, lexical and hybrid. Measured per variant (shipped; m0:
embedded._HNSW_M patched to 0, no graphs): build wall, its parts and peak RSS, disk size, warm
store.query() time in one read session, Recall@10 of the dense mode against exact
(SearchParams(exact=True) on the store's shard, and numpy's), and a new process's first search
(session open + query; page cache kept or evicted). The graph's share of the build is the
difference of the two builds, against a first index that embeds at EMBED_RATE.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DIM = 384
DENSE = "dense"
SEGMENT_BYTES = 16 * 1024 * 1024
BATCH = 1000  # points per sync batch
PAGE = 128  # points per update() call, as embedded.py's _UPSERT_PAGE
NEIGHBOURS = 16
EMBED_RATE = 40.0  # chunks/s of a first index's embedding on this machine (onnx-int8)

# name -> (m, ef_construct, full_scan_threshold KB, quantization: None / "cold" / "ram")
VARIANTS: dict[str, tuple[int, int, int, str | None]] = {
    "m0": (0, 100, 10_000, None),
    "h16e100": (16, 100, 10_000, None),
    "h16e64": (16, 64, 10_000, None),
    "h8e64": (8, 64, 10_000, None),
    "h16e100sq": (16, 100, 10_000, "cold"),
    "h16e64sq": (16, 64, 10_000, "cold"),
    "h16e100sqram": (16, 100, 10_000, "ram"),
    "h16e100fst1g": (16, 100, 1_000_000, None),  # full_scan_threshold above any segment: does it scan?
}

# Search params tried on a variant: (label, hnsw_ef, exact, quantization (rescore, oversampling) or None)
PARAMS_PLAIN = [("default", None, False, None)]
PARAMS_HNSW = [("ef32", 32, False, None), ("ef64", 64, False, None), ("ef128", 128, False, None)]
PARAMS_SQ = [
    ("ef64", 64, False, None),  # qdrant's defaults for a quantized segment (rescore on)
    ("ef64-norescore", 64, False, (False, None)),
    ("ef64-rescore-os2", 64, False, (True, 2.0)),
    ("ef128-rescore", 128, False, (True, 1.0)),
    ("ef128-rescore-os2", 128, False, (True, 2.0)),
]


# ----------------------------------------------------------------------------- vectors


def _source_files() -> list[Path]:
    site = Path(sys.prefix) / "lib"
    files = sorted(p for p in site.glob("python3*/site-packages/**/*.py") if p.stat().st_size > 800)
    random.Random(7).shuffle(files)
    return files


def _chunks(text: str) -> list[str]:
    lines = text.splitlines()
    out = []
    for i in range(0, len(lines), 40):
        part = "\n".join(lines[i : i + 40])
        if len(part.strip()) >= 200:
            out.append(part[:2000])
    return out


_DOC = re.compile(r'def \w+\([^)]*\)[^:]*:\s*\n\s*(?:"""|\'\'\')\s*([^\n]{20,160})')


def real_texts(n_anchors: int, n_queries: int) -> tuple[list[str], list[str]]:
    """The anchor chunks and the query texts (first half: 40-line chunks, second: docstring lines)."""
    anchor_texts: list[str] = []
    chunk_q: list[str] = []
    doc_q: list[str] = []
    half = n_queries // 2
    for i, path in enumerate(_source_files()):
        text = path.read_text(errors="ignore")
        if i % 10 == 0:  # held out: queries only
            chunk_q.extend(_chunks(text)[:1])
            doc_q.extend(m.group(1).strip() for m in _DOC.finditer(text))
        elif len(anchor_texts) < n_anchors:
            anchor_texts.extend(_chunks(text)[:3])  # at most 3 windows a file: many modules
        if len(anchor_texts) >= n_anchors and len(chunk_q) >= half and len(doc_q) >= n_queries - half:
            break
    random.Random(1).shuffle(doc_q)
    return anchor_texts[:n_anchors], chunk_q[:half] + doc_q[: n_queries - half]


def real_embeddings(n_anchors: int, n_queries: int, work: Path) -> tuple[np.ndarray, np.ndarray]:
    cache = work / f"real-{n_anchors}-{n_queries}.npz"
    if cache.exists():
        data = np.load(cache)
        return data["anchors"], data["queries"]
    anchor_texts, query_texts = real_texts(n_anchors, n_queries)
    from gitindex.embedding import make_embedder, resolve_model

    embedder = make_embedder(resolve_model("all-MiniLM-L6-v2"))
    t = time.perf_counter()
    anchors = np.asarray(embedder.embed(anchor_texts), dtype=np.float32)
    queries = np.asarray(embedder.embed(query_texts), dtype=np.float32)
    print(f"embedded {len(anchors)} anchors + {len(queries)} queries in {time.perf_counter() - t:.0f} s",
          file=sys.stderr)
    work.mkdir(parents=True, exist_ok=True)
    np.savez(cache, anchors=anchors, queries=queries)
    return anchors, queries


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def neighbours(anchors: np.ndarray) -> np.ndarray:
    sims = anchors @ anchors.T
    np.fill_diagonal(sims, -2.0)
    return np.argsort(-sims, axis=1)[:, :NEIGHBOURS]


def batch_points(anchors: np.ndarray, near: np.ndarray, start: int, stop: int,
                 noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Points start..stop-1, the same in every process (seeded by batch): anchors first, then
    mixes; and for each point the anchor it was derived from (its text, in --shipped)."""
    n_anchor = len(anchors)
    out = np.empty((stop - start, anchors.shape[1]), dtype=np.float32)
    real = np.arange(start, min(stop, n_anchor))
    out[: len(real)] = anchors[real]
    k = stop - start - len(real)
    bases = real
    if k:
        rng = np.random.default_rng((start, stop))
        base = rng.integers(0, n_anchor, size=k)
        other = near[base[:, None], rng.integers(0, NEIGHBOURS, size=(k, 2))]
        w = rng.dirichlet((4.0, 1.0, 1.0), size=k).astype(np.float32)
        mix = w[:, :1] * anchors[base] + w[:, 1:2] * anchors[other[:, 0]] + w[:, 2:] * anchors[other[:, 1]]
        mix += rng.standard_normal(mix.shape, dtype=np.float32) * (noise / np.sqrt(anchors.shape[1]))
        out[len(real) :] = mix
        bases = np.concatenate([real, base])
    return _normalise(out), bases


def batch_vectors(anchors: np.ndarray, near: np.ndarray, start: int, stop: int, noise: float) -> np.ndarray:
    return batch_points(anchors, near, start, stop, noise)[0]


def all_vectors(anchors: np.ndarray, near: np.ndarray, n: int, noise: float) -> np.ndarray:
    return np.concatenate([batch_vectors(anchors, near, s, min(s + BATCH, n), noise) for s in range(0, n, BATCH)])


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    sims = queries @ vectors.T
    top = np.argpartition(-sims, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
    top = np.take_along_axis(top, order, axis=1)
    return top, np.take_along_axis(sims, top, axis=1)


# ----------------------------------------------------------------------------- shards


def config(variant: str) -> Any:
    import qdrant_edge as qe

    m, ef, full_scan, quant = VARIANTS[variant]
    kb = SEGMENT_BYTES // 1024
    quantization = None
    if quant is not None:
        quantization = (qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=0.99, memory=qe.Memory.Cold)
                        if quant == "cold" else
                        qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=0.99, always_ram=True))
    return qe.EdgeConfig(
        vectors={DENSE: qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Cosine, memory=qe.Memory.Cold)},
        payload_memory=qe.Memory.Cold,
        id_tracker_memory=qe.Memory.Cold,
        hnsw_config=qe.HnswIndexConfig(m=m, ef_construct=ef, full_scan_threshold=full_scan, memory=qe.Memory.Cold),
        quantization_config=quantization,
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=kb, max_segment_size=kb * 3 // 2,
                                           default_segment_number=8),
    )


def _payload(i: int) -> dict[str, Any]:
    return {"path": f"pkg{i // 4000}/mod{i // 40}.py", "blob": f"{(i // 40) * 2654435761 % 2**32:08x}",
            "hash": f"{i * 11400714819323198485 % 2**64:016x}", "start_line": i % 40 * 30,
            "end_line": i % 40 * 30 + 29}


def _rss_mb() -> float:
    """This process's peak RSS (VmHWM: ru_maxrss would carry the parent's peak across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_build(args: argparse.Namespace) -> dict[str, Any]:
    import qdrant_edge as qe

    anchors, _ = real_embeddings(args.anchors, args.queries, args.work)
    near = neighbours(anchors)
    path = str(args.shard)
    cfg = config(args.variant)
    seg_bytes = SEGMENT_BYTES
    t0 = time.perf_counter()
    shard = qe.EdgeShard.create(path, cfg)
    for name in ("path", "blob", "hash"):
        shard.update(qe.UpdateOperation.create_field_index(name, qe.KeywordIndexParams(memory=qe.Memory.Cold)))
    t_gen = t_upsert = t_opt = t_reopen = 0.0
    optimizes = 0
    for start in range(0, args.points, BATCH):
        t = time.perf_counter()
        vecs = batch_vectors(anchors, near, start, min(start + BATCH, args.points), args.noise)
        t_gen += time.perf_counter() - t
        t = time.perf_counter()
        for p in range(0, len(vecs), PAGE):
            shard.update(qe.UpdateOperation.upsert_points([
                qe.Point(start + p + j, {DENSE: v.tolist()}, _payload(start + p + j))
                for j, v in enumerate(vecs[p : p + PAGE])]))
        t_upsert += time.perf_counter() - t
        info = shard.info()
        if (info.points_count - info.indexed_vectors_count) * DIM * 4 >= seg_bytes:
            t = time.perf_counter()
            done = shard.optimize()
            t_opt += time.perf_counter() - t
            if done:
                optimizes += 1
                t = time.perf_counter()
                shard.flush()
                shard.close()
                shard = qe.EdgeShard.load(path, cfg)
                t_reopen += time.perf_counter() - t
            else:
                seg_bytes += SEGMENT_BYTES
    t = time.perf_counter()
    shard.flush()
    info = shard.info()
    shard.close()
    t_close = time.perf_counter() - t
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "store_s": wall - t_gen, "gen_s": t_gen, "upsert_s": t_upsert, "optimize_s": t_opt,
            "reopen_s": t_reopen, "close_s": t_close, "optimize_calls": optimizes,
            "segments": info.segments_count, "points": info.points_count, "indexed": info.indexed_vectors_count,
            "peak_rss_mb": _rss_mb()}


def child_switch(args: argparse.Namespace) -> dict[str, Any]:
    """Load an existing (m=0) shard with another variant's config and optimize()."""
    import qdrant_edge as qe

    path = str(args.shard)
    before = qe.EdgeShard.load(path)
    i0 = before.info()
    before.close()
    t = time.perf_counter()
    shard = qe.EdgeShard.load(path, config(args.variant))
    t_load = time.perf_counter() - t
    t = time.perf_counter()
    changed = shard.optimize()
    t_opt = time.perf_counter() - t
    info = shard.info()
    t = time.perf_counter()
    shard.flush()
    shard.close()
    t_close = time.perf_counter() - t
    return {"load_s": t_load, "optimize_s": t_opt, "close_s": t_close, "optimized": changed,
            "segments_before": i0.segments_count, "indexed_before": i0.indexed_vectors_count,
            "segments_after": info.segments_count, "indexed_after": info.indexed_vectors_count,
            "peak_rss_mb": _rss_mb()}


def _params(spec: tuple[str, int | None, bool, tuple[bool, float | None] | None]) -> Any:
    import qdrant_edge as qe

    _, ef, exact, quant = spec
    q = None
    if exact:
        q = qe.QuantizationSearchParams(ignore=True)
    elif quant is not None:
        q = qe.QuantizationSearchParams(rescore=quant[0], oversampling=quant[1])
    if ef is None and not exact and q is None:
        return None
    return qe.SearchParams(hnsw_ef=ef, exact=exact, quantization=q)


def child_query(args: argparse.Namespace) -> dict[str, Any]:
    """A new process: load, first query (cold), then warm latency and result ids per params."""
    t = time.perf_counter()
    import qdrant_edge as qe

    t_import = time.perf_counter() - t
    queries = np.load(args.queries_file)
    specs = [tuple(s) for s in json.loads(args.params)]
    specs = [(s[0], s[1], s[2], tuple(s[3]) if s[3] is not None else None) for s in specs]

    def request(q: np.ndarray, spec: Any) -> Any:
        return qe.QueryRequest(limit=10, query=qe.Query.Nearest(q.tolist(), using=DENSE), with_payload=True,
                               params=_params(spec))

    t = time.perf_counter()
    shard = qe.EdgeShard.load(str(args.shard))
    t_load = time.perf_counter() - t
    first = next((s for s in specs if not s[2]), specs[0])  # an exact search would touch every vector
    t = time.perf_counter()
    shard.query(request(queries[0], first))
    t_first = time.perf_counter() - t
    out: dict[str, Any] = {"import_s": t_import, "load_s": t_load, "first_query_s": t_first, "params": {}}
    if args.cold_only:
        shard.close()
        return out
    for spec in specs:  # warm up: every query once per params
        for q in queries:
            shard.query(request(q, spec))
    for spec in specs:
        times, ids = [], []
        for q in queries:
            req = request(q, spec)
            t = time.perf_counter()
            hits = shard.query(req)
            times.append(time.perf_counter() - t)
            ids.append([int(h.id) for h in hits])
        out["params"][spec[0]] = {"median_ms": 1000 * float(np.median(times)),
                                  "p95_ms": 1000 * float(np.percentile(times, 95)), "ids": ids}
    shard.close()
    out["rss_mb"] = _rss_mb()
    return out


# ----------------------------------------------------------------------------- --shipped

SYNC_BATCH = 256  # points a sync batch writes in one store session (a few files' chunks)
COLLECTION = "bench"
_DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?(def|class)[ \t]+(\w+)", re.M)
_CODE_NAME = re.compile(r"_|[a-z][A-Z]")  # snake_case or camelCase: a name a user would type


def _definitions(text: str) -> tuple[str, str, tuple[str, ...]]:
    """A real chunk's symbol (its first definition), kind, and every definition in it."""
    found = _DEF.findall(text)
    if not found:
        return "", "", ()
    kind, name = found[0]
    return name, "class" if kind == "class" else "function", tuple(n for _, n in found)


def shipped_data(args: argparse.Namespace) -> dict[str, Any]:
    """Texts, symbols and vectors of the anchors; natural-language and identifier queries (cached)."""
    anchors, real_q = real_embeddings(args.anchors, args.queries, args.work)
    cache = args.work / f"shipped-{args.anchors}-{args.queries}.json"
    if cache.exists():
        data = json.loads(cache.read_text())
    else:
        anchor_texts, query_texts = real_texts(args.anchors, args.queries)
        half = args.queries // 2
        nl = [{"kind": "nl", "text": t, "vector": v.tolist()}
              for t, v in zip(query_texts[half:], real_q[half:], strict=True)]
        names = sorted({n for t in anchor_texts for n in _definitions(t)[2]
                        if len(n) >= 6 and not n.startswith("__") and _CODE_NAME.search(n)})
        names = random.Random(5).sample(names, min(len(nl), len(names)))
        from gitindex.embedding import make_embedder, resolve_model

        vectors = make_embedder(resolve_model("all-MiniLM-L6-v2")).embed(names)
        ident = [{"kind": "ident", "text": n, "vector": np.asarray(v, dtype=np.float32).tolist()}
                 for n, v in zip(names, vectors, strict=True)]
        data = {"anchor_texts": anchor_texts, "queries": nl + ident}
        cache.write_text(json.dumps(data))
    data["anchors"] = anchors
    return data


def _shipped_payload(i: int, text: str) -> dict[str, Any]:
    """As writer.payload: a synthetic path, blob and hash (unique per point), the real text and
    definitions of the chunk the point was derived from."""
    from gitindex import lexical
    from gitindex.paths import path_fields

    base = _payload(i)
    symbol, kind, defines = _definitions(text)
    return {**base, "language": "python", "text": text, "commit": "0" * 40, "model": "all-MiniLM-L6-v2",
            "chunker": "bench", "symbol": symbol, "kind": kind, "names": lexical.chunk_names(symbol, defines),
            **path_fields(base["path"])}


def _timed(cls: Any, name: str, clock: dict[str, float]) -> None:
    """Add the seconds spent in cls.name (and the number of calls) to clock."""
    inner = getattr(cls, name)

    def wrapper(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        try:
            return inner(*a, **k)
        finally:
            clock[f"{name}_s"] = clock.get(f"{name}_s", 0.0) + time.perf_counter() - t
            clock[f"{name}_calls"] = clock.get(f"{name}_calls", 0) + 1

    setattr(cls, name, wrapper)


class _DenseCountingShard:
    """An EdgeShard whose info() counts indexed dense vectors only. qdrant_edge's
    indexed_vectors_count adds every sparse vector of the appendable segment (its inverted index
    counts as indexed), so EmbeddedStore._keep's points - indexed is 0 with LEXICAL and no
    segment is ever converted; valid here because every point has a lexical vector."""

    def __init__(self, shard: Any) -> None:
        self._inner = shard

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def info(self) -> Any:
        from types import SimpleNamespace

        i = self._inner.info()
        return SimpleNamespace(points_count=i.points_count, segments_count=i.segments_count,
                               indexed_vectors_count=max(0, i.indexed_vectors_count - i.points_count),
                               payload_schema=i.payload_schema)


def _count_dense_only(embedded: Any) -> None:
    cls = embedded.EmbeddedStore
    load, create = cls._load, cls._create
    cls._load = lambda self, write: _DenseCountingShard(load(self, write)) if write else load(self, write)
    cls._create = lambda self, dim: _DenseCountingShard(create(self, dim))


def child_shipped_build(args: argparse.Namespace) -> dict[str, Any]:
    """A first index's writes through EmbeddedStore: batches of SYNC_BATCH points, each in one
    write session (upsert, as writer.BatchWriter), close() at the end."""
    from gitindex import lexical
    from gitindex.store import DENSE as S_DENSE
    from gitindex.store import LEXICAL, PointData, embedded, point_id

    if args.hnsw_m is not None:
        embedded._HNSW_M = args.hnsw_m
    if args.dense_count:
        _count_dense_only(embedded)
    data = shipped_data(args)
    anchors, texts = data["anchors"], data["anchor_texts"]
    near = neighbours(anchors)
    clock: dict[str, Any] = {}
    for name in ("_keep", "_reopen", "_release"):  # _keep: optimize() (+ _reopen) and timed flushes
        _timed(embedded.EmbeddedStore, name, clock)
    store = embedded.EmbeddedStore(args.shard, COLLECTION, lock_timeout=600.0)
    t_gen = t_lex = t_payload = t_store = 0.0
    t0 = time.perf_counter()
    for block in range(0, args.points, BATCH):  # vectors in BATCH blocks: the same as all_vectors
        t = time.perf_counter()
        vecs, bases = batch_points(anchors, near, block, min(block + BATCH, args.points), args.noise)
        t_gen += time.perf_counter() - t
        for s in range(0, len(vecs), SYNC_BATCH):
            points = []
            for j in range(s, min(s + SYNC_BATCH, len(vecs))):
                i, text = block + j, texts[bases[j]]
                t = time.perf_counter()
                payload = _shipped_payload(i, text)
                t_payload += time.perf_counter() - t
                t = time.perf_counter()
                sparse = lexical.document(payload["path"], payload["symbol"], text)
                t_lex += time.perf_counter() - t
                points.append(PointData(point_id(payload["path"], payload["blob"], i % 40),
                                        {S_DENSE: vecs[j], LEXICAL: sparse}, payload))
            t = time.perf_counter()
            with store.session(write=True):
                store.upsert(points)
            t_store += time.perf_counter() - t
    t = time.perf_counter()
    store.close()
    t_close = time.perf_counter() - t
    wall = time.perf_counter() - t0
    import qdrant_edge as qe

    shard = qe.EdgeShard.load(str(args.shard))
    info = shard.info()
    shard.close()
    return {"wall_s": wall, "store_s": t_store + t_close, "session_s": t_store, "close_s": t_close,
            "gen_s": t_gen, "lexical_s": t_lex, "payload_s": t_payload, **clock,
            "segments": info.segments_count, "points": info.points_count, "indexed": info.indexed_vectors_count,
            "peak_rss_mb": _rss_mb()}


def _store_query(spec: dict[str, Any], mode: str) -> Any:
    from gitindex import lexical
    from gitindex.store import Query

    return Query(vector=spec["vector"] if mode != "lexical" else None,
                 sparse=lexical.query(spec["text"]) if mode != "dense" else None,
                 names=tuple(lexical.query_names(spec["text"])) if mode == "hybrid" else (), mode=mode)


def child_shipped_query(args: argparse.Namespace) -> dict[str, Any]:
    """One read session: warm store time per query for each mode and kind of query, the dense
    mode's hits, and the exact top 10 (SearchParams(exact=True) on the store's shard)."""
    import qdrant_edge as qe

    from gitindex.store import DENSE as S_DENSE
    from gitindex.store.embedded import EmbeddedStore

    specs = json.loads(args.queries_file.read_text())
    kinds = sorted({s["kind"] for s in specs})
    store = EmbeddedStore(args.shard, COLLECTION, lock_timeout=600.0)
    out: dict[str, Any] = {"warm": {}, "dense_hashes": {}, "exact_hashes": {}}
    t = time.perf_counter()
    with store.session():
        out["session_open_s"] = time.perf_counter() - t
        assert store._shard is not None
        shard = store._shard
        for mode in ("dense", "lexical", "hybrid"):
            for kind in kinds:
                queries = [_store_query(s, mode) for s in specs if s["kind"] == kind]
                for q in queries:  # warm up
                    store.query(q)
                times, hashes, empty, names_q = [], [], 0, 0
                for q in queries:
                    t = time.perf_counter()
                    hits = store.query(q)
                    times.append(time.perf_counter() - t)
                    hashes.append([h.payload["hash"] for h in hits])
                    empty += not hits
                    names_q += bool(q.names)
                out["warm"][f"{mode}/{kind}"] = {
                    "median_ms": 1000 * float(np.median(times)), "p95_ms": 1000 * float(np.percentile(times, 95)),
                    "max_ms": 1000 * float(np.max(times)), "queries": len(queries), "empty": empty,
                    "with_names": names_q}
                if mode == "dense":
                    out["dense_hashes"][kind] = hashes
        for kind in kinds:
            exact = qe.SearchParams(exact=True)
            out["exact_hashes"][kind] = [
                [h.payload["hash"] for h in shard.query(qe.QueryRequest(
                    limit=10, query=qe.Query.Nearest(s["vector"], using=S_DENSE), with_payload=True, params=exact))]
                for s in specs if s["kind"] == kind]
    out["rss_mb"] = _rss_mb()
    return out


# A new process's first search, without benchmarks.ann's imports (numpy): what `gitindex search`
# adds to its embedding of the query.
_COLD = """
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
from gitindex import lexical
from gitindex.store import Query
from gitindex.store.embedded import EmbeddedStore
t1 = time.perf_counter()
spec = json.loads(Path(sys.argv[1]).read_text())
mode = spec["mode"]
q = Query(vector=spec["vector"] if mode != "lexical" else None,
          sparse=lexical.query(spec["text"]) if mode != "dense" else None,
          names=tuple(lexical.query_names(spec["text"])) if mode == "hybrid" else (), mode=mode)
t2 = time.perf_counter()
store = EmbeddedStore(Path(spec["shard"]), spec["collection"], 600.0)
with store.session():
    t3 = time.perf_counter()
    hits = store.query(q)
    t4 = time.perf_counter()
t5 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "lexical_s": t2 - t1, "open_s": t3 - t2, "query_s": t4 - t3,
                  "close_s": t5 - t4, "open_query_s": t4 - t2, "hits": len(hits)}))
"""


def shipped_cold(args: argparse.Namespace, shard: Path, spec: dict[str, Any], mode: str,
                 evicted: bool) -> dict[str, float]:
    runs = []
    for _ in range(args.cold_runs):
        if evicted:
            evict(shard)
        f = args.work / "cold-query.json"
        f.write_text(json.dumps({**spec, "mode": mode, "shard": str(shard), "collection": COLLECTION}))
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _COLD, str(f)], capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t
        if proc.returncode:
            raise RuntimeError(f"cold query failed: {proc.stderr[-3000:]}")
        runs.append({**json.loads(proc.stdout.strip().splitlines()[-1]), "process_s": wall})
    return {k: round(float(np.median([r[k] for r in runs])), 4) for k in runs[0]}


def _recall_hashes(found: list[list[str]], truth: list[list[str]]) -> float:
    return float(np.mean([len(set(a) & set(t)) / len(t) for a, t in zip(found, truth, strict=True)]))


def _hash_of(i: int) -> str:
    return str(_payload(i)["hash"])


def run_shipped(args: argparse.Namespace) -> dict[str, Any]:
    args.work.mkdir(parents=True, exist_ok=True)
    data = shipped_data(args)
    specs = data["queries"]
    qfile = args.work / "shipped-queries.json"
    qfile.write_text(json.dumps(specs))
    kinds = sorted({s["kind"] for s in specs})
    anchors = data["anchors"]
    vectors = all_vectors(anchors, neighbours(anchors), args.points, args.noise)
    truth = {k: exact_top(vectors, np.asarray([s["vector"] for s in specs if s["kind"] == k], dtype=np.float32))[0]
             for k in kinds}
    del vectors
    truth_hashes = {k: [[_hash_of(int(i)) for i in row] for row in t] for k, t in truth.items()}
    report: dict[str, Any] = {"points": args.points, "anchors": len(anchors), "noise": args.noise,
                              "queries": {k: sum(s["kind"] == k for s in specs) for k in kinds},
                              "sync_batch": SYNC_BATCH, "variants": {}}
    for variant in args.shipped_variants.split(","):
        shard = args.work / f"shipped-{variant}-{args.points}"
        res: dict[str, Any] = {}
        if not args.measure_only:
            shutil.rmtree(shard, ignore_errors=True)
            for leftover in (f"{COLLECTION}.lock", f"{COLLECTION}.readers"):
                (shard.parent / leftover).unlink(missing_ok=True)
            extra: dict[str, Any] = {"hnsw_m": 0} if variant.endswith("m0") else {}
            if variant.startswith("dense-count"):
                extra["dense_count"] = 1
            build = _child("shipped-build", args, shard=shard, points=args.points, **extra)
            res["build"] = {k: round(v, 2) if isinstance(v, float) else v for k, v in build.items()}
        res["disk_mb"] = round(disk_mb(shard), 1)
        q = _child("shipped-query", args, shard=shard, queries_file=qfile)
        res["session_open_s"] = round(q["session_open_s"], 4)
        res["query_rss_mb"] = round(q["rss_mb"], 1)
        res["warm"] = {k: {m: round(v, 2) if isinstance(v, float) else v for m, v in w.items()}
                       for k, w in q["warm"].items()}
        res["recall@10_dense_vs_shard_exact"] = {
            k: round(_recall_hashes(q["dense_hashes"][k], q["exact_hashes"][k]), 4) for k in kinds}
        res["recall@10_dense_vs_numpy"] = {
            k: round(_recall_hashes(q["dense_hashes"][k], truth_hashes[k]), 4) for k in kinds}
        res["recall@10_shard_exact_vs_numpy"] = {
            k: round(_recall_hashes(q["exact_hashes"][k], truth_hashes[k]), 4) for k in kinds}
        nl = next(s for s in specs if s["kind"] == "nl")
        ident = next(s for s in specs if s["kind"] == "ident")
        res["cold"] = {}
        for label, spec, mode in (("dense/nl", nl, "dense"), ("lexical/nl", nl, "lexical"),
                                  ("hybrid/nl", nl, "hybrid"), ("hybrid/ident", ident, "hybrid")):
            for evicted in (False, True):
                res["cold"][f"{label}/{'evicted' if evicted else 'cached'}"] = shipped_cold(
                    args, shard, spec, mode, evicted)
        report["variants"][variant] = res
        print(variant, json.dumps(res), file=sys.stderr)
    for prefix, graphs, flat_name in (("", "shipped", "m0"), ("dense-count-", "dense-count", "dense-count-m0")):
        ship, flat = report["variants"].get(graphs), report["variants"].get(flat_name)
        if not (ship and flat and "build" in ship and "build" in flat):
            continue
        extra = ship["build"]["wall_s"] - flat["build"]["wall_s"]
        first_index = args.points / EMBED_RATE + flat["build"]["wall_s"]
        report[f"{prefix}graph"] = {
            "extra_s": round(extra, 1), "per_point_ms": round(1000 * extra / args.points, 3),
            "pct_of_store_build": round(100 * extra / flat["build"]["wall_s"], 1),
            "pct_of_first_index": round(100 * extra / first_index, 2), "first_index_s_assumed": round(first_index)}
    return report


# ----------------------------------------------------------------------------- driver


def _child(mode: str, args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.ann", "--child", mode, "--anchors", str(args.anchors),
           "--queries", str(args.queries), "--work", str(args.work), "--noise", str(args.noise)]
    for key, value in extra.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"{mode} failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def evict(path: Path) -> None:
    """Drop a shard's files from the page cache (clean pages), as after a reboot or long idle."""
    for f in path.rglob("*"):
        if f.is_file():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.fdatasync(fd)  # dirty pages are not dropped
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file()) / 2**20


def recall(ids: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(t.tolist())) / len(t) for a, t in zip(ids, truth, strict=True)]))


def measure(args: argparse.Namespace, shard: Path, variant: str, truth: np.ndarray, qfile: Path) -> dict[str, Any]:
    quant = VARIANTS[variant][3]
    specs: list[Any] = [("exact", None, True, None)]
    specs += PARAMS_PLAIN if VARIANTS[variant][0] == 0 else (PARAMS_SQ if quant else PARAMS_HNSW)
    first = specs[1]
    res: dict[str, Any] = {"disk_mb": disk_mb(shard)}
    cold = []
    for _ in range(args.cold_runs):
        evict(shard)
        cold.append(_child("query", args, shard=shard, queries_file=qfile, params=json.dumps([first]), cold_only=1))
    res["cold_evicted"] = {k: float(np.median([c[k] for c in cold])) for k in ("import_s", "load_s", "first_query_s")}
    q = _child("query", args, shard=shard, queries_file=qfile, params=json.dumps(specs))
    res["cold_cached"] = {k: q[k] for k in ("import_s", "load_s", "first_query_s")}
    res["query_rss_mb"] = q["rss_mb"]
    exact_ids = q["params"]["exact"]["ids"]
    res["params"] = {
        label: {"median_ms": round(p["median_ms"], 2), "p95_ms": round(p["p95_ms"], 2),
                "recall@10": round(recall(p["ids"], truth), 4),
                "recall@10_vs_shard_exact": round(recall(p["ids"], np.asarray(exact_ids)), 4)}
        for label, p in q["params"].items()}
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=250_000)
    ap.add_argument("--variants", default="m0,h16e100,h16e64,h16e100sq")
    ap.add_argument("--switch-to", default="h16e100sq", help="variant an m0 shard is switched to in place")
    ap.add_argument("--no-switch", action="store_true")
    ap.add_argument("--anchors", type=int, default=4000, help="real chunks embedded")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--noise", type=float, default=0.15)
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("/tmp/gitindex-ann"))
    ap.add_argument("--out", type=Path)
    ap.add_argument("--measure-only", action="store_true", help="reuse shards built by an earlier run")
    ap.add_argument("--shipped", action="store_true",
                    help="measure gitindex's own EmbeddedStore (dense + lexical, writer's payload)")
    ap.add_argument("--shipped-variants", default="shipped,m0",
                    help="shipped: as configured; m0: embedded._HNSW_M patched to 0 (no graphs); "
                         "dense-count, dense-count-m0: with _keep counting dense vectors only")
    ap.add_argument("--child", choices=("build", "query", "switch", "shipped-build", "shipped-query"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--hnsw-m", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--dense-count", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--shard", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--queries-file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--params", help=argparse.SUPPRESS)
    ap.add_argument("--cold-only", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        fn = {"build": child_build, "query": child_query, "switch": child_switch,
              "shipped-build": child_shipped_build, "shipped-query": child_shipped_query}[args.child]
        print(json.dumps(fn(args)))
        return
    if args.shipped:
        text = json.dumps(run_shipped(args), indent=1)
        if args.out:
            args.out.write_text(text)
        print(text)
        return

    args.work.mkdir(parents=True, exist_ok=True)
    anchors, real_q = real_embeddings(args.anchors, args.queries, args.work)
    near = neighbours(anchors)
    t = time.perf_counter()
    vectors = all_vectors(anchors, near, args.points, args.noise)
    rng = np.random.default_rng(3)
    queries = _normalise(real_q + rng.standard_normal(real_q.shape, dtype=np.float32) * (0.05 / np.sqrt(DIM)))
    truth, top_sims = exact_top(vectors, queries)
    qfile = args.work / "queries.npy"
    np.save(qfile, queries)
    anchor_nn = np.sort(anchors @ anchors.T, axis=1)[:, -2]
    report: dict[str, Any] = {
        "points": args.points, "anchors": len(anchors), "queries": len(queries), "noise": args.noise,
        "generation_s": round(time.perf_counter() - t, 1),
        "data": {"anchor_nn_cos_median": round(float(np.median(anchor_nn)), 3),
                 "query_top1_cos_median": round(float(np.median(top_sims[:, 0])), 3),
                 "query_top10_cos_median": round(float(np.median(top_sims[:, 9])), 3)},
        "variants": {}}
    del vectors
    print(json.dumps(report["data"]), file=sys.stderr)
    for variant in args.variants.split(","):
        shard = args.work / f"{variant}-{args.points}"
        res: dict[str, Any] = {}
        if not args.measure_only:
            shutil.rmtree(shard, ignore_errors=True)
            build = _child("build", args, variant=variant, shard=shard, points=args.points)
            res["build"] = {k: round(v, 2) if isinstance(v, float) else v for k, v in build.items()}
        res.update(measure(args, shard, variant, truth, qfile))
        report["variants"][variant] = res
        print(variant, json.dumps(res), file=sys.stderr)
    if not args.no_switch and not args.measure_only and "m0" in args.variants.split(","):
        src = args.work / f"m0-{args.points}"
        dst = args.work / f"switch-{args.switch_to}-{args.points}"
        shutil.rmtree(dst, ignore_errors=True)
        subprocess.run(["cp", "-a", "--sparse=always", str(src), str(dst)], check=True)  # keep WAL files sparse
        sw = _child("switch", args, variant=args.switch_to, shard=dst)
        res = {"switch": {k: round(v, 2) if isinstance(v, float) else v for k, v in sw.items()}}
        res.update(measure(args, dst, args.switch_to, truth, qfile))
        report["switch"] = res
        print("switch", json.dumps(res), file=sys.stderr)
    base = report["variants"].get("m0", {}).get("build")
    if base and not args.measure_only:
        for res in report["variants"].values():
            extra = res["build"]["wall_s"] - base["wall_s"]
            res["build_extra_s"] = round(extra, 1)
            res["build_extra_pct_of_store"] = round(100 * extra / base["store_s"], 1)
            res["build_extra_pct_of_first_index"] = round(
                100 * extra / (args.points / EMBED_RATE + base["store_s"]), 2)
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
