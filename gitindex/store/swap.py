"""A switch of model or chunker (or `sync --rebuild`) on the embedded store, built beside the
index that searches keep using, then swapped in (sync.py: _Switch drives it).

Beside `qdrant/<collection>` (the shard searches use) the build writes `qdrant/<collection>.next`
(its own `<collection>.next.lock` and `.readers` files, as any shard has) and its own manifest,
`manifest.next.sqlite`; the main manifest keeps describing the index searches use, with a
`switch` key (manifest.SWITCH) saying that a build is under way and what it builds. The swap,
in this order (each step's crash is finished by the next sync, which reads the phase):

1. the main manifest's switch phase becomes "swapping" (the build is complete);
2. under the store's lock (no process has the shard open): `<collection>` is renamed to
   `<collection>.old`, then `<collection>.next` to `<collection>`: swap_directories();
3. one manifest transaction copies the build's manifest into the main one, which drops the
   switch key and moves model, chunker and synced tree at once (Manifest.replace_with);
4. `<collection>.old`, the build's manifest and its lock files are deleted: remove_leftovers().

A crash in 1-2 leaves the phase "swapping": the next sync does 2 again (each rename only if its
source is there) then 3 and 4. A crash after 3 leaves only leftovers, which every sync removes
when no switch is under way. Searches meanwhile: while `<collection>.next` exists the shard is
the old one and they use the old model; after step 2 and before 3 they use the configured one
and are refused (the manifest still names the old model) until the next sync.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from gitindex.errors import StoreError

NEXT = ".next"  # the shard (and manifest) being built
OLD = ".old"  # the shard a swap replaced, until it is deleted
BUILD_MANIFEST = "manifest.next.sqlite"
_MB = 1024 * 1024


def next_path(shard: Path) -> Path:
    return shard.with_name(shard.name + NEXT)


def old_path(shard: Path) -> Path:
    return shard.with_name(shard.name + OLD)


def size_on_disk(path: Path) -> int:
    """Bytes the files under `path` take on disk (blocks, as `du` counts them); 0 when missing."""
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            total += getattr(st, "st_blocks", 0) * 512 or st.st_size
    return total


def check_room(shard: Path, floor: int) -> None:
    """Raise StoreError unless the disk holding `shard` has room for a copy of it beside it
    (less what the build has written already) and `floor` bytes more. The old shard's size is
    the estimate: a new model of another vector size needs more or less, which the store's own
    check before each batch catches."""
    where = shard.parent if shard.parent.exists() else shard.parent.parent
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        return
    needed = max(0, size_on_disk(shard) - size_on_disk(next_path(shard))) + floor
    if free < needed:
        raise StoreError(
            f"not enough disk space to build the new index beside the current one in {shard.parent}: "
            f"{free // _MB} MB free, about {-(-needed // _MB)} MB needed (a copy of the current "
            f"index, {size_on_disk(shard) // _MB} MB, and room to write). The current index is "
            "unchanged and still answers searches; free space and run `gitindex sync` again")


def swap_directories(shard: Path) -> None:
    """Step 2: `<shard>` to `<shard>.old`, then `<shard>.next` to `<shard>`; again after a crash
    in between (each rename only when its source is there). Run under the store's lock."""
    building, old = next_path(shard), old_path(shard)
    if not building.exists():
        return  # done already (or the build wrote no point: the new index is empty)
    if shard.exists():
        if old.exists():  # a leftover of an earlier swap: ours goes in its place
            shutil.rmtree(old)
        os.replace(shard, old)
    os.replace(building, shard)


def discard_build(shard: Path, manifest: Path) -> None:
    """Delete a build that will not be swapped in: its shard, manifest and lock files."""
    building = next_path(shard)
    shutil.rmtree(building, ignore_errors=True)
    _remove_files(building, manifest)


def remove_leftovers(shard: Path, manifest: Path, *, build_too: bool) -> bool:
    """Step 4: the replaced shard; with `build_too` (no switch is under way), a build nobody
    will finish and its manifest. True when anything was there."""
    old, building = old_path(shard), next_path(shard)
    found = old.exists() or (build_too and (building.exists() or manifest.exists()))
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)
    if build_too:
        shutil.rmtree(building, ignore_errors=True)
        _remove_files(building, manifest)
    return found


def _remove_files(building: Path, manifest: Path) -> None:
    for side in (".lock", ".readers", ".unreadable"):
        building.with_name(building.name + side).unlink(missing_ok=True)
    for suffix in ("", "-wal", "-shm"):
        manifest.with_name(manifest.name + suffix).unlink(missing_ok=True)
