"""Config layering: defaults < [tool.gitindex] / .gitindex.toml < GITINDEX_* env < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitindex.config import Config, load
from gitindex.errors import EXIT_USAGE, ConfigError

NO_FLAGS: dict[str, object] = {}


def pyproject(root: Path, body: str) -> None:
    (root / "pyproject.toml").write_text(f'[project]\nname = "demo"\n\n[tool.gitindex]\n{body}\n')


def test_defaults_without_any_source(tmp_path: Path) -> None:
    assert load(tmp_path, {}, NO_FLAGS) == Config()
    assert load(None, {}, NO_FLAGS) == Config()


def test_each_layer_overrides_the_one_below(tmp_path: Path) -> None:
    pyproject(tmp_path, 'batch-size = 8\nmax-file-size = 5000\nexclude = ["docs/"]\ndevice = "cpu"')
    from_file = load(tmp_path, {}, NO_FLAGS)
    assert (from_file.batch_size, from_file.max_file_size, from_file.exclude, from_file.device) == (
        8, 5000, ("docs/",), "cpu")
    assert from_file.model == Config().model  # untouched keys keep their defaults

    env = {"GITINDEX_BATCH_SIZE": "16", "GITINDEX_EXCLUDE": "build/, dist/", "PATH": "/usr/bin"}
    from_env = load(tmp_path, env, NO_FLAGS)
    assert (from_env.batch_size, from_env.exclude) == (16, ("build/", "dist/"))
    assert (from_env.max_file_size, from_env.device) == (5000, "cpu")  # still from the file

    flags = {"batch_size": 32, "max_file_size": None, "exclude": (), "include": ("src/",), "device": None}
    from_flags = load(tmp_path, env, flags)
    assert from_flags.batch_size == 32 and from_flags.include == ("src/",)
    # None and () mean "flag not given": the layers below stay.
    assert (from_flags.max_file_size, from_flags.exclude, from_flags.device) == (5000, ("build/", "dist/"), "cpu")


def test_gitindex_toml_plain_or_as_a_tool_table(tmp_path: Path) -> None:
    (tmp_path / ".gitindex.toml").write_text('collection = "shared"\ndefault-excludes = false\n')
    cfg = load(tmp_path, {}, NO_FLAGS)
    assert cfg.collection == "shared" and cfg.default_excludes is False

    (tmp_path / ".gitindex.toml").write_text('[tool.gitindex]\nmax-files = 3\n')
    assert load(tmp_path, {}, NO_FLAGS).max_files == 3


def test_pyproject_without_a_gitindex_table_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.ruff]\nline-length = 99\n')
    assert load(tmp_path, {}, NO_FLAGS) == Config()


@pytest.mark.parametrize("where", ["pyproject.toml", ".gitindex.toml"])
def test_unknown_key_in_a_file_is_named(tmp_path: Path, where: str) -> None:
    if where == "pyproject.toml":
        pyproject(tmp_path, "batch-size = 4\nbatch-sise = 8")
    else:
        (tmp_path / where).write_text("batch-sise = 8\n")
    with pytest.raises(ConfigError, match="batch-sise") as info:
        load(tmp_path, {}, NO_FLAGS)
    assert info.value.exit_code == EXIT_USAGE
    assert where in str(info.value) and "batch-size" in str(info.value)  # where, and what is known


def test_unknown_environment_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GITINDEX_BATCHSIZE"):
        load(tmp_path, {"GITINDEX_BATCHSIZE": "4"}, NO_FLAGS)


@pytest.mark.parametrize(("toml", "key"), [
    ('batch-size = "many"', "batch_size"),
    ("batch-size = 0", "batch_size"),
    ("batch-size = 2.5", "batch_size"),
    ("max-files = true", "max_files"),
    ('default-excludes = "maybe"', "default_excludes"),
    ("include = [1, 2]", "include"),
    ("lock-timeout = -1", "lock_timeout"),
    ("lock-timeout = true", "lock_timeout"),
    ("model = 7", "model"),
])
def test_bad_values_in_a_file_name_the_key(tmp_path: Path, toml: str, key: str) -> None:
    pyproject(tmp_path, toml)
    with pytest.raises(ConfigError, match=key) as info:
        load(tmp_path, {}, NO_FLAGS)
    assert info.value.exit_code == EXIT_USAGE


@pytest.mark.parametrize(("name", "value"), [
    ("GITINDEX_MAX_FILE_SIZE", "1MB"), ("GITINDEX_DEFAULT_EXCLUDES", "sometimes"), ("GITINDEX_LOCK_TIMEOUT", "soon"),
])
def test_bad_values_in_the_environment_name_the_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load(tmp_path, {name: value}, NO_FLAGS)


def test_bad_flag_value_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        load(tmp_path, {}, {"batch_size": 0})


def test_environment_values_are_typed(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"GITINDEX_DEFAULT_EXCLUDES": "no", "GITINDEX_LOCK_TIMEOUT": "0.5",
                          "GITINDEX_MAX_FILES": "12"}, NO_FLAGS)
    assert (cfg.default_excludes, cfg.lock_timeout, cfg.max_files) == (False, 0.5, 12)


def test_empty_environment_variable_counts_as_unset(tmp_path: Path) -> None:
    pyproject(tmp_path, 'model = "/models/mine"\nmax-files = 5')
    cfg = load(tmp_path, {"GITINDEX_MODEL": "", "GITINDEX_MAX_FILES": "", "QDRANT_URL": ""}, NO_FLAGS)
    assert (cfg.model, cfg.max_files, cfg.qdrant_url) == ("/models/mine", 5, None)


def test_qdrant_url_layers(tmp_path: Path) -> None:
    pyproject(tmp_path, 'qdrant-url = "http://from-file:6333"')
    assert load(tmp_path, {}, NO_FLAGS).qdrant_url == "http://from-file:6333"
    env = {"QDRANT_URL": "http://from-env:6333"}
    assert load(tmp_path, env, NO_FLAGS).qdrant_url == "http://from-env:6333"
    env["GITINDEX_QDRANT_URL"] = "http://from-gitindex-env:6333"
    assert load(tmp_path, env, NO_FLAGS).qdrant_url == "http://from-gitindex-env:6333"
    assert load(tmp_path, env, {"qdrant_url": "http://from-flag:6333"}).qdrant_url == "http://from-flag:6333"


SECRET = "s3cr3t-api-key-value"


def test_api_key_comes_from_the_environment_and_is_never_shown(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"QDRANT_API_KEY": SECRET, "QDRANT_URL": "https://q.example:6333"}, NO_FLAGS)
    assert cfg.qdrant_api_key == SECRET and cfg.qdrant_url == "https://q.example:6333"
    assert SECRET not in repr(cfg) and SECRET not in str(cfg)


@pytest.mark.parametrize("where", ["pyproject.toml", ".gitindex.toml"])
def test_api_key_is_refused_from_a_file(tmp_path: Path, where: str) -> None:
    line = f'qdrant-api-key = "{SECRET}"'
    if where == "pyproject.toml":
        pyproject(tmp_path, line)
    else:
        (tmp_path / where).write_text(line + "\n")
    with pytest.raises(ConfigError, match="QDRANT_API_KEY") as info:
        load(tmp_path, {}, NO_FLAGS)
    assert SECRET not in str(info.value)


def test_api_key_is_refused_from_gitindex_env_and_taken_from_a_library_call(tmp_path: Path) -> None:
    given = load(tmp_path, {}, {"qdrant_api_key": SECRET})  # gitindex.open(path, qdrant_api_key=...)
    assert given.qdrant_api_key == SECRET and SECRET not in repr(given)
    with pytest.raises(ConfigError, match="QDRANT_API_KEY") as info:
        load(tmp_path, {"GITINDEX_QDRANT_API_KEY": SECRET}, NO_FLAGS)
    assert SECRET not in str(info.value)


def test_invalid_toml_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / ".gitindex.toml").write_text("batch-size = [\n")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load(tmp_path, {}, NO_FLAGS)
    assert info.value.exit_code == EXIT_USAGE


@pytest.mark.parametrize("head", ['tool = "gitindex"', "tool.gitindex = 5", 'tool.gitindex = "x"'])
def test_a_scalar_where_a_table_belongs_is_a_usage_error(tmp_path: Path, head: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f'{head}\n[project]\nname = "demo"\n')
    with pytest.raises(ConfigError, match="must be a table") as info:
        load(tmp_path, {}, NO_FLAGS)
    assert info.value.exit_code == EXIT_USAGE
    (tmp_path / "pyproject.toml").unlink()
    (tmp_path / ".gitindex.toml").write_text('tool = "gitindex"\n')
    with pytest.raises(ConfigError, match="must be a table"):
        load(tmp_path, {}, NO_FLAGS)


def test_a_pyproject_that_does_not_mention_gitindex_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("tool = 5\n[broken\n")  # not ours, and not even TOML
    assert load(tmp_path, {}, NO_FLAGS) == Config()


def test_nan_is_not_a_timeout(tmp_path: Path) -> None:
    (tmp_path / ".gitindex.toml").write_text("lock-timeout = nan\n")
    with pytest.raises(ConfigError, match="lock_timeout"):
        load(tmp_path, {}, NO_FLAGS)


@pytest.mark.parametrize(("value", "expected"), [(" YES ", True), ("off", False), ("0", False), ("On", True)])
def test_switches_from_the_environment(tmp_path: Path, value: str, expected: bool) -> None:
    assert load(tmp_path, {"GITINDEX_DEFAULT_EXCLUDES": value}, NO_FLAGS).default_excludes is expected


def test_a_choice_is_checked_after_its_type(tmp_path: Path) -> None:
    (tmp_path / ".gitindex.toml").write_text("backend = 5\n")
    with pytest.raises(ConfigError, match="expected a string"):
        load(tmp_path, {}, NO_FLAGS)
    with pytest.raises(ConfigError, match="choose one of torch, onnx, onnx-int8"):
        load(None, {"GITINDEX_BACKEND": "cuda"}, NO_FLAGS)
