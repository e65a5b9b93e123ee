"""gitindex: a git-aware, incremental semantic code index for Qdrant."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gitindex")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"
