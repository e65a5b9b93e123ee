"""Every branch in one index (issue 14), measured on a real release history: one ref per release.

    python -m benchmarks.refs                 # requests: 8 minor releases (sdists), ~2-4 min
    python -m benchmarks.refs --quick         # 3 releases, fewer queries and rounds
    python -m benchmarks.refs --json out.json --package flask --versions 2.2.5,2.3.3,3.0.3

The history is built once and cached (CACHE/corpora/refs-...): each release's source
distribution (tests and docs included; sdists by default, `--dist wheel` for wheels) is one
commit on `main`, tagged `vX.Y`, with a branch `release/X.Y` at it. Each run works on a fresh
copy (CACHE/refs-work/, removed first), so nothing is reused from an earlier run's index.

1. Sync every release branch into one index, one `Index.sync(ref)` at a time, oldest first,
   with a counting embedder (the real model). Points stored (the store's count) against the
   distinct (path, blob, chunk) of the release trees, and texts embedded against the distinct
   chunk texts, both computed from git with a fresh chunking of every tree (no manifest, no
   store); the cost of one index per ref (sum of each tree's chunks and texts) beside it.
2. A branch that differs from the newest release by one file (a function appended): the time
   of `Index.sync(branch)` in-process (model loaded) and what it embeds, which must be only
   that file's new chunks; then the same through the CLI (`gitindex sync --ref`) for context.
3. Ref-restricted search: identifiers and plain words drawn from the corpus, searched in
   several refs; every hit is checked with `git show REF:PATH` (the file exists in that ref,
   and the hit's lines there are its text) and against that tree's chunking. `--all-refs`:
   every ref a hit lists must hold it.
4. Branch switches with the hooks installed (`gitindex hooks install --foreground`): checkout
   time with and without them, what the hooks' syncs embedded (`gitindex log --json`), and a
   search right after a switch, whose hits must all be of the checked-out branch.

A Markdown report goes to stdout; `--json PATH` writes every figure. Times are wall seconds on
whatever machine runs it (the load average is reported); the targets are counts and ratios,
except the 2 s of a one-file ref.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import corpus
from benchmarks.measure import measure

ROOT = Path(__file__).resolve().parents[1]  # the gitindex checkout measured (also in subprocesses)
DEFAULT_CACHE = Path.home() / ".cache" / "gitindex-bench"

# The newest patch of eight consecutive minor releases: each sdist is ~60-80 text files (the
# package, its tests, its history), ~900 chunks; 2.32 moved the package under src/.
DEFAULT_HISTORY: tuple[str, list[str]] = (
    "requests", ["2.25.1", "2.26.0", "2.27.1", "2.28.2", "2.29.0", "2.30.0", "2.31.0", "2.32.3"])
QUICK_VERSIONS = 3  # --quick: the newest three

TARGET_POINTS_RATIO = 1.1  # points stored <= 1.1 x distinct chunks
TARGET_ONE_FILE_S = 2.0  # a ref one file away from a tracked one: synced in <= 2 s
ONE_FILE_BRANCH = "bench/one-file"
ONE_FILE_CLI_BRANCH = "bench/one-file-cli"
SAME_TREE_BRANCH = "bench/same-tree"

_DROP = re.compile(r"(^|/)[^/]+\.egg-info(/|$)|^PKG-INFO$")  # build metadata, not source
_WORD = re.compile(r"[A-Za-z][a-z]{5,}")
_STOP = frozenset(("return", "string", "object", "should", "import", "values", "default", "module", "function",
                   "raise", "except", "params", "python", "version", "method", "number", "assert", "result",
                   "which", "their", "there", "these", "those", "about", "before", "after", "without",
                   "within", "between", "other"))


def log(msg: str) -> None:
    print(f"[refs {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _env() -> dict[str, str]:
    """Subprocesses (the CLI, git's hooks) import the gitindex checkout this module belongs to."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, **corpus._GIT_ENV,
            "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}


def _gitindex() -> list[str]:
    return [sys.executable, "-m", "gitindex"]


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(["git", *args], cwd=repo, env=_env(), capture_output=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc


# -- the release history ------------------------------------------------------------------------
def download_sdist(package: str, version: str, cache: Path) -> Path:
    """The cached source distribution of package==version, fetched with pip if absent."""
    slot = cache / "sdists" / re.sub(r"[-_.]+", "-", package).lower() / version
    found = sorted([*slot.glob("*.tar.gz"), *slot.glob("*.zip")])
    if not found:
        slot.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                               "--disable-pip-version-check", "--quiet", f"{package}=={version}", "-d", str(slot)],
                              check=False, capture_output=True, text=True)
        found = sorted([*slot.glob("*.tar.gz"), *slot.glob("*.zip")])
        if proc.returncode != 0 or not found:
            shutil.rmtree(slot, ignore_errors=True)
            detail = (proc.stderr.strip().splitlines() or ["no sdist produced"])[-1]
            raise corpus.DownloadError(f"cannot download sdist {package}=={version}: {detail}")
    return found[0]


def sdist_files(archive: Path) -> list[tuple[str, bytes]]:
    """Sorted (path, content) of an sdist's text files, its top directory stripped, without
    *.egg-info/ and PKG-INFO; binary files (a NUL byte in the first 8000 bytes) dropped."""
    raw: list[tuple[str, bytes]] = []
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zf:
            raw = [(i.filename, zf.read(i)) for i in zf.infolist() if not i.is_dir()]
    else:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                handle = tar.extractfile(member) if member.isfile() else None
                if handle is not None:
                    raw.append((member.name, handle.read()))
    files = []
    for name, data in raw:
        parts = name.split("/")[1:]
        path = "/".join(parts)
        if not parts or ".." in parts or _DROP.search(path) or b"\0" in data[:8000]:
            continue
        files.append((path, data))
    return sorted(files)


def labels(versions: Sequence[str]) -> list[str]:
    """X.Y per release, or the whole version where two releases share X.Y."""
    short = [".".join(v.split(".")[:2]) for v in versions]
    return short if len(set(short)) == len(short) else list(versions)


def build_history(dest: Path, package: str, versions: Sequence[str], cache: Path, dist: str) -> None:
    """One commit per release on `main` (oldest first), tag vX.Y and branch release/X.Y on each."""
    if dist == "sdist":
        trees = [sdist_files(download_sdist(package, v, cache)) for v in versions]
    else:
        trees = [corpus.wheel_files(corpus.download_wheel(package, v, cache / "wheels")) for v in versions]
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    corpus._init_repo(tmp)
    for i, (version, label, files) in enumerate(zip(versions, labels(versions), trees, strict=True)):
        for entry in tmp.iterdir():
            if entry.name != ".git":
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        corpus._write(tmp, files)
        corpus._commit(tmp, f"{package} {version}", corpus._EPOCH + i * 86_400)
        corpus._git(tmp, "tag", f"v{label}")
        corpus._git(tmp, "branch", f"release/{label}")
    corpus._git(tmp, "gc", "--quiet")
    tmp.rename(dest)


def history(cache: Path, package: str, versions: Sequence[str], dist: str) -> Path:
    dest = cache / "corpora" / f"refs-{package}-{versions[0]}-{versions[-1]}-{len(versions)}-{dist}"
    if not (dest / ".git").is_dir():
        log(f"building the history of {package} {', '.join(versions)} ({dist}s) at {dest}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        build_history(dest, package, versions, cache, dist)
    return dest


# -- the model, counted -------------------------------------------------------------------------
class CountingEmbedder:
    """The configured model (as the CLI loads it), counting the texts it is asked to embed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        vectors: np.ndarray = self.inner.embed(texts)
        return vectors

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


# -- what git says the trees hold -------------------------------------------------------------------
class TreeChunks:
    """One tree chunked afresh from git (gitindex's chunker and file selection, none of its
    bookkeeping): point ids, embedded texts and each path's chunk ranges."""

    def __init__(self, ix: Any, ref: str) -> None:
        from gitindex.examine import examine
        from gitindex.store import point_id

        ws = ix.workspace
        source = ws.source(ws.repo.resolve(ref))
        counter = ws.spec.token_counter()
        self.ref = ref
        self.ids: set[str] = set()
        self.texts: set[str] = set()
        self.chunks = 0
        self.ranges: dict[str, dict[tuple[int, int], str]] = {}  # path -> (start, end) -> text
        self.blobs: dict[str, str] = {}
        for entry in source.entries():
            reason, chunks = examine(source, ws.selector, entry, counter, ws.spec.budget, ws.syntax)
            if reason is not None:
                continue
            self.blobs[entry.path] = entry.oid
            self.ranges[entry.path] = {(c.start, c.end): c.text for c in chunks}
            for i, c in enumerate(chunks):
                self.ids.add(point_id(entry.path, entry.oid, i, ws.store.repo))
                self.texts.add(c.embedded)
            self.chunks += len(chunks)


class GitFiles:
    """File contents read with `git show REF:PATH` (the plain git command), cached."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self._cache: dict[tuple[str, str], list[str] | None] = {}

    def lines(self, ref: str, path: str) -> list[str] | None:
        key = (ref, path)
        if key not in self._cache:
            proc = git(self.repo, "show", f"{ref}:{path}", check=False)
            if proc.returncode != 0:
                self._cache[key] = None
            else:
                from gitindex.chunking import split_lines

                self._cache[key] = split_lines(proc.stdout.decode("utf-8", errors="replace"))
        return self._cache[key]


def check_hit(files: GitFiles, tree: TreeChunks | None, ref: str, hit: Any) -> str | None:
    """Why `hit` is not a chunk of `ref`'s tree (None: it is)."""
    lines = files.lines(ref, hit.path)
    if lines is None:
        return f"{hit.path} does not exist in {ref}"
    body = "".join(lines[hit.start_line - 1: hit.end_line]).rstrip("\r\n")
    if hit.end_line > len(lines) or body != hit.text:
        return f"{hit.path}:{hit.start_line}-{hit.end_line} in {ref} is not the hit's text"
    if tree is not None and tree.ranges.get(hit.path, {}).get((hit.start_line, hit.end_line)) != hit.text:
        return f"{hit.path}:{hit.start_line}-{hit.end_line} is not a chunk of {ref}'s tree"
    return None


def queries(repo: Path, ref: str, count: int) -> list[str]:
    """Identifiers (function and class names) and plain words from `ref`'s Python files, spread
    over their sorted lists (deterministic)."""
    names: set[str] = set()
    words: Counter[str] = Counter()
    listing = git(repo, "ls-tree", "-r", "--name-only", ref).stdout.decode().split("\n")
    for path in (p for p in listing if p.endswith(".py")):
        text = git(repo, "show", f"{ref}:{path}").stdout.decode("utf-8", errors="replace")
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and len(node.name) > 4 \
                    and not node.name.startswith("test_"):
                names.add(node.name)
            doc = ast.get_docstring(node) if isinstance(
                node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module) else None
            if doc:
                words.update(w.lower() for w in _WORD.findall(doc))
    common = sorted(w for w, n in words.items() if n >= 3 and w not in _STOP)

    def spread(items: list[str], k: int) -> list[str]:
        if len(items) <= k:
            return items
        step = len(items) / k
        return [items[int(i * step)] for i in range(k)]

    n_names = count - count // 2
    picked_words = spread(common, 2 * (count // 2))
    phrases = [f"{a} {b}" for a, b in zip(picked_words[::2], picked_words[1::2], strict=False)]
    return spread(sorted(names), n_names) + phrases


# -- the benchmark ------------------------------------------------------------------------------
def _store_points(ix: Any) -> tuple[int, int, int]:
    """(store.count(), points scrolled, extra points for one path/blob/line range)."""
    store = ix.workspace.store
    with store.session():
        count = store.count()
        ranges = Counter((p["path"], p["blob"], int(p["start_line"]), int(p["end_line"])) for _, p in store.scroll())
    return count, sum(ranges.values()), sum(n - 1 for n in ranges.values() if n > 1)


def _append_function(repo: Path, branch: str, base: str, path: str, name: str, date: int) -> None:
    """Create `branch` at `base` with one function appended to `path` (the work tree stays)."""
    blob = git(repo, "show", f"{base}:{path}").stdout
    extra = (f"\n\ndef {name}(value, *, limit=10):\n"
             f'    """Return the first `limit` items of {name.replace("_", " ")} for value."""\n'
             "    items = [part.strip() for part in str(value).split(',') if part.strip()]\n"
             "    if not items:\n"
             "        raise ValueError('nothing to take: ' + repr(value))\n"
             "    return items[:limit]\n").encode()
    content = blob.rstrip(b"\n") + b"\n" + extra
    new_blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=repo, input=content, env=_env(),
                              capture_output=True, check=True).stdout.decode().strip()
    index = repo / ".git" / f"bench-index-{branch.replace('/', '-')}"
    env = {**_env(), "GIT_INDEX_FILE": str(index),
           "GIT_AUTHOR_DATE": f"{date} +0000", "GIT_COMMITTER_DATE": f"{date} +0000"}

    def run(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, check=True,
                              text=True).stdout.strip()

    run("read-tree", base)
    run("update-index", "--cacheinfo", f"100644,{new_blob},{path}")
    tree = run("write-tree")
    commit = run("commit-tree", tree, "-p", base, "-m", f"append {name} to {path}")
    run("branch", branch, commit)
    index.unlink(missing_ok=True)


def _changed_file(repo: Path, ref: str) -> str:
    """The package's utils.py in `ref` (else its largest Python file outside tests)."""
    listing = git(repo, "ls-tree", "-r", "-l", ref).stdout.decode().splitlines()
    files = [(int(parts[3]), parts[4]) for line in listing if (parts := line.split(None, 4))[3] != "-"]
    py = [(size, p) for size, p in files if p.endswith(".py") and "test" not in p and not p.startswith("docs/")]
    utils = [p for _, p in py if p.endswith("/utils.py")]
    return sorted(utils)[0] if utils else max(py)[1]


def run(args: argparse.Namespace) -> dict[str, Any]:
    import gitindex

    started = time.perf_counter()
    package = args.package
    versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    if args.quick:
        versions = versions[-QUICK_VERSIONS:]
    cache: Path = args.cache
    load_before = os.getloadavg()
    source = history(cache, package, versions, args.dist)
    work = cache / "refs-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    repo = work / package
    shutil.copytree(source, repo, symlinks=True)
    git(repo, "checkout", "-q", "main")
    names = [f"release/{label}" for label in labels(versions)]
    out: dict[str, Any] = {"package": package, "versions": versions, "dist": args.dist, "refs": names,
                           "together": args.together,
                           "corpus": str(source), "cores": os.cpu_count(), "load_before": load_before}

    ix = gitindex.open(repo, env=dict(os.environ))
    counting = CountingEmbedder(ix.workspace.embedder)
    ix.workspace.embedder = counting
    t = time.perf_counter()
    counting.inner.embed(["warm the model up"])
    out["model_load_s"] = round(time.perf_counter() - t, 3)

    # 1. every release in one index ------------------------------------------------------------
    log(f"syncing {len(names)} release refs {'in one call' if args.together else 'one at a time'} into one index")
    per_ref: list[dict[str, Any]] = []
    for name in ([names] if args.together else names):
        before = len(counting.texts)
        t = time.perf_counter()
        res = ix.sync(name)
        wall = time.perf_counter() - t
        if not res.complete:
            raise SystemExit(f"sync of {name} did not complete: {res.notes}")
        name = name if isinstance(name, str) else f"all {len(names)} in one sync"
        per_ref.append({"ref": name, "wall_s": round(wall, 3), "embedded": len(counting.texts) - before,
                        "result_embedded": res.embedded, "reused": res.reused,
                        "files": {"added": res.added, "modified": res.modified, "deleted": res.deleted,
                                  "renamed": res.renamed},
                        "notes": [n for n in res.notes if "started from" in n]})
        log(f"  {name}: {per_ref[-1]['embedded']} embedded in {wall:.1f} s")
    embedded_texts = list(counting.texts)
    log("chunking every release tree afresh from git")
    trees = {name: TreeChunks(ix, name) for name in names}
    distinct_ids = set().union(*(t.ids for t in trees.values()))
    distinct_texts = set().union(*(t.texts for t in trees.values()))
    count, scrolled, dup_ranges = _store_points(ix)
    _, manifest_chunks = ix.workspace.manifest.distinct_counts()
    t = time.perf_counter()
    verified = ix.verify()
    verify_s = time.perf_counter() - t
    per_ref_points = sum(t.chunks for t in trees.values())
    per_ref_embeds = sum(len(t.texts) for t in trees.values())
    out["one_index"] = {
        "per_ref": per_ref,
        "wall_s": round(sum(r["wall_s"] for r in per_ref), 3),
        "points": count, "points_scrolled": scrolled, "duplicate_ranges": dup_ranges,
        "distinct_chunks": len(distinct_ids), "manifest_distinct_chunks": manifest_chunks,
        "stored_not_in_trees": None,
        "embedded": len(embedded_texts), "embedded_distinct": len(set(embedded_texts)),
        "distinct_texts": len(distinct_texts),
        "embedded_not_in_trees": len(set(embedded_texts) - distinct_texts),
        "points_ratio": round(count / len(distinct_ids), 4),
        "embedded_ratio": round(len(embedded_texts) / len(distinct_texts), 4),
        "chunks_per_tree": {n: t.chunks for n, t in trees.items()},
        "per_ref_index_points": per_ref_points, "per_ref_index_embeds": per_ref_embeds,
        "points_vs_per_ref": round(count / per_ref_points, 4),
        "embeds_vs_per_ref": round(len(embedded_texts) / per_ref_embeds, 4),
        "verify": {**verified.to_json(), "seconds": round(verify_s, 2)},
    }
    store = ix.workspace.store
    with store.session():
        stored_ids = {pid for pid, _ in store.scroll(fields=("path",))}
    out["one_index"]["stored_not_in_trees"] = len(stored_ids - distinct_ids)
    out["one_index"]["trees_not_stored"] = len(distinct_ids - stored_ids)

    # 2. a ref one file away from a tracked one --------------------------------------------------
    newest = names[-1]
    path = _changed_file(repo, newest)
    date = corpus._EPOCH + len(versions) * 86_400
    _append_function(repo, ONE_FILE_BRANCH, newest, path, "take_leading_items", date)
    _append_function(repo, ONE_FILE_CLI_BRANCH, newest, path, "take_trailing_items", date)
    git(repo, "branch", SAME_TREE_BRANCH, newest)
    known = set(distinct_texts)
    one = TreeChunks(ix, ONE_FILE_BRANCH)
    expected_new = {c for c in one.texts if c not in known}
    before = len(counting.texts)
    t = time.perf_counter()
    res = ix.sync(ONE_FILE_BRANCH)
    wall = time.perf_counter() - t
    new_texts = counting.texts[before:]
    file_texts = _file_texts(ix, ONE_FILE_BRANCH, path)
    before = len(counting.texts)
    t = time.perf_counter()
    ix.sync(SAME_TREE_BRANCH)
    same_wall = time.perf_counter() - t
    out["one_file"] = {
        "path": path, "wall_s": round(wall, 3), "embedded": len(new_texts),
        "expected_new_chunks": len(expected_new), "embedded_other_files": len(set(new_texts) - file_texts),
        "embedded_equals_expected": set(new_texts) == expected_new and len(new_texts) == len(expected_new),
        "file_chunks": len(file_texts), "notes": res.notes, "phases": {k: round(v, 3) for k, v in res.phases.items()},
        "same_tree": {"wall_s": round(same_wall, 3), "embedded": len(counting.texts) - before},
    }
    ix.close()  # the CLI takes the store
    cli = measure([*_gitindex(), "sync", "--ref", ONE_FILE_CLI_BRANCH, "--json", "--quiet"], cwd=repo, env=_env())
    cli_json = json.loads(cli.stdout)
    out["one_file"]["cli"] = {**cli.to_json(), "embedded": cli_json["chunks"]["embedded"],
                              "seconds_reported": cli_json["seconds"]}
    log(f"one-file ref: {len(new_texts)} embedded in {wall:.2f} s (CLI {cli.wall:.2f} s)")

    # 3. ref-restricted search, checked with git ---------------------------------------------------
    ix = gitindex.open(repo, env=dict(os.environ))
    ix.workspace.embedder = counting
    qs = queries(repo, newest, args.queries)
    search_refs = list(dict.fromkeys([names[0], names[len(names) // 2], newest, ONE_FILE_BRANCH]))
    trees[ONE_FILE_BRANCH] = one
    files = GitFiles(repo)
    violations: list[str] = []
    hits_checked = 0
    search_walls: list[float] = []
    for q in qs:
        for ref in search_refs:
            t = time.perf_counter()
            hits = ix.search(q, limit=10, ref=ref)
            search_walls.append(time.perf_counter() - t)
            for hit in hits:
                hits_checked += 1
                why = check_hit(files, trees[ref], ref, hit)
                if why is None and ref not in hit.refs:
                    why = f"{hit.path}:{hit.start_line} found with ref={ref} but lists {hit.refs}"
                if why:
                    violations.append(f"{q!r} ref={ref}: {why}")
    all_violations: list[str] = []
    all_checked = unlisted = 0
    for q in qs:
        for hit in ix.search(q, limit=10, all_refs=True):
            if not hit.refs:
                unlisted += 1
                all_violations.append(f"{q!r}: {hit.path}:{hit.start_line} lists no ref")
            for ref in hit.refs:
                all_checked += 1
                why = check_hit(files, trees.get(ref), ref, hit)
                if why:
                    all_violations.append(f"{q!r} all-refs: {why}")
    out["search"] = {
        "queries": qs, "refs": search_refs, "hits_checked": hits_checked, "violations": len(violations),
        "examples": violations[:10], "median_search_s": round(statistics.median(search_walls), 4),
        "all_refs": {"ref_listings_checked": all_checked, "violations": len(all_violations),
                     "hits_without_refs": unlisted, "examples": all_violations[:10]},
    }
    log(f"search: {hits_checked} hits checked, {len(violations)} violations; "
        f"all-refs {all_checked} listings, {len(all_violations)} violations")
    ix.close()

    # 4. branch switches with the hooks installed -------------------------------------------------
    out["hooks"] = hooks_phase(repo, names, files, trees, qs, args.rounds)
    out["load_after"] = os.getloadavg()
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def _file_texts(ix: Any, ref: str, path: str) -> set[str]:
    from gitindex.examine import examine

    ws = ix.workspace
    source = ws.source(ws.repo.resolve(ref))
    entry = source.entry(path)
    assert entry is not None
    _, chunks = examine(source, ws.selector, entry, ws.spec.token_counter(), ws.spec.budget, ws.syntax)
    return {c.embedded for c in chunks}


def hooks_phase(repo: Path, names: list[str], files: GitFiles, trees: dict[str, TreeChunks],
                qs: list[str], rounds: int) -> dict[str, Any]:
    """Checkout times between two tracked releases, without hooks then with foreground hooks;
    the hooks' syncs must embed nothing, and a search right after a switch must answer for the
    checked-out branch."""
    older, newer = names[len(names) // 2 - 1 if len(names) > 2 else 0], names[-1]
    git(repo, "checkout", "-q", newer)

    def switch(to: str, hooks: bool) -> float:
        off = [] if hooks else ["-c", "core.hooksPath=/dev/null"]  # no hook is found there
        t = time.perf_counter()
        git(repo, *off, "checkout", "-q", to)
        return time.perf_counter() - t

    plain: list[float] = []
    for _ in range(rounds):
        plain += [switch(older, False), switch(newer, False)]
    installed = measure([*_gitindex(), "hooks", "install", "--foreground"], cwd=repo, env=_env())
    with_hooks: list[float] = []
    search_after: list[float] = []
    wrong: list[str] = []
    query = qs[0]
    for i in range(rounds):
        for to in (older, newer):
            with_hooks.append(switch(to, True))
            if i == rounds - 1 or to == older:  # a search right after the switch, checked with git
                m = measure([*_gitindex(), "search", query, "--json", "-n", "10"], cwd=repo, env=_env())
                search_after.append(m.wall)
                for h in json.loads(m.stdout):
                    hit = _Hit(h)
                    why = check_hit(files, trees[to], to, hit)
                    if why is None and to not in hit.refs:
                        why = f"{hit.path}:{hit.start_line} does not list {to}: {hit.refs}"
                    if why:
                        wrong.append(f"after checkout {to}: {why}")
    logged = json.loads(measure([*_gitindex(), "log", "--json", "-n", str(2 * rounds)], cwd=repo, env=_env()).stdout)
    runs = logged[-2 * rounds:] if isinstance(logged, list) else []
    embedded = [((r.get("summary") or {}).get("chunks") or {}).get("embedded") for r in runs]
    status = json.loads(measure([*_gitindex(), "status", "--json"], cwd=repo, env=_env()).stdout)
    measure([*_gitindex(), "hooks", "uninstall"], cwd=repo, env=_env())
    git(repo, "checkout", "-q", "main")
    plain_med, hook_med = statistics.median(plain), statistics.median(with_hooks)
    return {
        "switch": [older, newer], "rounds": rounds, "install_rc": installed.rc,
        "checkout_plain_s": round(plain_med, 4), "checkout_hooks_s": round(hook_med, 4),
        "checkout_ratio": round(hook_med / plain_med, 2), "hook_added_s": round(hook_med - plain_med, 4),
        "search_after_s": round(statistics.median(search_after), 4),
        "hook_runs": len(runs), "hook_runs_ok": sum(1 for r in runs if r.get("ok")),
        "hook_embedded": embedded, "hook_embedded_total": sum(e or 0 for e in embedded),
        "hook_run_s": round(statistics.median([float(r.get("seconds") or 0) for r in runs]), 4) if runs else None,
        "hook_refs": [(r.get("summary") or {}).get("refs") for r in runs],
        "search_violations": len(wrong), "examples": wrong[:10],
        "status_ref": status.get("ref"),
        "tracked": [r.get("ref") for r in status.get("refs", [])],
    }


class _Hit:
    """A hit of `gitindex search --json`, shaped like gitindex.search.Hit for check_hit()."""

    def __init__(self, h: dict[str, Any]) -> None:
        self.path, self.start_line, self.end_line = h["path"], int(h["start_line"]), int(h["end_line"])
        self.text, self.refs = h["text"], tuple(h.get("refs") or ())


# -- the report ---------------------------------------------------------------------------------
def _met(ok: bool) -> str:
    return "met" if ok else "**NOT met**"


def markdown(r: dict[str, Any]) -> str:
    o, f, s, h = r["one_index"], r["one_file"], r["search"], r["hooks"]
    n = len(r["refs"])
    lb, la = r["load_before"], r["load_after"]
    lines = [f"# Every branch in one index: {r['package']}, {n} releases ({r['dist']}s), one ref per release", "",
             f"Refs: {', '.join(r['refs'])}. {r['cores']} cores; load average {lb[0]:.2f} before, {la[0]:.2f} "
             f"after (a shared machine: absolute times are context). Model load {r['model_load_s']:.1f} s; "
             f"run {r['seconds'] / 60:.1f} min.", "",
             "| figure | one index | one index per ref | ratio | target |", "|---|---|---|---|---|",
             f"| points stored | {o['points']:,} | {o['per_ref_index_points']:,} | {o['points_vs_per_ref']:.2f}x | |",
             f"| points / distinct (path, blob, chunk) of the trees (git, chunked afresh; manifest says "
             f"{o['manifest_distinct_chunks']:,}) | {o['points']:,} / {o['distinct_chunks']:,} | | "
             f"{o['points_ratio']:.3f} | <= {TARGET_POINTS_RATIO} ({_met(o['points_ratio'] <= TARGET_POINTS_RATIO)}) |",
             f"| chunks embedded / distinct chunk texts | {o['embedded']:,} / {o['distinct_texts']:,} | "
             f"{o['per_ref_index_embeds']:,} | {o['embedded_ratio']:.3f} (vs per ref {o['embeds_vs_per_ref']:.2f}x) | "
             f"= ({_met(o['embedded'] == o['distinct_texts'] and o['embedded_not_in_trees'] == 0)}) |",
             f"| sync of all {n} refs, {'in one call' if r['together'] else 'one at a time'} | {o['wall_s']:.1f} s | | | |",
             f"| verify (all refs) | stale {o['verify']['stale']}, missing {o['verify']['missing']}, mislisted "
             f"{o['verify']['mislisted']}, duplicates {o['verify']['duplicates']} ({o['verify']['seconds']:.1f} s) | | | "
             f"ok ({_met(bool(o['verify']['ok']))}) |",
             f"| one-file ref `{ONE_FILE_BRANCH}` ({f['path']}): embedded / that file's new chunks | "
             f"{f['embedded']} / {f['expected_new_chunks']} (other files: {f['embedded_other_files']}) | | | "
             f"only those ({_met(bool(f['embedded_equals_expected']) and f['embedded_other_files'] == 0)}) |",
             f"| one-file ref: Index.sync wall (model loaded) | {f['wall_s']:.2f} s | | "
             f"{f['wall_s'] / TARGET_ONE_FILE_S:.2f} of the target | <= {TARGET_ONE_FILE_S:.0f} s "
             f"({_met(f['wall_s'] <= TARGET_ONE_FILE_S)}) |",
             f"| one-file ref: `gitindex sync --ref` process (model load included) | {f['cli']['wall_s']:.2f} s, "
             f"{f['cli']['embedded']} embedded | | | context |",
             f"| a ref at a tracked ref's tree: Index.sync wall | {f['same_tree']['wall_s']:.2f} s, "
             f"{f['same_tree']['embedded']} embedded | | | context |",
             f"| search --ref ({len(s['queries'])} queries x {len(s['refs'])} refs): hits not in the ref's tree | "
             f"{s['violations']} of {s['hits_checked']} | | | 0 ({_met(s['violations'] == 0)}) |",
             f"| search --all-refs: listed refs that do not hold the hit | {s['all_refs']['violations']} of "
             f"{s['all_refs']['ref_listings_checked']} | | | 0 ({_met(s['all_refs']['violations'] == 0)}) |",
             f"| checkout {h['switch'][0]} <-> {h['switch'][1]}, median of {2 * h['rounds']} | "
             f"{h['checkout_hooks_s'] * 1000:.0f} ms with foreground hooks | {h['checkout_plain_s'] * 1000:.0f} ms "
             f"without | {h['checkout_ratio']:.1f}x (+{h['hook_added_s'] * 1000:.0f} ms) | context |",
             f"| hooks' syncs on switches: chunks embedded | {h['hook_embedded_total']} ({h['hook_runs_ok']}/"
             f"{h['hook_runs']} runs ok, {(h['hook_run_s'] or 0) * 1000:.0f} ms a run as logged) | | | "
             f"0 ({_met(h['hook_embedded_total'] == 0 and h['hook_runs'] == 2 * h['rounds'])}) |",
             f"| search right after a switch: hits not of the checked-out branch | {h['search_violations']} "
             f"({h['search_after_s'] * 1000:.0f} ms a search process) | | | 0 ({_met(h['search_violations'] == 0)}) |",
             "", "Per sync (oldest release first):", "",
             "| ref | chunks in tree | embedded | wall s | started from |", "|---|---|---|---|---|"]
    for p in o["per_ref"]:
        seeded = "; ".join(p["notes"]).replace(f"{p['ref']}: ", "") or "-"
        chunks = o["chunks_per_tree"].get(p["ref"], sum(o["chunks_per_tree"].values()))
        lines.append(f"| {p['ref']} | {chunks:,} | {p['embedded']:,} | {p['wall_s']:.1f} | {seeded} |")
    extra = [*s["examples"], *s["all_refs"]["examples"], *h["examples"]]
    if extra:
        lines += ["", "Violations (first ones):", "", *[f"- {e}" for e in extra]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.refs", description=__doc__.splitlines()[0])
    parser.add_argument("--package", default=DEFAULT_HISTORY[0])
    parser.add_argument("--versions", default=",".join(DEFAULT_HISTORY[1]),
                        help="comma-separated releases, oldest first (one ref each)")
    parser.add_argument("--dist", choices=("sdist", "wheel"), default="sdist")
    parser.add_argument("--together", action="store_true", help="sync the release refs in one call (default: one by one)")
    parser.add_argument("--quick", action="store_true", help=f"the newest {QUICK_VERSIONS} releases, fewer queries")
    parser.add_argument("--queries", type=int, default=None, help="search queries (default 30, quick 10)")
    parser.add_argument("--rounds", type=int, default=None, help="checkout round trips (default 5, quick 2)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="history and scratch (default %(default)s)")
    parser.add_argument("--json", type=Path, help="write every figure here too")
    args = parser.parse_args(argv)
    args.queries = args.queries or (10 if args.quick else 30)
    args.rounds = args.rounds or (2 if args.quick else 5)
    report(args, run, markdown)


def report(args: argparse.Namespace, run: Callable[[argparse.Namespace], dict[str, Any]],
           markdown: Callable[[dict[str, Any]], str]) -> None:
    """Run a benchmark, write every figure to `--json`, print its Markdown report (a corpus that
    cannot be downloaded ends the process with the reason)."""
    try:
        result = run(args)
    except corpus.DownloadError as exc:
        sys.exit(f"error: {exc}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    print(markdown(result))


if __name__ == "__main__":
    main()
