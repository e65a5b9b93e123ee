"""status: what is indexed, how it compares with HEAD, where it is stored."""

from __future__ import annotations

import json
from typing import Any

from gitindex.manifest import LAST_RUN, MODEL, STORE_POINTS, SWITCH, SYNCED_COMMIT, switch_of
from gitindex.search import check_store, freshness, reading_manifest
from gitindex.workspace import Workspace


def status(ws: Workspace) -> dict[str, Any]:
    """The contract of `status --json` (documented in the README). Raises StoreError when the
    manifest records an index the store no longer holds, ManifestError when the manifest is
    unreadable: both say to run `gitindex sync`."""
    with reading_manifest(ws):
        return _status(ws)


def _refs(ws: Workspace) -> list[dict[str, Any]]:
    """Each tracked ref: its synced commit, files, and whether its tip's tree is what is indexed."""
    from gitindex import refs

    repo, found = ws.repo, []
    for state in ws.manifest.tracked():
        fresh: bool | None = None
        if repo is not None and state.ref != refs.LEGACY and state.origin != "store" and \
                not (refs.is_detached_name(state.ref) and state.ref != ws.ref):
            tip = refs.tip(repo, state.ref, ws.ref)  # None here: the ref is gone
            fresh = tip is not None and tip.tree == state.tree
        found.append({"ref": state.ref, "commit": state.commit, "files": ws.manifest.counts(state.ref)[0],
                      "origin": state.origin, "fresh": fresh, "base": state.base,
                      "own_files": len(ws.manifest.overrides(state.ref)) if state.base else None})
    return found


def _switch(raw: str | None) -> dict[str, Any] | None:
    """{phase, model, chunker, layout} of the index being built to replace this one, or None."""
    found = switch_of(raw)
    if found is None:
        return None
    return {k: found.get(k) for k in ("model", "chunker", "layout")} | {"phase": found.get("phase", "unknown")}


def _status(ws: Workspace) -> dict[str, Any]:
    m = ws.manifest
    fresh = freshness(ws)
    files, chunks = m.counts(fresh.ref if fresh else None)
    points = 0
    recorded = m.get(STORE_POINTS)
    if check_store(ws):
        if not ws.store.count_is_cheap:
            # As the last sync left it: opening the shard would double status's time, and take it
            # from a sync in progress (which clears the figure until it records it): then what the
            # manifest holds, each chunk once.
            points = int(recorded) if recorded is not None else m.distinct_counts()[1]
        else:
            with ws.store.session():
                points = ws.store.count()
    last = m.get(LAST_RUN)
    switch = _switch(m.get(SWITCH))
    hooks = None
    if ws.repo is not None:
        from gitindex.hooks import summary

        hooks = summary(ws.repo, ws.root)
    return {
        "ref": fresh.ref if fresh else None,  # the view this describes: the checked-out branch's
        "refs": _refs(ws),
        "synced_commit": m.get(SYNCED_COMMIT) if not fresh else fresh.synced_commit,
        "head": fresh.head if fresh else None,
        "files": files,
        "chunks": chunks,
        "points": points,
        "pending_files": (fresh.files_differ if fresh else None),
        "dirty_files": len(m.dirty()),
        "store": ws.store.location,
        "collection": ws.collection,
        "model": m.get(MODEL) or ws.model_key,
        "last_run": json.loads(last) if last else None,
        "switch": switch,  # a switch of model or chunker being built beside the index (store/swap.py)
        "hooks": hooks,  # installed hooks and the last background run (see `gitindex log`)
    }
