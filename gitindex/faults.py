"""A test-only switch to kill a sync at a named step: _GITINDEX_TEST_KILL_AT=<step> makes the
process SIGKILL itself when it reaches that step (tests/test_faults.py runs every step).

The library reads no other environment variable (the leading underscore keeps it apart from
the GITINDEX_* settings); it is read once, at import, and does nothing unless a test sets it. Steps, in a sync's order: `chunked` (a file read and chunked),
`embedded` (a batch's vectors resolved), `dirty-marked` (the batch's paths marked in the
manifest, nothing in the store yet), `upserted` (the store acknowledged the points), `deleted`
(the old points deleted), `recorded` (the manifest recorded the batch), `finishing` (all batches
written, the synced tree not yet recorded), `finished` (recorded). A switch of model or chunker
built beside the index (store/swap.py) adds SWITCH_STEPS: `switch-begun` (recorded as under way,
nothing built), `switch-swapping` (built, the swap about to begin), `switch-renamed` (the shard
directories swapped, the manifest not yet), `switch-recorded` (the manifest too, the old shard
not yet deleted); tests/test_switch.py runs them.
"""

from __future__ import annotations

import os
import signal

STEPS = ("chunked", "embedded", "dirty-marked", "upserted", "deleted", "recorded", "finishing", "finished")
SWITCH_STEPS = ("switch-begun", "switch-swapping", "switch-renamed", "switch-recorded")
# Refs (sync.py, writer.py): `ref-relisted` (a new ref's starting view re-listed in the store, the
# manifest not yet), `ref-dropping` (a gone ref taken off the points, the manifest not yet),
# `ref-inherited` (overlays listed on what their base is about to change, their overrides not yet
# recorded), `ref-materialized` (an overlay listed on every point of its view, still recorded as
# an overlay).
REF_STEPS = ("ref-relisted", "ref-dropping", "ref-inherited", "ref-materialized")
_KILL_AT = os.environ.get("_GITINDEX_TEST_KILL_AT")


def reached(step: str) -> None:
    """Die here, at once and without cleaning up, if a test asked for this step."""
    if step == _KILL_AT:
        os.kill(os.getpid(), signal.SIGKILL)
