"""Every branch in one index: ref-aware points, no duplicate vectors, search by ref. Real
repositories, branches, worktrees and hooks; the real model and the real embedded store."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import GIT_ENV, CountingEmbedder, GitRepo, git, open_index, python_source
from typer.testing import CliRunner

from gitindex.cli import app
from gitindex.errors import ConfigError
from gitindex.manifest import _MIGRATIONS, Manifest
from gitindex.store import REFS


def gi(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


def points(path: Path) -> dict[str, dict[str, Any]]:
    """Every stored point's payload (path, blob, refs), by id."""
    with open_index(path) as ix:
        store = ix.workspace.store
        with store.session():
            return {pid: p for pid, p in store.scroll()}


def listed(path: Path, file: str) -> set[tuple[str, ...]]:
    """The refs lists of a file's points."""
    return {tuple(p[REFS]) for p in points(path).values() if p["path"] == file}


def holders(path: Path, file: str) -> set[tuple[str, ...]]:
    """The refs whose views hold each of a file's points: the refs it lists, and the overlays
    that inherit it from one of them."""
    found = [p[REFS] for p in points(path).values() if p["path"] == file]
    with open_index(path) as ix:
        return {ix.workspace.manifest.views(listed, file) for listed in found}


def search_paths(repo: GitRepo, query: str, *args: str) -> list[str]:
    hits = json.loads(gi("search", query, "--repo", str(repo.path), "--json", "-n", "20", *args).stdout)
    return [h["path"] for h in hits]


def verify_ok(repo: GitRepo, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(gi("verify", str(repo.path), "--json", *args).stdout)
    assert out["ok"], out
    return out


def sync(repo: GitRepo, embedder: CountingEmbedder, ref: str | list[str] | None = None) -> Any:
    with open_index(repo.path, embedder) as ix:
        return ix.sync(ref)


@pytest.fixture
def two_branches(repo: GitRepo, embedder: CountingEmbedder) -> GitRepo:
    """main: common.py, billing.py; feature: billing.py changed, shipping.py added. Only main
    is synced."""
    repo.commit({"common.py": python_source("common", 4), "billing.py": python_source("billing", 3)})
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit({"billing.py": python_source("invoice", 3), "shipping.py": python_source("parcel", 3)})
    repo.git("checkout", "-q", "main")
    first = sync(repo, embedder)
    assert first.refs == ["main"] and first.embedded > 0
    return repo


def test_a_second_ref_embeds_only_its_new_chunks_and_stores_each_chunk_once(
        two_branches: GitRepo, embedder: CountingEmbedder) -> None:
    repo = two_branches
    before = points(repo.path)
    embedder.reset()
    done = sync(repo, embedder, "feature")
    assert done.refs == ["feature"] and any("started from main" in n for n in done.notes)
    new_chunks = len({p["hash"] for p in points(repo.path).values()} - {p["hash"] for p in before.values()})
    assert len(embedder.texts) == new_chunks  # only billing.py's and shipping.py's new chunks
    after = points(repo.path)
    distinct = {(p["path"], p["blob"], p["start_line"]) for p in after.values()}
    assert len(after) == len(distinct)  # no chunk stored twice
    assert holders(repo.path, "common.py") == {("feature", "main")}  # shared: in both views
    assert listed(repo.path, "common.py") == {("main",)}  # feature inherits main's points: not re-listed
    assert holders(repo.path, "shipping.py") == {("feature",)}
    assert holders(repo.path, "billing.py") == {("main",), ("feature",)}  # one blob per branch
    verify_ok(repo)
    assert verify_ok(repo, "--ref", "feature")["refs"] == ["feature"]
    assert verify_ok(repo, "--ref", "main")["refs"] == ["main"]


def test_search_by_ref_returns_only_that_refs_tree(two_branches: GitRepo, embedder: CountingEmbedder) -> None:
    repo = two_branches
    sync(repo, embedder, "feature")
    assert "shipping.py" not in search_paths(repo, "parcel function")  # default: the checked-out main
    assert "shipping.py" not in search_paths(repo, "parcel function", "--ref", "main")
    assert search_paths(repo, "parcel function", "--ref", "feature")[0] == "shipping.py"
    for ref in ("main", "feature"):  # every hit's blob is the one that ref's tree has (checked with git)
        hits = json.loads(gi("search", "handle case", "--repo", str(repo.path), "--json", "-n", "50",
                             "--ref", ref).stdout)
        with open_index(repo.path) as ix:
            store, manifest = ix.workspace.store, ix.workspace.manifest
            with store.session():
                blobs = {(p["path"], p["start_line"]): p["blob"] for _, p in store.scroll()
                         if ref in manifest.views(p[REFS], p["path"])}
        for hit in hits:
            assert ref in hit["refs"]
            assert repo.git("rev-parse", f"{ref}:{hit['path']}") == blobs[(hit["path"], hit["start_line"])]
    everywhere = json.loads(gi("search", "billing", "--repo", str(repo.path), "--json", "--all-refs", "-n", "30").stdout)
    assert {tuple(h["refs"]) for h in everywhere if h["path"] == "common.py"} == {("feature", "main")}
    assert {tuple(h["refs"]) for h in everywhere if h["path"] == "billing.py"} <= {("main",), ("feature",)}
    plain = gi("search", "parcel", "--repo", str(repo.path), "--all-refs").stdout
    assert "in feature" in plain
    missing = gi("search", "x", "--repo", str(repo.path), "--ref", "nope", code=1)
    assert "not indexed" in missing.output and "main" in missing.output
    gi("search", "x", "--repo", str(repo.path), "--ref", "main", "--all-refs", code=2)


def test_a_branch_switch_and_commits_move_only_their_ref(two_branches: GitRepo, embedder: CountingEmbedder) -> None:
    repo = two_branches
    sync(repo, embedder, "feature")
    repo.git("checkout", "-q", "feature")
    embedder.reset()
    switched = sync(repo, embedder)  # the checked-out branch is tracked and synced: nothing to do
    assert switched.refs == ["feature"] and embedder.texts == [] and switched.added == switched.modified == 0
    assert search_paths(repo, "parcel function")[0] == "shipping.py"  # now the default view
    repo.commit({"common.py": python_source("shared", 4)})  # on feature only
    moved = sync(repo, embedder)
    assert moved.modified == 1
    assert holders(repo.path, "common.py") == {("main",), ("feature",)}  # main keeps its version
    verify_ok(repo)
    status = json.loads(gi("status", str(repo.path), "--json").stdout)
    assert status["ref"] == "feature"
    assert {r["ref"]: r["fresh"] for r in status["refs"]} == {"feature": True, "main": True}


def test_a_deleted_branch_is_dropped_from_every_point(two_branches: GitRepo, embedder: CountingEmbedder) -> None:
    repo = two_branches
    sync(repo, embedder, "feature")
    repo.git("branch", "-q", "-D", "feature")
    dropped = sync(repo, embedder)
    assert any("dropped ref feature" in n for n in dropped.notes)
    assert holders(repo.path, "common.py") == {("main",)}
    assert holders(repo.path, "shipping.py") == set()  # no ref holds it: gone
    assert holders(repo.path, "billing.py") == {("main",)}
    verify_ok(repo)
    assert [r["ref"] for r in json.loads(gi("status", str(repo.path), "--json").stdout)["refs"]] == ["main"]


def test_configured_ref_patterns_are_kept_synced_and_dropped_when_they_stop_matching(
        repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({"app.py": python_source("app", 3)})
    for version in ("1", "2"):
        repo.git("checkout", "-q", "-b", f"release/{version}", "main")
        repo.commit({f"notes_{version}.py": python_source(f"notes{version}", 2)})
    repo.git("checkout", "-q", "main")
    (repo.path / ".git" / "info" / "exclude").write_text(".gitindex.toml\n")  # stays on every branch
    (repo.path / ".gitindex.toml").write_text('refs = ["release/*"]\n')
    done = sync(repo, embedder)
    assert done.refs == ["main", "release/1", "release/2"]
    assert holders(repo.path, "app.py") == {("main", "release/1", "release/2")}
    verify_ok(repo)
    repo.git("checkout", "-q", "release/2")  # a tracked ref moves: the next sync follows it
    repo.commit({"notes_2.py": python_source("notes2b", 2)})
    repo.git("checkout", "-q", "main")
    assert sync(repo, embedder).refs == ["main", "release/1", "release/2"]
    (repo.path / ".gitindex.toml").write_text('refs = ["release/2"]\n')
    narrowed = sync(repo, embedder)
    assert any("dropped ref release/1" in n for n in narrowed.notes)
    assert holders(repo.path, "notes_1.py") == set()
    verify_ok(repo)


def test_worktrees_share_one_index(two_branches: GitRepo, embedder: CountingEmbedder, tmp_path: Path) -> None:
    repo = two_branches
    other = tmp_path / "other-worktree"
    repo.git("worktree", "add", "-q", str(other), "feature")
    embedder.reset()
    with open_index(other, embedder) as ix:
        assert ix.workspace.data_dir == repo.path / ".git" / "gitindex"  # the main worktree's
        done = ix.sync()
    assert done.refs == ["feature"]
    assert len(embedder.texts) > 0  # feature's new chunks only...
    embedder.reset()
    repo.git("worktree", "add", "-q", "--detach", str(tmp_path / "third"), "main")
    with open_index(tmp_path / "third", embedder) as ix:
        third = ix.sync()
    assert third.refs == ["HEAD@third"] and embedder.texts == []  # ...and a third embeds nothing
    assert holders(repo.path, "common.py") == {("HEAD@third", "feature", "main")}
    hits = json.loads(gi("search", "parcel function", "--repo", str(other), "--json").stdout)
    assert hits[0]["path"] == "shipping.py"  # from the feature worktree: its view
    verify_ok(repo)


def test_hooks_a_branch_switch_answers_for_the_new_branch_without_embedding(repo: GitRepo) -> None:
    repo.commit({"common.py": python_source("common", 3)})
    gi("hooks", "install", str(repo.path), "--foreground")
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "x"], cwd=repo.path, env=env, check=True)
    switched = subprocess.run(["git", "checkout", "-q", "-b", "topic"], cwd=repo.path, env=env,
                              capture_output=True, text=True, check=True)
    assert "gitindex" in switched.stderr
    last = json.loads(gi("log", str(repo.path), "--json", "-n", "1").stdout)[-1]
    assert last["ok"] and last["summary"]["chunks"]["embedded"] == 0
    status = json.loads(gi("status", str(repo.path), "--json").stdout)
    assert status["ref"] == "topic" and {r["ref"] for r in status["refs"]} == {"main", "topic"}
    assert search_paths(repo, "common function")[0] == "common.py"
    verify_ok(repo)


def test_an_index_from_before_refs_becomes_the_checked_out_branchs(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({"common.py": python_source("common", 3)})
    sync(repo, embedder)
    with open_index(repo.path) as ix:  # as an older gitindex left it: one unnamed view, points without refs
        ix.workspace.manifest.rename("main", "")
        with ix.workspace.store.session(write=True):
            ix.workspace.store.set_refs([""])
    assert search_paths(repo, "common function")[0] == "common.py"  # answers before any sync
    embedder.reset()
    done = sync(repo, embedder)
    assert any("now tracks refs" in n for n in done.notes) and embedder.texts == []
    assert holders(repo.path, "common.py") == {("main",)}
    verify_ok(repo)


def test_the_manifest_migration_keeps_what_was_indexed(tmp_path: Path) -> None:
    path = tmp_path / "manifest.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(_MIGRATIONS[:2], start=1):  # the schema before refs
        for statement in filter(str.strip, script.split(";")):
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {number}")
    db.execute("INSERT INTO files VALUES ('a.py', 'b1', 33188, 2)")
    db.execute("INSERT INTO dirty VALUES ('a.py')")
    db.execute("INSERT INTO meta VALUES ('synced_tree', 't1'), ('synced_commit', 'c1'), ('model', 'm')")
    db.close()
    m = Manifest(path)
    assert [s.ref for s in m.tracked()] == [""] and m.get("synced_tree") == "t1" and m.get("synced_commit") == "c1"
    assert m.file("a.py") is not None and m.dirty() == ["a.py"] and m.get("model") == "m"
    m.ref = "main"
    assert m.file("a.py") is None and m.get("synced_tree") is None
    m.close()


def assert_view_is_the_tree(repo: GitRepo, ref: str, query: str = "handle case") -> None:
    """Every hit of a search restricted to `ref` is a chunk of `ref`'s tree (its blob checked
    with git), and the search finds every file of that tree."""
    hits = json.loads(gi("search", query, "--repo", str(repo.path), "--json", "-n", "200", "--ref", ref).stdout)
    with open_index(repo.path) as ix:
        store, manifest = ix.workspace.store, ix.workspace.manifest
        with store.session():
            blobs = {(p["path"], p["start_line"], p["blob"]) for _, p in store.scroll()
                     if ref in manifest.views(p[REFS], p["path"])}
    tree = dict(line.split("\t")[::-1] for line in repo.git("ls-tree", "-r", ref).splitlines())
    for hit in hits:
        blob = tree[hit["path"]].split()[2]  # a path not in ref's tree fails here
        assert (hit["path"], hit["start_line"], blob) in blobs and ref in hit["refs"]
        lines = repo.git("show", f"{ref}:{hit['path']}").splitlines()[hit["start_line"] - 1:hit["end_line"]]
        assert hit["text"].strip() == "\n".join(lines).strip()  # that ref's text, not another blob's
    assert {h["path"] for h in hits} == set(tree)


def test_an_overlay_keeps_its_view_when_its_base_moves(two_branches: GitRepo, embedder: CountingEmbedder) -> None:
    """feature starts as an overlay on main (it lists itself only where it differs); main then
    changes a file feature inherits, adds one and deletes one: feature's view stays its tree."""
    repo = two_branches
    sync(repo, embedder, "feature")
    assert listed(repo.path, "common.py") == {("main",)}
    repo.commit({"common.py": python_source("shared", 4), "extra.py": python_source("extra", 2)})
    repo.git("rm", "-q", "billing.py")
    repo.git("commit", "-q", "-m", "billing goes")
    embedder.reset()
    moved = sync(repo, embedder)
    assert moved.refs == ["main"] and moved.modified == 1 and moved.added == 1 and moved.deleted == 1
    assert listed(repo.path, "common.py") == {("main",), ("feature",)}  # feature now lists its version itself
    for ref in ("main", "feature"):
        assert_view_is_the_tree(repo, ref)
    verify_ok(repo)
    verify_ok(repo, "--ref", "feature")
    with open_index(repo.path) as ix:
        m = ix.workspace.manifest
        assert m.ref_state("feature").base == "main"  # type: ignore[union-attr]
        assert m.overrides("feature") == ["billing.py", "common.py", "extra.py", "shipping.py"]
    repo.git("checkout", "-q", "feature")  # feature moves too: its own changes stay its own
    repo.commit({"common.py": python_source("shared", 4)})  # now the same blob as main's
    sync(repo, embedder)
    assert holders(repo.path, "common.py") == {("feature", "main")}
    for ref in ("main", "feature"):
        assert_view_is_the_tree(repo, ref)
    verify_ok(repo)


def test_an_overlay_of_an_overlay_shares_its_base(two_branches: GitRepo, embedder: CountingEmbedder) -> None:
    repo = two_branches
    sync(repo, embedder, "feature")
    repo.git("branch", "-q", "topic", "feature")
    repo.git("checkout", "-q", "topic")
    repo.commit({"topic.py": python_source("topic", 2)})
    embedder.reset()
    sync(repo, embedder)
    assert embedder.texts and all("topic" in t for t in embedder.texts)  # only topic.py's chunks
    with open_index(repo.path) as ix:
        m = ix.workspace.manifest
        assert m.ref_state("topic").base == "main"  # type: ignore[union-attr]
        assert m.overrides("topic") == ["billing.py", "shipping.py", "topic.py"]
    assert listed(repo.path, "shipping.py") == {("feature", "topic")}
    for ref in ("main", "feature", "topic"):
        assert_view_is_the_tree(repo, ref)
    verify_ok(repo)


def test_dropping_a_base_or_many_changes_materialize_its_overlays(
        two_branches: GitRepo, embedder: CountingEmbedder, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = two_branches
    repo.git("branch", "-q", "topic", "feature")
    sync(repo, embedder, ["feature", "topic"])  # both overlays on main
    repo.git("checkout", "-q", "feature")
    repo.git("branch", "-q", "-D", "main")  # the base is gone: its overlays list themselves first
    dropped = sync(repo, embedder)
    assert any("dropped ref main" in n for n in dropped.notes), dropped.notes
    assert listed(repo.path, "common.py") == {("feature", "topic")}
    with open_index(repo.path) as ix:
        assert [(s.ref, s.base) for s in ix.workspace.manifest.tracked()] == [("feature", None), ("topic", None)]
    for ref in ("feature", "topic"):
        assert_view_is_the_tree(repo, ref)
    verify_ok(repo)
    import gitindex.sync

    monkeypatch.setattr(gitindex.sync, "OVERLAY_MOST", 1)  # (a tuning constant, not a fault)
    repo.git("checkout", "-q", "-b", "wide", "feature")
    repo.commit({"common.py": python_source("wide", 4), "billing.py": python_source("broad", 3)})
    wide = sync(repo, embedder)
    assert any("wide differs from feature in over 1 files" in n for n in wide.notes), wide.notes
    with open_index(repo.path) as ix:
        assert ix.workspace.manifest.ref_state("wide").base is None  # type: ignore[union-attr]
    assert listed(repo.path, "shipping.py") == {("feature", "topic", "wide")}
    assert_view_is_the_tree(repo, "wide")
    verify_ok(repo)


@pytest.mark.parametrize("step", ["ref-relisted", "ref-dropping", "ref-inherited", "ref-materialized"])
def test_a_sync_killed_while_a_ref_is_added_or_dropped_is_finished_by_the_next(
        two_branches: GitRepo, embedder: CountingEmbedder, step: str) -> None:
    """SIGKILL (the test-only switch in gitindex/faults.py) between the store's re-listing and
    the manifest's record: the next sync redoes it, and every ref's view is exact."""
    repo = two_branches
    env = {**os.environ, "_GITINDEX_TEST_KILL_AT": step}
    args: list[str] = []
    if step == "ref-relisted":
        args = ["--ref", "feature"]
    elif step == "ref-dropping":
        sync(repo, embedder, "feature")
        repo.git("branch", "-q", "-D", "feature")
    elif step == "ref-inherited":  # main changes a file its overlay feature inherits
        sync(repo, embedder, "feature")
        repo.commit({"common.py": python_source("shared", 4)})
    else:  # main goes: its overlay feature is materialized first
        sync(repo, embedder, "feature")
        repo.git("checkout", "-q", "feature")
        repo.git("branch", "-q", "-D", "main")
    killed = subprocess.run([sys.executable, "-m", "gitindex", "sync", *args], cwd=repo.path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    again = sync(repo, embedder, "feature" if step == "ref-relisted" else None)
    assert again.complete
    verify_ok(repo)
    expected = {"feature"} if step == "ref-materialized" else {"main"} if step == "ref-dropping" else {"main", "feature"}
    assert {r["ref"] for r in json.loads(gi("status", str(repo.path), "--json").stdout)["refs"]} == expected
    for ref in expected:
        assert_view_is_the_tree(repo, ref)


def test_a_chunker_switch_rebuilds_every_tracked_ref(two_branches: GitRepo, embedder: CountingEmbedder) -> None:
    """The switch is built beside the index (store/swap.py); the new index holds every tracked
    ref's view, not only the checked-out one."""
    repo = two_branches
    sync(repo, embedder, "feature")
    (repo.path / ".git" / "info" / "exclude").write_text(".gitindex.toml\n")
    (repo.path / ".gitindex.toml").write_text('chunker = "lines"\n')
    switched = sync(repo, embedder)
    assert switched.complete and any("switched to the new index" in n for n in switched.notes), switched.notes
    status = json.loads(gi("status", str(repo.path), "--json").stdout)
    assert {r["ref"]: r["fresh"] for r in status["refs"]} == {"main": True, "feature": True}
    assert holders(repo.path, "shipping.py") == {("feature",)}
    verify_ok(repo)


def test_a_lost_manifest_with_overlays_is_read_back_from_the_store(
        two_branches: GitRepo, embedder: CountingEmbedder) -> None:
    """The points list an overlay only where it differs from its base: a manifest read back from
    them gives it those files, and its next sync lists it on the rest, embedding nothing."""
    repo = two_branches
    sync(repo, embedder, "feature")
    for name in ("manifest.sqlite", "manifest.sqlite-wal", "manifest.sqlite-shm"):
        (repo.path / ".git" / "gitindex" / name).unlink(missing_ok=True)
    embedder.reset()
    again = sync(repo, embedder, ["main", "feature"])
    assert again.complete and embedder.texts == []
    assert any("adopted" in n for n in again.notes), again.notes
    for ref in ("main", "feature"):
        assert_view_is_the_tree(repo, ref)
    verify_ok(repo)


@pytest.mark.filterwarnings("ignore:Payload indexes have no effect in the local Qdrant:UserWarning")
def test_a_shared_server_collection_keeps_the_refs_other_machines_synced(
        two_branches: GitRepo, embedder: CountingEmbedder, tmp_path: Path) -> None:
    """Two machines write one server collection (qdrant-client's local mode, the server
    adapter): the second, a clone without the feature branch, adopts the collection and syncs
    main; feature, which only the first machine has, keeps its points and its whole view
    (overlays are an embedded-store thing: on a server every point lists its refs)."""
    from qdrant_client import QdrantClient

    from gitindex.store.remote import RemoteStore

    repo = two_branches
    client = QdrantClient(location=":memory:")

    def index(path: Path) -> Any:
        ix = open_index(path, embedder, repo_key="example.com/team/app")  # (as an origin URL gives it)
        server = RemoteStore(client, "team", "memory")
        server.repo = ix.workspace.repo_key
        ix.workspace.__dict__["store"] = server
        return ix

    with index(repo.path) as ix:
        ix.sync(["main", "feature"])
        assert ix.workspace.manifest.ref_state("feature").base is None  # type: ignore[union-attr]
    git(tmp_path, "clone", "-q", "--single-branch", "--branch", "main", str(repo.path), "laptop")
    laptop = GitRepo(tmp_path / "laptop")
    laptop.commit({"common.py": python_source("laptop", 4)})  # main moves on the second machine
    with index(laptop.path) as ix:
        done = ix.sync()
        assert done.refs == ["main"] and not any("dropped" in n for n in done.notes), done.notes
        states = {s.ref: s.origin for s in ix.workspace.manifest.tracked()}
        assert states == {"main": "head", "feature": "store"}
        assert {h.path for h in ix.search("parcel function", ref="feature", limit=20)} >= {"shipping.py", "common.py"}
        assert ix.verify().ok  # feature's points are the other machine's: not stale here
    with index(repo.path) as ix:  # the first machine: feature's view is whole
        hits = ix.search("handle case", ref="feature", limit=50)
        assert {h.path for h in hits} == {"common.py", "billing.py", "shipping.py"}
        assert all(h.refs for h in hits)
    # A third machine (nothing indexed there yet: a CI job when the branch's pull request closes)
    # forgets feature: it reads the refs back from the collection, then drops that one.
    git(tmp_path, "clone", "-q", "--single-branch", "--branch", "main", str(repo.path), "ci")
    with index(tmp_path / "ci") as ix:
        done = ix.sync(forget=["feature"])
        assert any("forgot ref feature" in n for n in done.notes), done.notes
        assert "feature" not in {s.ref for s in ix.workspace.manifest.tracked()}
        with ix.workspace.store.session():
            listed = [p for _, p in ix.workspace.store.scroll()]
        assert listed and not any("feature" in p[REFS] for p in listed)
        assert "shipping.py" not in {p["path"] for p in listed}  # only feature held it
        with pytest.raises(ConfigError, match="ref 'gone' is not tracked"):
            ix.sync(forget=["gone"])
    git(tmp_path, "clone", "-q", "--single-branch", "--branch", "main", str(repo.path), "ci2")
    with index(tmp_path / "ci2") as ix:  # nothing indexed here yet: known only once read back
        assert any("ref gone is not tracked: nothing to forget" in n for n in ix.sync(forget=["gone"]).notes)


def test_a_new_ref_started_from_a_view_a_killed_sync_left_half_done_is_exact(
        two_branches: GitRepo, embedder: CountingEmbedder) -> None:
    """main's sync is killed after its new points are written, before the manifest records
    them (the path is dirty); a new ref started from main's view must compare that path too."""
    repo = two_branches
    repo.git("branch", "-q", "topic", "main")  # main's tree before the change below
    repo.commit({"common.py": python_source("shared", 4)})
    killed = subprocess.run([sys.executable, "-m", "gitindex", "sync"], cwd=repo.path,
                            env={**os.environ, "_GITINDEX_TEST_KILL_AT": "upserted"},
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    assert sync(repo, embedder, "topic").complete
    assert_view_is_the_tree(repo, "topic")
    verify_ok(repo, "--ref", "topic")
    sync(repo, embedder)
    for ref in ("main", "topic"):
        assert_view_is_the_tree(repo, ref)
    verify_ok(repo)


def test_forget_stops_tracking_a_ref_and_deletes_what_only_it_held(
        two_branches: GitRepo, embedder: CountingEmbedder) -> None:
    repo = two_branches
    repo.git("tag", "v1", "feature")
    sync(repo, embedder, ["feature", "v1"])  # v1: an overlay on feature (the same tree), or on main
    assert gi("sync", str(repo.path), "--forget", "main", code=2).output.count("checked out here") == 1
    assert "not tracked (tracked refs: feature, main, v1)" in gi("sync", str(repo.path), "--forget", "v2", code=2).output
    assert "both name 'v1'" in gi("sync", str(repo.path), "--ref", "v1", "--forget", "v1", code=2).output
    done = json.loads(gi("sync", str(repo.path), "--forget", "feature", "--json").stdout)
    assert any("forgot ref feature" in n for n in done["notes"]), done["notes"]
    status = json.loads(gi("status", str(repo.path), "--json").stdout)
    assert {r["ref"] for r in status["refs"]} == {"main", "v1"}
    assert holders(repo.path, "shipping.py") == {("v1",)}  # v1 still holds it
    assert_view_is_the_tree(repo, "v1")
    gi("sync", str(repo.path), "--forget", "v1")
    assert holders(repo.path, "shipping.py") == set()  # no tracked ref holds it: gone
    assert holders(repo.path, "common.py") == {("main",)}
    verify_ok(repo)
    (repo.path / ".git" / "info" / "exclude").write_text(".gitindex.toml\n")
    (repo.path / ".gitindex.toml").write_text('refs = ["feature"]\n')
    sync(repo, embedder)
    assert "matches the `refs` setting" in gi("sync", str(repo.path), "--forget", "feature", code=2).output
