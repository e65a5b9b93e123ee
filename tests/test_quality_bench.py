"""The search-quality benchmark's pieces on a tiny inline corpus: queries, ground truth, metrics, one real run.

No network: the corpus is written here; the model is the session's real one.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import CountingEmbedder

from benchmarks import quality, quality_corpus
from benchmarks.quality_corpus import Target

RETRY = '''"""Retry helpers (a module docstring stays)."""

import time


def parse_retry_after(value):
    """Parse the Retry-After header into a number of seconds to wait.

    Accepts seconds or an HTTP date.
    """
    return float(value)


class HTTPAdapter:
    """Send requests over pooled connections to one host."""

    def send(self, request):
        """Send one prepared request and return its response object."""
        return request

    def close(self):
        """Close."""
        time.sleep(0)
'''

COOKIES = '''def merge_cookies(jar, cookies):
    """Merge a dictionary of cookies into the given cookie jar.""" ; jar.update(cookies)
    return jar


def _private_helper(x):
    """Compute the private helper value for a given input."""
    return x
'''

ROUTER = '''var debug = require('debug');

/**
 * Dispatch a request and response pair into this route.
 *
 * @private
 */

Route.prototype.dispatch = function dispatch(req, res, done) {
  var stack = this.stack;
  if (stack.length === 0) {
    return done();
  }
  return "{";
};

/**
 * Module exports.
 */

module.exports = Route;

/**
 * Return the normalized content type of a request header.
 */
function normalizeType(type) {
  return type.split(';')[0];
}
'''

FILES = {"retry.py": RETRY, "cookies.py": COOKIES, "lib/route.js": ROUTER}


def _line(c: quality_corpus.Corpus, t: Target) -> str:
    return c.files[t.path].split("\n")[t.start - 1]


def test_queries_come_from_docstrings_removed_from_the_indexed_copy() -> None:
    c = quality_corpus.build("tiny", FILES)
    for path in ("retry.py", "cookies.py"):
        tree = ast.parse(c.files[path])  # still valid Python
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                assert ast.get_docstring(node) is None, (path, node.name)
    assert '"""Retry helpers' in c.files["retry.py"]  # the module docstring is not a query
    assert "Dispatch a request" not in c.files["lib/route.js"] and "normalized content" not in c.files["lib/route.js"]
    assert "Module exports." in c.files["lib/route.js"]  # a block before no function stays
    assert c.stripped == 8  # six Python docstrings (the module's stays), two JSDoc blocks

    sets = quality_corpus.queries(c, cap=100)
    nl = {q.text: q.targets for q in sets["nl"]}
    assert set(nl) == {
        "Parse the Retry-After header into a number of seconds to wait.",
        "Send requests over pooled connections to one host.",
        "Send one prepared request and return its response object.",
        "Merge a dictionary of cookies into the given cookie jar.",
        "Compute the private helper value for a given input.",
        "Dispatch a request and response pair into this route.",
        "Return the normalized content type of a request header.",
    }  # "Close." is too short to be a query
    (parse,) = nl["Parse the Retry-After header into a number of seconds to wait."]
    assert _line(c, parse) == "def parse_retry_after(value):" and _line(c, Target("retry.py", parse.end, 0)).strip() \
        == "return float(value)"
    (send,) = nl["Send one prepared request and return its response object."]
    assert _line(c, send).strip() == "def send(self, request):" and send.end == send.start + 1
    (adapter,) = nl["Send requests over pooled connections to one host."]
    assert _line(c, adapter) == "class HTTPAdapter:" and adapter.end == send.end + 3  # close() (lines 15-16) is still inside
    (merge,) = nl["Merge a dictionary of cookies into the given cookie jar."]
    assert _line(c, merge).startswith("def merge_cookies") and "jar.update(cookies)" in _line(c, Target(
        "cookies.py", merge.start + 1, 0))
    (dispatch,) = nl["Dispatch a request and response pair into this route."]
    assert _line(c, dispatch).startswith("Route.prototype.dispatch = function dispatch(")
    assert _line(c, Target(dispatch.path, dispatch.end, 0)) == "};"  # the "{" in a string is skipped
    (normalize,) = nl["Return the normalized content type of a request header."]
    assert _line(c, normalize) == "function normalizeType(type) {" and normalize.end == normalize.start + 2

    ident = [(q.text, q.kind) for q in sets["identifier"]]
    assert ("parse_retry_after", "name") in ident and ("parse retry after", "words") in ident
    assert ("HTTPAdapter", "name") in ident and ("http adapter", "words") in ident
    assert ("normalizeType", "name") in ident and ("normalize type", "words") in ident
    assert ("send", "name") in ident and ("send", "words") not in ident  # the same text once
    assert ("close", "name") in ident and not any(text.startswith("_") for text, _ in ident)  # public only
    assert quality_corpus.queries(c, cap=100)["nl"][0].text == sets["nl"][0].text  # deterministic
    assert len(quality_corpus.queries(c, cap=3)["nl"]) == 3


def test_split_words_and_first_sentence() -> None:
    assert quality_corpus.split_words("parse_retry_after") == "parse retry after"
    assert quality_corpus.split_words("HTTPAdapter") == "http adapter"
    assert quality_corpus.split_words("getUserId2") == "get user id 2"
    assert quality_corpus.first_sentence("Return the :class:`~requests.Response` object, e.g. a 404 one. More.") \
        == "Return the requests.Response object, e.g. a 404 one."
    assert quality_corpus.first_sentence("Deprecated, use the other function instead.") == ""
    assert quality_corpus.first_sentence("Too short.") == ""


def test_metrics_on_hand_checked_rankings() -> None:
    targets = [Target("a.py", 10, 20)]
    hits = [("b.py", 10, 20), ("a.py", 1, 9), ("a.py", 18, 30)]
    assert quality.rank_of(hits, targets, "chunk") == 3  # a.py 1-9 ends before line 10
    assert quality.rank_of(hits, targets, "file") == 2
    assert quality.rank_of([("b.py", 1, 5)], targets, "chunk") is None
    s = quality.scores([1, 3, None, 11])
    assert s == {"queries": 4, "mrr@10": round((1 + 1 / 3) / 4, 4), "recall@1": 0.25, "recall@10": 0.5}
    assert quality.chunk_stats([(1, 10, 100), (11, 12, 50)]) == {"chunks": 2, "mean_lines": 6.0, "mean_chars": 75.0}


def test_an_end_to_end_run_of_gitindex_dense_reports_every_key(tmp_path: Path, embedder: CountingEmbedder) -> None:
    c = quality_corpus.build("tiny", FILES)
    r = quality.run({"tiny": c}, ["gitindex-lines-dense", "gitindex-lines-hybrid"], 50, embedder, tmp_path)
    run = r["corpora"]["tiny"]["configs"]["gitindex-lines-dense"]
    assert run["status"] == "ok" and run["chunks"] > 0 and run["mean_lines"] > 0 and run["mean_chars"] > 0
    assert set(run["metrics"]) == {"nl", "identifier", "identifier:name", "identifier:words"}
    nl = run["metrics"]["nl"]
    assert nl["chunk"]["queries"] == 7 and nl["file"]["recall@10"] == 1.0  # three files: all in the top 10
    assert 0 < nl["chunk"]["mrr@10"] <= nl["file"]["mrr@10"] <= 1
    assert r["average"]["gitindex-lines-dense"]["metrics"]["nl"]["chunk"]["mrr@10"] == nl["chunk"]["mrr@10"]
    hybrid = r["corpora"]["tiny"]["configs"]["gitindex-lines-hybrid"]
    assert hybrid["status"] == "ok" or "mode" in hybrid["message"]  # reported either way, never a crash
    assert set(r["ratios"]) >= {"metric", "chunker", "hybrid_vs_dense", "hybrid_vs_peer"}
    text = quality.markdown(r)
    assert "| gitindex-lines-dense |" in text and "## Ratios" in text
