"""The start-up budget's guard: what the hot commands import, with the versions pip resolved.

Every hook-triggered sync, `status` and `--version` pays its imports before any work. Timings
are measured by the benchmark (benchmarks/startup.py); here, in a fresh interpreter per command,
the modules known to cost a no-op tens of milliseconds must stay unimported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CountingEmbedder, GitRepo, python_source, run_sync

# Never on these paths: the ML stack, pydantic (typer 0.29 imports it while parsing), the
# server client.
HEAVY = ("torch", "sentence_transformers", "transformers", "pydantic", "qdrant_client", "onnxruntime", "numpy")
# Not on a no-op sync either: each costs 5-15 ms and is needed only when a file is indexed, a
# config file names gitindex, or the memory budget runs.
NOOP_SPARED = ("filelock", "pathspec", "psutil", "tomllib", "identify", "concurrent.futures", "qdrant_edge.qdrant_edge",
               "gitindex.apply", "gitindex.onnx_embedder")

PROBE = """
import atexit, json, sys
atexit.register(lambda: print("MODULES " + json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv = ["gitindex", *json.loads(sys.argv[1])]
from gitindex.cli import main
main()
"""


def imported(cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the CLI's entry point in a new interpreter: the result, and every module it imported."""
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(list(args))], cwd=cwd,
                          capture_output=True, text=True)
    line = next(x for x in done.stderr.splitlines() if x.startswith("MODULES "))
    return done, set(json.loads(line.removeprefix("MODULES ")))


@pytest.fixture
def synced(repo: GitRepo, embedder: CountingEmbedder) -> GitRepo:
    repo.commit({"a.py": python_source("a", functions=1), "pyproject.toml": "[project]\nname = 'demo'\n"})
    run_sync(repo.path, embedder)
    return repo


def test_a_noop_sync_imports_nothing_it_does_not_need(synced: GitRepo) -> None:
    done, modules = imported(synced.path, "sync", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["chunks"]["embedded"] == 0 and summary["files"]["unchanged"] == 2
    assert sorted(modules & {*HEAVY, *NOOP_SPARED}) == []


def test_status_and_version_import_no_heavy_module(synced: GitRepo) -> None:
    done, modules = imported(synced.path, "status", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["points"] > 0, done.stderr
    assert sorted(modules & {*HEAVY, "qdrant_edge.qdrant_edge"}) == []  # the count is the last sync's
    done, modules = imported(synced.path, "--version")
    assert done.returncode == 0 and done.stdout.startswith("gitindex ")
    assert sorted(modules & {*HEAVY, *NOOP_SPARED, "pygit2", "sqlite3", "gitindex.api"}) == []


def test_a_sync_with_work_does_import_what_it_needs(synced: GitRepo) -> None:
    # The guard above must not pass because the probe sees nothing: a sync that indexes a file
    # imports the modules a no-op spares.
    synced.commit({"b.py": python_source("b", functions=1)})
    done, modules = imported(synced.path, "sync", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["files"]["added"] == 1, done.stderr
    assert {"pathspec", "psutil", "gitindex.apply", "onnxruntime"} <= modules
