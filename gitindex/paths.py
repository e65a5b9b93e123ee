"""Paths in the store: the payload fields a path filter uses, and a glob turned into filters."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from gitindex.store import Match

_GLOB_CHARS = re.compile(r"[*?\[\\]")
_EXTENSION = re.compile(r"\*\.([^*?\[\\/.]+)")


def path_fields(path: str) -> dict[str, Any]:
    """`parts`: the path's directory and file names; `ext`: its extension, lower case."""
    name = path.rsplit("/", 1)[-1]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name.lstrip(".") else ""
    return {"parts": path.split("/"), "ext": ext}


def glob_filter(glob: str) -> tuple[tuple[Match, ...], Callable[[str], bool]]:
    """For a gitignore-style pattern (`*.py`, `src/**/*.ts`, `tests/`): payload conditions that
    every matching path meets (so the store narrows the search itself, whatever the number of
    files), and the exact test, for what the conditions let through that the pattern does not
    match (`src/*.py` narrows to paths with a `src` part and extension `py`)."""
    import pathspec

    spec = pathspec.GitIgnoreSpec.from_lines([glob])
    pattern = glob.strip()
    where: list[Match] = []
    if pattern and not pattern.startswith("!"):
        parts = [p for p in pattern.strip("/").split("/") if p and p != "**"]
        for part in parts:
            if not _GLOB_CHARS.search(part):
                where.append(Match("parts", (part,)))
        if parts and (ext := _EXTENSION.fullmatch(parts[-1])):
            where.append(Match("ext", (ext.group(1).lower(),)))
    return tuple(where), spec.match_file
