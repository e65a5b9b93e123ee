"""The benchmark's instrumented runner still drives the engine (make bench is not run by CI).

The cheap embedder here is the benchmark's own stand-in, under test itself; the engine is real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GitRepo, python_source

ROOT = Path(__file__).resolve().parents[1]


def test_the_instrumented_runner_syncs_and_times_every_phase(repo: GitRepo, tmp_path: Path) -> None:
    repo.commit({f"m{i}.py": python_source(f"m{i}", functions=4) for i in range(5)})
    phases = tmp_path / "phases.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.gi_run", "--backend", "fake", "--phases", str(phases),
         "--", "sync", "--json", "--memory-limit", "2000"],
        cwd=repo.path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["files"]["added"] == 5 and out["chunks"]["embedded"] >= 5
    assert out["memory_limit_mb"] == 2000
    timed = json.loads(phases.read_text())
    assert timed["startup_s"] > 0
    assert {"git", "read+chunk", "store", "cache", "manifest"} <= set(timed["phases_s"])


def test_the_start_up_benchmark_measures_every_hot_command(tmp_path: Path) -> None:
    out = tmp_path / "startup.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks.startup", "--rounds", "1", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(out.read_text())
    assert set(result["commands"]) == {"floor", "--version", "status", "no-op sync", "search"}
    assert result["commands"]["floor"]["ratio"] == 1.0
    assert all(c["median_s"] > 0 for c in result["commands"].values())
    assert "| 60 files | no-op sync |" in done.stdout


@pytest.mark.slow  # 10-25 s: a server, a model load per shell command, two syncs
def test_the_mcp_benchmark_drives_the_server_beside_the_shell(tmp_path: Path) -> None:
    out = tmp_path / "mcp.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks.mcp", "--small", "--queries", "4", "--shell-reps", "1",
                           "--statuses", "1", "--syncs", "1", "--mcp-statuses", "2", "--out", "-", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["failures"] == []
    server = result["mcp"]["server"]
    assert server["search"]["n"] == 4 and server["search"]["median_ms"] > 0
    assert {"search, no server", "search, server running", "sync, no server", "sync, server running",
            "hand-over, server running"} <= set(result["shell"])
    assert result["mcp"]["fresh_at_end"] is True
    assert "| MCP search, server time (took_ms) |" in done.stdout
