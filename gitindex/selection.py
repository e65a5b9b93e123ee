"""Which files are indexed: by path patterns, gitattributes, size and content."""

from __future__ import annotations

import math
import mmap
import re
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING

import xxhash

from gitindex.config import Config

if TYPE_CHECKING:
    import pathspec

SELECTION_VERSION = "2"

LOCKFILES = (
    "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb",
    "poetry.lock", "Pipfile.lock", "uv.lock", "pdm.lock", "Cargo.lock", "Gemfile.lock",
    "composer.lock", "go.sum", "mix.lock", "flake.lock", "Podfile.lock", "packages.lock.json",
)
MINIFIED = ("*.min.js", "*.min.mjs", "*.min.css", "*.js.map", "*.css.map")
SECRETS = (
    ".env*", "!.env.example", "!.env.sample", "!.env.template", "!.env.dist",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.kdbx", "*.asc",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "!*.pub",
    ".netrc", ".pgpass", ".htpasswd", ".npmrc", ".pypirc", "credentials.json",
    "*.tfstate", "*.tfstate.*", "secrets.y*ml",
)

_LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"
_BINARY_PROBE = 8000  # git's rule: a NUL byte in the first 8000 bytes means binary
_MINIFIED_LINE = 300  # mean line length above which text may be minified
# Prose written one line per paragraph has long lines too, but about one byte in six is a space
# (CJK text: a multi-byte character); minified code and packed data have far fewer.
_MINIFIED_SPARSE = 0.12
_BLANK = re.compile(rb"\s*")
_NEWLINE = re.compile(rb"\n")
_SPARSE = re.compile(rb"[ \t\x80-\xff]")  # spaces, tabs, bytes of multi-byte characters


def _at_least(pattern: re.Pattern[bytes], data: bytes | mmap.mmap, count: int) -> bool:
    """Whether `pattern` occurs `count` times or more in `data`, scanning no further."""
    if count <= 0:
        return True
    return any(i >= count for i, _ in enumerate(pattern.finditer(data), 1))


def _spec(patterns: tuple[str, ...]) -> pathspec.GitIgnoreSpec | None:
    import pathspec  # 10-20 ms: only when a file is judged, never on a no-op sync

    return pathspec.GitIgnoreSpec.from_lines(patterns) if patterns else None


class Selector:
    """Decides, for one file, whether it is indexed; returns the reason when it is not."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.max_file_size = config.max_file_size
        settings = (SELECTION_VERSION, config.include, config.exclude, config.default_excludes,
                    config.max_file_size)
        self.fingerprint = xxhash.xxh3_64_hexdigest(repr(settings).encode())

    @cached_property
    def _include(self) -> pathspec.GitIgnoreSpec | None:
        return _spec(self.config.include)

    @cached_property
    def _exclude(self) -> pathspec.GitIgnoreSpec | None:
        return _spec(self.config.exclude)

    @cached_property
    def _defaults(self) -> list[tuple[str, pathspec.GitIgnoreSpec | None]]:
        if not self.config.default_excludes:
            return []
        return [("lockfile", _spec(LOCKFILES)), ("minified", _spec(MINIFIED)), ("secret", _spec(SECRETS))]

    def by_path(self, path: str) -> str | None:
        if self._include is not None and not self._include.match_file(path):
            return "excluded"
        if self._exclude is not None and self._exclude.match_file(path):
            return "excluded"
        for reason, spec in self._defaults:
            assert spec is not None
            if spec.match_file(path):
                return reason
        return None

    def by_size(self, size: int) -> str | None:
        return "too-large" if size > self.max_file_size else None

    @staticmethod
    def by_attributes(attrs: Mapping[str, object]) -> str | None:
        if attrs.get("binary") is True or attrs.get("diff") is False:
            return "binary"
        if attrs.get("linguist-generated") in (True, "true"):
            return "generated"
        if attrs.get("linguist-vendored") in (True, "true"):
            return "vendored"
        return None

    @staticmethod
    def by_content(data: bytes | mmap.mmap) -> str | None:
        """Judged on bytes or a memory map alike, without copying the whole file."""
        if _BLANK.fullmatch(data):  # re scans the map in place
            return "empty"
        view = memoryview(data)
        head = bytes(view[:_BINARY_PROBE])
        if head.startswith(_LFS_POINTER):
            return "lfs-pointer"
        if b"\0" in head:
            return "binary"
        size = len(view)
        # Minified: a mean line longer than _MINIFIED_LINE and few spaces. Counted with early
        # exits, so ordinary code stops after a few hundred newlines.
        if size > 2 * _MINIFIED_LINE and \
                not _at_least(_NEWLINE, data, math.ceil(size / _MINIFIED_LINE - 1)) and \
                not _at_least(_SPARSE, data, math.ceil(_MINIFIED_SPARSE * size)):
            return "minified"
        return None
