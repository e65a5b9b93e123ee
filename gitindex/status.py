"""status: what is indexed, how it compares with HEAD, where it is stored."""

from __future__ import annotations

import json
from typing import Any

from gitindex.index import Index
from gitindex.manifest import LAST_RUN, MODEL, SYNCED_COMMIT
from gitindex.search import freshness


def status(ix: Index) -> dict[str, Any]:
    """The contract of `status --json` (documented in the README)."""
    m = ix.manifest
    files, chunks = m.counts()
    fresh = freshness(ix)
    points = None
    if ix.store.exists():
        with ix.store.session():
            points = ix.store.count()
    last = m.get(LAST_RUN)
    hooks = None
    if ix.repo is not None:
        from gitindex.hooks import summary

        hooks = summary(ix.repo, ix.root)
    return {
        "synced_commit": m.get(SYNCED_COMMIT),
        "head": fresh.head if fresh else None,
        "files": files,
        "chunks": chunks,
        "points": points or 0,
        "pending_files": (fresh.files_differ if fresh else None),
        "dirty_files": len(m.dirty()),
        "store": ix.store.location,
        "collection": ix.collection,
        "model": m.get(MODEL) or ix.model_key,
        "last_run": json.loads(last) if last else None,
        "hooks": hooks,  # installed hooks and the last background run (see `gitindex log`)
    }
