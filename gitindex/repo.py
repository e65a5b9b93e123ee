"""The git side: find the repository, resolve the target tree, walk and diff trees (pygit2)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

import pygit2
from pygit2.enums import AttrCheck, DiffFind, FileMode, ObjectType

from gitindex.errors import BadRevisionError, EmptyRepositoryError, NotARepositoryError

ATTRIBUTES = ("binary", "diff", "linguist-generated", "linguist-vendored")
_GITLINK = int(FileMode.COMMIT)
_LINK = int(FileMode.LINK)
_TREE = int(FileMode.TREE)


# Git allows any bytes but NUL and "/" in a name, UTF-8 or not. A path is text everywhere past
# this module (the manifest's sqlite, the store's payload, point ids, JSON), and none of those
# takes Python's surrogateescape strings. So a byte that is not part of valid UTF-8 becomes one
# private-use character, U+10FF00 + byte (U+10FF80..U+10FFFF); a real U+10FF80..U+10FFFF in a
# name (private use, end of plane 16) is written as its own four UTF-8 bytes escaped the same
# way, so text_path() is one-to-one and raw_path() gives git's bytes back. A UTF-8 name is
# itself, unchanged.
_ESCAPE = 0x10FF00
_ESCAPED = "\U0010ff80"  # the lowest escape character


def text_path(raw: bytes) -> str:
    """A git path's bytes as gitindex's text (see above): lossless, valid Unicode."""
    try:
        text = raw.decode("utf-8")
        if not text or max(text) < _ESCAPED:
            return text
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="surrogateescape")
    out = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte
            out.append(chr(_ESCAPE + code - 0xDC00))
        elif code >= _ESCAPE + 0x80:  # a real character in the escape range
            out.extend(chr(_ESCAPE + b) for b in char.encode("utf-8"))
        else:
            out.append(char)
    return "".join(out)


def raw_path(path: str) -> bytes:
    """The bytes git has for a path text_path() made."""
    if not path or max(path) < _ESCAPED:
        return path.encode("utf-8")
    return b"".join(bytes([ord(c) - _ESCAPE]) if ord(c) >= _ESCAPE + 0x80 else c.encode("utf-8") for c in path)


def os_path(path: str) -> str:
    """The path as Python's os and pygit2 take a str (undecodable bytes as surrogates)."""
    return path if not path or max(path) < _ESCAPED else os.fsdecode(raw_path(path))


def display_path(path: str) -> str:
    """The path for people: escaped bytes as \\xNN, as `git ls-files` quotes them (octal there)."""
    if not path or max(path) < _ESCAPED:
        return path
    return "".join(f"\\x{ord(c) - _ESCAPE:02x}" if ord(c) >= _ESCAPE + 0x80 else c for c in path)


class Entry(NamedTuple):
    """One file of a tree: its path (text_path() of git's bytes), blob id and git file mode."""

    path: str
    oid: str
    mode: int


class Change(NamedTuple):
    """What happened to one path between the indexed tree and the target.

    status: A(dded), D(eleted), M(odified, content or mode), R(enamed: old.path != new.path).
    """

    status: str
    old: Entry | None
    new: Entry | None


class Target(NamedTuple):
    """The tree a sync indexes: a commit's tree, or the staged tree (commit None)."""

    tree: str
    commit: str | None
    label: str  # what to show the user: a short commit id or "staged"


class Repo:
    """A git repository opened from any directory inside it (worktrees included)."""

    def __init__(self, start: Path) -> None:
        found = pygit2.discover_repository(str(start))
        if found is None:
            raise NotARepositoryError(
                f"{start} is not inside a git repository; run gitindex inside one, "
                "or use `gitindex index PATH` for a plain directory"
            )
        self.git = pygit2.Repository(found)
        self.gitdir = Path(self.git.path)
        self.workdir = Path(self.git.workdir) if self.git.workdir else None

    @property
    def commondir(self) -> Path:
        """The git dir shared by all worktrees (the main .git)."""
        pointer = self.gitdir / "commondir"
        if pointer.is_file():
            return (self.gitdir / pointer.read_text().strip()).resolve()
        return self.gitdir

    def origin_url(self) -> str | None:
        """The URL of the `origin` remote, if there is one."""
        try:
            return str(self.git.remotes["origin"].url or "") or None
        except (KeyError, ValueError):
            return None

    @property
    def name(self) -> str:
        base = self.workdir if self.workdir is not None else self.commondir.parent
        return base.resolve().name

    def head(self) -> Target | None:
        """HEAD's commit and tree, or None for an unborn HEAD."""
        try:
            return self.resolve("HEAD")
        except EmptyRepositoryError:
            return None

    def resolve(self, ref: str) -> Target:
        if ref == "HEAD" and self.git.head_is_unborn:
            raise EmptyRepositoryError
        try:
            commit = self.git.revparse_single(ref).peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError) as exc:
            raise BadRevisionError(
                f"cannot resolve {ref!r} to a commit ({exc}); give a branch, tag or commit id"
            ) from None
        return Target(tree=str(commit.tree_id), commit=str(commit.id), label=str(commit.id)[:12])

    def staged(self, index_file: str | None = None) -> Target:
        """The tree of the index (what the next commit would hold)."""
        # Hooks run with GIT_INDEX_FILE pointing at a temporary index (commit -a, partial commits).
        tree = pygit2.Index(index_file).write_tree(self.git) if index_file else self.git.index.write_tree()
        return Target(tree=str(tree), commit=None, label="staged")

    def walk(self, tree_id: str, prefix: str = "") -> Iterator[Entry]:
        """Every non-tree entry, depth first, read lazily one tree at a time."""
        tree = self.git.get(tree_id)
        assert isinstance(tree, pygit2.Tree)
        for obj in tree:
            path = prefix + text_path(obj.raw_name or b"")  # (a tree entry always has a name)
            if obj.filemode == _TREE:
                yield from self.walk(str(obj.id), path + "/")
            else:
                yield Entry(path, str(obj.id), obj.filemode)

    def entry(self, tree_id: str, path: str) -> Entry | None:
        tree = self.git.get(tree_id)
        assert isinstance(tree, pygit2.Tree)
        try:
            obj = tree[os_path(path)]
        except KeyError:
            return None
        if obj.filemode == _TREE:
            return None
        return Entry(path, str(obj.id), obj.filemode)

    def diff_trees(self, old: str, new: str) -> Iterator[Change]:
        """Changes from tree `old` to tree `new`; unchanged subtrees are never read.

        Exact renames are paired (by blob id only, so no file content is read).
        """
        old_tree, new_tree = self.git.get(old), self.git.get(new)
        assert isinstance(old_tree, pygit2.Tree) and isinstance(new_tree, pygit2.Tree)
        diff = old_tree.diff_to_tree(new_tree)
        diff.find_similar(DiffFind.FIND_RENAMES | DiffFind.FIND_EXACT_MATCH_ONLY)
        for delta in diff.deltas:
            status = delta.status_char()
            a, b = delta.old_file, delta.new_file
            before = Entry(text_path(a.raw_path), str(a.id), a.mode) if status != "A" else None
            after = Entry(text_path(b.raw_path), str(b.id), b.mode) if status != "D" else None
            yield Change("M" if status == "T" else status, before, after)

    def count_differences(self, old: str, new: str) -> int:
        if old == new:
            return 0
        old_tree, new_tree = self.git.get(old), self.git.get(new)
        assert isinstance(old_tree, pygit2.Tree) and isinstance(new_tree, pygit2.Tree)
        return len(old_tree.diff_to_tree(new_tree))

    def size(self, oid: str) -> int:
        kind, size = self.git.odb.read_header(oid)
        return int(size) if kind == ObjectType.BLOB else 0

    def read(self, oid: str) -> bytes:
        blob = self.git.get(oid)
        assert isinstance(blob, pygit2.Blob)
        return blob.data

    def attributes(self, path: str, target: Target) -> Mapping[str, object]:
        """The gitattributes that decide indexing, as of the target commit (or the index)."""
        if target.commit is not None:
            flags, commit = AttrCheck.INCLUDE_COMMIT | AttrCheck.NO_SYSTEM, target.commit
        else:
            flags, commit = AttrCheck.INDEX_ONLY | AttrCheck.NO_SYSTEM, None
        where = raw_path(path)  # (pygit2 encodes a str path as strict UTF-8)
        return {name: self.git.get_attr(where, name, flags, commit) for name in ATTRIBUTES}


def limit_pack_windows() -> None:
    """libgit2 maps pack files in windows of 1 GiB, up to 8 GiB, and keeps what it read
    resident: a first index's RSS grew with the pack's size. Small windows under a small cap
    bound it. Process-wide, so the CLI calls it for the process it owns; the library never does."""
    pygit2.settings.mwindow_size = 1 << 20
    pygit2.settings.mwindow_mapped_limit = 8 << 20


def is_regular(mode: int) -> bool:
    return mode not in (_GITLINK, _LINK)


def mode_kind(mode: int) -> str:
    if mode == _GITLINK:
        return "submodule"
    if mode == _LINK:
        return "symlink"
    return "file"


def index_file_from(env: Mapping[str, str], cwd: str | None = None) -> str | None:
    """GIT_INDEX_FILE as git sets it for hooks, made absolute (git gives it relative to cwd)."""
    value = env.get("GIT_INDEX_FILE")
    if not value:
        return None
    return os.path.abspath(os.path.join(cwd or os.getcwd(), value))
