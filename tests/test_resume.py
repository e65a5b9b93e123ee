"""Real processes: a sync killed with SIGKILL resumes; a no-op sync imports no ML library."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import filelock
import pytest
from conftest import CountingEmbedder, GitRepo, open_index, python_source, run_sync

from gitindex.manifest import LAST_RUN

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


# A sync in its own process, as `gitindex sync` runs it, with a progress reporter (the library's
# Progress interface) that holds the writing thread at a batch boundary until the test says go:
# the sync is then provably still running, holding its lock, while the test reads.
PAUSED_SYNC = """
import json, os, sys
import gitindex

class PauseAfterTwoBatches:
    written = 0
    def start(self, total_files):
        pass
    def advance(self, files, chunks):
        if chunks:  # the writing thread, once a batch is in the store and the manifest
            self.written += 1
            if self.written == 2:
                print("paused", flush=True)
                sys.stdin.readline()

with gitindex.open(".", env=os.environ, batch_size=4) as index:
    result = index.sync(progress=PauseAfterTwoBatches())
print(json.dumps(result.to_json()))
"""


def test_status_and_search_answer_during_a_long_sync(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({f"m{i:03}.py": python_source(f"m{i}", functions=2) for i in range(20)})
    proc = subprocess.Popen([sys.executable, "-c", PAUSED_SYNC], cwd=repo.path, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline() == "paused\n", proc.communicate()  # two batches are in
        ix = open_index(repo.path, embedder)
        try:
            info = ix.status()
            hits = ix.search("handle m1 case 1", limit=3)
            indexed = {f.path for f in ix.workspace.manifest.files()}
            read_at = time.time()
            # Both answered while the sync still ran: it holds the sync lock, has not recorded a
            # finished run, and its process is waiting for us.
            with pytest.raises(filelock.Timeout):
                filelock.FileLock(str(ix.workspace.sync_lock_path)).acquire(timeout=0)
            assert ix.workspace.manifest.get(LAST_RUN) is None and proc.poll() is None
        finally:
            ix.close()
        assert info["points"] > 0 and info["synced_commit"] is None and 0 < info["files"] < 20, info
        assert hits and {h.path for h in hits} <= indexed
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert json.loads(out)["complete"]
    ix = open_index(repo.path)
    try:
        assert json.loads(ix.workspace.manifest.get(LAST_RUN) or "{}")["finished_at"] > read_at
        assert ix.verify().ok
    finally:
        ix.close()


def test_search_runs_without_torch(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({"a.py": python_source("alpha", functions=2)})
    run_sync(repo.path, embedder)
    out, imported = _cli_in_fresh_process(repo.path, "search", "handle alpha case 1", "--json")
    hits = json.loads(out)
    assert hits and hits[0]["path"] == "a.py"
    assert imported == ["onnxruntime"]  # the fast backend, without torch
