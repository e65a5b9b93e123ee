"""A catalogue of bad inputs, each run through the real command line: every one ends with its
exit code (README: Exit codes) and a message that names what was wrong, never a traceback.

Each case is data (what, arguments, config file, environment, exit code, message), so the
README's table of bad inputs can be checked against this list. Nearly all fail before an
index is opened or the model is loaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import GitRepo
from typer.testing import CliRunner

from gitindex.cli import app
from gitindex.errors import EXIT_ERROR, EXIT_USAGE

runner = CliRunner()
# qdrant-client checks the server's version in a background thread; with no server it warns.
pytestmark = pytest.mark.filterwarnings("ignore:Failed to obtain server version:UserWarning")

TOML = ".gitindex.toml"
PYPROJECT = "pyproject.toml"
SECRET = "s3cret-api-key"


@dataclass(frozen=True)
class Bad:
    """One bad input. In `args`, {repo} is a committed git repository (where `files` are
    written), {plain} a directory outside any repository, {missing} a path that does not exist."""

    what: str
    args: tuple[str, ...]
    code: int
    message: str  # a fragment of the output that names the key or value
    files: Mapping[str, str | bytes] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    absent: str | None = None  # must not appear in the output (a secret)


def toml(body: str | bytes, what: str, message: str, *, args: tuple[str, ...] = ("status", "{repo}"),
         where: str = TOML, code: int = EXIT_USAGE) -> Bad:
    """A bad config file."""
    return Bad(what, args, code, message, files={where: body})


def url(value: str, message: str, args: tuple[str, ...] = ("status", "{repo}")) -> Bad:
    """A bad Qdrant URL given as a flag."""
    return Bad(f"--qdrant-url {value!r} ({args[0]})", (*args, "--qdrant-url", value), EXIT_USAGE, message)


def collection(value: str, message: str, args: tuple[str, ...] = ("status", "{repo}")) -> Bad:
    """A bad collection name given as a flag."""
    shown = value if len(value) < 20 else f"{value[:3]}... ({len(value)} characters)"
    return Bad(f"--collection {shown!r} ({args[0]})", (*args, "--collection", value), EXIT_USAGE, message)


CASES: list[Bad] = [
    # -- config file: keys, each kind of field, the file itself ---------------------------------
    toml("batch-sise = 8\n", "unknown key", "unknown key 'batch-sise'"),
    toml("qdrant-api-key = 'k'\n", "API key in a file", "read only from QDRANT_API_KEY"),
    toml("batch-size = 'eight'\n", "int: a word", "'batch_size': 'eight' (expected a whole number)"),
    toml("batch-size = 2.5\n", "int: a fraction", "'batch_size': 2.5 (expected a whole number)"),
    toml("max-files = true\n", "int: a boolean", "'max_files': True (expected a whole number)"),
    toml("batch-size = 0\n", "int: zero", "'batch_size': 0 (expected a number of 1 or more)"),
    toml("max-file-size = -5\n", "int: negative", "'max_file_size': -5 (expected a number of 1 or more)"),
    toml("batch-size = [1]\n", "int: a list", "'batch_size': [1] (expected a whole number)"),
    toml("lock-timeout = 'soon'\n", "float: a word", "'lock_timeout': 'soon' (expected a number)"),
    toml("qdrant-timeout = -1\n", "float: negative", "'qdrant_timeout': -1 (expected a number of 0 or more)"),
    toml("lock-timeout = nan\n", "float: nan", "'lock_timeout': nan (expected a number of 0 or more)"),
    toml("qdrant-timeout = inf\n", "float: infinite", "'qdrant_timeout': inf (expected a finite number)"),
    toml("default-excludes = 'maybe'\n", "bool: a word", "'default_excludes': 'maybe' (expected true or false"),
    toml("default-excludes = 1\n", "bool: a number", "'default_excludes': 1 (expected true or false"),
    toml("exclude = 3\n", "list: a number", "'exclude': 3 (expected a list of strings)"),
    toml("include = ['src/', 1]\n", "list: a number in it", "'include': ['src/', 1] (expected a list of strings)"),
    toml("exclude = ['build/', ' ']\n", "list: an empty pattern", "(expected gitignore-style patterns, not an empty one)"),
    toml("model = ['a', 'b']\n", "string: a list", "'model': ['a', 'b'] (expected a string)"),
    toml("collection = { name = 'x' }\n", "string: a table", "'collection': {'name': 'x'} (expected a string)"),
    toml("backend = 'tensorflow'\n", "choice: backend", "'backend': 'tensorflow' (choose one of torch, onnx, onnx-int8)"),
    toml("chunker = 'words'\n", "choice: chunker", "'chunker': 'words' (choose one of syntax, lines)"),
    toml("search-mode = 'fuzzy'\n", "choice: search-mode", "'search_mode': 'fuzzy' (choose one of hybrid"),
    toml("fusion-weights = [1, 1]\n", "numbers: two, not three", "'fusion_weights': [1, 1] (expected three weights"),
    toml("fusion-weights = [0, 0, 0]\n", "numbers: all zero", "not all zero"),
    toml("fusion-weights = [true, 1, 1]\n", "numbers: a boolean in it", "'fusion_weights': [True, 1, 1] (expected a number)"),
    toml("fusion-k = 0\n", "fusion-k zero", "'fusion_k': 0 (expected a number of 1 or more)"),
    toml("qdrant-url = 'ftp://host'\n", "URL in the file: not http", "'qdrant_url': 'ftp://host' (expected an http:// or https:// URL"),
    toml("collection = '../x'\n", "collection in the file: a path", "'collection': '../x' (a collection name has no '/'"),
    toml("collection = ''\n", "collection in the file: empty", "'collection': '' (expected a name, not an empty string)"),
    toml('repo-key = "a\\nb"\n', "repo-key: a control character", "'repo_key': 'a\\nb' (no control or invisible characters"),
    toml("[tool]\ngitindex = 5\n", "[tool.gitindex] a number", "[tool.gitindex] must be a table, not 5", where=PYPROJECT),
    toml("[tool]\ngitindex = 'x'\n", "[tool.gitindex] a string", "[tool.gitindex] must be a table, not 'x'", where=PYPROJECT),
    toml("[tool]\ngitindex = [1]\n", "[tool.gitindex] a list", "[tool.gitindex] must be a table, not [1]"),
    toml("tool = 3\n", "[tool] not a table", "[tool] must be a table, not 3"),
    toml("batch-size = \n", "malformed TOML", "not valid TOML: Invalid value (at line 1"),
    toml("[tool.gitindex]\nbatch-size = 1\n[tool.gitindex]\n", "TOML: a table twice", "not valid TOML",
         where=PYPROJECT),
    toml(b"model = '\xff'\n", "not UTF-8", "not valid TOML: 'utf-8' codec can't decode byte 0xff"),
    # -- environment ----------------------------------------------------------------------------
    Bad("GITINDEX_BATCH_SIZE=abc", ("status", "{repo}"), EXIT_USAGE,
        "environment variable GITINDEX_BATCH_SIZE: bad value for 'batch_size'", env={"GITINDEX_BATCH_SIZE": "abc"}),
    Bad("GITINDEX_NOPE=1 (unknown key)", ("status", "{repo}"), EXIT_USAGE,
        "environment variable GITINDEX_NOPE: unknown key 'nope'", env={"GITINDEX_NOPE": "1"}),
    Bad("GITINDEX_DEFAULT_EXCLUDES=maybe", ("status", "{repo}"), EXIT_USAGE,
        "'default_excludes': 'maybe' (expected true or false", env={"GITINDEX_DEFAULT_EXCLUDES": "maybe"}),
    Bad("GITINDEX_QDRANT_API_KEY (the key's variable is QDRANT_API_KEY)", ("status", "{repo}"), EXIT_USAGE,
        "read only from QDRANT_API_KEY", env={"GITINDEX_QDRANT_API_KEY": SECRET}, absent=SECRET),
    Bad("GITINDEX_COLLECTION=x/y", ("status", "{repo}"), EXIT_USAGE,
        "environment variable GITINDEX_COLLECTION: bad value for 'collection': 'x/y'", env={"GITINDEX_COLLECTION": "x/y"}),
    # -- Qdrant URLs ----------------------------------------------------------------------------
    url("not a url", "'qdrant_url': 'not a url' (a URL has no spaces or control characters)"),
    url("ftp://host", "'ftp://host' (expected an http:// or https:// URL", ("search", "q", "--repo", "{repo}")),
    url("http://host:99999", "'http://host:99999' (not a URL: Port out of range", ("sync", "{repo}")),
    url("http://[::1", "'http://[::1' (not a URL: Invalid IPv6 URL)", ("verify", "{repo}")),
    url("http://", "'http://' (expected a host", ("index", "{repo}")),
    url("http://qdrant host:6333", "'http://qdrant host:6333' (a URL has no spaces"),
    url("http://host:0", "'http://host:0' (expected a port of 1 to 65535)"),
    url("http://host:port", "'http://host:port' (not a URL: Port could not be cast"),
    url("localhost:6333", "'localhost:6333' (expected an http:// or https:// URL"),
    Bad("QDRANT_URL=ftp://host", ("status", "{repo}"), EXIT_USAGE,
        "environment variable QDRANT_URL: bad value for 'qdrant_url': 'ftp://host'", env={"QDRANT_URL": "ftp://host"}),
    Bad("URL with a password, and the API key, in it", ("status", "{repo}", "--qdrant-url",
        f"https://me:{SECRET}@host:99999/{SECRET}"), EXIT_USAGE, "'https://me:***@host:99999/***'",
        env={"QDRANT_API_KEY": SECRET}, absent=SECRET),
    # -- collection names -----------------------------------------------------------------------
    collection("../../../x", "'collection': '../../../x' (a collection name has no '/', '\\' or '..'",
               ("sync", "{repo}")),
    collection("a/b", "'collection': 'a/b' (a collection name has no '/'"),
    collection("a\\b", "'collection': 'a\\\\b' (a collection name has no '/'", ("search", "q", "--repo", "{repo}")),
    collection("..", "'collection': '..' (a collection name has no", ("verify", "{repo}")),
    collection(".", "'collection': '.' (a collection name has no '/', '\\' or '..' and is not '.')",
               ("index", "{plain}")),
    collection("", "'collection': '' (expected a name, not an empty string)", ("sync", "{repo}")),
    collection("a\x00b", "'collection': 'a\\x00b' (no control or invisible characters"),
    collection("a\tb", "'collection': 'a\\tb' (no control or invisible characters"),
    collection("x" * 256, "(a collection name is at most 255 bytes long)"),
    collection("code.next", "'collection': 'code.next' (a collection name does not end in .next, .old, .lock",
               ("sync", "{repo}")),
    collection("code.lock", "(a collection name does not end in .next, .old, .lock"),
    collection("é" * 128, "(a collection name is at most 255 bytes long)"),
    # -- flags ----------------------------------------------------------------------------------
    Bad("--include ''", ("sync", "{repo}", "--include", ""), EXIT_USAGE,
        "'include': ('',) (expected gitignore-style patterns, not an empty one)"),
    Bad("--batch-size 0", ("sync", "{repo}", "--batch-size", "0"), EXIT_USAGE,
        "command line: bad value for 'batch_size': 0 (expected a number of 1 or more)"),
    Bad("--batch-size x", ("sync", "{repo}", "--batch-size", "x"), EXIT_USAGE, "Invalid value for '--batch-size'"),
    Bad("--max-files -1", ("index", "{repo}", "--max-files", "-1"), EXIT_USAGE, "'max_files': -1"),
    Bad("--memory-limit 0", ("sync", "{repo}", "--memory-limit", "0"), EXIT_USAGE, "'memory_limit_mb': 0"),
    Bad("--backend tensorflow", ("sync", "{repo}", "--backend", "tensorflow"), EXIT_USAGE,
        "'backend': 'tensorflow' (choose one of"),
    Bad("--limit 0", ("search", "q", "--repo", "{repo}", "--limit", "0"), EXIT_USAGE, "Invalid value for '--limit'"),
    Bad("--limit 5000", ("search", "q", "--repo", "{repo}", "--limit", "5000"), EXIT_USAGE, "Invalid value for '--limit'"),
    Bad("--limit ten", ("search", "q", "--repo", "{repo}", "-n", "ten"), EXIT_USAGE, "Invalid value for '--limit'"),
    Bad("--context -1", ("search", "q", "--repo", "{repo}", "-C", "-1"), EXIT_USAGE, "Invalid value for '--context'"),
    Bad("--mode fuzzy", ("search", "q", "--repo", "{repo}", "--mode", "fuzzy"), EXIT_USAGE,
        "unknown search mode 'fuzzy': choose one of hybrid, dense, lexical"),
    Bad("--lang ''", ("search", "q", "--repo", "{repo}", "--lang", ""), EXIT_USAGE,
        "bad --lang '': expected a language such as python"),
    Bad("--lang pyhton (no such language)", ("search", "q", "--repo", "{repo}", "--lang", "pyhton"), EXIT_USAGE,
        "bad --lang 'pyhton': no such language; did you mean python"),
    Bad("--path '['", ("search", "q", "--repo", "{repo}", "--path", "["), EXIT_USAGE,
        "bad --path '[': not a glob git understands"),
    Bad("--path ''", ("search", "q", "--repo", "{repo}", "--path", ""), EXIT_USAGE,
        "bad --path '': an empty glob matches nothing"),
    Bad("--path '!x'", ("search", "q", "--repo", "{repo}", "--path", "!x"), EXIT_USAGE,
        "bad --path '!x': a '!' pattern on its own matches nothing"),
    Bad("--path '\\'", ("search", "q", "--repo", "{repo}", "--path", "\\"), EXIT_USAGE,
        "bad --path '\\\\': not a gitignore-style glob"),
    Bad("--symbol ''", ("search", "q", "--repo", "{repo}", "--symbol", ""), EXIT_USAGE, "bad --symbol ''"),
    Bad("empty query", ("search", "", "--repo", "{repo}"), EXIT_USAGE, "the query is empty"),
    Bad("blank query", ("search", "   ", "--repo", "{repo}"), EXIT_USAGE, "the query is empty"),
    Bad("--shard 0/3", ("sync", "{repo}", "--shard", "0/3"), EXIT_USAGE, "bad shard '0/3': expected K/N"),
    Bad("--shard 4/3", ("sync", "{repo}", "--shard", "4/3"), EXIT_USAGE, "bad shard '4/3': expected K/N"),
    Bad("--shard x", ("sync", "{repo}", "--shard", "x"), EXIT_USAGE, "bad shard 'x': expected K/N"),
    Bad("--ref that does not exist", ("sync", "{repo}", "--ref", "no-such-branch"), EXIT_ERROR,
        "cannot resolve 'no-such-branch' to a commit"),
    Bad("--ref on verify", ("verify", "{repo}", "--ref", "no-such-branch"), EXIT_ERROR,
        "cannot resolve 'no-such-branch' to a commit"),
    Bad("--staged with --ref", ("sync", "{repo}", "--staged", "--ref", "HEAD"), EXIT_USAGE,
        "--staged and --ref exclude each other"),
    Bad("--ref on a plain directory", ("index", "{plain}", "--ref", "HEAD"), EXIT_USAGE,
        "is not a git repository: --ref and --staged need one"),
    Bad("--forget the checked-out branch", ("sync", "{repo}", "--forget", "main"), EXIT_USAGE,
        "'main' is checked out here: a sync always indexes it"),
    Bad("--forget with --shard", ("sync", "{repo}", "--forget", "main", "--shard", "1/2"), EXIT_USAGE,
        "--forget and --shard exclude each other"),
    Bad("--forget on a plain directory", ("index", "{plain}", "--forget", "main"), EXIT_USAGE,
        "plain is not a git repository: --forget names a ref"),
    Bad("unknown option", ("sync", "{repo}", "--frobnicate"), EXIT_USAGE, "No such option: --frobnicate"),
    Bad("unknown command", ("synk",), EXIT_USAGE, "No such command 'synk'"),
    # -- paths and repositories -----------------------------------------------------------------
    Bad("sync: not a repository", ("sync", "{plain}"), EXIT_ERROR, "plain is not inside a git repository"),
    Bad("hooks install: not a repository", ("hooks", "install", "{plain}"), EXIT_ERROR,
        "plain is not inside a git repository"),
    Bad("hooks status: not a repository", ("hooks", "status", "{plain}"), EXIT_ERROR,
        "plain is not inside a git repository"),
    Bad("log: not a repository", ("log", "{plain}"), EXIT_ERROR, "plain is not inside a git repository"),
    Bad("status: path does not exist", ("status", "{missing}"), EXIT_ERROR, "missing is not a directory"),
    Bad("search: --repo does not exist", ("search", "q", "--repo", "{missing}"), EXIT_ERROR,
        "missing is not a directory"),
    Bad("search: a plain directory never indexed", ("search", "q", "--repo", "{plain}"), EXIT_ERROR,
        "plain is not indexed: run `gitindex index"),
    Bad("verify: a plain directory never indexed", ("verify", "{plain}"), EXIT_ERROR,
        "plain is not indexed: run `gitindex index"),
    Bad("log --last 0", ("log", "{repo}", "--last", "0"), EXIT_USAGE, "Invalid value for '--last'"),
    Bad("hooks wait --timeout soon", ("hooks", "wait", "{repo}", "--timeout", "soon"), EXIT_USAGE,
        "'soon' is not a valid float"),
    Bad("hooks wait --timeout -1", ("hooks", "wait", "{repo}", "--timeout", "-1"), EXIT_USAGE,
        "Invalid value for '--timeout': -1.0 (expected 0 or more seconds)"),
    Bad("hooks wait --timeout nan", ("hooks", "wait", "{repo}", "--timeout", "nan"), EXIT_USAGE,
        "Invalid value for '--timeout': nan"),
    Bad("hooks wait --timeout inf", ("hooks", "wait", "{repo}", "--timeout", "inf"), EXIT_USAGE,
        "Invalid value for '--timeout': inf"),
]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("GITINDEX_", "QDRANT_")) or name in {"GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE"}:
            monkeypatch.delenv(name)


def test_the_catalogue_covers_every_command_and_is_unique() -> None:
    assert len(CASES) >= 40
    assert len({case.what for case in CASES}) == len(CASES)
    commands = {case.args[0] for case in CASES}
    assert commands >= {"sync", "index", "search", "status", "verify", "hooks", "log"}


@pytest.mark.parametrize("case", CASES, ids=[case.what for case in CASES])
def test_bad_input(case: Bad, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"app.py": "def main():\n    return 0\n"})
    repo.write(dict(case.files))
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)  # a command without a path must not find some repository by chance
    places = {"repo": str(repo.path), "plain": str(plain), "missing": str(tmp_path / "missing")}
    args = [arg.format(**places) if "{" in arg else arg for arg in case.args]

    result = runner.invoke(app, args, env=dict(case.env))

    assert (result.exit_code, case.message in result.output) == (case.code, True), result.output
    assert "Traceback" not in result.output and "a bug" not in result.output
    if case.absent is not None:
        assert case.absent not in result.output
    # Nothing was made beside the repository and the directory (--collection ../../../x made
    # directories outside the repository before names were checked).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain", "repo"]


@pytest.mark.parametrize(("flags", "message"), [
    ({"lang": ""}, "bad --lang ''"),
    ({"lang": "pyhton"}, "did you mean python"),
    ({"path": "["}, "bad --path '['"),
    ({"path": " "}, "bad --path ' '"),
    ({"symbol": ""}, "bad --symbol ''"),
])
def test_the_library_refuses_the_same_search_filters(tmp_path: Path, flags: dict[str, str], message: str) -> None:
    """Index.search raises ConfigError for the filters the CLI refuses (the check is in
    gitindex/search.py, which both use), before the model or the store is opened."""
    import gitindex
    from gitindex.errors import ConfigError

    repo = GitRepo(tmp_path / "repo")
    repo.commit({"app.py": "def main():\n    return 0\n"})
    with gitindex.open(repo.path) as index, pytest.raises(ConfigError, match=message.replace("[", "\\[")):
        index.search("q", **flags)
    assert not (repo.path / ".git" / "gitindex" / "qdrant").exists()
