"""Corpora and queries of the search-quality benchmark: pinned packages, docstrings stripped, ground truth.

Each corpus is a pinned release of someone else's code (PyPI wheels, an npm tarball), cached.
Every function, class and method docstring (Python) and every JSDoc block right before a
function (JavaScript) is removed from the copy that is indexed; a docstring's first sentence
becomes a natural-language query whose answer is that definition's lines in the stripped copy.
Identifier queries are each public definition's name as written and split into words.
"""

from __future__ import annotations

import ast
import bisect
import re
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import corpus as wheels

# name -> (registry, package, version)
CORPORA: dict[str, tuple[str, str, str]] = {
    "requests": ("pypi", "requests", "2.32.3"),
    "flask": ("pypi", "flask", "3.0.3"),
    "pydantic": ("pypi", "pydantic", "2.9.2"),
    "express": ("npm", "express", "4.21.2"),
}
MIN_WORDS = 4  # shorter first sentences say too little to be a query
MAX_TARGETS = 3  # a sentence shared by more definitions is boilerplate ("Return the value.")
_GENERIC = re.compile(
    r"^(?:see\b|deprecated|todo\b|alias (?:of|for)|same as|initiali[sz]es? (?:self|the (?:object|instance))|"
    r"create a new instance|constructor|(?:this|the) (?:method|function) is deprecated|override|"
    r"for internal use|for backwards?[- ]compat|private\b|internal\b|implementation of\b)", re.IGNORECASE)
_ROLE = re.compile(r":[\w:.-]+:`~?!?([^`<]+?)(?:\s*<[^>]*>)?`")  # :class:`~requests.Response` -> requests.Response
_ABBREVIATIONS = ("e.g", "i.e", "etc", "vs", "cf")


@dataclass(frozen=True, order=True)
class Target:
    """A definition's lines (1-based, inclusive) in the stripped copy."""

    path: str
    start: int
    end: int


@dataclass
class Definition:
    path: str
    name: str  # as written: parse_retry_after, HTTPAdapter
    qualname: str  # Session.send, res.send
    start: int
    end: int
    doc: str = ""  # the docstring's first sentence, cleaned ("" when none)

    @property
    def target(self) -> Target:
        return Target(self.path, self.start, self.end)


@dataclass
class Query:
    text: str
    kind: str  # nl (a docstring's first sentence), name (an identifier), words (its words)
    targets: list[Target] = field(default_factory=list)


@dataclass
class Corpus:
    name: str
    files: dict[str, str]  # path -> stripped text: what is indexed
    definitions: list[Definition]
    stripped: int  # docstrings / JSDoc blocks removed


# -- fetching ----------------------------------------------------------------------------------
def fetch(name: str, cache: Path) -> dict[str, str]:
    """The corpus's source files (path -> text), from the cache or the registry."""
    registry, package, version = CORPORA[name]
    if registry == "pypi":
        wheel = wheels.download_wheel(package, version, cache / "wheels")
        return {p: data.decode("utf-8", errors="replace") for p, data in wheels.wheel_files(wheel)
                if p.startswith(f"{package}/") and p.endswith(".py")}
    slot = cache / "npm" / f"{package}-{version}"
    tgz = slot / f"{package}-{version}.tgz"
    if not tgz.is_file():
        slot.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["npm", "pack", "--silent", f"{package}@{version}"], cwd=slot,
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not tgz.is_file():
            raise wheels.DownloadError(f"npm pack {package}@{version} failed: {proc.stderr.strip()[-300:]}")
    out = {}
    with tarfile.open(tgz) as tar:
        for member in tar.getmembers():
            path = member.name.removeprefix("package/")
            if member.isfile() and path.endswith(".js") and (path == "index.js" or path.startswith("lib/")):
                data = tar.extractfile(member)
                assert data is not None
                out[path] = data.read().decode("utf-8", errors="replace")
    return dict(sorted(out.items()))


# -- text helpers ------------------------------------------------------------------------------
def first_sentence(doc: str) -> str:
    """The first sentence of a docstring's first paragraph, without markup; "" if it is too short
    or generic to be a query."""
    paragraph = []
    for line in doc.strip().splitlines():
        if not line.strip():
            break
        paragraph.append(line.strip())
    text = " ".join(paragraph)
    text = _ROLE.sub(r"\1", text).replace("``", "").replace("`", "")
    text = re.sub(r"\s+", " ", text).strip()
    for m in re.finditer(r"[.!?](?=\s|$)", text):
        word = text[: m.start()].rsplit(" ", 1)[-1].lower()
        if word not in _ABBREVIATIONS:
            text = text[: m.end()]
            break
    text = text.rstrip(":")[:300]
    if len(text.split()) < MIN_WORDS or _GENERIC.match(text):
        return ""
    return text


def split_words(name: str) -> str:
    """parse_retry_after -> 'parse retry after', HTTPAdapter -> 'http adapter', getUserId -> 'get user id'."""
    words = []
    for part in re.split(r"[_$]+", name):
        words += re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", part)
    return " ".join(w.lower() for w in words)


def _public(name: str) -> bool:
    return len(name) >= 4 and not name.startswith("_")


class _Edits:
    """Removals from a text, by (line, column) spans, with the old -> new line mapping."""

    def __init__(self, text: str, filler: str = "") -> None:
        self.lines = text.split("\n")
        self.lines = [line + "\n" for line in self.lines[:-1]] + [self.lines[-1]]
        self.filler = filler  # what stands in for a removal that leaves code on its line
        self.spans: list[tuple[int, int, int, int, str]] = []  # 1-based lines, character columns

    def remove(self, l1: int, c1: int, l2: int, c2: int, replacement: str = "") -> None:
        self.spans.append((l1, c1, l2, c2, replacement))

    def apply(self) -> tuple[str, list[int]]:
        """The new text and the sorted old line numbers that were deleted."""
        lines = list(self.lines)
        deleted: list[int] = []
        for l1, c1, l2, c2, replacement in sorted(self.spans, reverse=True):
            prefix, suffix = lines[l1 - 1][:c1], lines[l2 - 1][c2:]
            if not replacement and not (prefix + suffix).strip():
                gone = range(l1, l2 + 1)
                lines[l1 - 1 : l2] = []
            else:
                gone = range(l1 + 1, l2 + 1)
                lines[l1 - 1 : l2] = [prefix + (replacement or self.filler) + suffix]
            deleted.extend(gone)
        return "".join(lines), sorted(deleted)


def _mapper(deleted: list[int]) -> Callable[[int], int]:
    """Old line number -> new one; a deleted line maps to the last line kept before it."""
    return lambda old: old - bisect.bisect_right(deleted, old)


# -- Python ------------------------------------------------------------------------------------
def _byte_col(line: str, col: int) -> int:
    """ast's columns count UTF-8 bytes; ours count characters."""
    return len(line.encode("utf-8")[:col].decode("utf-8", errors="ignore"))


def strip_python(path: str, text: str) -> tuple[str, list[Definition], int]:
    """The file without its function/class docstrings, its definitions (lines in that stripped
    copy) and how many docstrings went. A file that does not parse is kept as it is."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return text, [], 0
    edits = _Edits(text, filler="pass")
    found: list[tuple[ast.AST, str, str]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                qual = f"{prefix}{child.name}"
                doc = ""
                body = child.body
                if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                        and isinstance(body[0].value.value, str):
                    doc = ast.get_docstring(child) or ""
                    e = body[0]
                    assert e.end_lineno is not None and e.end_col_offset is not None
                    c1 = _byte_col(edits.lines[e.lineno - 1], e.col_offset)
                    c2 = _byte_col(edits.lines[e.end_lineno - 1], e.end_col_offset)
                    edits.remove(e.lineno, c1, e.end_lineno, c2, "pass" if len(body) == 1 else "")
                found.append((child, qual, doc))
                walk(child, f"{qual}.")
            else:
                walk(child, prefix)

    walk(tree, "")
    stripped, deleted = edits.apply()
    try:
        ast.parse(stripped)
    except SyntaxError:  # an edit this simple approach gets wrong: keep the file as it is
        return text, [], 0
    new = _mapper(deleted)
    defs = []
    for node, qual, doc in found:
        assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        defs.append(Definition(path, node.name, qual, new(start), new(node.end_lineno or node.lineno),
                               first_sentence(doc)))
    return stripped, defs, len(edits.spans)


# -- JavaScript --------------------------------------------------------------------------------
# A simple scanner rather than a parser (no grammar needed): JSDoc blocks, the definition on the
# line after one, and braces matched outside strings and comments (regex literals are not
# recognised; a brace inside one could end a definition early, which only narrows its range).
_JSDOC = re.compile(r"/\*\*(?!/)(.*?)\*/", re.DOTALL)
_IDENT = r"[A-Za-z_$][\w$]*"
_JS_DEFINITIONS = (
    re.compile(rf"^\s*(?:export\s+(?:default\s+)?)?(?:async\s+)?function\s*\*?\s*(?P<name>{_IDENT})\s*\("),
    re.compile(rf"^\s*(?P<qual>(?:{_IDENT}\.)*(?P<name>{_IDENT}))\s*=\s*(?:[\w$.]+\s*=\s*)*"
               rf"(?:async\s+)?function\b\s*\*?\s*(?P<inner>{_IDENT})?"),
    re.compile(rf"^\s*(?:var|let|const)\s+(?P<name>{_IDENT})\s*=\s*(?:async\s+)?"
               rf"(?:function\b|\([^)]*\)\s*=>|{_IDENT}\s*=>)"),
    re.compile(rf"^\s*(?P<name>{_IDENT})\s*:\s*(?:async\s+)?function\b"),
    re.compile(rf"^\s*(?:static\s+)?(?:async\s+)?(?:[gs]et\s+)?(?P<name>{_IDENT})\s*\([^)]*\)\s*\{{"),
)
_NOT_NAMES = {"if", "for", "while", "switch", "catch", "function", "return", "with", "exports", "module"}


def _js_definition(line: str) -> tuple[str, str] | None:
    """(name, qualified name) of the function a line starts, or None."""
    for pattern in _JS_DEFINITIONS:
        m = pattern.match(line)
        if m is None:
            continue
        name = m.group("name")
        groups = m.groupdict()
        if name in _NOT_NAMES and groups.get("inner"):
            name = groups["inner"]
        if name in _NOT_NAMES:
            continue
        return name, groups.get("qual") or name
    return None


def _block_end(text: str, start: int) -> int:
    """Offset of the brace that closes the first block opened at or after `start` (-1: none)."""
    depth, i, n = 0, text.find("{", start), len(text)
    if i < 0:
        return -1
    while i < n:
        ch = text[i]
        if ch in "'\"`":
            i += 1
            while i < n and text[i] != ch:
                i += 2 if text[i] == "\\" else 1
        elif text.startswith("//", i):
            i = text.find("\n", i)
            if i < 0:
                return -1
        elif text.startswith("/*", i):
            i = text.find("*/", i + 2) + 1
            if i <= 0:
                return -1
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def strip_javascript(path: str, text: str) -> tuple[str, list[Definition], int]:
    """The file without the JSDoc blocks right before its functions, its functions (lines in
    that stripped copy) and how many blocks went."""
    starts = [0]
    for m in re.finditer("\n", text):
        starts.append(m.end())

    def line_of(offset: int) -> int:
        return bisect.bisect_right(starts, offset)

    docs: dict[int, str] = {}  # line of a definition -> its JSDoc's text
    edits = _Edits(text)
    for m in _JSDOC.finditer(text):
        after = text[m.end():]
        next_line = after.lstrip(" \t\r\n")
        def_line = line_of(m.end() + len(after) - len(next_line))
        if _js_definition(next_line.split("\n", 1)[0]) is None:
            continue
        body = [re.sub(r"^\s*\*?\s?", "", raw) for raw in m.group(1).splitlines()]
        prose = []
        for raw in body:
            if raw.strip().startswith("@"):
                break
            prose.append(raw)
        docs[def_line] = "\n".join(prose)
        l1, l2 = line_of(m.start()), line_of(m.end() - 1)
        edits.remove(l1, m.start() - starts[l1 - 1], l2, m.end() - starts[l2 - 1])
    defs = []
    for number, line in enumerate(text.split("\n"), 1):
        found = _js_definition(line)
        if found is None:
            continue
        close = _block_end(text, starts[number - 1])
        end = line_of(close) if close >= 0 else number
        defs.append(Definition(path, found[0], found[1], number, max(end, number), first_sentence(docs.get(number, ""))))
    stripped, deleted = edits.apply()
    new = _mapper(deleted)
    for d in defs:
        d.start, d.end = new(d.start), new(d.end)
    return stripped, defs, len(edits.spans)


# -- corpus and queries ------------------------------------------------------------------------
def build(name: str, files: dict[str, str]) -> Corpus:
    """Strip every file and collect its definitions."""
    out: dict[str, str] = {}
    defs: list[Definition] = []
    stripped = 0
    for path, text in sorted(files.items()):
        strip = strip_python if path.endswith(".py") else strip_javascript if path.endswith(".js") else None
        if strip is None:
            out[path] = text
            continue
        out[path], found, n = strip(path, text)
        defs += found
        stripped += n
    return Corpus(name, out, defs, stripped)


def _spread(items: list[Query], cap: int) -> list[Query]:
    """At most `cap` items, evenly spaced over the (sorted) list: deterministic, no sampling."""
    if len(items) <= cap:
        return items
    return [items[i * len(items) // cap] for i in range(cap)]


def queries(c: Corpus, cap: int) -> dict[str, list[Query]]:
    """The natural-language and identifier query sets of a corpus, each at most `cap` queries."""
    by_doc: dict[str, list[Target]] = {}
    by_name: dict[str, list[Target]] = {}
    for d in sorted(c.definitions, key=lambda d: d.target):
        if d.doc:
            by_doc.setdefault(d.doc, []).append(d.target)
        if _public(d.name):
            by_name.setdefault(d.name, []).append(d.target)
    nl = sorted((Query(text, "nl", targets) for text, targets in by_doc.items() if len(targets) <= MAX_TARGETS),
                key=lambda q: (q.targets[0], q.text))
    names = sorted(by_name.items(), key=lambda kv: (kv[1][0], kv[0]))
    picked = [Query(n, "name", t) for n, t in names]
    ident: list[Query] = []
    for q in _spread(picked, max(1, cap // 2)):
        ident.append(q)
        words = split_words(q.text)
        if words and words != q.text:
            ident.append(Query(words, "words", q.targets))
    return {"nl": _spread(nl, cap), "identifier": ident}
