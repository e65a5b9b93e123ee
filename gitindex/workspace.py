"""Where one repository's index lives, and the parts that serve it (each opened when first used)."""

from __future__ import annotations

import re
import sqlite3
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

from gitindex.chunking import CHUNKER_VERSION
from gitindex.config import BACKENDS, Config, check_collection
from gitindex.embedding import Embedder, ModelSpec, make_embedder, model_key, resolve_model
from gitindex.errors import ConfigError, NotARepositoryError
from gitindex.manifest import CHUNKER, MODEL, SWITCH, SYNCED_TREE, Manifest, ManifestError, set_aside, switch_of
from gitindex.repo import Repo, Target
from gitindex.selection import Selector
from gitindex.source import DirectorySource, GitSource, Source
from gitindex.store import VectorStore, open_store
from gitindex.store.swap import BUILD_MANIFEST, NEXT

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
        # A sync writes with the configured settings. Other commands, while a switch of model or
        # chunker is built beside the index (store/swap.py), read with those the index was made with.
        self.syncing = False
        self._serving_memo: tuple[tuple[str | None, ...], Serving | None] | None = None
        self._serving_embedder: Embedder | None = None
        self._manifest_name = "manifest.sqlite"
        self._store_collection = self.collection  # beside(): the shard a switch builds

    @cached_property
    def repo_key(self) -> str:
        """The repository the points belong to (config repo_key; see repository_key())."""
        if self.config.repo_key:
            return self.config.repo_key
        origin = self.repo.origin_url() if self.repo is not None else None
        return repository_key(origin, self.name)

    @cached_property
    def _spec(self) -> ModelSpec:
        return resolve_model(self.config.model)

    @cached_property
    def _model_key(self) -> str:
        return model_key(self._spec, self.config.backend, self.config.device)

    @property
    def spec(self) -> ModelSpec:
        serving = self.serving()
        return serving.spec if serving else self._spec

    @property
    def model_key(self) -> str:
        """What the vectors of this index are keyed by: the model and, for int8, the variant."""
        serving = self.serving()
        return serving.model_key if serving else self._model_key

    @property
    def embedder(self) -> Embedder:
        """The embedder, made on first use and kept (the model loads on its first embed() call)."""
        serving = self.serving()
        if serving is not None:  # a switch under way: queries are embedded as the index was
            if self._embedder is not None and getattr(self._embedder, "model_id", None) == serving.model_key:
                return self._embedder
            if self._serving_embedder is None or self._serving_embedder.model_id != serving.model_key:
                cache = Path(self.config.model_cache).expanduser() if self.config.model_cache else None
                self._serving_embedder = make_embedder(serving.spec, serving.backend, serving.device, cache)
            return self._serving_embedder
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
        serving = self.serving()
        return serving.chunker.startswith("syntax") if serving else self.config.chunker == "syntax"

    @property
    def chunker_id(self) -> str:
        serving = self.serving()
        return serving.chunker if serving else self._chunker_id

    @property
    def _chunker_id(self) -> str:
        if self.config.chunker == "syntax":
            from gitindex.syntax import CHUNKER_ID

            return f"{CHUNKER_ID}+{CHUNKER_VERSION}/{self._spec.budget}"
        return f"{CHUNKER_VERSION}/{self._spec.budget}"

    def serving(self) -> Serving | None:
        """While a switch of model or chunker to the configured settings is built beside the
        embedded index (sync.py, store/swap.py), the settings the index searches use was made
        with: search embeds queries with its model, verify chunks as it did. None otherwise,
        and always for a sync. Read from the manifest at each call (a switch may complete
        meanwhile), a few microseconds."""
        if self.syncing or self.config.qdrant_url or not self.manifest_path.is_file():
            return None
        try:
            key = (self.manifest.get(SWITCH), self.manifest.get(MODEL), self.manifest.get(CHUNKER))
        except (ManifestError, sqlite3.DatabaseError):
            return None  # the command reports the manifest itself
        if key[0] is None:
            return None
        if self._serving_memo is None or self._serving_memo[0] != key:
            self._serving_memo = (key, self._serving_for(*key))
        serving = self._serving_memo[1]
        if serving is not None and self.swapped_unrecorded():
            return None  # the shard was swapped in, the manifest not yet: refused until a sync
        return serving

    def swapped_unrecorded(self) -> bool:
        """A switch's new shard is in place and the manifest does not say so yet (store/swap.py
        step 3): what it names is the old index's model; search refuses until a sync finishes."""
        if self.config.qdrant_url or not self.manifest_path.is_file() or self.next_store_path.exists():
            return False
        return (switch_of(self.manifest.get(SWITCH)) or {}).get("phase") == "swapping"

    def _serving_for(self, switch: str | None, built: str | None, chunker: str | None) -> Serving | None:
        to = switch_of(switch) or {}
        try:
            target, swapping = (to["model"], to["chunker"]), to.get("phase") == "swapping"
        except KeyError:
            return None
        if built is None or chunker is None or target != (self._model_key, self._chunker_id):
            return None  # settings that are neither the index's nor the build's: as they are
        spec = resolve_model(built.partition("#")[0]) if built != self._model_key else self._spec
        for backend, device in ((self.config.backend, self.config.device), *((b, None) for b in BACKENDS)):
            if model_key(spec, backend, device) == built:
                return Serving(spec, built, backend, device, chunker, swapping)
        return None  # a model this gitindex no longer makes: search says so

    @property
    def next_store_path(self) -> Path:
        """The embedded shard a switch builds (store/swap.py)."""
        return self.data_dir / "qdrant" / f"{self.collection}{NEXT}"

    def beside(self) -> Workspace:
        """The workspace a switch builds in, beside this one (sync.py: _Switch): the configured
        settings, the same repository and vector cache, and a manifest and an embedded shard of
        its own (manifest.next.sqlite, qdrant/<collection>.next)."""
        other = Workspace(self.repo, self.root, self.config, self.embedder)
        other.syncing = True
        other.data_dir, other.cache_dir, other.collection = self.data_dir, self.cache_dir, self.collection
        other.__dict__["repo_key"] = self.repo_key
        other._manifest_name = BUILD_MANIFEST
        other._store_collection = f"{self.collection}{NEXT}"
        return other

    def for_sync(self) -> None:
        """A sync begins: the configured settings from now on (sync() sets `syncing` back at
        its end). An embedder handed in that is the served index's model during a switch (a
        resident's or a runner's, kept from a read) is kept for reads, never written with."""
        serving = self.serving()
        self.syncing = True
        held = self._embedder
        if (serving is not None and held is not None and serving.model_key != self._model_key
                and getattr(held, "model_id", None) == serving.model_key):
            self._embedder, self._serving_embedder = None, held

    @cached_property
    def selector(self) -> Selector:
        return Selector(self.config)

    @property
    def manifest_path(self) -> Path:
        return self.data_dir / self._manifest_name

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
            collection=self._store_collection, data_dir=self.data_dir, lock_timeout=30.0, repo=self.repo_key,
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


class Serving(NamedTuple):
    """The settings an index being switched away from was made with (Workspace.serving())."""

    spec: ModelSpec
    model_key: str
    backend: str
    device: str | None
    chunker: str
    swapping: bool  # the switch's swap began: the shard may be the new one already


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
