"""A rich progress bar for long runs on a terminal: files, chunks, chunks/s, ETA."""

from __future__ import annotations

import time
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class RichProgress:
    def __init__(self) -> None:
        self._bar = Progress(
            TextColumn("[bold]indexing"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
            TextColumn("{task.fields[chunks]} chunks, {task.fields[rate]:.1f} chunks/s"),
            TimeRemainingColumn(), transient=True,
        )
        self._task: Any = None
        self._chunks = 0
        self._started = time.monotonic()

    def __enter__(self) -> RichProgress:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(*exc)  # type: ignore[arg-type]

    def start(self, total_files: int | None) -> None:
        self._started = time.monotonic()
        self._task = self._bar.add_task("sync", total=total_files, chunks=0, rate=0.0)

    def advance(self, files: int, chunks: int) -> None:
        self._chunks += chunks
        rate = self._chunks / max(time.monotonic() - self._started, 1e-6)
        self._bar.update(self._task, advance=files, chunks=self._chunks, rate=rate)
