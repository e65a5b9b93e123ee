"""plan(): the rules that decide what a sync does, on real git trees and real directories, with
no model and no store. The manifest's side is a plain dict, as the plan only reads it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from conftest import GitRepo

from gitindex.manifest import IndexedFile
from gitindex.plan import Action, Step, compare, plan
from gitindex.repo import Entry, Repo
from gitindex.source import DirectorySource, GitSource

FILE, EXEC = 0o100644, 0o100755


class Indexed:
    """What the manifest holds, as plan() reads it."""

    def __init__(self, files: Iterable[IndexedFile] = ()) -> None:
        self.by_path = {f.path: f for f in files}

    def file(self, path: str) -> IndexedFile | None:
        return self.by_path.get(path)

    def files(self) -> Iterable[IndexedFile]:
        return sorted(self.by_path.values(), key=lambda f: f.path)


def indexed_at(repo: GitRepo, rev: str = "HEAD") -> Indexed:
    """The manifest a completed sync of `rev` leaves (blob ids and modes of every file)."""
    git = Repo(repo.path)
    return Indexed(IndexedFile(e.path, e.oid, e.mode, 1) for e in git.walk(git.resolve(rev).tree))


def source(repo: GitRepo, rev: str = "HEAD", baseline: str | None = None) -> GitSource:
    git = Repo(repo.path)
    base = git.resolve(baseline).tree if baseline else None
    return GitSource(git, git.resolve(rev), base)


def summary(steps: Iterable[Step]) -> list[tuple[str, str]]:
    out = []
    for s in steps:
        out.append((s.action.value, s.path))
        if s.moved_from is not None:
            out.append(("from", s.moved_from.path))
    return out


def test_nothing_changed_plans_nothing(repo: GitRepo) -> None:
    repo.commit({"a.py": "a = 1\n", "b/c.py": "c = 1\n"})
    repo.commit(message="an empty commit: the same tree")
    result = plan(source(repo, baseline="HEAD~1"), indexed_at(repo, "HEAD~1"))
    assert not result.full and result.total == 0 and list(result) == []


def test_a_first_index_looks_at_every_file(repo: GitRepo) -> None:
    repo.commit({"a.py": "a = 1\n", "b/c.py": "c = 1\n"})
    result = plan(source(repo), Indexed())
    assert result.full and result.total == 2
    assert summary(result) == [("index", "a.py"), ("index", "b/c.py")]


def test_add_modify_delete(repo: GitRepo) -> None:
    repo.commit({"a.py": "a = 1\n", "b.py": "b = 1\n", "c.py": "c = 1\n"})
    repo.git("rm", "-q", "c.py")
    repo.commit({"a.py": "a = 2\n", "d.py": "d = 1\n"})
    result = plan(source(repo, baseline="HEAD~1"), indexed_at(repo, "HEAD~1"))
    assert sorted(summary(result)) == [("delete", "c.py"), ("index", "a.py"), ("index", "d.py")]


def test_an_exact_rename_moves_the_file(repo: GitRepo) -> None:
    repo.commit({"old/name.py": "def f():\n    return 1\n"})
    repo.git("mv", "old", "new")
    repo.commit()
    steps = list(plan(source(repo, baseline="HEAD~1"), indexed_at(repo, "HEAD~1")))
    assert summary(steps) == [("rename", "new/name.py"), ("from", "old/name.py")]
    assert steps[0].indexed is None and steps[0].moved_from is not None
    assert steps[0].moved_from.indexed is not None  # the old path's points go


def test_a_copy_is_an_added_path(repo: GitRepo) -> None:
    repo.commit({"a.py": "def f():\n    return 1\n"})
    repo.commit({"copy.py": "def f():\n    return 1\n"})
    steps = list(plan(source(repo, baseline="HEAD~1"), indexed_at(repo, "HEAD~1")))
    assert summary(steps) == [("index", "copy.py")]
    assert steps[0].entry is not None and steps[0].entry.oid == indexed_at(repo).file("a.py").blob  # type: ignore[union-attr]


def test_a_mode_only_change_notes_the_mode(repo: GitRepo) -> None:
    repo.commit({"run.sh": "echo hi\n"})
    (repo.path / "run.sh").chmod(0o755)
    repo.commit()
    steps = list(plan(source(repo, baseline="HEAD~1"), indexed_at(repo, "HEAD~1")))
    assert summary(steps) == [("mode", "run.sh")]
    assert steps[0].entry is not None and steps[0].entry.mode == EXEC


def test_dirty_paths_are_rewritten_or_deleted(repo: GitRepo) -> None:
    repo.commit({"a.py": "a = 1\n", "b.py": "b = 1\n"})
    # A batch was cut short between the store and the manifest: a.py (unchanged since) and
    # gone.py (recorded nowhere, but maybe in the store) are uncertain.
    steps = list(plan(source(repo, baseline="HEAD"), indexed_at(repo), dirty={"a.py", "gone.py"}))
    assert summary(steps) == [("index", "a.py"), ("delete", "gone.py")]
    assert all(s.dirty for s in steps)
    assert steps[0].indexed is not None  # the other blobs' points of a.py are deleted after the upsert


def test_resume_skips_what_the_interrupted_run_finished(repo: GitRepo) -> None:
    repo.commit({"a.py": "a = 1\n", "b.py": "b = 1\n"})
    repo.commit({"a.py": "a = 2\n", "b.py": "b = 2\n"})
    # The run to HEAD recorded a.py, then was killed: the baseline is still HEAD~1.
    manifest = indexed_at(repo, "HEAD~1")
    manifest.by_path["a.py"] = indexed_at(repo).by_path["a.py"]
    steps = list(plan(source(repo, baseline="HEAD~1"), manifest, touched={"a.py"}))
    assert summary(steps) == [("index", "b.py")]


def test_an_interrupted_run_s_paths_are_compared_even_when_the_next_diff_misses_them(repo: GitRepo) -> None:
    repo.commit({"a.py": "a = 1\n", "y.py": "y = 1\n"})  # C1: the last completed sync
    repo.commit({"x.py": "x = 1\n"})  # C2: a sync indexed x.py, then was killed
    repo.git("rm", "-q", "y.py")
    repo.commit()  # C3: a sync deleted y.py, then was killed
    manifest = indexed_at(repo, "HEAD~2")
    manifest.by_path["x.py"] = indexed_at(repo, "HEAD~1").by_path["x.py"]
    del manifest.by_path["y.py"]
    # C4: x.py removed and y.py restored, so the diff from C1 names neither.
    repo.git("rm", "-q", "x.py")
    repo.commit({"y.py": "y = 1\n"})
    assert repo.git("diff", "--name-only", "HEAD~3", "HEAD") == ""
    steps = list(plan(source(repo, baseline="HEAD~3"), manifest, touched={"x.py", "y.py"}))
    assert summary(steps) == [("delete", "x.py"), ("index", "y.py")]


def test_new_selection_rules_recheck_every_file(repo: GitRepo) -> None:
    repo.commit({"a.py": "a = 1\n", "docs/b.md": "# B\n"})
    manifest = indexed_at(repo)
    steps = list(plan(source(repo, baseline="HEAD"), manifest, selection_changed=True))
    assert summary(steps) == [("recheck", "a.py"), ("recheck", "docs/b.md")]


def test_without_a_baseline_files_the_target_lacks_are_deleted(repo: GitRepo) -> None:
    repo.commit({"a.py": "a = 1\n"})
    manifest = Indexed([IndexedFile("a.py", "0" * 40, FILE, 1), IndexedFile("stale.py", "1" * 40, FILE, 1)])
    result = plan(source(repo, baseline=None), manifest, dirty={"lost.py"})
    assert result.full
    assert summary(result) == [("index", "a.py"), ("delete", "stale.py"), ("delete", "lost.py")]


def test_a_baseline_missing_from_the_repository_means_a_full_walk(repo: GitRepo) -> None:
    repo.commit({"a.py": "a = 1\n"})
    git = Repo(repo.path)
    rewritten = GitSource(git, git.resolve("HEAD"), "e" * 40)  # history rewritten, or gc'd
    result = plan(rewritten, indexed_at(repo))
    assert result.full and list(result) == []


def test_compare_one_file() -> None:
    entry = Entry("a.py", "a" * 40, FILE)
    assert compare(entry, None) == Step(Action.INDEX, "a.py", entry, None)
    same = IndexedFile("a.py", "a" * 40, FILE, 2)
    assert compare(entry, same) is None
    assert compare(entry, same, recheck=True) == Step(Action.RECHECK, "a.py", entry, same)
    assert compare(entry, same, dirty=True) == Step(Action.INDEX, "a.py", entry, same, dirty=True)
    other_mode = IndexedFile("a.py", "a" * 40, EXEC, 2)
    assert compare(entry, other_mode) == Step(Action.MODE, "a.py", entry, other_mode)


def test_a_plain_directory_diffs_against_the_last_run_s_file_list(tmp_path: Path) -> None:
    (tmp_path / "keep.py").write_text("k = 1\n")
    (tmp_path / "edit.py").write_text("e = 1\n")
    (tmp_path / "gone.py").write_text("g = 1\n")
    first = DirectorySource(tmp_path, {})
    full = plan(first, Indexed())
    assert full.full and sorted(summary(full)) == [("index", "edit.py"), ("index", "gone.py"), ("index", "keep.py")]
    baseline = {path: (blob, mode, size, mtime) for path, blob, mode, size, mtime in first.snapshot() or []}
    manifest = Indexed(IndexedFile(p, row[0], row[1], 1) for p, row in baseline.items())

    (tmp_path / "edit.py").write_text("e = 2  # edited\n")
    (tmp_path / "gone.py").unlink()
    (tmp_path / "new.py").write_text("n = 1\n")
    (tmp_path / ".gitignore").write_text("ignored.py\n")
    (tmp_path / "ignored.py").write_text("i = 1\n")
    second = plan(DirectorySource(tmp_path, baseline), manifest)
    assert not second.full
    assert sorted(summary(second)) == [("delete", "gone.py"), ("index", ".gitignore"), ("index", "edit.py"),
                                       ("index", "new.py")]
