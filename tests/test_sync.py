"""The incremental engine, end to end on real repositories, the real model and real Qdrant Edge."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import CountingEmbedder, GitRepo, open_index, python_source, run_sync

from gitindex.errors import Interrupted


def verified(path: Path, ref: str = "HEAD", **settings: object) -> bool:
    ix = open_index(path, **settings)
    try:
        result = ix.verify(ref if ix.is_git else None)
        assert result.ok, result
        return result.ok
    finally:
        ix.close()


def chunks_of(path: Path, embedder: CountingEmbedder, text: str, name: str = "module.py") -> int:
    """How many chunks a sync makes of `text` as file `name` (syntax chunks for Python)."""
    from gitindex.examine import chunk

    ws = open_index(path).workspace
    return len(chunk(name, text, ws.spec.token_counter(), ws.spec.budget, ws.syntax))


def test_first_index_then_noop(repo: GitRepo, embedder: CountingEmbedder) -> None:
    files = {f"pkg/{n}.py": python_source(n) for n in ("alpha", "beta", "gamma")}
    files["README.md"] = "# Demo\n\nA small project that parses configuration files.\n"
    head = repo.commit(files)
    expected = sum(chunks_of(repo.path, embedder, t, name) for name, t in files.items())

    first = run_sync(repo.path, embedder)
    assert first.commit == head
    assert first.added == 4 and first.embedded == expected == len(embedder.texts)
    assert verified(repo.path)

    embedder.reset()
    again = run_sync(repo.path, embedder)
    assert (again.added, again.modified, again.deleted, again.embedded) == (0, 0, 0, 0)
    assert again.unchanged == 4 and embedder.texts == []

    ix = open_index(repo.path, embedder)
    hits = ix.search("parses configuration files", limit=3)
    assert hits[0].path == "README.md"
    only_py = ix.search("parses configuration files", limit=3, path="*.py")
    assert only_py and all(h.path.endswith(".py") for h in only_py)


def test_modify_embeds_only_touched_chunks(repo: GitRepo, embedder: CountingEmbedder) -> None:
    source = python_source("worker", functions=6)
    repo.commit({"worker.py": source})
    run_sync(repo.path, embedder)
    total = chunks_of(repo.path, embedder, source)

    embedder.reset()
    edited = source.replace("handle worker case 3.", "Handle worker case three, carefully.")
    edited = edited.replace('"""Handle worker case 3."""', '"""Handle worker case three, carefully."""')
    assert edited != source
    repo.commit({"worker.py": edited})
    result = run_sync(repo.path, embedder)
    assert result.modified == 1
    assert result.embedded == 1, embedder.texts
    assert result.reused == total - 1 and result.deleted_chunks == total
    assert verified(repo.path)


def test_header_bump_reembeds_one_chunk_per_file(repo: GitRepo, embedder: CountingEmbedder) -> None:
    header = "# Copyright (c) 2025 Example Corp. All rights reserved.\n# Licensed under the MIT license.\n\n"
    files = {f"src/mod{i}.py": header + python_source(f"mod{i}", functions=4) for i in range(8)}
    repo.commit(files)
    run_sync(repo.path, embedder)

    embedder.reset()
    repo.commit({k: v.replace("2025", "2026") for k, v in files.items()}, "bump year")
    result = run_sync(repo.path, embedder)
    assert result.modified == 8
    assert result.embedded == 8, "one chunk per file, not every chunk after the header"
    assert verified(repo.path)


def test_delete_rename_copy_mode_change(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({"a.py": python_source("a"), "b.py": python_source("b"), "c.py": python_source("c")})
    run_sync(repo.path, embedder)
    embedder.reset()

    repo.git("mv", "a.py", "renamed.py")
    (repo.path / "b.py").unlink()
    repo.write({"copy_of_c.py": (repo.path / "c.py").read_text()})
    os.chmod(repo.path / "c.py", 0o755)
    repo.commit(message="rename, delete, copy, chmod")
    result = run_sync(repo.path, embedder)

    assert result.embedded == 0 and embedder.texts == []
    assert result.renamed == 1 and result.deleted == 1 and result.added == 1 and result.modified == 1
    # The copy and the renamed file are written with stored vectors; a mode change writes nothing.
    assert result.reused == chunks_of(repo.path, embedder, python_source("c")) + chunks_of(
        repo.path, embedder, python_source("a"))
    assert verified(repo.path)
    ix = open_index(repo.path)
    assert ix.workspace.manifest.file("c.py").mode == 0o100755  # type: ignore[union-attr]
    assert ix.workspace.manifest.file("a.py") is None and ix.workspace.manifest.file("b.py") is None
    b_blob = repo.git("rev-parse", "HEAD~1:b.py")
    assert ix.workspace.manifest.blob_chunks(b_blob) is None  # the deleted file's chunk rows were swept
    ix.close()


def test_a_noop_sync_does_not_sweep_but_the_next_change_does(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({"a.py": python_source("a"), "b.py": python_source("b")})
    run_sync(repo.path, embedder)
    old_b = repo.git("rev-parse", "HEAD:b.py")
    ix = open_index(repo.path)
    # A blob no file refers to any more, as a run interrupted after changing a file leaves behind.
    ix.workspace.manifest.db.execute("DELETE FROM files WHERE path = 'b.py'")
    ix.workspace.manifest.db.commit()
    ix.close()
    repo.commit({"a.py": python_source("a")}, message="nothing changes")  # a new commit, the same tree
    run_sync(repo.path, embedder)
    ix = open_index(repo.path)
    assert ix.workspace.manifest.blob_chunks(old_b) is not None  # a no-op scans no chunk rows
    ix.close()
    repo.commit({"c.py": python_source("c")})
    run_sync(repo.path, embedder)
    ix = open_index(repo.path)
    assert ix.workspace.manifest.blob_chunks(old_b) is None
    ix.close()


def test_revert_and_branch_switch_embed_nothing(repo: GitRepo, embedder: CountingEmbedder) -> None:
    first = repo.commit({"app.py": python_source("app"), "lib.py": python_source("lib")})
    run_sync(repo.path, embedder)
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit({"app.py": python_source("application", functions=2), "new.py": python_source("new")})
    embedder.reset()
    changed = run_sync(repo.path, embedder)
    assert changed.embedded > 0

    embedder.reset()
    repo.git("checkout", "-q", "main")
    back = run_sync(repo.path, embedder)  # main is still indexed as it was: nothing to do
    assert back.embedded == 0 and back.deleted == 0 and back.modified == 0 and back.refs == ["main"]
    assert verified(repo.path)

    embedder.reset()
    repo.git("checkout", "-q", "feature")
    repo.git("revert", "--no-edit", "HEAD")
    reverted = run_sync(repo.path, embedder)
    assert reverted.embedded == 0
    assert verified(repo.path)
    assert repo.git("rev-parse", "HEAD^{tree}") == repo.git("rev-parse", f"{first}^{{tree}}")


def test_skipped_files_by_reason(repo: GitRepo, embedder: CountingEmbedder) -> None:
    sub = GitRepo(repo.path.parent / "sub")
    sub.commit({"inner.py": "print('inner')\n"})
    repo.commit({
        "code.py": python_source("code", functions=1),
        "image.png": b"\x89PNG\r\n\x1a\n\x00\x00binary",
        "model.bin": "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12345\n",
        "big.txt": "word " * 3000,
        "latin1.txt": "caf\xe9 cr\xe8me br\xfbl\xe9e recipe\n".encode("latin-1"),
        "empty.py": "",
        "package-lock.json": '{"lockfileVersion": 3}\n',
        ".env": "SECRET_KEY=hunter2\n",
        "dist/app.min.js": "function a(){return 1}" * 50,
        "gen/api.py": "x = 1\n",
        "attrs.dat": "plain text flagged binary by attributes\n",
        ".gitattributes": "gen/** linguist-generated\n*.dat binary\n",
    })
    os.symlink("code.py", repo.path / "link.py")
    repo.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub.path), "vendor/sub")
    repo.commit(message="all kinds of files")

    result = run_sync(repo.path, embedder, max_file_size=10_000)
    assert dict(result.skipped) == {
        "binary": 2, "lfs-pointer": 1, "too-large": 1, "empty": 1, "lockfile": 1, "secret": 1,
        "minified": 1, "generated": 1, "symlink": 1, "submodule": 1,
    }
    ix = open_index(repo.path, embedder)
    indexed = {f.path for f in ix.workspace.manifest.files()}
    assert indexed == {"code.py", "latin1.txt", ".gitattributes", ".gitmodules"}
    hits = ix.search("creme brulee recipe", limit=1, path="latin1.txt")
    assert "\ufffd" in hits[0].text  # decoded with replacement, not crashed
    assert verified(repo.path, max_file_size=10_000)


def test_status_counts_the_store_itself_after_an_interrupted_run(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({"first.py": python_source("first", functions=2)})
    run_sync(repo.path, embedder)  # records the store's count for status
    repo.commit({f"m{i}.py": python_source(f"m{i}", functions=2) for i in range(6)})
    ix = open_index(repo.path, embedder, batch_size=2)
    try:
        with pytest.raises(Interrupted):
            ix.sync(should_stop=lambda: True)  # after the first batch
        store = ix.workspace.store
        with store.session():
            stored = store.count()
        assert stored > 2 and ix.status()["points"] == stored  # not the count before the run
    finally:
        ix.close()


def test_interrupt_at_batch_boundary_then_resume(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({f"m{i}.py": python_source(f"m{i}", functions=2) for i in range(6)})
    ix = open_index(repo.path, embedder, batch_size=2)
    calls = []

    def stop_after_two_batches() -> bool:
        calls.append(1)
        return len(calls) >= 2

    with pytest.raises(Interrupted):
        ix.sync(should_stop=stop_after_two_batches)
    done = len(embedder.texts)
    assert 0 < done < 12
    ix.close()
    embedder.reset()
    result = run_sync(repo.path, embedder, batch_size=2)
    assert result.embedded == 12 - done, "finished batches are not embedded again"
    assert verified(repo.path)


def test_deleted_cache_reuses_vectors_from_the_store(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({"one.py": python_source("one"), "two.py": python_source("two")})
    run_sync(repo.path, embedder)
    for name in os.listdir(repo.path / ".git" / "gitindex"):
        if name.startswith("vectors.sqlite"):
            os.remove(repo.path / ".git" / "gitindex" / name)
    embedder.reset()
    repo.git("mv", "one.py", "uno.py")
    repo.commit(message="rename")
    result = run_sync(repo.path, embedder)
    assert result.embedded == 0 and result.renamed == 1
    assert verified(repo.path)


def test_deleted_manifest_is_rebuilt_from_the_store(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({"one.py": python_source("one"), "two.py": python_source("two")})
    run_sync(repo.path, embedder)
    data = repo.path / ".git" / "gitindex"
    for name in os.listdir(data):
        if name.startswith(("manifest.sqlite", "vectors.sqlite")):
            os.remove(data / name)
    (repo.path / "two.py").unlink()
    repo.commit({"three.py": python_source("three", functions=1)})
    embedder.reset()
    result = run_sync(repo.path, embedder)
    assert result.embedded == chunks_of(repo.path, embedder, python_source("three", functions=1))
    assert verified(repo.path)  # two.py's points, unknown to the new manifest, are gone


def test_a_chunker_change_rechunks_and_reuses_the_vectors_of_unchanged_texts(
        repo: GitRepo, embedder: CountingEmbedder) -> None:
    notes = "# Notes\n\nHow the project parses configuration files, step by step.\n"
    repo.commit({"pkg/a.py": python_source("a", functions=4), "NOTES.md": notes})
    lines = run_sync(repo.path, embedder, chunker="lines")
    embedder.reset()
    syntax = run_sync(repo.path, embedder)  # the default chunker: syntax
    assert any("chunker" in note and "changed" in note for note in syntax.notes), syntax.notes
    # The Markdown file's chunks are the same texts under either chunker: their vectors come
    # from the cache; only the Python chunks whose text changed are embedded.
    assert syntax.reused >= 1 and syntax.embedded == len(embedder.texts) < lines.embedded + 1
    assert notes.strip() not in embedder.texts
    assert verified(repo.path)
    hit = open_index(repo.path, embedder).search("a case 2", symbol="a_function_2", limit=1)
    assert hit and hit[0].symbol == "a_function_2" and hit[0].kind == "function"


def test_model_change_reindexes_into_fresh_collection(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({"one.py": python_source("one")})
    run_sync(repo.path, embedder)
    ix = open_index(repo.path)
    ix.workspace.manifest.set(model="some-older-model")
    ix.close()
    embedder.reset()
    result = run_sync(repo.path, embedder)
    assert any("model, chunker or store layout changed" in note for note in result.notes)
    assert result.added == 1 and result.embedded == 0  # the vector cache still knows this text
    assert verified(repo.path)


def test_detached_head_and_ref(repo: GitRepo, embedder: CountingEmbedder) -> None:
    old = repo.commit({"v.py": python_source("version_one", functions=1)})
    repo.commit({"v.py": python_source("version_two", functions=1)})
    repo.git("checkout", "-q", "--detach", old)
    result = run_sync(repo.path, embedder)
    assert result.commit == old
    assert verified(repo.path)
    result = run_sync(repo.path, embedder, ref="main")
    assert result.modified == 1
    assert verified(repo.path, ref="main")


def test_linked_worktree_shares_the_repositorys_index(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({"main.py": python_source("main")})
    repo.git("branch", "other")
    wt = repo.path.parent / "wt"
    repo.git("worktree", "add", "-q", str(wt), "other")
    (wt / "sub").mkdir()
    (wt / "sub" / "extra.py").write_text(python_source("extra", functions=1))
    git_env = {"GIT_DIR": ""}
    del git_env["GIT_DIR"]
    from conftest import git

    git(wt, "add", "-A")
    git(wt, "commit", "-q", "-m", "extra")
    result = run_sync(wt / "sub", embedder)  # from a subdirectory of the worktree
    assert result.added == 2
    ix = open_index(wt)
    assert ix.workspace.data_dir == repo.path / ".git" / "gitindex"  # each worktree's HEAD is a ref of it
    assert ix.workspace.collection == "repo" and result.refs == ["other"]
    assert verified(wt)
    assert not (repo.path / ".git" / "worktrees" / "wt" / "gitindex").exists()


def test_plain_directory(tmp_path: Path, embedder: CountingEmbedder) -> None:
    root = tmp_path / "plain"
    (root / "src").mkdir(parents=True)
    (root / "src" / "keep.py").write_text(python_source("keep", functions=1))
    (root / "build").mkdir()
    (root / "build" / "out.py").write_text(python_source("out", functions=1))
    (root / ".gitignore").write_text("build/\n")
    first = run_sync(root, embedder)
    assert first.added == 2  # .gitignore and src/keep.py
    assert verified(root)
    embedder.reset()
    assert run_sync(root, embedder).embedded == 0
    (root / "src" / "keep.py").rename(root / "src" / "moved.py")
    moved = run_sync(root, embedder)
    assert moved.embedded == 0 and moved.added == 1 and moved.deleted == 1
    assert verified(root)


def test_max_files_stops_and_next_run_continues(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({f"f{i}.py": python_source(f"f{i}", functions=1) for i in range(5)})
    partial = run_sync(repo.path, embedder, max_files=2)
    assert not partial.complete and partial.added == 2
    rest = run_sync(repo.path, embedder)
    assert rest.complete and rest.added == 3
    assert verified(repo.path)


def test_a_partial_run_s_files_are_undone_when_the_next_tree_reverts_them(
        repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({"a.py": python_source("a", functions=1)})
    run_sync(repo.path, embedder)
    repo.commit({"x.py": python_source("x", functions=1), "y.py": python_source("y", functions=1)})
    assert not run_sync(repo.path, embedder, max_files=1).complete  # x.py indexed, the run stops
    repo.git("rm", "-q", "x.py", "y.py")
    repo.commit()  # the same tree as the last completed sync: the diff from it is empty
    result = run_sync(repo.path, embedder)
    assert result.complete and result.deleted == 1 and result.embedded == 0
    assert verified(repo.path)


def test_a_plain_directory_s_partial_run_is_undone_by_a_revert(tmp_path: Path, embedder: CountingEmbedder) -> None:
    root = tmp_path / "plain"
    root.mkdir()
    original = python_source("first", functions=1)
    (root / "a.py").write_text(original)
    (root / "b.py").write_text(python_source("b", functions=1))
    run_sync(root, embedder)
    (root / "a.py").write_text(python_source("second", functions=1))
    (root / "c.py").write_text(python_source("c", functions=1))
    assert not run_sync(root, embedder, max_files=1).complete
    (root / "a.py").write_text(original)  # back to what the last completed run saw
    (root / "c.py").unlink()
    assert run_sync(root, embedder).complete
    assert verified(root)


def test_selection_change_removes_newly_excluded(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({"src/a.py": python_source("a", functions=1), "docs/b.md": "# Docs\n\nSome documentation.\n"})
    run_sync(repo.path, embedder)
    embedder.reset()
    result = run_sync(repo.path, embedder, exclude=("docs/",))
    assert result.deleted == 1 and result.embedded == 0 and result.skipped["excluded"] == 1
    assert verified(repo.path, exclude=("docs/",))


def test_adopting_a_store_built_by_another_model_reembeds(repo: GitRepo, embedder: CountingEmbedder) -> None:
    from qdrant_edge import EdgeShard, UpdateOperation

    repo.commit({"one.py": python_source("one", functions=1)})
    run_sync(repo.path, embedder)
    ix = open_index(repo.path)
    with ix.workspace.store.session():
        ids = [pid for pid, _ in ix.workspace.store.scroll()]
    ix.close()
    # Stand-in for a collection another model filled: relabel its points for real.
    shard = EdgeShard.load(ix.workspace.store.location)
    shard.update(UpdateOperation.set_payload(ids, {"model": "another-model"}))
    shard.close()
    data = repo.path / ".git" / "gitindex"
    for name in os.listdir(data):
        if name.startswith("manifest.sqlite"):
            os.remove(data / name)
    embedder.reset()
    result = run_sync(repo.path, embedder)
    assert any("model, chunker or store layout changed" in note for note in result.notes), result.notes
    assert result.added == 1
    assert verified(repo.path)
    ix = open_index(repo.path)
    with ix.workspace.store.session():
        assert {p["model"] for _, p in ix.workspace.store.scroll()} == {ix.workspace.model_key}


def test_a_replayed_history_and_a_fresh_index_answer_every_search_identically(tmp_path: Path) -> None:
    """Vectors are a pure function of (model, text): batches of a history and of a fresh index
    differ, the answers must not (the real default backend; real, distinct code, so that no two
    chunks tie on a score and the store's order of ties does not matter)."""
    import fnmatch
    import glob
    import shlex
    import textwrap

    from conftest import git

    def source(module: object) -> str:
        return Path(str(getattr(module, "__file__", ""))).read_text(encoding="utf-8")

    origin = GitRepo(tmp_path / "origin")
    origin.commit({"text/wrap.py": source(textwrap), "shell/split.py": source(shlex), "names/match.py": source(fnmatch)})
    replay = tmp_path / "replay"
    git(tmp_path, "clone", "-q", str(origin.path), "replay")
    _sync(replay)
    origin.git("rm", "-q", "names/match.py")
    origin.commit({"text/wrap.py": source(textwrap) + "\n\ndef shout(text):\n    return text.upper() + '!'\n",
                   "names/expand.py": source(glob)}, message="step two")
    git(replay, "pull", "-q", "--ff-only")
    _sync(replay)
    git(tmp_path, "clone", "-q", str(origin.path), "fresh")
    _sync(tmp_path / "fresh")

    def answers(path: Path) -> list[list[tuple[str, int, float]]]:
        with open_index(path, repo_key="same") as ix:
            return [[(h.path, h.start_line, round(h.score, 4)) for h in ix.search(q, limit=5, mode=mode)]
                    for q in ("wrap a paragraph to a given width", "split a shell command line into words",
                              "expand wildcards in a path", "shout")
                    for mode in ("dense", "lexical", "hybrid")]

    replayed = answers(replay)
    assert all(replayed), replayed
    assert replayed == answers(tmp_path / "fresh")


def _sync(path: Path) -> None:
    with open_index(path, repo_key="same") as ix:  # as two machines of a team: one repository key
        ix.sync()
