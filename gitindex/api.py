"""The library: `gitindex.open(path)` gives an Index to sync, search, inspect and verify.

The CLI, the git hooks' runner and any Python program use the same object; it reads settings
from the repository's config file and the arguments it is given, never from the environment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitindex.config import load
from gitindex.embedding import Embedder
from gitindex.errors import ConfigError, EmptyRepositoryError, NotIndexedError
from gitindex.repo import Target
from gitindex.workspace import Workspace, locate

if TYPE_CHECKING:
    from gitindex.search import Freshness, Hit
    from gitindex.sync import Progress, SyncResult
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

    def sync(self, ref: str | None = None, *, staged: bool = False, index_file: str | None = None,
             rebuild: bool = False, wait: bool = True, progress: Progress | None = None,
             should_stop: Callable[[], bool] | None = None,
             on_wait: Callable[[], None] | None = None, shard: str | None = None) -> SyncResult:
        """Bring the index to exactly `ref`'s tree (default HEAD; a plain directory: its files),
        embedding only text it has not embedded before. A repository with no commits yet has
        nothing to index: the result says so ("empty"). `shard` "K/N": only the paths whose
        stable hash falls in shard K of N (N jobs sharing one collection do one sync together)."""
        from gitindex.plan import Shard
        from gitindex.sync import SyncResult, sync

        which = Shard.parse(shard) if shard else None
        try:
            target = self.target(ref, staged=staged, index_file=index_file)
        except EmptyRepositoryError:
            return SyncResult(commit=None, label="empty", notes=["nothing to index yet: the repository has no commits"])
        return sync(self.workspace, target, progress=progress, should_stop=should_stop or (lambda: False),
                    rebuild=rebuild, wait=wait, on_wait=on_wait, shard=which)

    def freshness(self) -> Freshness | None:
        """How the indexed tree compares with HEAD's (None for a plain directory)."""
        from gitindex.search import freshness

        self._must_exist()
        return freshness(self.workspace)

    def search(self, query: str, *, limit: int = 10, path: str | None = None, mode: str | None = None,
               lang: str | None = None, symbol: str | None = None) -> list[Hit]:
        """The `limit` chunks that best answer `query`, best first. `mode`: hybrid (the default
        unless configured otherwise), dense or lexical; `path` keeps only paths matching a
        gitignore-style pattern (`*.py`, `src/**/*.ts`), `lang` one language (python, go...),
        `symbol` the chunks defining that name (`send`, `Session.send`)."""
        from gitindex.search import search

        self._must_exist()
        return search(self.workspace, query, limit=limit, path_glob=path, mode=mode, lang=lang, symbol=symbol)

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
        """Compare every stored point with a fresh chunking of `ref`'s tree (default HEAD)."""
        from gitindex.verify import verify

        self._must_exist()
        try:
            target = self.target(ref, staged=staged, index_file=index_file)
        except EmptyRepositoryError:  # no commits: the tree is empty, any stored point is stale
            return replace(verify(self.workspace, None), note="nothing to verify: the repository has no commits")
        return verify(self.workspace, self.workspace.source(target))

    def _must_exist(self) -> None:
        """Reading commands never leave a .gitindex/ behind in a plain directory (say, $HOME)."""
        if not self.workspace.is_indexed():
            raise NotIndexedError(f"{self.root} is not indexed: run `gitindex index {self.root}` first")
