"""The library: gitindex.open() and its Index, as a Python program uses them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CountingEmbedder, GitRepo, python_source
from qdrant_edge import Distance, EdgeConfig, EdgeShard, EdgeVectorParams, Point, ScrollRequest, UpdateOperation

import gitindex
from gitindex import errors
from gitindex.manifest import LAYOUT
from gitindex.store import LAYOUT as STORE_LAYOUT


def test_the_readme_example_syncs_searches_and_verifies(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({"retry.py": python_source("retry"), "docs/guide.md": "# Guide\n\nHow to retry an upload.\n"})
    with gitindex.open(repo.path / "docs", embedder=embedder, batch_size=8) as index:  # from a subdirectory
        result = index.sync()
        assert result.complete and result.added == 2 and result.embedded == len(embedder.texts) > 0
        hits = index.search("handle retry case 1", limit=3)
        assert hits and hits[0].path == "retry.py"
        assert [h.path for h in index.search("how to retry an upload", path="*.md")] == ["docs/guide.md"]
        status = index.status()
        assert status["synced_commit"] == repo.git("rev-parse", "HEAD") and status["pending_files"] == 0
        assert index.verify().ok
        fresh = index.freshness()
        assert fresh is not None and not fresh.stale


def test_importing_gitindex_is_cheap_and_changes_no_global_state() -> None:
    probe = (
        "import sys, json, pygit2\n"
        "before = (pygit2.settings.mwindow_size, pygit2.settings.mwindow_mapped_limit)\n"
        "import gitindex\n"
        "index = gitindex.open('.', plain=True)\n"  # opening reads settings; nothing is loaded yet
        "after = (pygit2.settings.mwindow_size, pygit2.settings.mwindow_mapped_limit)\n"
        "heavy = sorted(m for m in ('numpy', 'onnxruntime', 'torch', 'qdrant_client', 'qdrant_edge', 'typer', "
        "'importlib.metadata') if m in sys.modules)\n"
        "print(json.dumps({'same': before == after, 'heavy': heavy, 'hook': sys.excepthook is sys.__excepthook__}))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=Path(__file__).parent)
    assert json.loads(out.stdout) == {"same": True, "heavy": [], "hook": True}


def test_every_error_the_library_raises_is_a_gitindex_error(repo: GitRepo, tmp_path: Path) -> None:
    for name in dir(errors):
        kind = getattr(errors, name)
        if isinstance(kind, type) and issubclass(kind, Exception):
            assert issubclass(kind, errors.GitindexError), name
    with pytest.raises(errors.NotARepositoryError, match="not inside a git repository"):
        gitindex.open(tmp_path)
    with pytest.raises(errors.NotIndexedError, match="gitindex index"):
        gitindex.open(tmp_path, plain=True).status()
    assert not (tmp_path / ".gitindex").exists()  # reading never leaves an index behind
    with gitindex.open(repo.path) as index:  # no commits yet
        assert index.sync().label == "empty"
        with pytest.raises(errors.EmptyRepositoryError):
            index.target()
        with pytest.raises(errors.BadRevisionError):
            index.sync("no-such-branch")
        with pytest.raises(errors.ConfigError):
            index.sync("main", staged=True)


def test_settings_given_to_open_override_the_repository_s_file(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({".gitindex.toml": 'exclude = ["docs/"]\nbatch-size = 7\n', "a.py": python_source("a"),
                 "docs/b.md": "# B\n\nText.\n"})
    with gitindex.open(repo.path, embedder=embedder, batch_size=3) as index:
        config = index.workspace.config
        assert config.batch_size == 3 and config.exclude == ("docs/",)
        assert index.sync().skipped["excluded"] == 1
    with pytest.raises(errors.ConfigError, match="batch_size"):
        gitindex.open(repo.path, batch_size=0)


def _downgrade_to_layout_1(index: gitindex.Index) -> None:
    """Rewrite the index as gitindex wrote it before named vectors (store layout 1)."""
    ws = index.workspace
    path = Path(ws.store.location)
    shard = EdgeShard.load(str(path))
    records, _ = shard.scroll(ScrollRequest(limit=10_000, with_payload=True, with_vector=True))
    shard.close()
    old = [Point(r.id, r.vector["dense"], {k: v for k, v in (r.payload or {}).items() if k not in ("parts", "ext")})  # type: ignore[call-overload,index]
           for r in records]
    import shutil

    shutil.rmtree(path)
    legacy = EdgeShard.create(str(path), EdgeConfig(vectors=EdgeVectorParams(size=384, distance=Distance.Cosine)))
    legacy.update(UpdateOperation.upsert_points(old))
    legacy.close()
    ws.manifest.set(**{LAYOUT: None})


def test_an_index_of_the_previous_layout_is_rebuilt_without_embedding(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({"a.py": python_source("a"), "b.py": python_source("b")})
    with gitindex.open(repo.path, embedder=embedder) as index:
        points = index.sync().embedded
        _downgrade_to_layout_1(index)
    embedder.reset()
    with gitindex.open(repo.path, embedder=embedder) as index:
        with pytest.raises(errors.IndexMismatchError, match="older gitindex"):
            index.search("handle a case 1")
        result = index.sync()
        assert any("store layout changed" in note for note in result.notes), result.notes
        assert result.embedded == 0 and result.reused == points  # the vector cache had them all
        assert index.verify().ok
        assert index.workspace.store.layout() == STORE_LAYOUT
        assert index.search("handle a case 1", limit=1)[0].path == "a.py"


def test_a_store_of_the_previous_layout_without_a_manifest_is_adopted_then_rebuilt(
        repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({"a.py": python_source("a")})
    with gitindex.open(repo.path, embedder=embedder) as index:
        index.sync()
        _downgrade_to_layout_1(index)
        manifest = Path(index.workspace.manifest.path)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{manifest}{suffix}").unlink(missing_ok=True)
    embedder.reset()
    with gitindex.open(repo.path, embedder=embedder) as index:
        result = index.sync()
        assert any("adopted 1 indexed files" in n for n in result.notes)
        assert any("store layout changed" in n for n in result.notes)
        assert result.embedded == 0 and index.verify().ok
