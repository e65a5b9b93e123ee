"""Where one repository's index lives, and the parts that serve it (each opened when first used)."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

from gitindex.chunking import CHUNKER_VERSION
from gitindex.config import Config, check_collection
from gitindex.embedding import Embedder, ModelSpec, make_embedder, model_key, resolve_model
from gitindex.errors import ConfigError, NotARepositoryError
from gitindex.manifest import SYNCED_TREE, Manifest, ManifestError, set_aside
from gitindex.repo import Repo, Target
from gitindex.selection import Selector
from gitindex.source import DirectorySource, GitSource, Source
from gitindex.store import VectorStore, open_store

DATA_DIR = "gitindex"  # under the git dir; a plain directory gets .gitindex/ instead


def locate(start: Path, *, allow_plain: bool = False) -> tuple[Repo | None, Path]:
    """The repository around `start` and its top directory; or, when allowed, `start` itself
    as a plain directory."""
    try:
        repo = Repo(start)
    except NotARepositoryError:
        if not allow_plain:
            raise
        if not start.is_dir():
            raise NotARepositoryError(f"{start} is not a directory") from None
        return None, start.resolve()
    return repo, (repo.workdir or repo.gitdir).resolve()


class Workspace:
    """One repository's (or plain directory's) index: manifest, store, vector cache, model."""

    def __init__(self, repo: Repo | None, root: Path, config: Config,
                 embedder: Embedder | None = None) -> None:
        self.repo = repo
        self.root = root
        self.config = config
        if repo is not None:
            # Worktrees share one index (each one's HEAD is another ref) and one vector cache.
            self.data_dir = self.cache_dir = repo.commondir / DATA_DIR
            from gitindex.refs import current

            self.ref = current(repo)  # the view reads use unless told another (refs.py)
        else:
            self.data_dir = self.cache_dir = root / f".{DATA_DIR}"
            self.ref = ""
        self.name = _main_name(repo) if repo is not None else root.name  # the same in every worktree
        self.collection = _collection(config.collection) if config.collection is not None else _collection_name(self.name)
        self._embedder = embedder

    @cached_property
    def repo_key(self) -> str:
        """The repository the points belong to (config repo_key; see repository_key())."""
        if self.config.repo_key:
            return self.config.repo_key
        origin = self.repo.origin_url() if self.repo is not None else None
        return repository_key(origin, self.name)

    @cached_property
    def spec(self) -> ModelSpec:
        return resolve_model(self.config.model)

    @cached_property
    def model_key(self) -> str:
        """What the vectors of this index are keyed by: the model and, for int8, the variant."""
        return model_key(self.spec, self.config.backend, self.config.device)

    @property
    def embedder(self) -> Embedder:
        """The embedder, made on first use and kept (the model loads on its first embed() call)."""
        if self._embedder is None:
            cache = Path(self.config.model_cache).expanduser() if self.config.model_cache else None
            self._embedder = make_embedder(self.spec, self.config.backend, self.config.device, cache)
        return self._embedder

    @embedder.setter
    def embedder(self, embedder: Embedder) -> None:
        """Use an embedder already loaded (a runner keeps one between syncs)."""
        self._embedder = embedder

    @property
    def syntax(self) -> bool:
        """Chunks follow definitions where a grammar fits (config: chunker = "syntax")."""
        return self.config.chunker == "syntax"

    @property
    def chunker_id(self) -> str:
        if self.syntax:
            from gitindex.syntax import CHUNKER_ID

            return f"{CHUNKER_ID}+{CHUNKER_VERSION}/{self.spec.budget}"
        return f"{CHUNKER_VERSION}/{self.spec.budget}"

    @cached_property
    def selector(self) -> Selector:
        return Selector(self.config)

    @property
    def manifest_path(self) -> Path:
        return self.data_dir / "manifest.sqlite"

    @cached_property
    def manifest(self) -> Manifest:
        """Raises ManifestError when the file is unreadable (see recover_manifest())."""
        return Manifest(self.manifest_path, self.ref)

    def recover_manifest(self) -> str | None:
        """An unreadable manifest is set aside and a new one started, for sync (under its lock)
        to rebuild from the store; says what happened, or None when the manifest reads fine."""
        try:
            self.manifest.check()
            return None
        except ManifestError as exc:
            if "manifest" in self.__dict__:
                self.__dict__.pop("manifest").close()
            aside = set_aside(self.manifest_path)
            why = exc.why
        self.manifest.check()  # the new, empty one
        return (f"the manifest was unreadable ({why}): set aside as {aside.name}, and a new one "
                "was rebuilt from the store")

    @cached_property
    def store(self) -> VectorStore:
        return open_store(
            url=self.config.qdrant_url, api_key=self.config.qdrant_api_key,
            collection=self.collection, data_dir=self.data_dir, lock_timeout=30.0, repo=self.repo_key,
            server_budget=self.config.qdrant_timeout,
        )

    @property
    def sync_lock_path(self) -> Path:
        return self.data_dir / "sync.lock"

    def is_indexed(self) -> bool:
        """Whether an index was ever made here (a git repository's always counts)."""
        return self.repo is not None or self.data_dir.is_dir()

    def source(self, target: Target | None) -> Source:
        """What a sync of `target` reads (a plain directory has no target), with its baseline."""
        if self.repo is None:
            return DirectorySource(self.root, self.manifest.dir_state())
        assert target is not None, "a git repository is synced to a target tree"
        return GitSource(self.repo, target, self.manifest.get(SYNCED_TREE))

    def close(self) -> None:
        """Release the store (a writer keeps its shard and lock between sessions) and the manifest."""
        if "store" in self.__dict__:
            self.store.close()
        if "manifest" in self.__dict__:
            self.manifest.close()


def repository_key(origin: str | None, directory: str) -> str:
    """A repository's name, the same on every clone: its origin URL without scheme, user,
    port-less `git@host:` form and `.git` (`github.com/psf/requests`), else its directory name."""
    if origin:
        url = re.sub(r"^[a-z+]+://", "", origin.strip())  # https://, ssh://, git+ssh://
        url = re.sub(r"^[^@/]+@", "", url)  # user@ or user:token@
        url = re.sub(r"^([^/:]+):(?!\d+/)", r"\1/", url)  # git@github.com:psf/requests (scp form)
        url = re.sub(r"^([^/:]+):\d+/", r"\1/", url)  # a port
        url = url.rstrip("/").removesuffix(".git").rstrip("/")
        if url:
            return url.lower()
    return directory


def _collection(name: str) -> str:
    """A configured name, checked again here for a Config made without config.load: it becomes
    a directory of the embedded store, which must stay under it."""
    try:
        return check_collection(name)
    except ValueError as exc:
        raise ConfigError(f"bad collection name {name!r}: {exc}") from None


def _main_name(repo: Repo) -> str:
    """The main worktree's directory name (a bare repository's, less .git): linked worktrees
    share its index, whatever their own directories are called."""
    common = repo.commondir.resolve()
    if common.name == ".git":
        return common.parent.name
    return common.name.removesuffix(".git") or common.name


def _collection_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")
    return cleaned or "gitindex"
