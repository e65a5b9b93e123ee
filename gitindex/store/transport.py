"""The server adapter's HTTP calls: transient failures retried within a time budget, and every failure told plainly."""

from __future__ import annotations

import email.utils
import json
import random
import time
from collections.abc import Callable, Sequence

import httpx
from pydantic import ValidationError
from qdrant_client import QdrantClient
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from gitindex.errors import StoreError

BUDGET = 60.0  # seconds one call may take, every try and wait included
TIMEOUT = 30.0  # seconds one try waits for the server (never past what is left of the budget)
# Answers worth another try: the server is overloaded or starting, or a proxy in front of it is.
TRANSIENT = frozenset({429, 502, 503, 504})
RETRY_AFTER = frozenset({429, 503})  # the statuses whose Retry-After header is honoured
# qdrant-client sends the key in `api-key` (or a token in `authorization`); a server or proxy
# that echoes request headers in its error text must not put the key into a message.
SECRET_HEADERS = ("api-key", "authorization")
REDACTED = "[redacted]"
REQUEST_HEADER = "x-gitindex-request"  # added to error answers: which request failed, for the message
SNIPPET = 160  # characters of a server's own text quoted in a message


def with_retries(client: QdrantClient, location: str, *, budget: float = BUDGET, timeout: float = TIMEOUT) -> QdrantClient:
    """`client`, its REST calls retried by `Retries` (installed as qdrant-client middleware, so
    the client's own connection pool, proxy and TLS settings stay as they are)."""
    client.http.client.add_middleware(Retries(location, budget=budget, timeout=timeout))
    return client


class Retries:
    """qdrant-client middleware: one REST call, tried until it gets an answer that is not
    transient or `budget` seconds have passed.

    Retrying is safe because every call the server adapter makes can be repeated: reads;
    upserts of points with explicit ids (a repeat writes the same points again); deletes by
    filter (a repeat finds nothing more to delete); payload index creation (a repeat is
    accepted). The one call that is not is collection creation: if its answer was lost, the
    repeat is refused because the collection exists, and the next run finds it there."""

    def __init__(self, location: str, *, budget: float = BUDGET, timeout: float = TIMEOUT,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.location = location
        self.budget = budget
        self.timeout = timeout
        self.sleep = sleep
        # Waits scale with the budget, so that a short one still gets several tries.
        self.first_wait = min(0.5, budget / 20)
        self.longest_wait = min(8.0, budget / 4)
        self.shortest_try = min(1.0, timeout, budget / 10)

    def __call__(self, request: httpx.Request, call_next: Callable[[httpx.Request], httpx.Response]) -> httpx.Response:
        secrets = [value for name in SECRET_HEADERS if (value := request.headers.get(name))]
        started = time.monotonic()
        deadline = started + self.budget
        tries = 0
        while True:
            tries += 1
            left = deadline - time.monotonic()
            # A try never outlives the budget: a hanging server ends the call at its deadline.
            request.extensions["timeout"] = httpx.Timeout(max(0.001, min(self.timeout, left))).as_dict()
            asked: float | None = None
            try:
                response = call_next(request)
            except ResponseHandlingException as exc:  # qdrant-client wraps the httpx error
                what = _transient_error(exc.source, self.timeout)
                if what is None:
                    raise
                remedy = _remedy_for_error(exc.source)
            else:
                if response.status_code not in TRANSIENT:
                    return _checked(request, response, secrets, self.location)
                what = f"answered {_status(response)}{_server_says(response.content, secrets)}"
                remedy = _REMEDY[response.status_code]
                if response.status_code in RETRY_AFTER:
                    asked = _retry_after(response.headers.get("retry-after"))
            wait = asked if asked is not None else self._backoff(tries)
            left = deadline - time.monotonic()
            if wait + self.shortest_try > left:
                spent = time.monotonic() - started
                if asked is not None and asked + self.shortest_try > self.budget:
                    what += f" and asked to wait {asked:.0f} s, longer than the {self.budget:g} s retry budget"
                else:
                    what += f" ({tries} {'try' if tries == 1 else 'tries'} in {spent:.1f} s)"
                raise StoreError(_redact(f"Qdrant at {self.location} {what}: {remedy}", secrets))
            self.sleep(wait)

    def _backoff(self, tries: int) -> float:
        """Exponential, with jitter so that many clients turned away together do not return together."""
        return min(self.longest_wait, self.first_wait * 2.0 ** (tries - 1)) * random.uniform(0.5, 1.0)


def failure_message(exc: Exception, location: str, collection: str) -> str:
    """What to tell the user about a failed call the retries did not handle: an answer that is
    an error (4xx, 500), an answer that is not Qdrant's, or a connection that is not HTTP."""
    where = f"Qdrant at {location}"
    if isinstance(exc, UnexpectedResponse):
        request = exc.headers.get(REQUEST_HEADER, "a request")
        status = f"{exc.status_code} {exc.reason_phrase}".strip()
        says = _server_says(exc.content, [])
        code = exc.status_code
        if code == 401:
            return (f"{where} refused {request} ({status}){says}: the API key is missing or wrong; "
                    "set QDRANT_API_KEY to a key this server accepts")
        if code == 403:
            return (f"{where} refused {request} ({status}){says}: the API key in QDRANT_API_KEY is not "
                    f"allowed to do this (a read-only key cannot write); use a key with access to collection "
                    f"{collection!r}")
        if code == 404:
            return (f"{where} found nothing at {request} ({status}){says}: check the URL (host, port and any "
                    f"path prefix: Qdrant's REST API answers at the root, usually on port 6333) and the "
                    f"collection name {collection!r}")
        if code == 409:
            return (f"{where} refused {request} because of a conflict ({status}){says}: another client may be "
                    f"creating or changing collection {collection!r} at the same time; wait for it and run "
                    "the command again")
        if code == 400:
            return (f"{where} rejected {request} as invalid ({status}){says}: the server's message says what "
                    "it refused; a server much older than qdrant-client 1.20 may not know this request")
        return f"{where} failed on {request} ({status}){says}: check the server's log"
    if isinstance(exc, ResponseHandlingException):
        source = exc.source
        if isinstance(source, ValidationError):
            # Only where the answer went wrong: pydantic's text would quote the answer itself.
            first = source.errors(include_input=False)[0] if source.error_count() else None
            # ("obj" is qdrant-client's wrapper around the body, not a field of it)
            loc = [str(p) for p in first["loc"]][1 if first and first["loc"][:1] == ("obj",) else 0:] if first else []
            at = f" (at {'.'.join(loc) or 'the top'}: {first['msg']})" if first else ""
            return (f"{where} answered with something that is not a Qdrant response{at}: check that the URL "
                    "points at Qdrant's REST API (usually port 6333) and that the server is Qdrant 1.x")
        if isinstance(source, httpx.HTTPError):
            return (f"{where} could not be spoken to over HTTP ({type(source).__name__}: {source}): "
                    f"{_remedy_for_error(source)}")
        return f"{where} failed: {type(source).__name__}: {source}"
    return f"{where} could not be reached ({exc}): check that the server is running and the URL is right"


def _checked(request: httpx.Request, response: httpx.Response, secrets: Sequence[str], location: str) -> httpx.Response:
    """`response` if it can be handed on: an answer that is not Qdrant's JSON becomes a
    StoreError here (qdrant-client would raise a bare JSON error), and an error answer loses
    any echo of the key and gains the request it answers, for failure_message."""
    body = response.content
    if response.is_success:
        kind = response.headers.get("content-type", "")
        if body[:512].lstrip()[:1] != b"{" and "octet-stream" not in kind:  # every Qdrant API answer is an object
            shown = _snippet(body.decode("utf-8", "replace"), secrets)
            raise StoreError(
                f"Qdrant at {location} answered {request.method} {request.url.path} with something that is not "
                f"Qdrant's JSON ({kind or 'no content type'}: {shown!r}): check that the URL points at Qdrant's "
                "REST API (usually port 6333), not a web page, a proxy's login page or another service")
        return response
    text = body.decode("utf-8", "replace")
    clean = _redact(text, secrets)
    headers = [(k, v) for k, v in response.headers.multi_items()
               if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
    headers.append((REQUEST_HEADER, f"{request.method} {request.url.path}"))
    phrase = response.extensions.get("reason_phrase")
    return httpx.Response(response.status_code, headers=headers,
                          content=clean.encode() if clean != text else body, request=request,
                          extensions={"reason_phrase": phrase} if phrase else {})


def _transient_error(error: Exception, timeout: float) -> str | None:
    """What went wrong, if another try may go better: a refused or dropped connection, or no
    answer in time. None for what a retry cannot mend (a bad URL, TLS, a server that is not HTTP)."""
    if isinstance(error, httpx.TimeoutException):
        return f"did not answer within {timeout:g} s ({type(error).__name__})"
    if isinstance(error, httpx.ConnectError):
        return f"could not be reached ({error or type(error).__name__})"
    if isinstance(error, httpx.NetworkError) or (
            isinstance(error, httpx.RemoteProtocolError) and "disconnected" in str(error).lower()):
        return f"dropped the connection ({error or type(error).__name__})"
    return None


def _remedy_for_error(error: Exception) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "the server may be overloaded or stuck; check its health and try again later"
    if isinstance(error, httpx.ConnectError):
        return ("check that the server is running and that the URL's host and port are right "
                "(Qdrant's REST API is usually on port 6333)")
    if isinstance(error, httpx.NetworkError | httpx.RemoteProtocolError):
        return ("check the server's health and any proxy in between, and that the URL is Qdrant's REST "
                "port (usually 6333; 6334 is gRPC)")
    return "check the URL: its scheme (http or https), host and port"


_REMEDY = {
    429: "the server is limiting requests; try again later",
    502: "a proxy or load balancer in front of Qdrant could not reach it; check the server behind it",
    503: "the server is unavailable (starting, recovering or overloaded); try again later",
    504: "a proxy or load balancer in front of Qdrant got no answer from it in time; check the server behind it",
}


def _retry_after(value: str | None) -> float | None:
    """Seconds a Retry-After header asks for: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _status(response: httpx.Response) -> str:
    return f"{response.status_code} {response.reason_phrase}".strip()


def _server_says(body: bytes, secrets: Sequence[str]) -> str:
    """The server's own error text (Qdrant's `status.error`, or the start of the body), quoted."""
    text = body.decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        status = parsed.get("status")
        if isinstance(status, dict) and isinstance(status.get("error"), str):
            text = status["error"]
    return f": {_snippet(text, secrets)!r}" if text else ""


def _snippet(text: str, secrets: Sequence[str]) -> str:
    # Redact before cutting, or a cut could leave the start of a key behind.
    text = " ".join(_redact(text, secrets).split())
    return text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
        if secret.lower().startswith("bearer "):
            text = text.replace(secret[7:], REDACTED)
    return text
