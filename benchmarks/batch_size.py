"""Measure the first full index at several --batch-size values, side by side (how the default was chosen).

Usage: python -m benchmarks.batch_size [--sizes 16,64,256] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.corpus import DEFAULT_HISTORY, build_release_history


def _run(repo: Path, ref: str, batch: int) -> dict[str, object]:
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "gitindex", "sync", "--ref", ref, "--batch-size", str(batch), "--json"],
        cwd=repo, check=True, capture_output=True, text=True,
    )
    summary = json.loads(out.stdout)
    summary["wall"] = time.monotonic() - started
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="16,64,256")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    package, versions = DEFAULT_HISTORY
    with tempfile.TemporaryDirectory(prefix="gitindex-batch-") as tmp:
        source = Path(tmp) / "history"
        build_release_history(source, package, versions[:1])
        rows: dict[int, list[float]] = {s: [] for s in sizes}
        chunks = 0
        for round_ in range(args.rounds):
            for size in sizes:  # interleaved, so drift in machine load hits every size alike
                clone = Path(tmp) / f"r{round_}-b{size}"
                subprocess.run(["git", "clone", "-q", str(source), str(clone)], check=True)
                summary = _run(clone, "HEAD", size)
                chunks = summary["chunks"]["embedded"]  # type: ignore[index]
                rows[size].append(float(summary["wall"]))  # type: ignore[arg-type]
        base = min(sum(v) / len(v) for v in rows.values())
        print(f"first index of {package} {versions[0]}: {chunks} chunks embedded")
        print("| batch size | wall s (mean) | chunks/s | relative |")
        print("|---|---|---|---|")
        for size, walls in rows.items():
            mean = sum(walls) / len(walls)
            print(f"| {size} | {mean:.1f} | {chunks / mean:.1f} | {mean / base:.2f} |")


if __name__ == "__main__":
    main()
