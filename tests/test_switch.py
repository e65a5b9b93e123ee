"""A switch of model or chunker (and `sync --rebuild`) on the embedded store is built beside the
index searches use and swapped in only when complete (gitindex/store/swap.py): killed or failed
halfway, the old index still answers, with its own model; the next sync finishes the switch,
embedding nothing the vector cache holds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CountingEmbedder, GitRepo, index_on_tmpfs, open_index, python_source, run_sync

from gitindex.errors import Interrupted, StoreError
from gitindex.manifest import MODEL, SWITCH
from gitindex.store import swap

pytestmark = pytest.mark.filterwarnings("ignore:Failed to obtain server version:UserWarning")
# Long functions: the syntax and lines chunkers cut them differently (new texts to embed).
FILES = {f"pkg/m{i}.py": python_source(f"m{i}", functions=2, body_lines=30) for i in range(4)}
INT8, FP32 = "all-MiniLM-L6-v2#int8s", "all-MiniLM-L6-v2"


pytestmark = pytest.mark.usefixtures("isolated_env")


@pytest.fixture
def indexed(repo: GitRepo, embedder: CountingEmbedder) -> GitRepo:
    """A repository indexed with the defaults (syntax chunker, onnx-int8)."""
    repo.commit(FILES)
    assert run_sync(repo.path, embedder).embedded > 0
    embedder.reset()
    return repo


def killed_sync(path: Path, step: str, *args: str, **env: str) -> None:
    """`gitindex sync` in its own process, SIGKILLed at `step` (gitindex/faults.py)."""
    done = subprocess.run([sys.executable, "-m", "gitindex", "sync", "--quiet", "--batch-size", "2", *args],
                          cwd=path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "_GITINDEX_TEST_KILL_AT": step, **env})
    assert done.returncode == -signal.SIGKILL, (done.returncode, done.stderr[-2000:])


def shard_dirs(path: Path) -> set[str]:
    return {p.name for p in (path / ".git" / "gitindex" / "qdrant").iterdir() if p.is_dir()}


def answers(path: Path, **settings: Any) -> tuple[str, int, int, bool]:
    """What reading commands see: the model queries are embedded with, the top hit's line, the
    status's points, and whether verify is clean."""
    with open_index(path, **settings) as ix:
        hits = ix.search("handle m3 case 1", limit=1)
        assert hits and hits[0].path == "pkg/m3.py", hits
        result = ix.verify()
        return ix.workspace.model_key, hits[0].start_line, ix.status()["points"], result.ok


def finished(path: Path, **settings: Any) -> None:
    """The switch is done: one shard, no build left, no switch recorded, verify clean."""
    assert shard_dirs(path) == {"repo"}
    data = path / ".git" / "gitindex"
    assert not (data / swap.BUILD_MANIFEST).exists() and not list(data.glob("qdrant/*.next*"))
    with open_index(path, **settings) as ix:
        assert ix.workspace.manifest.get(SWITCH) is None
        assert ix.verify().ok


@pytest.mark.parametrize("step", [
    pytest.param("switch-begun", marks=pytest.mark.slow),  # recorded as under way, nothing built yet
    "recorded",  # mid-build: a batch of the new index written
    pytest.param("switch-swapping", marks=pytest.mark.slow),  # complete, the swap about to begin
    pytest.param("switch-renamed", marks=pytest.mark.slow),  # the directories swapped, the manifest not yet
    pytest.param("switch-recorded", marks=pytest.mark.slow),  # the manifest too, the old shard not yet deleted
])
def test_a_chunker_switch_killed_anywhere_leaves_an_index_and_the_next_sync_finishes(
        indexed: GitRepo, embedder: CountingEmbedder, tmp_path: Path, step: str) -> None:
    # What the switch embeds when nothing interrupts it (a copy of the repository, same name).
    reference = tmp_path / "reference" / "repo"
    shutil.copytree(indexed.path, reference, symlinks=True)
    whole = run_sync(reference, embedder, chunker="lines")
    assert whole.embedded > 2 and any("building the new index beside" in n for n in whole.notes), whole.notes
    embedder.reset()
    before = answers(indexed.path)

    killed_sync(indexed.path, step, GITINDEX_CHUNKER="lines")
    if step in ("switch-begun", "recorded", "switch-swapping"):  # the old index, read as it was made
        assert shard_dirs(indexed.path) == ({"repo"} if step == "switch-begun" else {"repo", "repo.next"})
        assert answers(indexed.path, chunker="lines") == before
    else:  # the new shard is in place: read with the settings it was made with
        assert answers(indexed.path, chunker="lines")[3]

    resumed = run_sync(indexed.path, embedder, chunker="lines", batch_size=2)
    assert resumed.complete
    finished(indexed.path, chunker="lines")
    if step == "recorded":  # what the killed run embedded is not embedded again
        assert resumed.embedded < whole.embedded and any("resuming the switch" in n for n in resumed.notes)
    elif step == "switch-begun":
        assert resumed.embedded == whole.embedded and any("resuming the switch" in n for n in resumed.notes)
    else:
        assert resumed.embedded == 0, resumed.notes
    assert answers(indexed.path, chunker="lines")[3]


def test_a_backend_switch_killed_halfway_keeps_answering_with_the_old_model(indexed: GitRepo) -> None:
    """onnx-int8 -> onnx: until the new index replaces the old one, queries are embedded by the
    int8 model that made it (the configured fp32 one would not match its vectors)."""
    before = answers(indexed.path)
    assert before[0] == INT8
    killed_sync(indexed.path, "recorded", GITINDEX_BACKEND="onnx")
    assert shard_dirs(indexed.path) == {"repo", "repo.next"}
    assert answers(indexed.path, backend="onnx") == before
    shown = subprocess.run([sys.executable, "-m", "gitindex", "search", "handle m3 case 1", "--json", "--limit", "1"],
                           cwd=indexed.path, capture_output=True, text=True, timeout=300,
                           env={**os.environ, "GITINDEX_BACKEND": "onnx"})
    assert shown.returncode == 0 and json.loads(shown.stdout)[0]["path"] == "pkg/m3.py", shown.stderr
    with open_index(indexed.path, backend="onnx") as ix:
        status = ix.status()
        assert status["model"] == INT8
        assert status["switch"] == {"phase": "building", "model": FP32, "chunker": status["switch"]["chunker"],
                                    "layout": status["switch"]["layout"]}

    fp32 = CountingEmbedder("onnx")
    resumed = run_sync(indexed.path, fp32, backend="onnx", batch_size=2)
    assert any("resuming the switch" in n for n in resumed.notes), resumed.notes
    finished(indexed.path, backend="onnx")
    with open_index(indexed.path, backend="onnx") as ix:
        expected = ix.verify().expected
        assert ix.status()["model"] == FP32 and ix.workspace.manifest.get(MODEL) == FP32
        assert ix.status()["switch"] is None
    # Every chunk needed an fp32 vector: those of the killed run's batches came from the cache.
    assert 0 < resumed.embedded < expected
    assert answers(indexed.path, backend="onnx")[0] == FP32


def test_a_backend_switch_killed_as_it_swaps_says_to_finish_it(indexed: GitRepo) -> None:
    """Killed between the directories' swap and the manifest's copy: the shard is fp32, the
    manifest still says int8. A search is refused with the remedy (not "a model this gitindex no
    longer makes": int8s is current), and the next sync finishes the switch."""
    killed_sync(indexed.path, "switch-renamed", GITINDEX_BACKEND="onnx")
    shown = subprocess.run([sys.executable, "-m", "gitindex", "search", "handle m3 case 1"], cwd=indexed.path,
                           capture_output=True, text=True, timeout=300, env={**os.environ, "GITINDEX_BACKEND": "onnx"})
    assert shown.returncode == 1 and "interrupted as it was swapped in" in shown.stderr, shown.stderr
    assert "no longer makes" not in shown.stderr and "Traceback" not in shown.stderr
    run_sync(indexed.path, CountingEmbedder("onnx"), backend="onnx")
    finished(indexed.path, backend="onnx")
    assert answers(indexed.path, backend="onnx")[0] == FP32


def test_sync_rebuild_killed_halfway_leaves_the_index_and_the_next_sync_completes_it(
        indexed: GitRepo, embedder: CountingEmbedder) -> None:
    before = answers(indexed.path)
    killed_sync(indexed.path, "recorded", "--rebuild")
    assert shard_dirs(indexed.path) == {"repo", "repo.next"}
    assert answers(indexed.path) == before
    resumed = run_sync(indexed.path, embedder)
    assert any("resuming the switch" in n for n in resumed.notes), resumed.notes
    assert any("switched to the new index" in n for n in resumed.notes), resumed.notes
    assert resumed.embedded == 0  # same settings: every vector is in the cache
    finished(indexed.path)
    assert answers(indexed.path) == before


def test_a_failed_switch_leaves_the_index_and_going_back_abandons_it(
        indexed: GitRepo, embedder: CountingEmbedder) -> None:
    """Interrupted after its first batch (Ctrl-C): the old index still answers, with a switch
    recorded; with the settings back to the index's, the next sync drops the build."""
    before = answers(indexed.path)
    with open_index(indexed.path, embedder, chunker="lines", batch_size=2) as ix, pytest.raises(Interrupted):
        ix.sync(should_stop=lambda: True)
    assert shard_dirs(indexed.path) == {"repo", "repo.next"}
    with open_index(indexed.path, chunker="lines") as ix:
        assert json.loads(ix.workspace.manifest.get(SWITCH) or "{}")["phase"] == "building"
    assert answers(indexed.path, chunker="lines") == before
    embedder.reset()
    back = run_sync(indexed.path, embedder)
    assert any("abandoned" in n for n in back.notes), back.notes
    assert back.embedded == 0
    finished(indexed.path)
    assert answers(indexed.path) == before


def test_the_swap_is_finished_from_any_state_a_crash_leaves(tmp_path: Path) -> None:
    """store/swap.py's step 2, done again from each state a kill inside it can leave."""
    def layout(*names: str) -> Path:
        base = tmp_path / "-".join(names or ("none",)) / "qdrant"
        for name in names:
            (base / name).mkdir(parents=True)
            (base / name / "which").write_text(name)
        base.mkdir(parents=True, exist_ok=True)
        return base / "c"

    for before in (("c", "c.next"), ("c.old", "c.next"), ("c", "c.old"), ("c", "c.old", "c.next")):
        shard = layout(*before)
        swap.swap_directories(shard)
        swap.swap_directories(shard)  # again: nothing more to do
        assert (shard / "which").read_text() == ("c" if before == ("c", "c.old") else "c.next"), before
        assert not swap.next_path(shard).exists()
        had_old = swap.old_path(shard).exists()
        assert swap.remove_leftovers(shard, shard.parent / "m.sqlite", build_too=True) == had_old
        assert sorted(p.name for p in shard.parent.iterdir()) == ["c"]


# -- disk space ----------------------------------------------------------------------------------
@pytest.fixture
def small_disk(repo: GitRepo) -> Iterator[Path]:
    """The repository's .git/gitindex on a 256 MB tmpfs."""
    with index_on_tmpfs(repo, "256m") as data:
        yield data


def test_a_switch_without_room_for_both_indexes_says_so_and_keeps_the_old_one(
        repo: GitRepo, embedder: CountingEmbedder, small_disk: Path) -> None:
    from gitindex.store.embedded import _SPACE_FLOOR

    repo.commit(FILES)
    run_sync(repo.path, embedder)
    before = answers(repo.path)
    shard = small_disk / "qdrant" / "repo"
    size = swap.size_on_disk(shard)
    assert size > 1 << 20, size
    free = shutil.disk_usage(small_disk).free
    (small_disk / "filler").write_bytes(b"\0" * (free - _SPACE_FLOOR - size // 2))

    failed = subprocess.run([sys.executable, "-m", "gitindex", "sync"], cwd=repo.path, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "GITINDEX_CHUNKER": "lines"})
    assert failed.returncode == 1, (failed.returncode, failed.stderr[-2000:])
    assert "not enough disk space to build the new index beside the current one" in failed.stderr
    assert "MB free" in failed.stderr and "still answers searches" in failed.stderr
    assert "Traceback" not in failed.stderr + failed.stdout
    assert shard_dirs(repo.path) == {"repo"}
    with open_index(repo.path, chunker="lines") as ix:
        assert ix.workspace.manifest.get(SWITCH) is None
        with pytest.raises(StoreError, match="not enough disk space"):
            ix.sync()
    assert answers(repo.path) == before

    (small_disk / "filler").unlink()
    done = run_sync(repo.path, embedder, chunker="lines")
    assert any("switched to the new index" in n for n in done.notes), done.notes
    finished(repo.path, chunker="lines")
