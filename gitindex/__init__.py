"""gitindex: a git-aware, incremental semantic code index for Qdrant.

    import gitindex

    with gitindex.open("path/to/repo") as index:
        index.sync()
        for hit in index.search("retry a failed upload", limit=5):
            print(hit.path, hit.start_line, hit.score)

Importing the package is cheap and changes no global state: the engine loads when it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitindex.errors import GitindexError

if TYPE_CHECKING:
    from pathlib import Path

    from gitindex.api import Index

__all__ = ["GitindexError", "Index", "__version__", "open"]


def open(path: str | Path = ".", **kwargs: Any) -> Index:
    """The index of the git repository around `path` (see gitindex.api.open for the arguments)."""
    from gitindex.api import open as open_index

    return open_index(path, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("gitindex")
        except PackageNotFoundError:  # running from a source tree
            return "0.0.0"
    if name == "Index":
        from gitindex.api import Index

        return Index
    raise AttributeError(f"module 'gitindex' has no attribute {name!r}")
