"""Embedding backends on the same real chunks: chunks/s (wall and CPU) and cosine to torch's vectors.

    python -m benchmarks.backends --repo CORPUS --rev v3.0.0 --chunks 400 --out backends.json

Backends are timed in interleaved rounds (each round embeds the next slice of the sample with
every backend, in rotating order), so the drift of a shared machine hits all of them alike.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.chunks import tree_chunks

BACKENDS = ("torch", "onnx", "onnx-int8")
MIN_MEAN_COSINE = 0.99  # issues 5 and 11: the default backend keeps mean cosine to torch >= this

_COLD = """
import sys, time
t = time.perf_counter()
from gitindex.embedding import resolve_model
backend, cache = sys.argv[1], sys.argv[2]
spec = resolve_model("all-MiniLM-L6-v2")
if backend == "torch":
    from gitindex.embedding import SentenceTransformerEmbedder
    e = SentenceTransformerEmbedder(spec)
else:
    from gitindex.onnx_embedder import OnnxEmbedder
    e = OnnxEmbedder(spec, backend, cache_dir=cache or None)
e.embed(["where do we retry failed uploads"])
print(time.perf_counter() - t)
"""


def _embedder(backend: str, cache: Path | None) -> Any:
    from gitindex.embedding import SentenceTransformerEmbedder, resolve_model

    spec = resolve_model("all-MiniLM-L6-v2")
    if backend == "torch":
        return SentenceTransformerEmbedder(spec)
    from gitindex.onnx_embedder import OnnxEmbedder

    return OnnxEmbedder(spec, backend, cache_dir=cache)


def run(repo: Path, rev: str, n: int, rounds: int, cache: Path | None, seed: int = 0) -> dict[str, Any]:
    texts = list(tree_chunks(repo, rev, keep_texts=True).texts.values())
    random.Random(seed).shuffle(texts)
    texts = texts[:n]
    result: dict[str, Any] = {"chunks": len(texts), "corpus": f"{repo.name}@{rev}", "rounds": rounds,
                              "mean_chars": round(sum(map(len, texts)) / max(len(texts), 1), 1), "backends": {}}
    import importlib.util

    backends = BACKENDS if importlib.util.find_spec("onnxruntime") else ("torch",)
    if len(backends) == 1:
        result["note"] = "onnxruntime is not installed: only the torch backend was measured"
    embedders: dict[str, Any] = {}
    for name in backends:
        started = time.perf_counter()
        e = _embedder(name, cache)
        e.embed(texts[:4])  # load (and, the first time on this machine, export) and warm up
        info: dict[str, Any] = {"first_load_s": round(time.perf_counter() - started, 2)}
        if name != "torch":
            info["variant"] = e.variant
        embedders[name] = e
        result["backends"][name] = info
    vectors = {name: np.zeros((len(texts), 384), dtype=np.float32) for name in backends}
    wall = dict.fromkeys(backends, 0.0)
    cpu = dict.fromkeys(backends, 0.0)
    bounds = np.linspace(0, len(texts), rounds + 1).astype(int)
    for r in range(rounds):
        part = texts[bounds[r] : bounds[r + 1]]
        order = backends[r % len(backends):] + backends[: r % len(backends)]
        for name in order:
            w, c = time.perf_counter(), time.process_time()
            vectors[name][bounds[r] : bounds[r + 1]] = embedders[name].embed(part)
            wall[name] += time.perf_counter() - w
            cpu[name] += time.process_time() - c
    for name in backends:
        cos = (vectors[name] * vectors["torch"]).sum(axis=1)
        result["backends"][name].update({
            "chunks_per_s": round(len(texts) / wall[name], 1),
            "chunks_per_cpu_s": round(len(texts) / cpu[name], 1),
            "speedup_vs_torch": round(wall["torch"] / wall[name], 2),
            "mean_cosine": round(float(cos.mean()), 4), "min_cosine": round(float(cos.min()), 4),
        })
    for name in backends:  # a fresh process: import, load, embed one query
        proc = subprocess.run([sys.executable, "-c", _COLD, name, str(cache or "")],
                              capture_output=True, text=True, check=True)
        result["backends"][name]["cold_start_s"] = round(float(proc.stdout.strip().splitlines()[-1]), 2)
    ok = [n for n in backends if result["backends"][n]["mean_cosine"] >= MIN_MEAN_COSINE]
    result["default"] = max(ok, key=lambda n: result["backends"][n]["chunks_per_s"])
    result["rule"] = f"fastest with mean cosine to torch >= {MIN_MEAN_COSINE}"
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.backends", description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--chunks", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--onnx-cache", type=Path, help="ONNX export cache (default: gitindex's)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = run(args.repo, args.rev, args.chunks, args.rounds, args.onnx_cache)
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
