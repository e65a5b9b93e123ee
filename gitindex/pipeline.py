"""The sync pipeline: each batch is embedded on one thread and written on another, in order,
while the caller reads and chunks the next one (at most two batches in flight)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from gitindex.manifest import Manifest
from gitindex.writer import Batch


class Pipeline:
    """`embed` fills a batch's vectors (embedding thread); `write` stores it and records it in
    the manifest it is given (writing thread: sqlite connections belong to one thread)."""

    _IN_FLIGHT = 2

    def __init__(self, embed: Callable[[Batch], Batch], write: Callable[[Batch, Manifest], None],
                 manifest_path: Path, ref: str = "") -> None:
        self._embed_stage = embed
        self._write_stage = write
        self._manifest_path = manifest_path
        self._ref = ref  # the writing thread's manifest works in this ref's view
        self._embed = ThreadPoolExecutor(1, thread_name_prefix="gitindex-embed")
        self._write = ThreadPoolExecutor(1, thread_name_prefix="gitindex-write")
        self._pending: list[Future[None]] = []
        self._manifest: Manifest | None = None
        self._failed = False

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        # On a failure, batches not started are dropped and running ones finish (each is whole
        # on its own); a second Ctrl-C does not wait for them.
        wait = kind is not KeyboardInterrupt
        self._embed.shutdown(wait=wait, cancel_futures=kind is not None)
        self._write.shutdown(wait=wait, cancel_futures=kind is not None)
        if self._manifest is not None and wait:
            self._manifest.close()

    def submit(self, batch: Batch) -> None:
        if not batch.updates and not batch.removes:
            return
        embedded = self._embed.submit(self._guard, self._embed_stage, batch)
        self._pending.append(self._write.submit(self._write_when_embedded, embedded))
        while len(self._pending) > self._IN_FLIGHT:
            self._pending.pop(0).result()  # re-raises a failure of either stage

    def drain(self) -> None:
        while self._pending:
            self._pending.pop(0).result()

    def _guard(self, stage: Callable[[Batch], Batch], batch: Batch) -> Batch:
        if self._failed:  # an earlier batch failed: write nothing after it
            raise _Skipped
        return stage(batch)

    def _write_when_embedded(self, embedded: Future[Batch]) -> None:
        try:
            batch = embedded.result()
            if self._failed:
                raise _Skipped
            if self._manifest is None:  # sqlite connections belong to one thread
                self._manifest = Manifest(self._manifest_path, self._ref)
            self._write_stage(batch, self._manifest)
        except _Skipped:
            raise
        except BaseException:
            self._failed = True
            raise


class _Skipped(Exception):
    """A batch not written because an earlier one failed (the first failure is reported)."""
