"""Which files are indexed: by path patterns, gitattributes, size and content."""

from __future__ import annotations

from collections.abc import Mapping

import pathspec
import xxhash

from gitindex.config import Config

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
_ASCII = bytes(range(128))


def _spec(patterns: tuple[str, ...]) -> pathspec.GitIgnoreSpec | None:
    return pathspec.GitIgnoreSpec.from_lines(patterns) if patterns else None


class Selector:
    """Decides, for one file, whether it is indexed; returns the reason when it is not."""

    def __init__(self, config: Config) -> None:
        self.max_file_size = config.max_file_size
        self._include = _spec(config.include)
        self._exclude = _spec(config.exclude)
        self._defaults = (
            [("lockfile", _spec(LOCKFILES)), ("minified", _spec(MINIFIED)), ("secret", _spec(SECRETS))]
            if config.default_excludes
            else []
        )
        settings = (SELECTION_VERSION, config.include, config.exclude, config.default_excludes,
                    config.max_file_size)
        self.fingerprint = xxhash.xxh3_64_hexdigest(repr(settings).encode())

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
    def by_content(data: bytes) -> str | None:
        if not data.strip():
            return "empty"
        if data.startswith(_LFS_POINTER):
            return "lfs-pointer"
        if b"\0" in data[:_BINARY_PROBE]:
            return "binary"
        if len(data) > 2 * _MINIFIED_LINE and len(data) / (data.count(b"\n") + 1) > _MINIFIED_LINE:
            sparse = data.count(b" ") + data.count(b"\t") + len(data.translate(None, _ASCII))
            if sparse < _MINIFIED_SPARSE * len(data):
                return "minified"
        return None
