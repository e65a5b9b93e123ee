"""sync: bring the store to exactly the chunks of a source, embedding only new text.

The run: reconcile the manifest with the store (another store, another model, a lost manifest),
then for each ref to sync (refs.py), plan() the steps, apply() them when there are any
(apply.py), and record the ref's target as synced. A ref's last synced tree moves only when its
whole run completes. A ref synced for the first time starts from the closest tracked ref's view
(its points list one more ref), so only what differs is read; a tracked ref that is gone is
dropped from every point.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from gitindex import faults
from gitindex import refs as refnames
from gitindex.chunking import Chunk
from gitindex.errors import IndexMismatchError, StoreError, StoreUnreadableError
from gitindex.lock import sync_lock
from gitindex.manifest import (
    CHUNKER,
    COLLECTION,
    LAST_RUN,
    LAYOUT,
    MODEL,
    REBUILDING,
    REPO_KEY,
    SELECTION,
    SERVING,
    STORE,
    STORE_POINTS,
    SWITCH,
    SYNCED_TREE,
    FileRecord,
    ManifestError,
    switch_of,
)
from gitindex.memory import peak_rss_mb
from gitindex.plan import Shard, Step, only_shard, plan
from gitindex.repo import Target
from gitindex.store import LAYOUT as STORE_LAYOUT
from gitindex.store import point_id, swap
from gitindex.workspace import Workspace


class View(NamedTuple):
    """One ref to bring to its target: its name in the index (refs.py), the tree (None: a plain
    directory) and why it is tracked (head, given, config)."""

    ref: str
    target: Target | None
    origin: str = "head"


@dataclass
class SyncResult:
    """What one run did; `to_json()` is the contract of `sync --json`."""

    commit: str | None
    label: str
    complete: bool = True
    added: int = 0
    modified: int = 0
    deleted: int = 0
    renamed: int = 0
    unchanged: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    embedded: int = 0
    reused: int = 0
    deleted_chunks: int = 0
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    memory_limit_mb: float | None = None  # the limit batches adapted to; None: nothing was applied
    notes: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)  # the refs this run synced, first the main one
    # Seconds spent per phase: git, read_chunk (main thread), lookup, embed (embedding thread),
    # store, manifest (writing thread). The threads overlap, so they can add up to more than wall.
    phases: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))

    def to_json(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "complete": self.complete,
            "files": {
                "added": self.added, "modified": self.modified, "deleted": self.deleted,
                "renamed": self.renamed, "unchanged": self.unchanged,
                "skipped": sum(self.skipped.values()),
                "skipped_by_reason": dict(sorted(self.skipped.items())),
            },
            "chunks": {"embedded": self.embedded, "reused": self.reused, "deleted": self.deleted_chunks},
            "seconds": round(self.seconds, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "memory_limit_mb": None if self.memory_limit_mb is None else round(self.memory_limit_mb),
            "phases": {k: round(v, 3) for k, v in sorted(self.phases.items())},
            "notes": self.notes,
            "refs": self.refs,
        }


class Progress(Protocol):
    def start(self, total_files: int | None) -> None: ...

    def advance(self, files: int, chunks: int) -> None: ...



def sync(
    ws: Workspace,
    target: Target | Sequence[View] | None,
    *,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    rebuild: bool = False,
    wait: bool = True,
    on_wait: Callable[[], None] | None = None,
    shard: Shard | None = None,
    forget: Sequence[str] = (),
) -> SyncResult:
    """Index `target` (a git tree; None for a plain directory) incrementally, or each of
    several refs' views (the first is the main one: its commit and label are the result's).

    Raises LockedError when another sync holds the repository and `wait` is False, and
    Interrupted (after finishing the current batch) when `should_stop()` turns true.
    """
    started = time.monotonic()
    if target is None or isinstance(target, Target):
        views: list[View] = [View(ws.manifest.ref, target)]
    else:
        views = list(target)
    main = views[0].target
    result = SyncResult(commit=main.commit if main else None, label=main.label if main else "directory")
    with sync_lock(ws.sync_lock_path, ws.config.lock_timeout if wait else 0, on_wait):
        error: BaseException | None = None
        ws.for_sync()  # the configured settings, not those of an index a switch is replacing
        try:
            recovered = ws.recover_manifest()  # under the lock: no other sync has it open
            if recovered:
                result.notes.append(recovered)
            try:
                if not ws.store.looks_sound():
                    raise StoreUnreadableError(f"the embedded store {ws.store.location} is missing parts or "
                                               "its configuration does not read back")
                _run_all(ws, views, result, progress, should_stop, rebuild, shard, forget)
            except StoreUnreadableError as exc:
                ws.store.close()
                moved = ws.store.set_aside()
                if moved is None:  # a server's collection is not ours to move
                    raise
                ws.manifest.reset()  # re-read every file; vectors come from the cache, not the model
                result.notes.append(f"the embedded store could not be opened ({exc}); set aside as {moved} "
                                    "and rebuilt")
                _run_all(ws, views, result, progress, should_stop, rebuild, shard, forget)
        except BaseException as exc:
            error = exc
            raise
        finally:
            ws.store.close()
            ws.syncing = False
            result.seconds = time.monotonic() - started
            result.peak_rss_mb = peak_rss_mb()
            if result.memory_limit_mb is None:  # nothing applied (a no-op reads no memory figures)
                result.memory_limit_mb = ws.config.memory_limit_mb
            elif result.peak_rss_mb > result.memory_limit_mb:
                result.notes.append(
                    f"peak RSS {result.peak_rss_mb:.0f} MB went over the memory limit of "
                    f"{result.memory_limit_mb:.0f} MB: the model, its runtime and the store need that "
                    "much at least (README: How it works, Memory)")
            last = {"finished_at": time.time(), "label": result.label, "summary": result.to_json(),
                    "error": None if error is None else (str(error) or type(error).__name__)}
            try:
                ws.manifest.set(**{LAST_RUN: json.dumps(last)})
            except (ManifestError, sqlite3.DatabaseError):
                if error is None:
                    raise
                # else the manifest itself failed: the error being raised says so
    return result


def _run_all(ws: Workspace, views: Sequence[View], result: SyncResult, progress: Progress | None,
             should_stop: Callable[[], bool], rebuild: bool, shard: Shard | None, forget: Sequence[str]) -> None:
    switch = _Switch.under_way(ws, result, rebuild)
    if switch is None:
        reconcile = _Reconcile(ws, result)
        store_had_points = reconcile.run(rebuild)
        if reconcile.beside is None:
            _sync_views(ws, views, result, progress, should_stop, store_had_points, shard, forget)
            return
        switch = _Switch.begin(ws, result, reconcile.beside)
        rebuild = True  # the build starts from nothing (what an abandoned one left is gone)
    for ref in forget:  # the index searches use until the swap, and (below) the build
        if ws.manifest.ref_state(ref) is not None:
            _drop(ws, ref)
    switch.run(_with_tracked(ws, views), result, progress, should_stop, rebuild, shard, forget)


def _sync_views(ws: Workspace, views: Sequence[View], result: SyncResult, progress: Progress | None,
                should_stop: Callable[[], bool], store_had_points: bool, shard: Shard | None,
                forget: Sequence[str] = ()) -> bool:
    """Bring each ref's view to its target, the first one first, after dropping the refs to
    `forget`; True when every view's whole target was recorded as synced (a complete run of
    every shard)."""
    m = ws.manifest
    if ws.repo is not None:
        _name_legacy_view(ws, views[0].ref, result)
        if shard is None:
            _drop_gone(ws, {v.ref for v in views}, result)
        for ref in forget:
            if m.ref_state(ref) is None:  # (checked before the sync when an index was made here)
                result.notes.append(f"ref {ref} is not tracked: nothing to forget")
                continue
            _drop(ws, ref)
            result.notes.append(f"forgot ref {ref}: it is no longer tracked, and its points no other ref "
                                "holds were deleted")
    result.refs = [v.ref for v in views]
    done = True
    for view in views:
        m.ref = view.ref
        m.track(view.ref, view.origin)
        if view.target is not None and m.get(SYNCED_TREE) is None and not m.counts()[0]:
            _seed(ws, view, result)
        done = _index(ws, view.target, result, progress, should_stop, store_had_points, shard) and done
        if not result.complete:
            break
    for ref in m.overlays_over(OVERLAY_MOST):
        state = m.ref_state(ref)
        _materialize(ws, ref)
        result.notes.append(f"{ref} differs from {state.base if state else 'its base'} in over {OVERLAY_MOST} "
                            "files: its points now list it")
    m.ref = views[0].ref
    if result.complete and m.get(REBUILDING):  # every view complete: searchers switch to the rebuilt collection
        with ws.store.session(write=True):
            ws.store.finish_rebuild()
        m.set(**{REBUILDING: None, SERVING: None})
    return done and result.complete


def _with_tracked(ws: Workspace, views: Sequence[View]) -> list[View]:
    """`views`, and every other tracked ref this worktree can resolve: an index built anew (a
    switch of model or chunker) holds all of them."""
    repo = ws.repo
    found = list(views)
    if repo is None:
        return found
    names = {v.ref for v in views}
    for state in ws.manifest.tracked():
        target = refnames.tip(repo, state.ref) if state.ref not in names else None
        if target is not None:
            found.append(View(state.ref, target, state.origin))
    return found


# An overlay that overrides more paths than this is materialized: a search filter names them.
OVERLAY_MOST = 1000
_RELIST_PAGE = 2048  # points re-listed per store session: searches get in between (a large view
# takes seconds: Qdrant moves each point it updates out of its immutable segment)


def _set_refs(ws: Workspace, refs: list[str], ids: list[str]) -> None:
    for start in range(0, len(ids), _RELIST_PAGE):
        with ws.store.session(write=True):
            ws.store.set_refs(refs, ids[start:start + _RELIST_PAGE])


def _ids(ws: Workspace, items: Sequence[tuple[str, str, int]]) -> list[str]:
    return [point_id(path, blob, i, ws.store.repo) for path, blob, chunks in items for i in range(chunks)]


def _seed(ws: Workspace, view: View, result: SyncResult) -> None:
    """A ref synced for the first time starts from the tracked ref whose tree is closest to its
    target, as an overlay (refs.py) on that ref's points: nothing is re-listed but the paths an
    overlay it starts from overrides, then the plan covers only what differs."""
    m, repo = ws.manifest, ws.repo
    assert repo is not None and view.target is not None
    best: tuple[int, str] | None = None
    for state in m.tracked()[:64]:
        if state.ref == view.ref or state.tree is None or state.tree not in repo.git:
            continue
        differ = repo.count_differences(state.tree, view.target.tree)
        if best is None or differ < best[0]:
            best = (differ, state.ref)
    if best is None:
        return
    start = m.ref_state(best[1])
    assert start is not None
    if start.base is not None:  # an overlay itself: the new one shares its base and overrides
        for holders, items in m.view_groups(start.ref):
            _set_refs(ws, sorted(holders | {view.ref}), _ids(ws, items))
    faults.reached("ref-relisted")
    m.seed(view.ref, start.ref)
    if not _embedded(ws.store):  # a shared collection: other machines know a ref by its points alone
        _materialize(ws, view.ref)
    result.notes.append(f"{view.ref}: started from {start.ref}'s index ({best[0]} files differ)")


def _materialize(ws: Workspace, ref: str) -> None:
    """List overlay `ref` on every point of its view (its base is going, or it overrides more
    paths than a search filter should name): it no longer depends on its base."""
    m = ws.manifest
    for holders, items in m.view_groups(ref, inherited=True):
        _set_refs(ws, sorted(holders | {ref}), _ids(ws, items))
    faults.reached("ref-materialized")
    m.materialize(ref)


def _drop(ws: Workspace, ref: str) -> None:
    """Take `ref` off every point (a point no other ref holds goes), then stop tracking it. The
    overlays on it are materialized first."""
    m = ws.manifest
    for dependent in m.dependents(ref):
        _materialize(ws, dependent)
    for holders, items in m.view_groups(ref):
        rest = holders - {ref}
        if rest:
            _set_refs(ws, sorted(rest), _ids(ws, items))
            continue
        for start in range(0, len(items), _RELIST_PAGE // 8):
            with ws.store.session(write=True):
                for path, _blob, _chunks in items[start:start + _RELIST_PAGE // 8]:
                    ws.store.delete_path(path, keep_blob=sorted(m.blobs_elsewhere(path, ref)))
    faults.reached("ref-dropping")
    m.forget(ref)


def _drop_gone(ws: Workspace, syncing: set[str], result: SyncResult) -> None:
    """Drop the tracked refs that no longer exist (a deleted branch, a removed worktree) or
    came from a `refs` pattern that no longer matches them."""
    repo = ws.repo
    assert repo is not None
    patterns = set(refnames.matching(repo, ws.config.refs)) if ws.config.refs else set()
    for state in ws.manifest.tracked():
        if state.ref in syncing or state.ref == refnames.LEGACY or state.origin == "store":
            continue  # (another machine's ref, read from a shared collection: not ours to drop)
        gone = not refnames.exists(repo, state.ref)
        if gone or (state.origin == "config" and state.ref not in patterns):
            _drop(ws, state.ref)
            result.notes.append(f"dropped ref {state.ref} ({'it no longer exists' if gone else 'no refs pattern matches it'})")


def _name_legacy_view(ws: Workspace, ref: str, result: SyncResult) -> None:
    """An index made before refs followed HEAD: it becomes the view of the ref synced now, and
    its points list that ref."""
    m = ws.manifest
    if m.ref_state(refnames.LEGACY) is None or ref == refnames.LEGACY:
        return
    if m.ref_state(ref) is None:
        with ws.store.session(write=True):
            ws.store.set_refs([ref])
        m.rename(refnames.LEGACY, ref)
        result.notes.append(f"the index now tracks refs: what it held is {ref}'s")
    else:
        _drop(ws, refnames.LEGACY)


def _index(ws: Workspace, target: Target | None, result: SyncResult, progress: Progress | None,
           should_stop: Callable[[], bool], store_had_points: bool, shard: Shard | None) -> bool:
    """Plan and apply the steps from the manifest's state (the current ref's view) to `target`;
    True when the whole target was recorded as synced (a complete run of every shard)."""
    m = ws.manifest
    source = ws.source(target)  # its baseline as the manifest has it now
    steps = plan(source, m, dirty=set(m.dirty()), touched=set(m.touched()),
                 selection_changed=m.get(SELECTION) != ws.selector.fingerprint)
    if progress:
        progress.start(steps.total if shard is None else None)
    timed = _timed(iter(steps) if shard is None else only_shard(steps, shard), result.phases, "git")
    first = next(timed, None)
    wrote = False
    if first is not None:
        from gitindex.apply import apply  # the engine's heavier half: only when there is work

        m.set(**{STORE_POINTS: None})  # unknown until this run records it (an interrupted one does not)
        wrote = apply(ws, source, itertools.chain([first], timed), result, progress=progress,
                      should_stop=should_stop, look_in_store=store_had_points)
    if wrote or m.get(STORE_POINTS) is None:  # for status, which need not open the store for it
        with ws.store.session(write=True):
            m.set(**{STORE_POINTS: str(ws.store.count())})
    if not result.complete:
        return False
    if shard is not None:  # the other shards' paths are not known to be done: no baseline
        m.finish(None, None, sweep=wrote)
        result.notes.append(f"shard {shard.k}/{shard.n}: only its paths were synced")
        return False
    faults.reached("finishing")
    m.finish(source.tree, source.commit, sweep=wrote, snapshot=source.snapshot())
    faults.reached("finished")
    m.set(**{SELECTION: ws.selector.fingerprint})
    if not result.refs or m.ref == result.refs[0]:
        files, _points = m.counts()
        result.unchanged = max(0, files - result.added - result.modified - result.renamed)
    return True


def _timed(items: Iterator[Step], clock: defaultdict[str, float], phase: str) -> Iterator[Step]:
    """Yield from `items`, adding the time spent producing them to clock[phase]."""
    while True:
        started = time.perf_counter()
        item = next(items, None)
        clock[phase] += time.perf_counter() - started
        if item is None:
            return
        yield item


class _Reconcile:
    """Make the manifest describe the store it is about to write to: another store, another
    model, chunker or layout, a lost manifest, a rebuild."""

    def __init__(self, ws: Workspace, result: SyncResult, *, may_build_beside: bool = True) -> None:
        self.ws = ws
        self.m = ws.manifest
        self.store = ws.store
        self.result = result
        self.may_build_beside = may_build_beside  # False: the workspace is itself a switch's build
        # After run(): the (model, chunker, layout) of an embedded index to switch away from,
        # built beside it (_Switch); None when the run goes on in this store.
        self.beside: tuple[str, str, str] | None = None

    def run(self, rebuild: bool) -> bool:
        """Reconcile the manifest with the store; True when the store held points before this
        run (only then can a vector be worth looking up there)."""
        ws, m = self.ws, self.m
        wanted = (ws.model_key, ws.chunker_id, STORE_LAYOUT)
        here = {STORE: self.store.location, COLLECTION: ws.collection, REPO_KEY: ws.repo_key}
        rebuilding = m.get(REBUILDING)
        if rebuilding:  # an interrupted blue/green rebuild: go on with it (--rebuild: start it over)
            self.store.resume_rebuild(rebuilding)
            self.result.notes.append(f"resuming the rebuild into {rebuilding}")
        exists = self.store.exists()  # reaches a server before anything local changes
        if m.get(MODEL) is not None and any(m.get(k) != v for k, v in here.items()):
            # The manifest describes another store: read this one's state back instead.
            self.result.notes.append(f"store changed to {self.store.location} ({ws.collection}, repository "
                                     f"{ws.repo_key})")
            m.reset()
        elif m.get(MODEL) is not None and not rebuilding and (lost := self._lost(exists)):
            # The manifest says indexed, the store does not hold it (a deleted store directory, a
            # dropped collection): trust the store, as for a lost manifest.
            self.result.notes.append(
                f"the store no longer holds what the manifest recorded ({lost}): re-indexing what is "
                "missing (vectors already in the cache are not embedded again)")
            m.reset()
        if m.get(MODEL) is None and exists and not rebuild:
            self._adopt_store()
        built = (m.get(MODEL), m.get(CHUNKER), m.get(LAYOUT) or "1")
        if built[0] is None and exists:  # nothing adopted (another repository's points only, or none)
            built = (ws.model_key, ws.chunker_id, self.store.layout() or STORE_LAYOUT)
        if rebuild or (built[0] is not None and built != wanted):
            if self.may_build_beside and exists and _embedded(self.store) and built[0] is not None:
                self.beside = (str(built[0]), str(built[1]), str(built[2]))  # the index searches keep using
                m.set(**here)
                return exists
            if not rebuild:
                if ws.config.qdrant_url:
                    raise IndexMismatchError(
                        f"collection {ws.collection!r} was built with model {built[0]!r}, chunker "
                        f"{built[1]!r} and store layout {built[2]}, not {wanted[0]!r} / {wanted[1]!r} / "
                        f"{wanted[2]}; mixing them would corrupt search. Run `gitindex sync --rebuild` "
                        "to re-index everything into it"
                    )
                self.result.notes.append(
                    f"model, chunker or store layout changed ({' '.join(map(str, built))} -> "
                    f"{' '.join(wanted)}): re-indexing into a fresh collection (vectors already in "
                    "the cache are not embedded again)")
            _load_model(ws)  # before anything is dropped: a model that cannot load leaves the index as it was
            with self.store.session(write=True):
                building = self.store.begin_rebuild()
            m.reset()
            if building:
                m.set(**{REBUILDING: building, SERVING: json.dumps(built) if built[0] is not None else None})
                self.result.notes.append(f"rebuilding into {building}; searches use the current "
                                         "collection until it is complete")
        m.set(**{MODEL: wanted[0], CHUNKER: wanted[1], LAYOUT: wanted[2], **here})
        # Vectors this run writes are cached first, so only points older than the run can be
        # worth looking up in the store (a first index skips those lookups entirely).
        return self.store.exists()

    def _lost(self, exists: bool) -> str | None:
        """How the store falls short of what the manifest recorded ("it is missing or empty",
        "7 of 10 points"), or None. Checked where it is cheap: a missing store, or a store that counts
        without opening anything (a server); an embedded shard that exists is trusted (opening
        it to count costs 30-60 ms, a no-op sync's whole time)."""
        files, _chunks = self.m.distinct_counts()
        recorded = int(self.m.get(STORE_POINTS) or 0)
        if not exists:
            return "it is missing or empty" if files or recorded else None
        if not recorded or not self.store.count_is_cheap:
            return None
        with self.store.session():
            count = self.store.count()
        # Fewer only: other jobs writing a shared collection (sync --shard) add points.
        return f"{count} of {recorded} points" if count < recorded else None

    def _adopt_store(self) -> None:
        """No manifest but a store with points (a deleted manifest, a fresh CI runner, another
        collection before): read what is indexed back from the points' payloads, so only what
        differs is embedded, and which model, chunker and layout made them."""
        # ref -> path -> blob -> chunks; points from before refs list none: the legacy view
        by_ref: dict[str, dict[str, dict[str, list[Chunk]]]] = {}
        makers: set[tuple[str, str]] = set()
        with self.store.session(write=True):
            layout = self.store.layout()
            for _pid, p in self.store.scroll():
                chunk = Chunk(int(p["start_line"]), int(p["end_line"]), "", p["hash"])
                for ref in p.get("refs") or (refnames.LEGACY,):
                    by_ref.setdefault(str(ref), {}).setdefault(p["path"], {}).setdefault(p["blob"], []).append(chunk)
                makers.add((str(p.get("model")), str(p.get("chunker"))))
        if not by_ref:
            return
        current, adopted = self.m.ref, 0
        # A server's collection is shared: its refs are other machines' until this one syncs them.
        origin = "head" if _embedded(self.store) else "store"
        for ref, by_path in sorted(by_ref.items()):
            self.m.ref = ref
            self.m.track(ref, origin)  # nothing synced: its next sync compares every file, embeds none
            records, dirty = [], []
            for path, blobs in by_path.items():
                blob, chunks = max(blobs.items(), key=lambda kv: len(kv[1]))
                records.append(FileRecord(path, blob, 0o100644, sorted(chunks, key=lambda c: c.start)))
                if len(blobs) > 1:
                    dirty.append(path)  # which blob's points are current is unknown
            self.m.mark_dirty(dirty)
            self.m.record(records)
            adopted += len(records)
        self.m.ref = current
        model, chunker = makers.pop() if len(makers) == 1 else ("mixed or unknown", "mixed or unknown")
        self.m.set(**{MODEL: model, CHUNKER: chunker, LAYOUT: layout or "1"})
        refs_note = f" of {len(by_ref)} refs" if len(by_ref) > 1 else ""
        self.result.notes.append(f"adopted {adopted} indexed files{refs_note} from the store")




class _Switch:
    """A switch of model, chunker or store layout, or a rebuild, of an embedded index: built
    beside it (Workspace.beside(): qdrant/<collection>.next, manifest.next.sqlite) while searches
    keep using it with the settings it was made with (Workspace.serving()), then swapped in.
    The main manifest's SWITCH key says one is under way; store/swap.py has the swap's order
    and how the next sync finishes each step an interruption cut short."""

    def __init__(self, ws: Workspace, build: Workspace) -> None:
        self.ws = ws
        self.build = build
        self.shard = Path(ws.store.location)

    @staticmethod
    def _wanted(ws: Workspace) -> dict[str, str]:
        return {"model": ws.model_key, "chunker": ws.chunker_id, "layout": STORE_LAYOUT}

    @classmethod
    def under_way(cls, ws: Workspace, result: SyncResult, rebuild: bool) -> _Switch | None:
        """The switch an interrupted sync began, to resume (None when there is none, or it was
        finished or abandoned here, and the run goes on in the main store). Leftovers of a
        finished one are removed."""
        if not _embedded(ws.store):
            return None
        m, shard = ws.manifest, Path(ws.store.location)
        raw = m.get(SWITCH)
        if raw is None:
            swap.remove_leftovers(shard, ws.data_dir / swap.BUILD_MANIFEST, build_too=True)
            return None
        switch = switch_of(raw) or {}
        try:
            target = {k: str(switch[k]) for k in ("model", "chunker", "layout")}
            swapping = switch.get("phase") == "swapping"
        except KeyError:
            target, swapping = {}, False
        wanted = cls._wanted(ws)
        it = cls(ws, ws.beside())
        if swapping:  # the build was complete: finish the swap, then sync the new index as usual
            result.notes.append("finishing the switch to the new index that an interrupted sync had built")
            it.swap(result)
            return None
        built = {"model": m.get(MODEL), "chunker": m.get(CHUNKER), "layout": m.get(LAYOUT) or "1"}
        if target != wanted and built == wanted and not rebuild:  # not a rebuild: a switch gone back on
            it.build.close()
            swap.discard_build(it.shard, it.build.manifest_path)
            m.set(**{SWITCH: None})
            result.notes.append(f"the settings are the current index's again ({' '.join(wanted.values())}): "
                                "the switch an interrupted sync began was abandoned")
            return None
        if target != wanted:  # the settings changed again: build what they say now
            m.set(**{SWITCH: json.dumps({"phase": "building", **wanted})})
            result.notes.append(f"the settings changed during a switch: building {' '.join(wanted.values())} "
                                "instead, beside the current index (searches use it until then)")
        else:
            result.notes.append(f"resuming the switch to {' '.join(wanted.values())} that an interrupted "
                                "sync began (searches use the current index until it is complete)")
        return it

    @classmethod
    def begin(cls, ws: Workspace, result: SyncResult, built: tuple[str, str, str]) -> _Switch:
        """Start building beside the index (made with `built`): after checking that the disk
        has room for both and that the model loads, so that neither failure changes anything."""
        from gitindex.store.embedded import _SPACE_FLOOR

        shard = Path(ws.store.location)
        with ws.store.session():  # it opens (or sync() sets it aside, and the run builds in its place)
            pass
        swap.check_room(shard, _SPACE_FLOOR)
        it = cls(ws, ws.beside())
        _load_model(it.build)
        wanted = cls._wanted(ws)
        ws.manifest.set(**{SWITCH: json.dumps({"phase": "building", **wanted})})
        if tuple(wanted.values()) != built:
            result.notes.append(
                f"model, chunker or store layout changed ({' '.join(built)} -> {' '.join(wanted.values())}): "
                "building the new index beside the current one, which searches use until it is complete "
                "(vectors already in the cache are not embedded again)")
        else:
            result.notes.append("rebuilding beside the current index, which searches use until the "
                                "rebuild is complete (vectors already in the cache are not embedded again)")
        faults.reached("switch-begun")
        return it

    def run(self, views: Sequence[View], result: SyncResult, progress: Progress | None,
            should_stop: Callable[[], bool], rebuild: bool, shard: Shard | None, forget: Sequence[str] = ()) -> None:
        """Sync the build to the views' targets (from nothing when `rebuild`); swap it in when complete."""
        build = self.build
        try:
            recovered = build.recover_manifest()
            if recovered:
                result.notes.append(f"the switch's build: {recovered}")
            try:
                done = self._sync_build(views, result, progress, should_stop, rebuild, shard, forget)
            except StoreUnreadableError as exc:  # the build's shard, not the one searches use
                build.store.close()
                moved = build.store.set_aside()
                build.manifest.reset()
                result.notes.append(f"the new index being built could not be opened ({exc}); set aside as "
                                    f"{moved} and built again")
                try:
                    done = self._sync_build(views, result, progress, should_stop, True, shard, forget)
                except StoreUnreadableError as again:  # not for sync() to set the main store aside
                    raise StoreError(str(again)) from None
            if done:
                self.swap(result)
        finally:
            build.close()

    def _sync_build(self, views: Sequence[View], result: SyncResult, progress: Progress | None,
                    should_stop: Callable[[], bool], rebuild: bool, shard: Shard | None,
                    forget: Sequence[str]) -> bool:
        build = self.build
        if not build.store.looks_sound():
            raise StoreUnreadableError(f"the embedded store {build.store.location} is missing parts or its "
                                       "configuration does not read back")
        had_points = _Reconcile(build, result, may_build_beside=False).run(rebuild)
        return _sync_views(build, views, result, progress, should_stop, had_points, shard, forget)

    def swap(self, result: SyncResult) -> None:
        """The build is complete: it replaces the index, in the order store/swap.py gives."""
        from gitindex.store.embedded import EmbeddedStore

        ws, m = self.ws, self.ws.manifest
        store = ws.store
        assert isinstance(store, EmbeddedStore)
        self.build.close()  # its shard flushed and closed, its manifest too
        switch = switch_of(m.get(SWITCH)) or {}
        m.set(**{SWITCH: json.dumps({**switch, "phase": "swapping"})})  # 1
        faults.reached("switch-swapping")
        with store.exclusive():  # 2: no process has the shard open meanwhile
            swap.swap_directories(self.shard)
        faults.reached("switch-renamed")
        if self.build.manifest_path.is_file():  # 3: model, chunker, files and synced tree at once
            m.replace_with(self.build.manifest_path, keep=(LAST_RUN,), **{STORE: store.location})
        else:  # the build's manifest is gone: the next run reads what the new shard holds back
            m.reset()
        faults.reached("switch-recorded")
        swap.remove_leftovers(self.shard, self.build.manifest_path, build_too=True)  # 4
        result.notes.append(f"switched to the new index ({m.get(MODEL)}, chunker {m.get(CHUNKER)}); the old "
                            "one was deleted")


def _embedded(store: object) -> bool:
    """Whether `store` is the embedded one (a switch is built beside it; a server's rebuild is
    blue/green by alias instead). Its module is imported by the time one exists, so a sync to a
    server never imports it for this."""
    module = sys.modules.get("gitindex.store.embedded")
    return module is not None and isinstance(store, module.EmbeddedStore)


def _load_model(ws: Workspace) -> None:
    """Load the embedding model now (raises ModelError): a rebuild drops the old points first."""
    embedder = ws.embedder
    load = getattr(embedder, "load", None)
    if callable(load):
        load()
    else:  # an embedder without load() (torch) loads on its first call
        embedder.embed([])
