"""The Qdrant API key end to end: with QDRANT_API_KEY set and a server whose error bodies echo
the request headers (the key among them), the real command line (`sync`, `search`, `status`,
`verify`, and the git hook's foreground sync) never shows the key: not on stdout or stderr, not
in the hook logs, the manifest (its WAL included) or any other file under .git/gitindex.

The server is the loopback double of tests/test_remote_faults.py (no Qdrant server can be
installed here, and none echoes headers on cue); qdrant-client, httpx, the sockets, the model
and the repository are real. A successful path through qdrant-client's local mode is not tried:
gitindex takes only http(s) URLs for a server (a path means the embedded store, which has no key).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import test_remote_faults
from conftest import GitRepo, python_source
from test_remote_faults import FakeQdrant, Handler, echo
from typer.testing import CliRunner

from gitindex.cli import app
from gitindex.errors import EXIT_ERROR

KEY = "qk-Recognizable-7d41e0b2-Secret"  # recognizable: no other text has it, nor its parts
PARTS = (KEY, KEY[3:15], KEY[-12:])

fake = test_remote_faults.fake  # the loopback Qdrant double's fixture, shared

pytestmark = [
    pytest.mark.usefixtures("isolated_env"),
    pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection:UserWarning"),
    pytest.mark.filterwarnings("ignore:Failed to obtain server version:UserWarning"),
]


def env(fake: FakeQdrant) -> dict[str, str]:
    return {"QDRANT_URL": fake.url, "QDRANT_API_KEY": KEY, "GITINDEX_QDRANT_TIMEOUT": "1"}


def no_key(where: str, data: str | bytes) -> None:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    for part in PARTS:
        assert part not in text, f"the API key ({part!r}) is in {where}"


def run(fake: FakeQdrant, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env(fake), catch_exceptions=False)
    no_key(f"the output of `gitindex {' '.join(args)}`", result.stdout + result.stderr)
    assert "Traceback" not in result.output and "a bug" not in result.output, result.output
    return result.exit_code, result.stderr


def files_hold_no_key(repo: GitRepo) -> list[str]:
    """Every file under .git/gitindex (manifest, its WAL, hook logs, runner output, bug logs,
    the vector cache, the lock files): their bytes hold no part of the key. Returns their names."""
    data = repo.path / ".git" / "gitindex"
    seen = []
    for path in sorted(data.rglob("*")):
        if path.is_file():
            no_key(str(path.relative_to(repo.path)), path.read_bytes())
            seen.append(str(path.relative_to(data)))
    return seen


@pytest.fixture
def project(repo: GitRepo) -> GitRepo:
    repo.commit({f"pkg/m{i}.py": python_source(f"m{i}") for i in range(3)})
    return repo


@pytest.mark.parametrize("code", [401, 400, 503])
def test_an_echoing_server_never_gets_the_key_shown_or_stored(fake: FakeQdrant, project: GitRepo, code: int) -> None:
    """Every request is refused with the headers echoed (503: until the retries' budget ends)."""
    fake.always = echo(code)
    for args in (("sync", str(project.path)), ("search", "parse", "--repo", str(project.path)),
                 ("status", str(project.path)), ("verify", str(project.path))):
        status, err = run(fake, *args)
        assert status == EXIT_ERROR, (args, status, err)
        assert "[redacted]" in err or "status" in args or "search" in args, (args, err)
    assert any(s.method == "GET" for s in fake.requests())  # the server was asked, and echoed
    assert "manifest.sqlite" in files_hold_no_key(project)


def test_a_sync_refused_midway_records_its_error_without_the_key(fake: FakeQdrant, project: GitRepo) -> None:
    """The collection is made, then the first write is refused with the key echoed: the error goes
    into the manifest's last-run record (what `status` shows) and the hook log, both redacted."""
    fake.fail("/points", echo(400), times=100)
    status, err = run(fake, "sync", str(project.path))
    assert status == EXIT_ERROR and "400" in err and "[redacted]" in err, err
    assert "api-key" in err  # the echo reached the message, without the key
    run(fake, "status", str(project.path))  # shows the last run's error

    # The git hook's foreground sync (what `hooks install --foreground` runs), in its own process:
    # its record goes to the hook log, its message to stderr.
    fake.always = echo(400)
    hook = subprocess.run([sys.executable, "-m", "gitindex", "hooks", "run", "--foreground", "post-commit"],
                          cwd=project.path, env={**os.environ, **env(fake)}, capture_output=True, text=True,
                          timeout=300)
    no_key("the hook's output", hook.stdout + hook.stderr)
    assert hook.returncode == 0 and "[redacted]" in hook.stderr, hook.stderr
    logged = project.path / ".git" / "gitindex" / "hooks" / "runs.jsonl"
    assert "[redacted]" in logged.read_text()
    assert run(fake, "log", str(project.path))[0] == EXIT_ERROR  # the last run failed; said without the key

    kept = files_hold_no_key(project)
    assert {"manifest.sqlite", "hooks/runs.jsonl"} <= set(kept), kept


def test_a_successful_sync_through_the_server_stores_no_key(fake: FakeQdrant, project: GitRepo) -> None:
    """The same key on a sync the (double of the) server accepts: nothing under .git/gitindex
    holds it, and the requests did carry it (as qdrant-client sends it, in the api-key header)."""
    keys: list[str] = []
    serve = Handler._serve

    def recording(h: Handler) -> None:
        keys.append(h.headers.get("api-key", ""))
        serve(h)

    Handler._serve = recording  # type: ignore[method-assign]
    try:
        status, err = run(fake, "sync", str(project.path))
    finally:
        Handler._serve = serve  # type: ignore[method-assign]
    if status != 0:
        pytest.skip(f"the server double does not answer every call a sync makes: {err.strip()[-300:]}")
    assert KEY in keys  # sent, as it must be...
    assert fake.collections and all(fake.collections.values())
    files_hold_no_key(project)  # ...and kept nowhere
    no_key("the server's points", repr(fake.collections))

