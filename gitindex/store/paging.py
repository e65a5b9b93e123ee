"""What both store adapters share: paging through scroll results and reading vectors by hash."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from gitindex.store import DENSE

PAGE = 1000  # points per scroll request, and chunk hashes per lookup filter


def pages(fetch: Callable[[Any], tuple[Sequence[Any], Any]]) -> Iterator[Any]:
    """Every record of a scroll: `fetch(offset)` returns a page and the next offset (None: done)."""
    offset: Any = None
    while True:
        records, offset = fetch(offset)
        yield from records
        if offset is None:
            return


def dense_vector(vector: Any) -> list[float] | None:
    """A record's dense vector, whether the store returned it named or alone."""
    if isinstance(vector, dict):
        vector = vector.get(DENSE)
    return vector if isinstance(vector, list) else None


def vectors_by_hash(hashes: Sequence[str],
                    fetch: Callable[[list[str], Any], tuple[Sequence[Any], Any]]) -> dict[str, list[float]]:
    """Stored dense vectors for chunk hashes: `fetch(hashes, offset)` scrolls the points whose
    `hash` is one of `hashes`, with that payload field and the dense vector."""
    found: dict[str, list[float]] = {}
    wanted = list(dict.fromkeys(hashes))
    for i in range(0, len(wanted), PAGE):
        part = wanted[i : i + PAGE]
        for record in pages(lambda offset, part=part: fetch(part, offset)):  # type: ignore[misc]
            vector = dense_vector(record.vector)
            if record.payload and vector is not None:
                found.setdefault(record.payload["hash"], vector)
    return found
