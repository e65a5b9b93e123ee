"""search: embed a query, ask the store, and say how fresh the index is."""

from __future__ import annotations

import contextlib
import functools
import json
from dataclasses import dataclass

from gitindex import lexical, refs
from gitindex.embedding import Embedder
from gitindex.errors import ConfigError, IndexMismatchError, NotIndexedError, StoreError
from gitindex.manifest import LAYOUT, MODEL, REBUILDING, SERVING, STORE_POINTS, Manifest, reading
from gitindex.paths import glob_filter
from gitindex.repo import Repo
from gitindex.store import LAYOUT as STORE_LAYOUT
from gitindex.store import MODES, REFS, Condition, InView, Match, Query
from gitindex.workspace import Workspace


@dataclass(frozen=True, slots=True)
class Hit:
    path: str
    start_line: int
    end_line: int
    score: float  # cosine (dense), BM25 (lexical) or fused reciprocal rank (hybrid): higher is better
    text: str
    symbol: str = ""  # the definition the chunk holds (`Session.send`), if known
    kind: str = ""  # function, method, class...
    language: str = ""
    refs: tuple[str, ...] = ()  # the tracked refs whose trees hold the chunk

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "start_line": self.start_line, "end_line": self.end_line,
                "score": round(self.score, 4), "text": self.text, "symbol": self.symbol,
                "kind": self.kind, "language": self.language, "refs": list(self.refs)}


@dataclass(frozen=True, slots=True)
class Freshness:
    """How the indexed tree compares with HEAD's (git repositories only)."""

    synced_commit: str | None  # None after a --staged sync, or before any
    synced: bool  # a sync has completed
    head: str | None  # the ref's tip (HEAD for the checked-out one)
    files_differ: int
    ref: str = ""  # the view compared (refs.py)
    note: str = ""  # the view is not the checked-out branch's: why
    tip: str = "HEAD"  # what `head` is the tip of

    @property
    def stale(self) -> bool:
        return not self.synced or self.files_differ > 0

    def describe(self) -> str:
        if not self.synced:
            return "the index has not been synced yet: run `gitindex sync`"
        at = self.synced_commit[:12] if self.synced_commit else "the staged tree"
        head = self.head[:12] if self.head else "no commit"
        return (f"index at {at}, {self.tip} at {head}, {self.files_differ} files differ "
                "(run `gitindex sync`, or search with --refresh)")


def reading_manifest(ws: Workspace) -> contextlib.AbstractContextManager[None]:
    """A manifest page that fails to read (a damaged file) is a ManifestError, not a crash."""
    return reading(ws.manifest_path)


def check_store(ws: Workspace) -> bool:
    """Whether the store holds an index to answer from: False before any sync. A store the
    manifest says was written but that is gone (a deleted directory, a dropped collection) is
    an error, never an empty result."""
    if ws.store.exists():
        return True
    if not ws.manifest_path.exists():  # never indexed here: create nothing
        return False
    with reading_manifest(ws):
        files, _chunks = ws.manifest.distinct_counts()
        recorded = int(ws.manifest.get(STORE_POINTS) or 0)
    if files or recorded:
        raise StoreError(
            f"the index is missing from the store {ws.store.location} (collection {ws.collection}), "
            f"though the manifest records {files} indexed files: run `gitindex sync` to rebuild it "
            "(vectors already computed are reused)")
    return False


def freshness(ws: Workspace, ref: str | None = None) -> Freshness | None:
    """Compare trees, not commits: an empty commit or a --staged sync of HEAD's tree is fresh.
    `ref`'s view against its tip, or by default the view search answers from against HEAD.
    None for a plain directory, which has no HEAD to compare with."""
    if ws.repo is None:
        return None
    with reading_manifest(ws):
        view, note = search_view(ws, ref)
        return _freshness(ws, ws.repo, view, ref, note)


def search_view(ws: Workspace, ref: str | None = None) -> tuple[str | None, str]:
    """The ref whose view a search reads (None: no ref filter, an index from before refs) and,
    when it is not the checked-out branch's, why. Raises NotIndexedError for an untracked
    `ref`."""
    m = ws.manifest
    if ws.repo is None:
        return None, ""
    if ref is not None:
        name = refs.short(ref)
        if m.ref_state(name) is None:
            tracked = ", ".join(s.ref for s in m.tracked()) or "none"
            raise NotIndexedError(f"ref {name!r} is not indexed (tracked refs: {tracked}); "
                                  f"run `gitindex sync --ref {name}` first")
        return name, ""
    if m.ref_state(ws.ref) is not None:
        return ws.ref, ""
    if m.ref_state(refs.LEGACY) is not None:
        return None, ""
    synced = [s for s in m.tracked() if s.tree is not None]
    if not synced:
        return ws.ref, ""
    latest = max(synced, key=lambda s: s.synced_at or 0.0)
    return latest.ref, (f"{ws.ref} is not indexed yet: showing {latest.ref}'s index "
                        "(run `gitindex sync`)")


def _freshness(ws: Workspace, repo: Repo, view: str | None, ref: str | None, note: str) -> Freshness:
    state = ws.manifest.ref_state(view if view is not None else refs.LEGACY)
    synced_tree = state.tree if state else None
    synced_commit = state.commit if state else None
    if ref is not None and not refs.is_detached_name(refs.short(ref)):
        tip = repo.resolve(ref) if refs.exists(repo, ref) else None
    else:
        tip = repo.head()  # the checked-out tree, whichever view answers for it
    name, label = view or "", "HEAD" if ref is None else refs.short(ref)
    if tip is None:
        return Freshness(synced_commit, synced_tree is not None, None, 0, name, note, label)
    if synced_tree is None or synced_tree not in repo.git:
        return Freshness(synced_commit, False, tip.commit, ws.manifest.counts(name)[0], name, note, label)
    return Freshness(synced_commit, True, tip.commit, repo.count_differences(synced_tree, tip.tree), name, note,
                     label)


def check_index(ws: Workspace) -> None:
    """Queries must be embedded by the model that built the index, against the layout it has:
    during a server's blue/green rebuild, the collection searchers still reach."""
    m = ws.manifest
    serving = m.get(SERVING) if m.get(REBUILDING) else None
    if serving is not None:
        built, _chunker, layout = json.loads(serving)
        if built != ws.model_key:
            raise IndexMismatchError(
                f"a rebuild with model {m.get(MODEL)!r} is under way (into {m.get(REBUILDING)}); until it "
                f"completes, searches reach the collection built with {built!r}: search with that model's "
                "settings, or run `gitindex sync` to finish the rebuild")
        return
    built = m.get(MODEL)
    if built is not None and built != ws.model_key and ws.swapped_unrecorded():
        raise IndexMismatchError("a switch to a new index was interrupted as it was swapped in (the new "
                                 "index is in place, the manifest does not say so yet): run `gitindex sync` "
                                 "to finish it")
    if built is not None and built != ws.model_key:
        model, _, variant = built.partition("#")
        if variant == "int8" and built.partition("#")[0] == ws.model_key.partition("#")[0]:
            raise IndexMismatchError(  # an int8 recipe this version no longer makes (#int8: per-batch scales)
                f"the index was built with {built!r}, an int8 model this gitindex no longer makes (its vectors "
                f"depended on the batch); run `gitindex sync` to re-index with {ws.model_key!r}")
        hint = f"--model {model}" + (" --backend onnx-int8" if variant else " --backend onnx")
        raise IndexMismatchError(
            f"the index was built with model {built!r}, not {ws.model_key!r}: search with "
            f"{hint}, or re-index with `gitindex sync --rebuild` and these settings"
        )
    layout = m.get(LAYOUT) or "1"
    if built is not None and layout != STORE_LAYOUT:
        raise IndexMismatchError(
            f"the index was built by an older gitindex (store layout {layout}, now {STORE_LAYOUT}): "
            "run `gitindex sync` once to bring it up to date (vectors already computed are reused)"
        )


# Names people type for a language, as the index records it (chunking.language).
_LANGUAGE_ALIASES = {"py": "python", "js": "javascript", "ts": "typescript", "tsx": "typescript",
                     "jsx": "javascript", "c++": "cpp", "cxx": "cpp", "rs": "rust", "golang": "go",
                     "sh": "shell", "bash": "shell", "md": "markdown", "c#": "csharp", "rb": "ruby"}


# Common names, shown when --lang names none: those the syntax chunker parses, then others.
_COMMON_LANGUAGES = ("python", "javascript", "typescript", "go", "rust", "java", "c", "cpp", "csharp",
                     "ruby", "php", "kotlin", "swift", "scala", "shell", "markdown", "yaml", "json", "toml")


@functools.cache  # the CLI checks the filters before opening the index, search() again
def known_languages() -> frozenset[str]:
    """Every name the index can record as a chunk's language: identify's file types, folded as
    chunking.language folds them, and `text` (a file with none). 10 ms: only for --lang."""
    from identify.identify import ALL_TAGS

    from gitindex.chunking import _NOT_LANGUAGES, _SAME_LANGUAGE  # the one folding chunks get

    return frozenset({_SAME_LANGUAGE.get(tag, tag) for tag in ALL_TAGS} - _NOT_LANGUAGES | {"text"})


def check_filters(path_glob: str | None, lang: str | None, symbol: str | None) -> str | None:
    """Refuse filters that could only match nothing (an empty language, a glob git would ignore,
    a language no file has), so that a typo is a usage error, not an empty answer. Returns the
    language as the index records it (None: no language filter)."""
    if path_glob is not None:
        _check_glob(path_glob)
    if symbol is not None and not symbol.strip():
        raise ConfigError("bad --symbol '': expected a name such as send or Session.send")
    if lang is None:
        return None
    if not lang.strip():
        raise ConfigError(f"bad --lang {lang!r}: expected a language such as "
                          f"{', '.join(_COMMON_LANGUAGES[:4])}")
    name = lang.strip().lower()
    name = _LANGUAGE_ALIASES.get(name, name)
    from gitindex.chunking import _SAME_LANGUAGE

    name = _SAME_LANGUAGE.get(name, name)  # identify's tag for what the index calls otherwise: zsh, pyi
    known = known_languages()
    if name in known:
        return name
    import difflib

    close = difflib.get_close_matches(name, sorted(known | set(_LANGUAGE_ALIASES)), n=3, cutoff=0.7)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise ConfigError(f"bad --lang {lang!r}: no such language; {hint}known names include "
                      f"{', '.join(_COMMON_LANGUAGES)} and text ({len(known)} in all, identify's file types)")


def _check_glob(glob: str) -> None:
    import pathspec
    from pathspec.patterns.gitignore.base import GitIgnorePatternError

    why = ""
    if not glob.strip():
        why = "an empty glob matches nothing; leave --path out to search every path"
    else:
        try:
            patterns = pathspec.GitIgnoreSpec.from_lines([glob]).patterns
        except GitIgnorePatternError as exc:
            why = f"not a gitignore-style glob: {exc}"
        else:
            if not patterns or patterns[0].include is None:
                why = ("not a glob git understands (an unclosed '[', or a '#' comment), so it would "
                       "match nothing")
            elif not patterns[0].include:
                why = "a '!' pattern on its own matches nothing; give the paths to keep, e.g. 'src/**/*.py'"
    if why:
        raise ConfigError(f"bad --path {glob!r}: {why}")


def search(ws: Workspace, query: str, *, limit: int = 10, path_glob: str | None = None,
           mode: str | None = None, lang: str | None = None, symbol: str | None = None,
           embedder: Embedder | None = None, ref: str | None = None, all_refs: bool = False) -> list[Hit]:
    """The `limit` chunks that best answer `query`, best first.

    `mode` (default: the configured search_mode, hybrid): dense ranks by meaning, lexical by
    BM25 over words, hybrid fuses both with the definitions the query names. `path_glob`
    filters paths (gitignore syntax: `*.py`, `src/**/*.ts`), in the store as far as payload
    filters go, then exactly; `lang` keeps one language; `symbol` keeps chunks defining that
    name (`send`, `Session.send`; any case). Only chunks of one ref's tree (search_view():
    `ref`, by default the checked-out branch), or with `all_refs` of any tracked ref."""
    mode = mode or ws.config.search_mode
    if mode not in MODES:
        raise ConfigError(f"unknown search mode {mode!r}: choose one of {', '.join(MODES)}")
    if not query.strip():
        raise ConfigError("the query is empty: say what to look for")
    if ref is not None and all_refs:
        raise ConfigError("--ref and --all-refs exclude each other")
    language = check_filters(path_glob, lang, symbol)
    if not check_store(ws):
        return []
    with reading_manifest(ws):
        check_index(ws)
        view = None if all_refs else search_view(ws, ref)[0]
        state = ws.manifest.ref_state(view) if view is not None else None
        own = tuple(ws.manifest.overrides(state.ref)) if state is not None and state.base is not None else ()
    where: tuple[Condition, ...] = ()
    matches = None
    if path_glob is not None:
        where, matches = glob_filter(path_glob)
    if view is not None:
        where = (*where, InView(view, state.base if state is not None else None, own))
    if language is not None:
        where = (*where, Match("language", (language,)))
    if symbol:
        where = (*where, Match("names", (symbol.lower().replace("::", "."),)))
    vector = (embedder or ws.embedder).embed([query])[0].tolist() if mode != "lexical" else None
    sparse = lexical.query(query) if mode != "dense" else None
    names = tuple(lexical.query_names(query)) if mode == "hybrid" else ()
    weights = ws.config.fusion_weights
    hits: list[tuple[float, dict[str, object]]] = []
    offset, page = 0, limit
    with ws.store.session():
        while len(hits) < limit:
            found = ws.store.query(Query(vector=vector, sparse=sparse, names=names, limit=page, offset=offset,
                                         where=where, mode=mode, weights=(weights[0], weights[1], weights[2]),
                                         rrf_k=ws.config.fusion_k))
            for p in found:
                path = str(p.payload["path"])
                if matches is None or matches(path):
                    hits.append((p.score, p.payload))
            if len(found) < page:
                break
            offset += page
            page = min(page * 4, 4096)  # what the filters let through matched poorly: look further
    with reading_manifest(ws):  # (which overlays inherit each hit)
        return [_hit(score, payload, ws.manifest) for score, payload in hits[:limit]]


def _hit(score: float, payload: dict[str, object], manifest: Manifest) -> Hit:
    held = payload.get(REFS)
    listed = manifest.views([str(r) for r in held], str(payload["path"])) if isinstance(held, list) else ()
    return Hit(str(payload["path"]), int(str(payload["start_line"])), int(str(payload["end_line"])), float(score),
               str(payload.get("text", "")), str(payload.get("symbol") or ""), str(payload.get("kind") or ""),
               str(payload.get("language") or ""),
               listed)
