"""The server adapter against a server that fails: retries, their time bound, and the messages.

A loopback HTTP server stands in for Qdrant here. It answers the REST calls RemoteStore makes
(collection exists, create collection and its payload indexes, upsert, count) as Qdrant 1.20
does, and can be told to fail. No Qdrant server can be installed on these machines, and a real
one could not be made to refuse, reset, hang or answer garbage on cue anyway: these faults can
only be caused by a double. The client side is all real: qdrant-client, httpx and sockets.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import GitRepo
from typer.testing import CliRunner

from gitindex.cli import app
from gitindex.errors import EXIT_ERROR, StoreError
from gitindex.store import DENSE, PointData, point_id
from gitindex.store.remote import RemoteStore

KEY = "sk-test-5f1c9a2e-very-secret"
COLLECTION = "demo"

pytestmark = [
    # qdrant-client warns that the key goes over plain http, and when its version check fails.
    pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection:UserWarning"),
    pytest.mark.filterwarnings("ignore:Failed to obtain server version:UserWarning"),
]

Fault = Callable[["Handler", bytes], None]


@dataclass
class Seen:
    at: float
    method: str
    path: str


@dataclass
class FakeQdrant:
    """What the server holds and what it has been told to do."""

    url: str = ""
    collections: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {point id: payload}
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> collection
    faults: list[tuple[str, Fault]] = field(default_factory=list)  # (path part, fault): each used once
    always: Fault | None = None  # every API request, after `faults`
    seen: list[Seen] = field(default_factory=list)  # every API request (not the version check)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, path_part: str, fault: Fault, times: int = 1) -> None:
        self.faults.extend([(path_part, fault)] * times)

    def requests(self, path_part: str = "") -> list[Seen]:
        return [s for s in self.seen if path_part in s.path]

    def fault_for(self, method: str, path: str) -> Fault | None:
        with self.lock:
            self.seen.append(Seen(time.monotonic(), method, path))
            for i, (part, fault) in enumerate(self.faults):
                if part in path:
                    del self.faults[i]
                    return fault
            return self.always


class Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeQdrant


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    do_PUT = do_POST = do_DELETE = do_GET

    def _serve(self) -> None:
        self.close_connection = True
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        path = urlsplit(self.path).path
        fake = self.server.fake
        if path == "/":  # qdrant-client's version check, from a thread of its own: never failed
            self.answer(200, {"title": "qdrant - vector search engine", "version": "1.20.0"})
            return
        fault = fake.fault_for(self.command, path)
        if fault is not None:
            fault(self, body)
            return
        parts = path.strip("/").split("/")
        if parts == ["collections", "aliases"] and self.command == "POST":  # create / delete aliases
            for action in json.loads(body)["actions"]:
                if "create_alias" in action:
                    fake.aliases[action["create_alias"]["alias_name"]] = action["create_alias"]["collection_name"]
                else:
                    fake.aliases.pop(action["delete_alias"]["alias_name"], None)
            self.result(True)
            return
        if parts == ["aliases"]:
            self.result({"aliases": [{"alias_name": a, "collection_name": c} for a, c in fake.aliases.items()]})
            return
        if parts[0] != "collections" or len(parts) < 2:
            self.error(404, f"Not found: {path}")
            return
        name, rest = fake.aliases.get(parts[1], parts[1]), parts[2:]
        points = fake.collections.get(name)
        if rest == ["exists"]:
            self.result({"exists": points is not None})
        elif not rest and self.command == "PUT":
            if points is not None:
                self.error(409, f"Collection `{name}` already exists!")
                return
            fake.collections[name] = {}
            self.result(True)
        elif points is None:
            self.error(404, f"Not found: Collection `{name}` doesn't exist!")
        elif rest == ["index"]:
            self.result({"operation_id": 0, "status": "completed"})
        elif rest == ["points"] and self.command == "PUT":
            for p in json.loads(body)["points"]:
                points[str(p["id"])] = p.get("payload") or {}
            self.result({"operation_id": 1, "status": "completed"})
        elif rest == ["points", "count"]:
            self.result({"count": len(points)})
        else:
            self.error(404, f"Not found: {self.command} {path}")

    def answer(self, status: int, body: Any, kind: str = "application/json",
               headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(data)))
        self.send_header("connection", "close")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def result(self, result: Any) -> None:
        self.answer(200, {"result": result, "status": "ok", "time": 0.0001})

    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self.answer(status, {"status": {"error": message}, "time": 0.0}, headers=headers)


# Faults: each answers one request in place of the server.

def status(code: int, retry_after: str | None = None) -> Fault:
    def fault(h: Handler, body: bytes) -> None:
        h.error(code, f"Service says {code}", {"retry-after": retry_after} if retry_after else None)
    return fault


def reset(h: Handler, body: bytes) -> None:
    """The connection is reset (RST) after the request was read, with no answer."""
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.connection.close()


def applied_then_reset(h: Handler, body: bytes) -> None:
    """The write is done, and then its answer is lost: the client must retry, harmlessly."""
    name = urlsplit(h.path).path.split("/")[2]
    name = h.server.fake.aliases.get(name, name)
    for p in json.loads(body)["points"]:
        h.server.fake.collections[name][str(p["id"])] = p.get("payload") or {}
    reset(h, body)


def hang(h: Handler, body: bytes) -> None:
    h.server.fake.stop.wait(10)


def html(h: Handler, body: bytes) -> None:
    h.answer(200, b"<html><body>Please log in to the corporate proxy</body></html>", "text/html")


def wrong_json(h: Handler, body: bytes) -> None:
    h.answer(200, {"result": {"exists": "perhaps"}, "status": "ok", "time": 0})


def not_http(h: Handler, body: bytes) -> None:
    h.wfile.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")


def echo(code: int, kind: str = "application/json") -> Fault:
    """An error (or, with 200, garbage) whose text repeats every request header, the key too."""
    def fault(h: Handler, body: bytes) -> None:
        headers = "; ".join(f"{k}: {v}" for k, v in h.headers.items())
        if kind == "application/json":
            h.error(code, f"request refused, headers were: {headers}")
        else:
            h.answer(code, f"<pre>{headers}</pre>".encode(), kind)
    return fault


def start(fake: FakeQdrant, port: int = 0) -> Server:
    server = Server(("127.0.0.1", port), Handler)
    server.fake = fake
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def fake() -> Iterator[FakeQdrant]:
    state = FakeQdrant()
    server = start(state)
    yield state
    state.stop.set()
    server.shutdown()
    server.server_close()


def connect(url: str, budget: float = 2.0, timeout: float = 1.0, key: str | None = KEY) -> RemoteStore:
    return RemoteStore.connect(url, key, COLLECTION, budget=budget, timeout=timeout)


def points(n: int) -> list[PointData]:
    return [PointData(point_id("a.py", "b" * 40, i), {DENSE: [0.1 * (i + 1)] * 4}, {"path": "a.py", "index": i})
            for i in range(n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.parametrize("fault", [status(503), status(502), status(504), status(429), reset],
                         ids=["503", "502", "504", "429", "reset"])
def test_transient_failures_are_retried_and_the_write_succeeds(fake: FakeQdrant, fault: Fault) -> None:
    store = connect(fake.url)
    fake.fail("/exists", fault, times=2)
    fake.fail("/points", fault, times=2)
    with store.session(write=True):
        store.upsert(points(3))
        assert store.count() == 3
    assert len(fake.requests("/exists")) == 3
    assert [s.method for s in fake.requests(f"/collections/{COLLECTION}/points")] == ["PUT"] * 3 + ["POST"]


def test_a_write_whose_answer_was_lost_is_repeated_without_duplicates(fake: FakeQdrant) -> None:
    store = connect(fake.url)
    store.upsert(points(2))
    fake.fail("/points", applied_then_reset)
    store.upsert(points(5))  # ids are explicit: the repeat rewrites the same points
    assert store.count() == 5 and len(fake.requests("/points")) == 4  # 1 + 2 upserts, 1 count


def test_retry_after_is_honoured(fake: FakeQdrant) -> None:
    fake.fail("/exists", status(429, retry_after="1"))
    assert connect(fake.url, budget=4.0).exists() is False
    first, second = fake.requests("/exists")
    assert second.at - first.at >= 0.95


def test_a_retry_after_beyond_the_budget_fails_at_once(fake: FakeQdrant) -> None:
    fake.fail("/exists", status(503, retry_after="120"))
    began = time.monotonic()
    with pytest.raises(StoreError, match=r"asked to wait 120 s, longer than the 2 s retry budget") as info:
        connect(fake.url, budget=2.0).exists()
    assert time.monotonic() - began < 1.0 and len(fake.requests()) == 1
    assert "try again later" in str(info.value)


def test_a_server_that_stays_unavailable_ends_within_the_budget(fake: FakeQdrant) -> None:
    fake.always = status(503)
    began = time.monotonic()
    with pytest.raises(StoreError) as info:
        connect(fake.url, budget=1.0).exists()
    assert time.monotonic() - began < 1.5
    message = str(info.value)
    assert fake.url in message and "503 Service Unavailable" in message and "try again later" in message
    assert len(fake.requests()) >= 3 and f"{len(fake.requests())} tries" in message


def test_a_server_that_comes_up_is_waited_for() -> None:
    port = free_port()
    fake = FakeQdrant(url=f"http://127.0.0.1:{port}")
    store = connect(fake.url, budget=4.0)
    servers: list[Server] = []
    timer = threading.Timer(0.4, lambda: servers.append(start(fake, port)))
    timer.start()
    try:
        assert store.exists() is False  # connection refused until the server starts
    finally:
        timer.join()
        for server in servers:
            server.shutdown()
            server.server_close()
    assert len(fake.requests("/exists")) == 1


def test_no_server_ends_within_the_budget() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    began = time.monotonic()
    with pytest.raises(StoreError, match=r"could not be reached .*tries in .*check that the server is running"):
        connect(url, budget=0.6).exists()
    assert time.monotonic() - began < 1.2


def test_a_hanging_server_ends_within_the_budget(fake: FakeQdrant) -> None:
    fake.always = hang
    began = time.monotonic()
    with pytest.raises(StoreError, match=r"did not answer within 0\.3 s .*overloaded or stuck") as info:
        connect(fake.url, budget=1.0, timeout=0.3).count()
    assert time.monotonic() - began < 1.5
    assert info.value.exit_code == EXIT_ERROR and len(fake.requests()) >= 2


@pytest.mark.parametrize(("code", "expected"), [
    (401, r"refused GET /collections/demo/exists \(401 Unauthorized\): 'Service says 401': the API key is "
          r"missing or wrong; set QDRANT_API_KEY"),
    (403, r"refused GET /collections/demo/exists \(403 Forbidden\).*QDRANT_API_KEY is not allowed"),
    (404, r"found nothing at GET /collections/demo/exists \(404 Not Found\).*check the URL .*collection name 'demo'"),
    (409, r"conflict \(409 Conflict\).*creating or changing collection 'demo' at the same time"),
    (400, r"rejected GET /collections/demo/exists as invalid \(400 Bad Request\): 'Service says 400'"),
    (500, r"failed on GET /collections/demo/exists \(500 Internal Server Error\).*server's log"),
])
def test_client_errors_fail_at_once(fake: FakeQdrant, code: int, expected: str) -> None:
    fake.fail("/exists", status(code))  # a second try would succeed: there must be none
    began = time.monotonic()
    with pytest.raises(StoreError, match=expected) as info:
        connect(fake.url).exists()
    assert len(fake.requests()) == 1 and time.monotonic() - began < 0.5
    assert info.value.exit_code == EXIT_ERROR and fake.url in str(info.value)


def test_client_errors_inside_a_session_fail_at_once(fake: FakeQdrant) -> None:
    fake.fail("/points", status(403))
    store = connect(fake.url)
    with pytest.raises(StoreError, match=r"refused PUT /collections/demo/points \(403 Forbidden\)"), \
            store.session(write=True):
        store.upsert(points(1))
    assert len(fake.requests("/points")) == 1


@pytest.mark.parametrize(("fault", "expected"), [
    (html, r"not Qdrant's JSON \(text/html: '<html><body>Please log in.*not a web page"),
    (wrong_json, r"not a Qdrant response \(at result\.exists: Input should be a valid boolean.*\).*REST API"),
    (not_http, r"could not be spoken to over HTTP \(RemoteProtocolError.*6334 is gRPC"),
], ids=["html", "wrong-json", "not-http"])
def test_garbage_fails_at_once_with_a_clear_error(fake: FakeQdrant, fault: Fault, expected: str) -> None:
    fake.always = fault
    began = time.monotonic()
    with pytest.raises(StoreError, match=expected):
        connect(fake.url).exists()
    assert time.monotonic() - began < 0.5 and len(fake.requests()) == 1


@pytest.mark.parametrize("fault", [echo(401), echo(400), echo(503), echo(200, "text/html")],
                         ids=["401", "400", "503-until-the-budget-ends", "200-garbage"])
def test_the_key_never_appears_in_a_message(fake: FakeQdrant, fault: Fault) -> None:
    fake.always = fault
    with pytest.raises(StoreError) as info:
        connect(fake.url, budget=0.5).exists()
    message = str(info.value)
    assert "[redacted]" in message and "api-key" in message  # the echo was there, without the key
    assert KEY not in message and KEY[:8] not in message


def test_the_cli_reports_a_refused_key_without_a_traceback(fake: FakeQdrant, repo: GitRepo) -> None:
    repo.commit({"a.py": "x = 1\n"})
    fake.always = echo(401)
    result = CliRunner().invoke(app, ["status", str(repo.path)], catch_exceptions=False,
                                env={"QDRANT_URL": fake.url, "QDRANT_API_KEY": KEY})
    assert result.exit_code == EXIT_ERROR, result.output
    assert "Traceback" not in result.output and KEY not in result.output
    assert "401 Unauthorized" in result.stderr and "QDRANT_API_KEY" in result.stderr
