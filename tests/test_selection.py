"""Which files are indexed: path patterns, gitattributes, size and content."""

from __future__ import annotations

import mmap
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import GitRepo, open_index

from gitindex.chunking import Chunk
from gitindex.config import Config
from gitindex.examine import examine
from gitindex.repo import Entry, Repo
from gitindex.selection import Selector

DEFAULT = Selector(Config())


@pytest.mark.parametrize("path", [
    ".env", "config/.env", ".env.local", "deploy/.env.production", ".envrc", ".envs/.local/.django",
    "certs/server.pem", "tls/private.key", "keystore.jks", "home/.ssh/id_rsa", "id_ed25519",
    ".netrc", ".npmrc", "terraform.tfstate", "terraform.tfstate.backup", "k8s/secrets.yaml",
])
def test_files_that_hold_secrets_are_skipped(path: str) -> None:
    assert DEFAULT.by_path(path) == "secret"


@pytest.mark.parametrize("path", [
    ".env.example", "app/.env.sample", ".env.template", "id_rsa.pub", "home/.ssh/id_ed25519.pub",
    "src/environment.py", "docs/keys.md", "settings.py",
])
def test_look_alikes_and_examples_are_indexed(path: str) -> None:
    assert DEFAULT.by_path(path) is None


@pytest.mark.parametrize("path", [
    "package-lock.json", "web/yarn.lock", "poetry.lock", "uv.lock", "Cargo.lock", "go.sum", "app/Gemfile.lock",
])
def test_lock_files_are_skipped(path: str) -> None:
    assert DEFAULT.by_path(path) == "lockfile"


@pytest.mark.parametrize("path", ["package.json", "lock.py", "src/locking/lockfile.rs", "Cargo.toml"])
def test_not_lock_files(path: str) -> None:
    assert DEFAULT.by_path(path) is None


def test_minified_by_name() -> None:
    assert DEFAULT.by_path("static/vendor/jquery.min.js") == "minified"
    assert DEFAULT.by_path("dist/site.min.css") == "minified"
    assert DEFAULT.by_path("dist/app.js.map") == "minified"
    assert DEFAULT.by_path("src/app.js") is None


def test_default_excludes_can_be_turned_off() -> None:
    everything = Selector(Config(default_excludes=False))
    for path in (".env", "package-lock.json", "a.min.js", "id_rsa"):
        assert everything.by_path(path) is None


MINIFIED_JS = (
    b'!function(e,t){"use strict";var n=function(e){return e&&e.length>0?e.map(function(t,n){return t+n}):[]};'
    b"e.helper=n,e.version=\"1.2.3\";for(var r=0;r<10;r++)n([r]);}(window,document);"
) * 30


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "empty"),
    (b"  \n\n\t\n", "empty"),
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 12345\n", "lfs-pointer"),
    (b"GIF89a\x00\x01\x00", "binary"),
    (MINIFIED_JS, "minified"),
    (b"/*! lib v1 */\n" + MINIFIED_JS, "minified"),
    (b".a{color:red;margin:0 auto}" * 80, "minified"),
])
def test_content_that_is_skipped(data: bytes, reason: str, tmp_path: Path) -> None:
    assert Selector.by_content(data) == reason
    if data:  # the plain-directory path judges a memory map of the file the same way
        (tmp_path / "f").write_bytes(data)
        with open(tmp_path / "f", "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            assert Selector.by_content(mapped) == reason


def test_a_plain_directory_s_files_are_read_through_a_memory_map(tmp_path: Path) -> None:
    code = "".join(f"def handler_{i}(event):\n    return event['body'] + {i}\n\n" for i in range(3000))
    (tmp_path / "big.py").write_text(code)  # about 120 KB
    (tmp_path / "empty.py").write_text("")
    (tmp_path / "bundle.js").write_bytes(MINIFIED_JS)
    ix = open_index(tmp_path)
    try:
        ws = ix.workspace
        source = ws.source(None)

        def entry(name: str) -> Entry:
            return Entry(name, "0" * 40, 0o100644)

        def examined(name: str) -> tuple[str | None, list[Chunk]]:
            return examine(source, ws.selector, entry(name), ws.spec.token_counter(), ws.spec.budget)

        with source.read(entry("big.py")) as data:
            assert isinstance(data, mmap.mmap) and len(data) == len(code)
        with source.read(entry("empty.py")) as data:
            assert data == b""
        reason, chunks = examined("big.py")
        assert reason is None and "".join(c.text for c in chunks).count("def handler_") == 3000
        assert examined("empty.py") == ("empty", [])
        assert examined("bundle.js") == ("minified", [])
    finally:
        ix.close()


def test_a_nul_byte_after_the_first_8000_bytes_is_text_like_git() -> None:
    data = b"line of text\n" * 700 + b"\0tail\n"
    assert data.index(b"\0") > 8000
    assert Selector.by_content(data) is None
    assert Selector.by_content(b"x\n" * 3999 + b"\0") == "binary"


def test_code_is_not_minified() -> None:
    code = b"def handler(event):\n    return event['body']\n\n" * 200
    assert Selector.by_content(code) is None


def test_prose_with_one_line_per_paragraph_is_not_minified() -> None:
    """READMEs and docs written in a web editor keep each paragraph on one long line."""
    paragraph = ("This library keeps a semantic index of a repository up to date, embedding only the "
                 "chunks of code that changed since the last run, so that search stays fresh. ") * 6
    readme = f"# Project\n\n{paragraph}\n\n{paragraph}\n\n{paragraph}\n".encode()
    assert len(readme) / (readme.count(b"\n") + 1) > 300, "long lines, as in the minified case"
    assert Selector.by_content(readme) is None
    cjk = ("这个库只对自上次运行以来发生变化的代码块进行嵌入从而保持语义索引的最新状态。" * 20 + "\n\n") * 3
    assert Selector.by_content(cjk.encode()) is None


def test_size_limit() -> None:
    small = Selector(Config(max_file_size=100))
    assert small.by_size(100) is None and small.by_size(101) == "too-large"


@pytest.mark.parametrize(("include", "exclude", "expected"), [
    (("src/",), (), {"src/app.py": None, "lib/src/util.py": None, "docs/guide.md": "excluded", "README.md": "excluded"}),
    (("/src/",), (), {"src/app.py": None, "lib/src/util.py": "excluded"}),
    (("*.py",), (), {"src/app.py": None, "lib/src/util.py": None, "docs/guide.md": "excluded"}),
    ((), ("*.md", "!README.md"), {"docs/guide.md": "excluded", "README.md": None, "src/app.py": None}),
    ((), ("tests/**/fixtures/",), {"tests/unit/fixtures/data.py": "excluded", "tests/unit/test_a.py": None}),
    (("src/",), ("src/generated/",), {"src/app.py": None, "src/generated/api.py": "excluded", "docs/a.md": "excluded"}),
    (("src/",), (), {"src/.env": "secret", "src/package-lock.json": "lockfile"}),
])
def test_include_and_exclude_use_gitignore_syntax(include: tuple[str, ...], exclude: tuple[str, ...],
                                                  expected: dict[str, str | None]) -> None:
    selector = Selector(Config(include=include, exclude=exclude))
    assert {path: selector.by_path(path) for path in expected} == expected


def test_fingerprint_follows_the_settings() -> None:
    base = Config()
    prints = {Selector(c).fingerprint for c in (
        base, replace(base, include=("src/",)), replace(base, exclude=("docs/",)),
        replace(base, default_excludes=False), replace(base, max_file_size=10),
    )}
    assert len(prints) == 5
    assert Selector(Config()).fingerprint == DEFAULT.fingerprint
    assert Selector(replace(base, batch_size=8)).fingerprint == DEFAULT.fingerprint  # not a selection setting


def test_gitattributes_from_a_real_repository(repo: GitRepo) -> None:
    repo.commit({
        ".gitattributes": "gen/** linguist-generated\nthird_party/** linguist-vendored\n*.dat binary\n"
                          "*.svg -diff\nkeep/** linguist-generated=false\n",
        "gen/api.py": "x = 1\n", "third_party/lib.py": "y = 2\n", "data.dat": "plain\n",
        "logo.svg": "<svg/>\n", "keep/real.py": "z = 3\n", "src/app.py": "w = 4\n",
    })
    git = Repo(repo.path)
    head = git.resolve("HEAD")
    reasons = {path: Selector.by_attributes(git.attributes(path, head)) for path in (
        "gen/api.py", "third_party/lib.py", "data.dat", "logo.svg", "keep/real.py", "src/app.py")}
    assert reasons == {"gen/api.py": "generated", "third_party/lib.py": "vendored", "data.dat": "binary",
                       "logo.svg": "binary", "keep/real.py": None, "src/app.py": None}
