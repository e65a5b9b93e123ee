"""How to run the model fast without a text's vector depending on its batch (issue 11), side by side.

    python -m benchmarks.quantization --repo CORPUS --rev HEAD --chunks 400 --out quantization.json

Options measured on the same real chunks, against sentence-transformers on torch:
  fp32            the ONNX export as is
  int8-dynamic    the old default: quantize_dynamic, activation scales picked per call (per batch)
  int8s-all       static int8 (QDQ): activation ranges calibrated once on fixed texts, 7-bit
                  per-channel weights, every weight MatMul quantized
  int8s           the same with each layer's feed-forward down-projection (the MatMul that
                  takes the GELU output, the widest activations) kept in fp32: gitindex's onnx-int8
  int8s-8bit      as int8s-all with full 8-bit weights (saturates AVX2's 16-bit sums: not portable)
Per option: chunks/s (interleaved rounds, so a shared machine's drift hits all alike), ratio to
torch, cosine to torch, "batch-independence" (the minimum cosine between a text's vector embedded
alone and the same text inside a batch of 40 others, in reversed order, with 1 and with 2
intra-op threads), the time to build it from the fp32 export, and whether two builds give the
same file. onnxruntime has no per-row (per-token) dynamic activation scales (DynamicQuantizeLinear
is per tensor; MatMulIntegerToFloat takes a per-tensor or per-column scale), so that option is
not measured.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.chunks import tree_chunks

OPTIONS: dict[str, Callable[[Path, Path], None]] = {}


def _option(name: str) -> Callable[[Callable[[Path, Path], None]], Callable[[Path, Path], None]]:
    def register(build: Callable[[Path, Path], None]) -> Callable[[Path, Path], None]:
        OPTIONS[name] = build
        return build
    return register


@_option("fp32")
def _fp32(source: Path, out: Path) -> None:
    for f in source.iterdir():
        shutil.copyfile(f, out / f.name)


@_option("int8-dynamic")
def _dynamic(source: Path, out: Path) -> None:
    from gitindex.onnx_embedder import _quantize

    _quantize(source, out, reduce_range=False)


@_option("int8s-all")
def _static_all(source: Path, out: Path) -> None:
    from gitindex.onnx_embedder import _quantize_static

    _quantize_static(source, out, down_in_fp32=False)


@_option("int8s")
def _static(source: Path, out: Path) -> None:
    from gitindex.onnx_embedder import _quantize_static

    _quantize_static(source, out)  # the shipped recipe


@_option("int8s-8bit")
def _static_8bit(source: Path, out: Path) -> None:
    from gitindex.onnx_embedder import _quantize_static

    _quantize_static(source, out, down_in_fp32=False, reduce_range=False)


def _build(name: str, source: Path, out: Path) -> float:
    out.mkdir(parents=True)
    started = time.perf_counter()
    OPTIONS[name](source, out)
    return time.perf_counter() - started


def _digest(path: Path) -> str:
    return hashlib.sha256((path / "model.onnx").read_bytes()).hexdigest()[:16]


def batch_independence(make: Callable[[int | None], Any], texts: Sequence[str], others: Sequence[str]) -> float:
    """Min cosine, over `texts`, between each embedded alone (default threads) and the same text
    inside a batch with `others`, in reversed order, and alone with 1 and with 2 intra-op threads."""
    embedder = make(None)
    alone = np.vstack([embedder.embed([t]) for t in texts])
    batch = [*others, *texts]
    runs = [embedder.embed(batch)[len(others):], embedder.embed(batch[::-1])[len(texts) - 1 :: -1]]
    for threads in (1, 2):
        e = make(threads)
        runs.append(np.vstack([e.embed([t]) for t in texts]))
        runs.append(e.embed(batch)[len(others):])
    return float(min((alone * r).sum(axis=1).min() for r in runs))


def run(repo: Path, rev: str, n: int, rounds: int, options: Sequence[str], seed: int = 0) -> dict[str, Any]:
    from gitindex.embedding import SentenceTransformerEmbedder, resolve_model
    from gitindex.onnx_embedder import OnnxEmbedder, _export_fp32

    spec = resolve_model("all-MiniLM-L6-v2")
    texts = list(tree_chunks(repo, rev, keep_texts=True).texts.values())
    random.Random(seed).shuffle(texts)
    texts = texts[:n]
    result: dict[str, Any] = {"chunks": len(texts), "corpus": f"{repo.name}@{rev}", "rounds": rounds, "options": {}}
    work = Path(tempfile.mkdtemp(prefix="gitindex-quant-"))
    try:
        source = work / "fp32-export"
        source.mkdir()
        started = time.perf_counter()
        _export_fp32(spec, source)
        fp32_export_s = time.perf_counter() - started
        embedders: dict[str, Any] = {"torch": SentenceTransformerEmbedder(spec)}
        for name in options:
            info: dict[str, Any] = {"build_s": round(_build(name, source, work / name), 2)}
            if name != "fp32":
                _build(name, source, work / f"{name}-again")
                info["same_file_twice"] = _digest(work / name) == _digest(work / f"{name}-again")
            info["export_s"] = round(fp32_export_s + info["build_s"], 2)

            def make(threads: int | None, where: Path = work / name) -> Any:
                return OnnxEmbedder(spec, "onnx", model_dir=where, threads=threads)

            info["batch_independence_min_cosine"] = round(batch_independence(make, texts[:40], texts[40:80]), 6)
            result["options"][name] = info
            embedders[name] = make(None)
        names = ["torch", *options]
        for e in embedders.values():
            e.embed(texts[:4])  # load and warm up
        vectors = {name: np.zeros((len(texts), 384), dtype=np.float32) for name in names}
        wall = dict.fromkeys(names, 0.0)
        bounds = np.linspace(0, len(texts), rounds + 1).astype(int)
        for r in range(rounds):
            part = texts[bounds[r] : bounds[r + 1]]
            for name in names[r % len(names):] + names[: r % len(names)]:
                started = time.perf_counter()
                vectors[name][bounds[r] : bounds[r + 1]] = embedders[name].embed(part)
                wall[name] += time.perf_counter() - started
        result["torch_chunks_per_s"] = round(len(texts) / wall["torch"], 1)
        for name in options:
            cos = (vectors[name] * vectors["torch"]).sum(axis=1)
            result["options"][name].update({
                "chunks_per_s": round(len(texts) / wall[name], 1),
                "vs_torch": round(wall["torch"] / wall[name], 2),
                "mean_cosine": round(float(cos.mean()), 4), "min_cosine": round(float(cos.min()), 4),
            })
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def table(result: dict[str, Any]) -> str:
    lines = ["| option | chunks/s | vs torch | mean cosine to torch | min cosine | batch-independence min cosine "
             "| export s | same file twice |", "|---|---|---|---|---|---|---|---|",
             f"| torch (sentence-transformers) | {result['torch_chunks_per_s']} | 1.00x | 1.0000 | 1.0000 | | | |"]
    for name, o in result["options"].items():
        lines.append(f"| {name} | {o['chunks_per_s']} | {o['vs_torch']:.2f}x | {o['mean_cosine']:.4f} | "
                     f"{o['min_cosine']:.4f} | {o['batch_independence_min_cosine']:.6f} | {o['export_s']} | "
                     f"{o.get('same_file_twice', '')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quantization", description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--chunks", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--options", default=",".join(OPTIONS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = run(args.repo, args.rev, args.chunks, args.rounds, args.options.split(","))
    result["table"] = table(result)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
