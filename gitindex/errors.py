"""Errors the library raises; the CLI's one error boundary turns them into messages and exit codes."""

from __future__ import annotations

# Exit codes, documented in the README.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_BUG = 3
EXIT_LOCKED = 75  # EX_TEMPFAIL: another sync holds the lock and --no-wait was given
EXIT_INTERRUPTED = 130


class GitindexError(Exception):
    """An expected failure: the message says what failed and what to try next."""

    exit_code = EXIT_ERROR


class NotARepositoryError(GitindexError):
    pass


class EmptyRepositoryError(GitindexError):
    """HEAD is unborn: nothing has been committed yet. Syncing and verifying treat it as an
    empty tree; only commands that need a commit report it."""

    def __init__(self, message: str = "the repository has no commits yet") -> None:
        super().__init__(message)


class BadRevisionError(GitindexError):
    pass


class NotIndexedError(GitindexError):
    pass


class ConfigError(GitindexError):
    exit_code = EXIT_USAGE


class LockedError(GitindexError):
    exit_code = EXIT_LOCKED


class IndexMismatchError(GitindexError):
    """The index was built with another model, chunker or store layout."""


class StoreError(GitindexError):
    pass


class StoreUnreadableError(StoreError):
    """The embedded store's files cannot be opened (garbled or truncated): sync sets it aside
    and rebuilds it; reading commands say so."""


class ModelError(GitindexError):
    pass


class LockFileError(GitindexError):
    """A lock file gitindex keeps cannot be used as one (a directory in its place)."""


class HooksError(GitindexError):
    """Hooks cannot be installed or removed as asked."""


class Interrupted(GitindexError):
    exit_code = EXIT_INTERRUPTED
