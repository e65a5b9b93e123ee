"""Settings: defaults, then [tool.gitindex] / .gitindex.toml, then GITINDEX_* env, then flags."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
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
    default_excludes: bool = True  # skip lock files, minified files and files that hold secrets
    qdrant_url: str | None = None  # None: the embedded store under the git dir
    qdrant_api_key: str | None = field(default=None, repr=False)  # from the environment only
    collection: str | None = None  # default: the repository's directory name
    backend: str = "onnx-int8"  # torch | onnx | onnx-int8 (see README: Performance)
    device: str | None = None  # torch device for the model, e.g. "cpu" or "cuda" (cuda: torch)
    model_cache: str | None = None  # where ONNX exports of the model are kept
    lock_timeout: float = 600.0  # seconds a sync waits for another one to finish
    cache_max_mb: int = 1024  # bound of the on-disk vector cache
    memory_limit_mb: int | None = None  # a sync adapts to stay under it; None: half of what is available


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}
# Keys that may come only from the environment, never from a file or a flag.
_SECRET_KEYS = {"qdrant_api_key"}
_CHOICES = {"backend": BACKENDS}
_CONFIG_FILES = (".gitindex.toml", "pyproject.toml")


def _coerce(key: str, value: Any, source: str) -> Any:
    """Turn a TOML or environment value into the field's type, or fail naming the key."""
    kind = _FIELDS[key].type
    if key in _CHOICES and value not in _CHOICES[key]:
        raise ConfigError(f"{source}: bad value for {key!r}: {value!r} (choose one of {', '.join(_CHOICES[key])})")
    try:
        if "tuple" in kind:
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise ValueError("expected a list of strings")
            return tuple(value)
        if value is None:
            return None
        if kind.startswith("bool"):
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
                return value.lower() in {"1", "true", "yes", "on"}
            raise ValueError("expected true or false")
        if kind.startswith("int"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError("expected a whole number")
            number = int(value)
            if number < 1:
                raise ValueError("expected a number of 1 or more")
            return number
        if kind.startswith("float"):
            if isinstance(value, bool):
                raise ValueError("expected a number")
            amount = float(value)
            if amount < 0:
                raise ValueError("expected a number of 0 or more")
            return amount
        if not isinstance(value, str):
            raise ValueError("expected a string")
        return value
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: bad value for {key!r}: {value!r} ({exc})") from None


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
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        if name == "pyproject.toml":
            data = data.get("tool", {}).get("gitindex")
            if data is None:
                continue
        elif "tool" in data and "gitindex" in data["tool"]:
            data = data["tool"]["gitindex"]
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: [tool.gitindex] must be a table")
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
    if env.get("QDRANT_URL"):
        out.setdefault("qdrant_url", env["QDRANT_URL"])
    if env.get("QDRANT_API_KEY"):
        out["qdrant_api_key"] = env["QDRANT_API_KEY"]
    if env.get("XDG_CACHE_HOME"):
        out.setdefault("model_cache", str(Path(env["XDG_CACHE_HOME"]) / "gitindex" / "onnx"))
    return out


def load(root: Path | None, env: Mapping[str, str], settings: Mapping[str, Any]) -> Config:
    """Layer defaults, the repository's config file, the environment and the given settings
    (CLI flags or a library call; None = unset). The API key may come from the environment or
    a library call, never from a file."""
    values: dict[str, Any] = {}
    if root is not None:
        values.update(_from_files(root))
    values.update(_from_env(env))
    given = {k: v for k, v in settings.items() if v is not None and v != ()}
    values.update(_normalize(given, "settings", secrets=True))
    return Config(**values)
