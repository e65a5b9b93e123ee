"""Recovery from real faults: a deleted store, a garbled or truncated manifest, a model that
cannot load. Real repositories, the real model and the real embedded store throughout."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CountingEmbedder, GitRepo, open_index, python_source, run_sync
from typer.testing import CliRunner

from gitindex.cli import app
from gitindex.errors import ModelError, StoreError
from gitindex.manifest import ManifestError

FILES: dict[str, str | bytes] = {
    "pkg/alpha.py": python_source("alpha"),
    "pkg/beta.py": python_source("beta"),
    "README.md": "# Demo\n\nA small project that parses configuration files.\n",
}


def points(path: Path) -> int:
    ix = open_index(path)
    try:
        with ix.workspace.store.session():
            return ix.workspace.store.count()
    finally:
        ix.close()


def verified(path: Path) -> None:
    with open_index(path) as ix:
        result = ix.verify()
        assert result.ok, result


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert "Traceback" not in result.output
    return result.exit_code, result.output


@pytest.fixture
def indexed(repo: GitRepo, embedder: CountingEmbedder) -> GitRepo:
    repo.commit(FILES)
    first = run_sync(repo.path, embedder)
    assert first.added == len(FILES) and first.embedded > 0
    embedder.reset()
    return repo


def test_a_deleted_store_is_an_error_for_search_and_status_and_sync_rebuilds_it(
        indexed: GitRepo, embedder: CountingEmbedder) -> None:
    before = points(indexed.path)
    shutil.rmtree(indexed.path / ".git" / "gitindex" / "qdrant")

    with open_index(indexed.path, embedder) as ix:
        with pytest.raises(StoreError, match="gitindex sync"):
            ix.search("parses configuration files")
        with pytest.raises(StoreError, match="gitindex sync"):
            ix.status()
    code, output = cli("search", "parses configuration files", "--repo", str(indexed.path), "--mode", "lexical")
    assert code == 1 and "gitindex sync" in output, output

    result = run_sync(indexed.path, embedder)
    assert any("store no longer holds what the manifest recorded (it is missing" in note for note in result.notes), result.notes
    assert result.added == len(FILES)  # every file written again...
    assert result.embedded == 0 and embedder.texts == []  # ...from the vector cache
    assert points(indexed.path) == before
    verified(indexed.path)
    with open_index(indexed.path, embedder) as ix:
        assert ix.search("parses configuration files", limit=1)[0].path == "README.md"
        assert ix.status()["points"] == before


def test_a_store_never_written_is_an_empty_result_not_an_error(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit(FILES)
    with open_index(repo.path, embedder) as ix:
        assert ix.search("parses configuration files") == []
        assert ix.status()["points"] == 0


def _garble(path: Path) -> None:  # bytes no sqlite header starts with
    path.write_bytes(os.urandom(path.stat().st_size))


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


@pytest.mark.parametrize("damage", [_garble, _truncate], ids=["garbage", "truncated"])
def test_an_unreadable_manifest_is_set_aside_and_rebuilt_from_the_store(
        indexed: GitRepo, embedder: CountingEmbedder, damage: Callable[[Path], None]) -> None:
    data = indexed.path / ".git" / "gitindex"
    manifest = data / "manifest.sqlite"
    assert not (data / "manifest.sqlite-wal").exists()  # closed cleanly: the file holds everything
    damage(manifest)
    damaged = manifest.read_bytes()

    with open_index(indexed.path, embedder) as ix:
        with pytest.raises(ManifestError, match="gitindex sync"):
            ix.status()
        with pytest.raises(ManifestError, match="gitindex sync"):
            ix.search("parses configuration files")
    code, output = cli("status", str(indexed.path))
    assert code == 1 and "gitindex sync" in output, output

    result = run_sync(indexed.path, embedder)
    notes = " | ".join(result.notes)
    assert "manifest was unreadable" in notes and "adopted 3 indexed files" in notes, notes
    assert result.embedded == 0 and embedder.texts == []
    aside = [p for p in data.iterdir() if p.name.startswith("manifest.sqlite.corrupt-")]
    assert len(aside) == 1 and aside[0].read_bytes() == damaged  # kept as it was, never deleted
    verified(indexed.path)
    with open_index(indexed.path, embedder) as ix:
        assert ix.status()["files"] == len(FILES)
        assert ix.search("parses configuration files", limit=1)[0].path == "README.md"
    again = run_sync(indexed.path, embedder)
    assert not again.notes and again.embedded == 0


def test_a_model_that_cannot_load_leaves_the_index_searchable(indexed: GitRepo, embedder: CountingEmbedder) -> None:
    before = points(indexed.path)
    with open_index(indexed.path, model="/nonexistent/model") as ix, pytest.raises(ModelError):
        ix.sync()
    code, output = cli("sync", str(indexed.path), "--model", "/nonexistent/model")
    assert code == 1 and "/nonexistent/model" in output, output
    assert points(indexed.path) == before
    with open_index(indexed.path, embedder) as ix:
        assert ix.search("parses configuration files", limit=1)[0].path == "README.md"
        assert ix.status()["model"] == embedder.model_id
    verified(indexed.path)
    assert run_sync(indexed.path, embedder).embedded == 0


def _garble_config(store: Path) -> None:
    (store / "edge_config.json").write_text("garbage{")


def _garble_segments(store: Path) -> None:
    for name in sorted(p for p in (store / "segments").rglob("*") if p.is_file()):
        name.write_bytes(b"\x00garbage" * 64)


@pytest.mark.parametrize("garble", [_garble_config, _garble_segments], ids=["config", "segments"])
def test_a_garbled_store_is_set_aside_and_rebuilt_from_the_cache(
        indexed: GitRepo, embedder: CountingEmbedder, garble: Callable[[Path], None]) -> None:
    with open_index(indexed.path) as ix:
        store = Path(ix.workspace.store.location)
        expected = ix.verify().expected
    garble(store)
    embedder.reset()
    result = run_sync(indexed.path, embedder)  # a no-op sync for the git side: the store is what broke
    assert not result.notes or any("set aside as" in note for note in result.notes), result.notes
    if not result.notes:  # the cheap check saw nothing: the first command to open the store fails,
        with open_index(indexed.path) as ix, pytest.raises(StoreError, match="run `gitindex sync`"):
            ix.search("parse configuration files")
        result = run_sync(indexed.path, embedder)  # and the next sync, even a no-op, rebuilds it
        assert any("set aside as" in note for note in result.notes), result.notes
    verified(indexed.path)
    assert result.embedded == 0 == len(embedder.texts)  # every vector came from the cache
    aside = [p for p in store.parent.iterdir() if p.name.startswith(f"{store.name}.corrupt-")]
    assert aside, "the garbled store is kept, set aside"
    assert points(indexed.path) == expected


def test_sync_rebuild_succeeds_on_a_garbled_store(indexed: GitRepo, embedder: CountingEmbedder) -> None:
    with open_index(indexed.path) as ix:
        store = Path(ix.workspace.store.location)
    _garble_segments(store)  # nothing has tried to open it yet: only opening finds this
    embedder.reset()
    with open_index(indexed.path, embedder) as ix:
        result = ix.sync(rebuild=True)
    assert any("set aside as" in note for note in result.notes), result.notes
    assert result.embedded == 0
    verified(indexed.path)
