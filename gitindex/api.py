"""The library: `gitindex.open(path)` gives an Index to sync, search, inspect and verify.

The CLI, the git hooks' runner and any Python program use the same object; it reads settings
from the repository's config file and the arguments it is given, never from the environment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitindex.config import load
from gitindex.embedding import Embedder
from gitindex.errors import ConfigError, EmptyRepositoryError, NotIndexedError
from gitindex.manifest import MODEL, ManifestError, reading
from gitindex.repo import Target
from gitindex.workspace import Workspace, locate

if TYPE_CHECKING:
    from gitindex.search import Freshness, Hit
    from gitindex.sync import Progress, SyncResult, View
    from gitindex.verify import VerifyResult


def open(path: str | Path = ".", *, plain: bool = False, env: Mapping[str, str] | None = None,
         embedder: Embedder | None = None, origin: str = "settings", **settings: Any) -> Index:
    """The index of the git repository around `path`; with `plain`, a directory that is not in
    a repository is indexed as it is on disk (its index lives in PATH/.gitindex/).

    `settings` are Config fields (batch_size=64, qdrant_url=..., collection=...); they override
    the repository's `[tool.gitindex]` / `.gitindex.toml`, which override the defaults. `env`
    adds GITINDEX_* and QDRANT_* variables between the two (the CLI passes os.environ).
    `embedder` replaces the configured model (one already loaded, or a test's). `origin` names
    where `settings` came from in error messages (the CLI: "command line").
    """
    repo, root = locate(Path(path).resolve(), allow_plain=plain)
    config = load(root, env or {}, settings, origin)
    return Index(Workspace(repo, root, config, embedder))


class Index:
    """One repository's (or plain directory's) semantic index. Close it when done (or use it
    as a context manager): a sync keeps the embedded store open between batches."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    @property
    def root(self) -> Path:
        return self.workspace.root

    @property
    def is_git(self) -> bool:
        return self.workspace.repo is not None

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.workspace.close()

    def target(self, ref: str | None = None, *, staged: bool = False,
               index_file: str | None = None) -> Target | None:
        """The tree to index: `ref` (default HEAD), or the staged tree (`index_file`: the git
        index to read, as hooks get it). None for a plain directory. Raises
        EmptyRepositoryError when HEAD has no commit."""
        repo = self.workspace.repo
        if repo is None:
            if ref or staged:
                raise ConfigError(f"{self.root} is not a git repository: --ref and --staged need one")
            return None
        if staged and ref:
            raise ConfigError("--staged and --ref exclude each other")
        if staged:
            return repo.staged(index_file)
        return repo.resolve(ref or "HEAD")

    def sync(self, ref: str | Sequence[str] | None = None, *, staged: bool = False, index_file: str | None = None,
             rebuild: bool = False, wait: bool = True, progress: Progress | None = None,
             should_stop: Callable[[], bool] | None = None,
             on_wait: Callable[[], None] | None = None, shard: str | None = None,
             forget: Sequence[str] = ()) -> SyncResult:
        """Bring each ref's view of the index to exactly its tree, embedding only text it has not
        embedded before: `ref` (one name or several: each becomes a tracked ref), or by default
        the checked-out branch (HEAD), the refs the `refs` setting matches and every tracked ref
        that moved. A plain directory: its files. A repository with no commits yet has nothing
        to index: the result says so ("empty"). `shard` "K/N": only the paths whose stable hash
        falls in shard K of N (N jobs sharing one collection do one sync together). `forget`:
        tracked refs to stop tracking first (taken off every point; the points no other ref
        holds go); not the checked-out branch, nor one the `refs` setting matches."""
        from gitindex.plan import Shard
        from gitindex.sync import SyncResult, sync

        which = Shard.parse(shard) if shard else None
        forgotten = self._forgettable(forget, ref, which is not None)
        try:
            views = [v for v in self._views(ref, staged, index_file) if v.ref not in forgotten]
        except EmptyRepositoryError:
            return SyncResult(commit=None, label="empty", notes=["nothing to index yet: the repository has no commits"])
        return sync(self.workspace, views, progress=progress, should_stop=should_stop or (lambda: False),
                    rebuild=rebuild, wait=wait, on_wait=on_wait, shard=which, forget=forgotten)

    def _forgettable(self, names: Sequence[str], given: str | Sequence[str] | None, sharded: bool) -> list[str]:
        """The tracked refs `names` stands for (ConfigError for one that cannot be forgotten)."""
        from gitindex import refs

        if not names:
            return []
        ws, repo = self.workspace, self.workspace.repo
        if repo is None:
            raise ConfigError(f"{self.root} is not a git repository: --forget names a ref")
        if sharded:
            raise ConfigError("--forget and --shard exclude each other: forget a ref in an unsharded sync")
        with reading(ws.manifest_path):
            known = ws.manifest_path.is_file() and ws.manifest.get(MODEL) is not None
            tracked = [s.ref for s in ws.manifest.tracked()] if known else []
        syncing = {refs.short(n) for n in ([given] if isinstance(given, str) else list(given or ()))}
        configured = set(refs.matching(repo, ws.config.refs))
        found = []
        for name in (refs.short(refs.check_name(n)) for n in names):
            # Nothing indexed here yet (a fresh CI runner): the sync reads the refs back from the
            # store first, and says so if the ref is not among them.
            if known and name not in tracked:
                raise ConfigError(f"ref {name!r} is not tracked (tracked refs: {', '.join(tracked) or 'none'})")
            if name == ws.ref:
                raise ConfigError(f"{name!r} is checked out here: a sync always indexes it (check out another "
                                  "branch first)")
            if name in configured:
                raise ConfigError(f"{name!r} matches the `refs` setting ({', '.join(ws.config.refs)}): take it "
                                  "out of the setting instead")
            if name in syncing:
                raise ConfigError(f"--ref and --forget both name {name!r}")
            found.append(name)
        return list(dict.fromkeys(found))

    def _views(self, ref: str | Sequence[str] | None, staged: bool, index_file: str | None) -> list[View]:
        from gitindex import refs
        from gitindex.sync import View

        ws, repo = self.workspace, self.workspace.repo
        names = [ref] if isinstance(ref, str) else list(ref or ())
        if repo is None:
            self.target(names[0] if names else None, staged=staged)  # says why not
            return [View(ws.ref, None)]
        if staged or names:
            if staged and names:
                raise ConfigError("--staged and --ref exclude each other")
            if staged:
                return [View(ws.ref, repo.staged(index_file))]
            given = [refs.check_name(n) for n in names]  # HEAD: the checked-out branch's view
            return [View(ws.ref, repo.resolve("HEAD")) if n == "HEAD" else View(refs.short(n), repo.resolve(n), "given")
                    for n in dict.fromkeys(given)]
        views = [View(ws.ref, repo.resolve("HEAD"))]
        seen = {ws.ref}
        for name in refs.matching(repo, ws.config.refs):
            if name not in seen:
                seen.add(name)
                views.append(View(name, repo.resolve(name), "config"))
        try:
            with reading(ws.manifest_path):
                tracked = ws.manifest.tracked()
        except ManifestError:  # the sync sets it aside and rebuilds it (from the store, refs too)
            tracked = []
        for state in tracked:  # tracked refs that moved since their last sync (other machines' are theirs to sync)
            target = refs.tip(repo, state.ref) if state.ref not in seen and state.origin != "store" else None
            if target is not None and target.tree != state.tree:
                views.append(View(state.ref, target, state.origin))
        return views

    def freshness(self, ref: str | None = None) -> Freshness | None:
        """How a ref's indexed tree (default: the checked-out branch's, or the view search
        falls back to) compares with its tip, HEAD for the checked-out one (None for a plain
        directory)."""
        from gitindex.search import freshness

        self._must_exist()
        return freshness(self.workspace, ref)

    def search(self, query: str, *, limit: int = 10, path: str | None = None, mode: str | None = None,
               lang: str | None = None, symbol: str | None = None, ref: str | None = None,
               all_refs: bool = False) -> list[Hit]:
        """The `limit` chunks that best answer `query`, best first. `mode`: hybrid (the default
        unless configured otherwise), dense or lexical; `path` keeps only paths matching a
        gitignore-style pattern (`*.py`, `src/**/*.ts`), `lang` one language (python, go...),
        `symbol` the chunks defining that name (`send`, `Session.send`). Only chunks of one
        ref's tree: `ref`, by default the checked-out branch; `all_refs`: every tracked ref's
        (each hit says which refs hold it)."""
        from gitindex.search import search

        self._must_exist()
        return search(self.workspace, query, limit=limit, path_glob=path, mode=mode, lang=lang, symbol=symbol,
                      ref=ref, all_refs=all_refs)

    def read(self, path: str, start: int = 1, end: int | None = None) -> list[str]:
        """Lines start..end (1-based, inclusive; end None: to the file's end) of `path` as it was
        indexed, newlines kept: the text search hits point into."""
        from gitindex.read import indexed_lines

        self._must_exist()
        lines = indexed_lines(self.workspace, path)
        return lines[max(0, start - 1): end]

    def status(self) -> dict[str, Any]:
        """What is indexed, how it compares with HEAD, where it is stored (README: JSON contracts)."""
        from gitindex.status import status

        self._must_exist()
        return status(self.workspace)

    def verify(self, ref: str | None = None, *, staged: bool = False,
               index_file: str | None = None) -> VerifyResult:
        """Compare the stored points with a fresh chunking of the trees: of `ref` (its view:
        the points listing it), of the staged tree (the checked-out branch's view), or by
        default of every tracked ref (each point must list exactly the refs that hold it)."""
        from gitindex import refs
        from gitindex.verify import verify, verify_views

        self._must_exist()
        ws, repo = self.workspace, self.workspace.repo
        try:
            if repo is None or staged:
                target = self.target(None, staged=staged, index_file=index_file)
                return verify(ws, ws.source(target), ws.ref if staged else None)
            if ref:
                return verify(ws, ws.source(repo.resolve(ref)), ws.ref if ref == "HEAD" else refs.short(ref))
            if repo.head() is None:
                raise EmptyRepositoryError
            with reading(ws.manifest_path):
                tracked = [s.ref for s in ws.manifest.tracked()]
            names = tracked or [ws.ref]
            views, unseen = [], []
            for name in names:  # the legacy view holds HEAD's tree; refs this worktree cannot see are left out
                target = repo.resolve("HEAD") if name == refs.LEGACY else refs.tip(repo, name, ws.ref)
                if target is not None:
                    views.append((name, ws.source(target)))
                else:
                    unseen.append(name)
            return verify_views(ws, views, unseen=unseen)
        except EmptyRepositoryError:  # no commits: the tree is empty, any stored point is stale
            return replace(verify(ws, None), note="nothing to verify: the repository has no commits")

    def _must_exist(self) -> None:
        """Reading commands never leave a .gitindex/ behind in a plain directory (say, $HOME)."""
        if not self.workspace.is_indexed():
            raise NotIndexedError(f"{self.root} is not indexed: run `gitindex index {self.root}` first")
