"""Refs: which trees one index holds, and the names it knows them by.

One index serves every tracked ref of a repository (and all its linked worktrees): a point
exists once per (path, blob, chunk) and its `refs` payload lists the refs whose tree holds it.
A ref is named as people type it: a branch by its short name (`main`, `release/2.x`), a tag by
its name, anything else as given. A detached HEAD is `HEAD` in the main worktree and
`HEAD@<worktree>` in a linked one, so that worktrees never share a detached name.

Overlays: a ref synced for the first time starts from the closest tracked view without being
listed on its points (re-listing a large view takes seconds: Qdrant moves every updated point out
of its immutable segment). It records that view's ref as its *base* and lists itself only at the
paths where it differs, its *overrides* (manifest: refs.base, the overrides table). Its view is
the points that list it, and those that list its base at a path it does not override
(store.InView). Bases are never overlays: an overlay started from an overlay shares its base and
overrides. Before a base changes a path its overlays inherit, they are listed on what they hold
there and override it (writer.py); an overlay whose base goes, or that overrides too many paths
for a search filter, is materialized: listed on every point of its view (sync.py).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator

import pygit2

from gitindex.errors import ConfigError
from gitindex.repo import Repo, Target

LEGACY = ""  # the one view of an index made before refs, or of a plain directory
_PREFIXES = ("refs/heads/", "refs/tags/", "refs/remotes/")


def current(repo: Repo) -> str:
    """The ref this worktree has checked out: its branch's short name, or HEAD (detached)."""
    git = repo.git
    try:
        if not git.head_is_detached:
            name = git.lookup_reference("HEAD").target
            if isinstance(name, str):
                return short(name)
    except (pygit2.GitError, KeyError, ValueError):
        pass
    worktree = worktree_name(repo)
    return f"HEAD@{worktree}" if worktree else "HEAD"


def worktree_name(repo: Repo) -> str | None:
    """The linked worktree's name (None in the main worktree)."""
    if repo.gitdir.resolve() == repo.commondir.resolve():
        return None
    return repo.gitdir.name


def short(full: str) -> str:
    for prefix in _PREFIXES:
        if full.startswith(prefix):
            return full[len(prefix):]
    return full


def is_detached_name(name: str) -> bool:
    return name == "HEAD" or name.startswith("HEAD@")


def check_name(name: str) -> str:
    """A name given with --ref or in config: printable, not empty."""
    if not name.strip() or not name.isprintable():
        raise ConfigError(f"bad ref name {name!r}: give a branch, tag or commit")
    return name.strip()


def spec(name: str) -> str:
    """What git resolves for a tracked name (`HEAD@wt` is resolved by its worktree: HEAD)."""
    return "HEAD" if is_detached_name(name) else name


def matching(repo: Repo, patterns: Iterable[str]) -> Iterator[str]:
    """Branches, tags and remote branches whose short names match one of `patterns` (fnmatch:
    `release/*`, `v2.*`, `main`), each once, sorted."""
    wanted = [p for p in patterns if p]
    if not wanted:
        return
    seen: set[str] = set()
    for full in sorted(repo.git.references):
        if not full.startswith(_PREFIXES) or full.endswith("/HEAD"):
            continue
        name = short(full)
        if name not in seen and any(fnmatch.fnmatchcase(name, p) for p in wanted):
            seen.add(name)
            yield name


def exists(repo: Repo, name: str) -> bool:
    """Whether a tracked name still names a commit (a deleted branch does not)."""
    if is_detached_name(name):
        return name == current(repo) or _worktree_exists(repo, name)
    try:
        repo.git.revparse_single(name).peel(pygit2.Commit)
        return True
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        return False


def tip(repo: Repo, name: str, current: str | None = None) -> Target | None:
    """Where tracked `name` points, as this worktree sees it; None for the legacy view, a ref
    that is gone, or a detached HEAD other than `current` (another worktree's HEAD is not ours
    to read)."""
    if name == LEGACY or (is_detached_name(name) and name != current) or not exists(repo, name):
        return None
    return repo.resolve(spec(name))


def _worktree_exists(repo: Repo, name: str) -> bool:
    """HEAD@wt: the linked worktree still exists (its HEAD may be detached there)."""
    _, _, worktree = name.partition("@")
    if not worktree:
        return True  # the main worktree's HEAD
    return (repo.commondir / "worktrees" / worktree).is_dir()
