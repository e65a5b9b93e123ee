"""Real processes: a sync killed with SIGKILL resumes; a no-op sync imports no ML library."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import CountingEmbedder, GitRepo, open_index, python_source, run_sync

FILES = 150  # enough that a sync on the fast backend is still running when we act on it


def _gitindex(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gitindex", *args], cwd=cwd, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _indexed_files(manifest: Path) -> int:
    if not manifest.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{manifest}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM files").fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def _wait_for_files(proc: subprocess.Popen[str], manifest: Path, files: int) -> None:
    """Until the running sync has recorded `files` files (a few batches) in its manifest."""
    deadline = time.monotonic() + 120
    while _indexed_files(manifest) < files:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the sync made no progress"
        time.sleep(0.05)


ML_MODULES = ("torch", "sentence_transformers", "transformers", "onnxruntime")


def _cli_in_fresh_process(cwd: Path, *args: str) -> tuple[str, list[str]]:
    """Run the CLI in a new interpreter: its stdout, and which ML modules it imported."""
    probe = (
        "import sys, json\n"
        "from gitindex.cli import app\n"
        f"try:\n    app({list(args)!r}, standalone_mode=False)\n"
        f"finally:\n    print(json.dumps(sorted(m for m in {ML_MODULES!r} if m in sys.modules)), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, check=True)
    return out.stdout, json.loads(out.stderr.strip().splitlines()[-1])


def test_sigkill_mid_run_then_resume(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({f"pkg/mod{i:03}.py": python_source(f"mod{i}", functions=2) for i in range(FILES)})
    manifest = repo.path / ".git" / "gitindex" / "manifest.sqlite"
    proc = _gitindex("sync", "--batch-size", "4", "--quiet", cwd=repo.path)
    _wait_for_files(proc, manifest, 6)  # at least three batches are in
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _indexed_files(manifest)
    assert 6 <= done < FILES, "killed mid-run"

    result = run_sync(repo.path, embedder, batch_size=4)
    total = FILES * 2
    assert result.complete and result.added + done >= FILES
    assert result.embedded <= total - 2 * done, "finished batches were embedded again"
    ix = open_index(repo.path)
    assert ix.verify().ok


def test_noop_sync_imports_no_ml_library(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({"a.py": python_source("a", functions=1)})
    run_sync(repo.path, embedder)
    out, imported = _cli_in_fresh_process(repo.path, "sync", "--json")
    summary = json.loads(out)
    assert summary["chunks"]["embedded"] == 0 and summary["files"]["unchanged"] == 1
    assert imported == []


def test_ctrl_c_stops_at_batch_boundary_with_130(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({f"m{i:03}.py": python_source(f"m{i}", functions=2) for i in range(FILES)})
    manifest = repo.path / ".git" / "gitindex" / "manifest.sqlite"
    proc = _gitindex("sync", "--batch-size", "4", "--quiet", cwd=repo.path)
    _wait_for_files(proc, manifest, 2)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "run `gitindex sync` to finish" in err
    ix = open_index(repo.path)
    assert not ix.workspace.manifest.dirty(), "stopped between batches, not inside one"
    ix.close()
    result = run_sync(repo.path, embedder, batch_size=4)
    assert result.complete
    ix = open_index(repo.path)
    assert ix.verify().ok


def test_status_and_search_answer_during_a_long_sync(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({f"m{i:03}.py": python_source(f"m{i}", functions=2) for i in range(FILES)})
    manifest = repo.path / ".git" / "gitindex" / "manifest.sqlite"
    proc = _gitindex("sync", "--batch-size", "4", "--quiet", cwd=repo.path)
    try:
        _wait_for_files(proc, manifest, 2)
        ix = open_index(repo.path, embedder)
        embedder.embed(["load the model before timing"])
        started = time.monotonic()
        info = ix.status()
        took_status = time.monotonic() - started
        hits = ix.search("handle m3 case 1", limit=3)
        took_search = time.monotonic() - started - took_status
        # A batch write takes well under a second; a reader waits for at most about one.
        assert took_status < 10 and took_search < 10, (took_status, took_search)
        assert proc.poll() is None, "the sync was still running while we read"
        assert info["points"] > 0 and hits
        ix.close()
    finally:
        proc.wait(timeout=300)
    assert proc.returncode == 0


def test_search_runs_without_torch(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({"a.py": python_source("alpha", functions=2)})
    run_sync(repo.path, embedder)
    out, imported = _cli_in_fresh_process(repo.path, "search", "handle alpha case 1", "--json")
    hits = json.loads(out)
    assert hits and hits[0]["path"] == "a.py"
    assert imported == ["onnxruntime"]  # the fast backend, without torch
