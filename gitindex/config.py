"""Settings: defaults, then [tool.gitindex] / .gitindex.toml, then GITINDEX_* env, then flags.

Validated by a small declarative schema (a parser per field type, read from Config's
annotations) rather than a library: pydantic, msgspec and cattrs were measured against it
(0.1 s, 10 ms and 30 ms more on every command's start, and each still needed the hand-written
rules for comma lists, yes/no and the secret key), and its messages name the key, the source,
the value and what is expected.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitindex.errors import ConfigError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BACKENDS = ("torch", "onnx", "onnx-int8")


@dataclass(frozen=True)
class Config:
    """Everything a run can be told; the library never reads the environment itself."""

    model: str = DEFAULT_MODEL
    batch_size: int = 256  # chunks per batch: fastest of 16-512 on a first index (benchmarks/batch_size.py)
    max_file_size: int = 1_000_000  # bytes; larger files are skipped
    max_files: int | None = None  # stop after this many files; the next run continues
    include: tuple[str, ...] = ()  # gitignore-style; when set, only matching paths are indexed
    exclude: tuple[str, ...] = ()  # gitignore-style; matching paths are never indexed
    # Refs every sync keeps indexed besides the checked-out branch (fnmatch patterns over branch,
    # tag and remote-branch names: "main", "release/*"); README: Branches and refs.
    refs: tuple[str, ...] = ()
    default_excludes: bool = True  # skip lock files, minified files and files that hold secrets
    qdrant_url: str | None = None  # None: the embedded store under the git dir
    qdrant_api_key: str | None = field(default=None, repr=False)  # from the environment or a library call
    # Seconds a call to a Qdrant server may take, retries of transient failures included.
    qdrant_timeout: float = 60.0
    collection: str | None = None  # default: the repository's directory name
    # Which repository the points belong to, in a collection several share: every write, delete,
    # scan and search is scoped to it. Default: the origin URL without scheme, user and .git
    # (github.com/psf/requests), else the directory name.
    repo_key: str | None = None
    backend: str = "onnx-int8"  # torch | onnx | onnx-int8 (see README: Performance)
    device: str | None = None  # torch device for the model, e.g. "cpu" or "cuda" (cuda: torch)
    model_cache: str | None = None  # where ONNX exports of the model are kept
    lock_timeout: float = 600.0  # seconds a sync waits for another one to finish
    cache_max_mb: int = 1024  # bound of the on-disk vector cache
    memory_limit_mb: int | None = None  # a sync adapts to stay under it; None: half of what is available
    chunker: str = "syntax"  # syntax: chunks follow definitions (tree-sitter) where a grammar fits; lines
    search_mode: str = "hybrid"  # hybrid | dense | lexical (README: Search)
    # Reciprocal-rank-fusion weights of a hybrid search: dense, lexical, definitions the query names.
    fusion_weights: tuple[float, ...] = (1.0, 1.0, 1.0)
    fusion_k: int = 60  # the RRF constant: a hit at rank r counts weight / (k + r)


# --- Validation: one parser per field type, chosen from Config's annotations -------------------------
# Each parser takes a TOML value, an environment string or a flag value and returns the field's value,
# or raises ValueError with what was expected. `load` adds the key and where the value came from.

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _count(value: Any) -> int:
    """A whole number of 1 or more: 8, 8.0 or "8" (not true, 2.5 or "eight")."""
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError("expected a whole number") from None
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected a whole number")
    if value < 1:
        raise ValueError("expected a number of 1 or more")
    return value


def _amount(value: Any) -> float:
    """A number of 0 or more: 0.5, 3 or "0.5" (not true, -1, "soon" or nan)."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError("expected a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected a number")
    if math.isnan(value) or value < 0:
        raise ValueError("expected a number of 0 or more")
    if math.isinf(value):  # a timeout of 1e400 (inf) would overflow the timers that wait on it
        raise ValueError("expected a finite number")
    return float(value)


def _switch(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = value.strip().lower() if isinstance(value, str) else None
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise ValueError("expected true or false (or yes/no, 1/0)")


def _texts(value: Any) -> tuple[str, ...]:
    """A list of strings, or one string of comma-separated items (as an environment variable gives)."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ValueError("expected a list of strings")


def _amounts(value: Any) -> tuple[float, ...]:
    """Numbers: a list, or one string of comma-separated numbers."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError("expected a list of numbers")
    return tuple(_amount(item) for item in items)


def _url(value: str) -> str:
    """A Qdrant server's URL: http(s), a host, a port (if any) of 1 to 65535; a path is allowed."""
    from urllib.parse import urlsplit

    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError("a URL has no spaces or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port  # parsed on access: raises for "99999" or "abc"
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("expected an http:// or https:// URL, as in http://localhost:6333")
    if not parts.hostname:
        raise ValueError("expected a host, as in http://localhost:6333")
    if port == 0:
        raise ValueError("expected a port of 1 to 65535")
    return value


NAME_MAX_BYTES = 255  # a collection is a directory of the embedded store: one path component
# Names the embedded store gives the files beside a collection `x` (x.lock, x.next, ...): a
# collection named so would be taken for one of them (store/swap.py, store/embedded.py).
_SIDE_SUFFIXES = (".next", ".old", ".lock", ".readers", ".unreadable")


def check_collection(value: str) -> str:
    """A collection name that stays one directory under the store (the embedded store makes
    data_dir/qdrant/NAME): no separators, no `..`, no control characters, not a name the store
    gives the files beside a collection, 1 to 255 bytes."""
    if not value:
        raise ValueError("expected a name, not an empty string")
    if "/" in value or "\\" in value or ".." in value or value == ".":
        raise ValueError("a collection name has no '/', '\\' or '..' and is not '.'")
    if value.endswith(_SIDE_SUFFIXES) or ".corrupt-" in value:
        raise ValueError(f"a collection name does not end in {', '.join(_SIDE_SUFFIXES)} nor hold '.corrupt-' "
                         "(the embedded store names the files beside a collection so)")
    _printable(value)
    if len(value.encode("utf-8", "surrogatepass")) > NAME_MAX_BYTES:
        raise ValueError(f"a collection name is at most {NAME_MAX_BYTES} bytes long")
    return value


def _printable(value: str) -> str:
    """No NUL, newline or other control character (they end up in paths, payloads and logs)."""
    if not value.isprintable():
        raise ValueError("no control or invisible characters (NUL, newline, tab, ...) allowed")
    return value


def _patterns(value: tuple[str, ...]) -> tuple[str, ...]:
    """No empty pattern: `--include ""` matches no path, and would index nothing without a word."""
    if not all(item.strip() for item in value):
        raise ValueError("expected gitignore-style patterns, not an empty one")
    return value


# Field -> a check of the parsed value beyond its type (raises ValueError with what is expected).
_CHECKS: dict[str, Callable[[Any], Any]] = {"qdrant_url": _url, "collection": check_collection,
                                             "repo_key": _printable, "include": _patterns,
                                             "exclude": _patterns, "refs": _patterns}


def _shown(key: str, value: Any) -> str:
    """The value as a message shows it: a URL's password (user:password@host) is masked."""
    if key == "qdrant_url" and isinstance(value, str):
        return repr(re.sub(r"^([^/?#]*//[^/?#@:]*:)[^/?#@]*@", r"\1***@", value))
    return repr(value)


# Annotation (as written in Config, without "| None") -> parser. A field of another type fails at import.
_PARSERS: dict[str, Callable[[Any], Any]] = {
    "str": _text,
    "int": _count,
    "float": _amount,
    "bool": _switch,
    "tuple[str, ...]": _texts,
    "tuple[float, ...]": _amounts,
}
_FIELDS: dict[str, tuple[Callable[[Any], Any], bool]] = {
    f.name: (_PARSERS[str(f.type).removesuffix(" | None")], str(f.type).endswith(" | None"))
    for f in dataclasses.fields(Config)
}
CHUNKERS = ("syntax", "lines")
SEARCH_MODES = ("hybrid", "dense", "lexical")  # store.MODES
_CHOICES: dict[str, tuple[str, ...]] = {"backend": BACKENDS, "chunker": CHUNKERS, "search_mode": SEARCH_MODES}
# Keys that may come only from the environment or a library call, never from a file.
_SECRET_KEYS = frozenset({"qdrant_api_key"})
_CONFIG_FILES = (".gitindex.toml", "pyproject.toml")


def _coerce(key: str, value: Any, source: str) -> Any:
    """Turn a TOML, environment or flag value into the field's type, or fail naming the key and source."""
    parse, optional = _FIELDS[key]
    if value is None and optional:
        return None
    try:
        result = parse(value)
        check = _CHECKS.get(key)
        if check is not None:
            check(result)
    except ValueError as exc:
        raise ConfigError(f"{source}: bad value for {key!r}: {_shown(key, value)} ({exc})") from None
    choices = _CHOICES.get(key)
    if choices is not None and result not in choices:
        raise ConfigError(f"{source}: bad value for {key!r}: {value!r} (choose one of {', '.join(choices)})")
    if key == "fusion_weights" and (len(result) != 3 or not any(result)):
        raise ConfigError(f"{source}: bad value for {key!r}: {value!r} (expected three weights: dense, "
                          "lexical, names; not all zero)")
    return result


def _normalize(raw: Mapping[str, Any], source: str, *, secrets: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in raw.items():
        key = name.replace("-", "_")
        if key not in _FIELDS or (key in _SECRET_KEYS and not secrets):
            known = ", ".join(sorted(k.replace("_", "-") for k in _FIELDS if k not in _SECRET_KEYS))
            hint = " (the API key is read only from QDRANT_API_KEY)" if key in _SECRET_KEYS else ""
            raise ConfigError(f"{source}: unknown key {name!r}{hint}; known keys: {known}")
        out[key] = _coerce(key, value, source)
    return out


def _from_files(root: Path) -> dict[str, Any]:
    for name in _CONFIG_FILES:
        path = root / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        if name == "pyproject.toml" and "gitindex" not in text:
            continue  # another tool's file: not even parsed (tomllib costs every command 8 ms)
        import tomllib

        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        tool = data.get("tool")
        if tool is not None and not isinstance(tool, dict):
            raise ConfigError(f"{path}: [tool] must be a table, not {tool!r}")
        if tool is not None and "gitindex" in tool:
            data = tool["gitindex"]
        elif name == "pyproject.toml":
            continue  # a pyproject.toml without [tool.gitindex] is not ours
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: [tool.gitindex] must be a table, not {data!r}")
        return _normalize(data, str(path))
    return {}


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in env.items():
        if name.startswith("GITINDEX_"):
            key = name[len("GITINDEX_") :].lower()
            if key in {"home"} or not value:  # an empty variable counts as unset, like QDRANT_URL
                continue
            out.update(_normalize({key: value}, f"environment variable {name}"))
    if env.get("QDRANT_URL") and "qdrant_url" not in out:
        out["qdrant_url"] = _coerce("qdrant_url", env["QDRANT_URL"], "environment variable QDRANT_URL")
    if env.get("QDRANT_API_KEY"):
        out["qdrant_api_key"] = env["QDRANT_API_KEY"]
    if env.get("XDG_CACHE_HOME"):
        out.setdefault("model_cache", str(Path(env["XDG_CACHE_HOME"]) / "gitindex" / "onnx"))
    return out


def load(root: Path | None, env: Mapping[str, str], settings: Mapping[str, Any],
         source: str = "settings") -> Config:
    """Layer defaults, the repository's config file, the environment and the given settings
    (CLI flags or a library call, named `source` in messages; None = unset). The API key may
    come from the environment or a library call, never from a file."""
    values: dict[str, Any] = {}
    given = {k: v for k, v in settings.items() if v is not None and v != ()}
    try:
        if root is not None:
            values.update(_from_files(root))
        values.update(_from_env(env))
        values.update(_normalize(given, source, secrets=True))
    except ConfigError as exc:
        # A message echoes the value it rejects: never the API key, wherever it was pasted.
        message = str(exc)
        for secret in (env.get("QDRANT_API_KEY"), given.get("qdrant_api_key")):
            if isinstance(secret, str) and len(secret) >= 4:
                message = message.replace(secret, "***")
        raise ConfigError(message) from None
    return Config(**values)
