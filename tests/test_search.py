"""Search as people and agents use it: hybrid, dense and lexical modes, filters by language and
symbol, the human output, and the indexed text behind a hit. Real repository, model and store."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import CountingEmbedder, GitRepo, open_index
from test_cli import cli

from gitindex.api import Index
from gitindex.errors import EXIT_USAGE, ConfigError, NotIndexedError

ADAPTERS = '''"""Transport adapters."""

import socket


class BaseAdapter:
    """The base of every adapter."""

    def close(self):
        """Clean up adapter specific items."""
        raise NotImplementedError


class HTTPAdapter(BaseAdapter):
    """The built-in HTTP adapter for urllib3, with connection pooling."""

    def __init__(self, pool_connections=10, pool_maxsize=10, max_retries=0):
        self.max_retries = max_retries
        self.pool_connections = pool_connections
        self.pool_maxsize = pool_maxsize

    def send(self, request, stream=False, timeout=None):
        """Send a prepared request over a pooled connection and build the response."""
        conn = self.get_connection(request.url)
        return conn.urlopen(method=request.method, url=request.url, body=request.body)

    def get_connection(self, url):
        """Return a pooled connection for the given URL."""
        return socket.create_connection((url, 80))
'''

SESSIONS = '''"""Sessions keep settings across requests."""

from net.adapters import HTTPAdapter


class Session:
    """A requests session: cookie persistence, connection pooling and configuration."""

    def __init__(self):
        self.adapters = {}
        self.mount("https://", HTTPAdapter())
        self.mount("http://", HTTPAdapter())

    def mount(self, prefix, adapter):
        """Register a connection adapter to a prefix; HTTPAdapter instances are the usual ones."""
        self.adapters[prefix] = adapter

    def get_adapter(self, url):
        """Return the appropriate HTTPAdapter for the given URL."""
        for prefix, adapter in self.adapters.items():
            if url.lower().startswith(prefix.lower()):
                return adapter
        raise ValueError(f"No HTTPAdapter found for {url!r}")
'''

RETRY_GO = '''package retry

import "time"

// Backoff returns how long to wait before the given retry attempt.
func Backoff(attempt int) time.Duration {
	return time.Duration(1<<attempt) * 100 * time.Millisecond
}

// ParseRetryAfter reads the Retry-After header of a response, in seconds.
func ParseRetryAfter(header string) int {
	n := 0
	for _, c := range header {
		n = n*10 + int(c-'0')
	}
	return n
}
'''

def _method(name: str, lines: int) -> str:
    body = "".join(f"        step_{name}_{i} = self.value + {i}  # {name} step {i} of the work\n" for i in range(lines))
    return f"    def {name}(self, request):\n        \"\"\"Do the {name} work.\"\"\"\n{body}        return request\n\n"


# A class too big for one chunk: cut into its methods, each with the class line as context;
# `parse` is too big itself and is split in pieces.
CLIENT = "class Client(Base):\n    \"\"\"A client.\"\"\"\n\n" + "".join(
    _method(name, n) for name, n in (("connect", 12), ("parse", 60), ("close", 12), ("retry", 12)))

NOTES_MD = "# Notes\n\nThe weather is fine today; the garden needs watering and the roses bloom in June.\n"


@pytest.fixture(scope="module")
def searchable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GitRepo, Index]]:
    """One indexed repository for the module (the real model embeds it once)."""
    repo = GitRepo(tmp_path_factory.mktemp("search") / "project")
    repo.commit({"net/adapters.py": ADAPTERS, "net/sessions.py": SESSIONS, "retry/retry.go": RETRY_GO,
                 "docs/notes.md": NOTES_MD, "net/client.py": CLIENT})
    embedder = CountingEmbedder()
    index = open_index(repo.path, embedder)
    index.sync()
    yield repo, index
    index.close()


def first(hits: list[Any]) -> Any:
    assert hits, "no hits"
    return hits[0]


def test_an_identifier_puts_its_definition_first(searchable: tuple[GitRepo, Index]) -> None:
    _, index = searchable
    hit = first(index.search("HTTPAdapter"))
    assert hit.path == "net/adapters.py" and hit.symbol == "HTTPAdapter" and hit.kind == "class"
    assert "class HTTPAdapter(BaseAdapter):" in hit.text
    # Small definitions share a chunk (its symbol is the first one's); the others count as names.
    assert "func ParseRetryAfter(" in first(index.search("ParseRetryAfter")).text
    assert "def get_adapter(" in first(index.search("Session.get_adapter")).text
    # The words of a name find it too.
    assert first(index.search("parse retry after", mode="lexical")).path == "retry/retry.go"


def test_a_qualified_name_finds_the_method_where_it_starts(searchable: tuple[GitRepo, Index]) -> None:
    _, index = searchable
    parse = first(index.search("Client.parse"))
    assert parse.symbol == "Client.parse" and "    def parse(self, request):" in parse.text  # the first piece
    close = first(index.search("Client.close"))
    assert close.symbol == "Client.close" and "def close(" in close.text
    # The class's own chunk answers to the class's name; its methods' chunks do not claim it.
    assert first(index.search("Client")).text.startswith("class Client(Base):")
    pieces = index.search("parse", symbol="Client.parse", limit=20)
    assert len(pieces) > 1 and {h.symbol for h in pieces} == {"Client.parse"}  # --symbol: every piece


def test_each_mode_answers_and_a_bad_mode_or_query_is_a_usage_error(searchable: tuple[GitRepo, Index]) -> None:
    _, index = searchable
    for mode in ("hybrid", "dense", "lexical"):
        hits = index.search("send a request over a pooled connection", mode=mode, limit=3)
        assert hits and "def send(" in hits[0].text, mode
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
    assert index.search("zzyzx qqxq", mode="lexical") == []  # no word of it is indexed
    assert index.search("zzyzx qqxq", mode="dense")  # meaning always finds something
    with pytest.raises(ConfigError, match="unknown search mode"):
        index.search("x", mode="fuzzy")
    with pytest.raises(ConfigError, match="empty"):
        index.search("   ")


def test_filters_by_language_and_symbol(searchable: tuple[GitRepo, Index]) -> None:
    _, index = searchable
    go = index.search("how long to wait before retrying", lang="go")
    assert go and {h.language for h in go} == {"go"}
    assert {h.path for h in index.search("retry", lang="golang")} == {"retry/retry.go"}  # an alias
    sends = index.search("request", symbol="send")  # the chunk that defines HTTPAdapter.send, only
    assert len(sends) == 1 and "def send(" in sends[0].text
    assert [h.text for h in index.search("adapter", symbol="HTTPAdapter.send")] == [sends[0].text]
    members = index.search("adapter", symbol="httpadapter", limit=20)  # the class and its members
    assert members and all(h.path == "net/adapters.py" and "HTTPAdapter" in h.text for h in members)
    assert "BaseAdapter" in {h.symbol for h in index.search("adapter", symbol="close")}
    assert index.search("adapter", symbol="NoSuchThing") == []


def test_read_gives_the_indexed_lines(searchable: tuple[GitRepo, Index]) -> None:
    repo, index = searchable
    hit = first(index.search("HTTPAdapter"))
    lines = index.read(hit.path, hit.start_line, hit.end_line)
    assert "".join(lines).rstrip("\n") == hit.text
    assert index.read("retry/retry.go", 1, 1) == ["package retry\n"]
    # The index answers for the synced commit, not the working tree.
    (repo.path / "retry" / "retry.go").write_text("package changed\n")
    assert index.read("retry/retry.go", 1, 1) == ["package retry\n"]
    with pytest.raises(NotIndexedError, match="not in the index"):
        index.read("no/such/file.py")


def test_cli_human_output_json_files_only_and_context(searchable: tuple[GitRepo, Index]) -> None:
    repo, _ = searchable
    where = ("--repo", str(repo.path))
    human = cli("search", "HTTPAdapter", *where, "--limit", "2").stdout
    head = human.splitlines()[0]
    assert re.fullmatch(r"net/adapters\.py:\d+-\d+  HTTPAdapter \(class\)  score \d\.\d{3}", head), head
    numbered = [line for line in human.splitlines()[1:] if re.match(r"\s*\d+ ", line)]
    assert numbered and any("class HTTPAdapter(BaseAdapter):" in line for line in numbered)

    hits = json.loads(cli("search", "HTTPAdapter", *where, "--json").stdout)
    assert hits[0]["symbol"] == "HTTPAdapter" and hits[0]["kind"] == "class" and hits[0]["language"] == "python"

    files = cli("search", "adapter", *where, "--files-only").stdout.split()
    assert files and len(files) == len(set(files)) and "net/adapters.py" in files

    def numbers(*extra: str) -> list[int]:
        shown = cli("search", "get_connection", *where, "--limit", "1", *extra).stdout
        return [int(m.group(1)) for m in re.finditer(r"^\s*(\d+) ", shown, re.M)]

    plain, wider = numbers(), numbers("--context", "2")
    assert len(plain) == 8 and wider == list(range(plain[0] - 2, plain[-1] + 3))  # two lines either side
    cli("search", "x", *where, "--mode", "fuzzy", code=EXIT_USAGE)

    # On a terminal (here: forced), the same with colours: the query's words marked, line numbers.
    coloured = cli("search", "HTTPAdapter", *where, "--limit", "1", env={"FORCE_COLOR": "1"}).stdout
    assert "\x1b[" in coloured and "net/adapters.py" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured).splitlines()[0] == head
