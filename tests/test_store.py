"""The two store adapters, one behaviour: the embedded Qdrant Edge shard, and the server adapter.

No Qdrant server can run here, so qdrant-client's own local mode (`QdrantClient(":memory:")`,
the same client API and models a server is driven with) stands in for one.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CountingEmbedder, GitRepo, git, open_index, python_source
from qdrant_client import QdrantClient

import gitindex
import gitindex.errors
from gitindex import lexical
from gitindex.errors import LockedError, StoreError
from gitindex.store import DENSE, LAYOUT, LEXICAL, InView, Match, PointData, Query, Sparse, VectorStore, point_id
from gitindex.store import embedded as embedded_module
from gitindex.store.embedded import EmbeddedStore
from gitindex.store.remote import RemoteStore

DIM = 8


@pytest.fixture(autouse=True)
def _quiet_local_mode() -> Iterator[None]:
    with warnings.catch_warnings():
        # Local mode says payload indexes only matter on a server; that is the point of them.
        warnings.filterwarnings("ignore", message="Payload indexes have no effect", category=UserWarning)
        # Local mode scans every vector; a server walks the graph the search parameters tune.
        warnings.filterwarnings("ignore", message="Local mode performs exact", category=UserWarning)
        # The unreachable-server test: the client warns before the adapter reports the failure.
        warnings.filterwarnings("ignore", message="Api key is used with an insecure", category=UserWarning)
        warnings.filterwarnings("ignore", message="Failed to obtain server version", category=UserWarning)
        yield


def unit(seed: int) -> list[float]:
    rng = random.Random(seed)
    v = [rng.uniform(-1, 1) for _ in range(DIM)]
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v]


def point(path: str, blob: str, index: int, seed: int | None = None) -> PointData:
    # crc32, not hash(): str hashes differ from process to process (PYTHONHASHSEED).
    seed = zlib.crc32(f"{path}\0{blob}\0{index}".encode()) % 10_000 if seed is None else seed
    text = f"text of {path} chunk {index}"
    return PointData(point_id(path, blob, index), {DENSE: unit(seed), LEXICAL: lexical.document(path, "", text)}, {
        "path": path, "blob": blob, "hash": f"h-{seed}", "start_line": index * 10 + 1,
        "end_line": index * 10 + 9, "language": "python", "text": text,
        "commit": "c0ffee",
    })


LIVE = os.environ.get("GITINDEX_TEST_QDRANT_URL")
NO_LIVE = "no Qdrant server: set GITINDEX_TEST_QDRANT_URL (none can be installed on these machines)"
STORES = ["embedded", "remote", pytest.param("live", marks=pytest.mark.skipif(not LIVE, reason=NO_LIVE))]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    """Every store the contract holds for: the embedded shard, qdrant-client's local mode, and
    a live server when GITINDEX_TEST_QDRANT_URL names one (a fresh collection, dropped after)."""
    if request.param == "embedded":
        yield EmbeddedStore(tmp_path / "qdrant" / "demo", "demo", lock_timeout=1.0)
    elif request.param == "remote":
        yield RemoteStore(QdrantClient(location=":memory:"), "demo", "memory")
    else:
        live = RemoteStore.connect(str(LIVE), os.environ.get("QDRANT_API_KEY"), f"gitindex-test-{uuid.uuid4().hex[:8]}")
        yield live
        live.repo = ""
        live.drop()


def ids_by_path(store: VectorStore) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for pid, payload in store.scroll():
        out.setdefault(payload["path"], set()).add(pid)
    return out


def test_empty_store_answers_without_failing(store: VectorStore) -> None:
    assert not store.exists()
    with store.session():
        assert store.count() == 0
        assert list(store.scroll()) == []
        assert store.query(Query(vector=unit(1), limit=5)) == []
        assert store.vectors_for(["h-1"]) == {}
        store.delete_path("a.py")  # nothing to delete is not an error
        store.drop()
    assert not store.exists()


def test_upsert_is_idempotent_and_counted(store: VectorStore) -> None:
    points = [point("a.py", "blob1", i, seed=i) for i in range(3)] + [point("b.py", "blob2", 0, seed=10)]
    with store.session():
        store.upsert(points)
        store.upsert(points[:2])  # re-writing a batch after a crash: same ids, no duplicates
        assert store.count() == 4
    assert store.exists()
    with store.session():
        assert ids_by_path(store) == {"a.py": {p.id for p in points[:3]}, "b.py": {points[3].id}}


def test_refs_are_set_by_id_or_for_all_and_filtered_on(store: VectorStore) -> None:
    """The refs payload (refs.py): set on chosen points or on all the repository's, and a
    keyword a query filters on; delete_path keeps the points of several blobs."""
    with store.session(write=True):
        store.upsert([point("a.py", "b1", 0), point("a.py", "b2", 0), point("c.py", "b3", 0)])
        store.set_refs(["main"])
        store.set_refs(["feature", "main"], [point_id("a.py", "b2", 0)])
        store.set_refs(["feature"], [point_id("c.py", "b3", 0)])
        listed = {p["blob"]: p["refs"] for _, p in store.scroll()}
        assert listed == {"b1": ["main"], "b2": ["feature", "main"], "b3": ["feature"]}
        hits = store.query(Query(vector=unit(1), limit=10, where=(Match("refs", ("feature",)),)))
        assert sorted(h.payload["blob"] for h in hits) == ["b2", "b3"]
        # An overlay's view: what lists it, and what lists its base at a path it does not override.
        for own, blobs in (((), ["b1", "b2", "b3"]), (("a.py",), ["b2", "b3"]), (("a.py", "c.py"), ["b2", "b3"])):
            for mode in ("dense", "hybrid"):
                hits = store.query(Query(vector=unit(1), sparse=Sparse([1], [1.0]), limit=10, mode=mode,
                                         where=(InView("feature", "main", own),)))
                assert sorted(h.payload["blob"] for h in hits) == blobs, (own, mode)
        hits = store.query(Query(vector=unit(1), limit=10, where=(InView("main"), Match("path", ("a.py",)))))
        assert sorted(h.payload["blob"] for h in hits) == ["b1", "b2"]
        store.delete_path("a.py", keep_blob=["b1", "b2"])  # both kept
        assert store.count() == 3
        store.delete_path("a.py", keep_blob=["b2"])
        assert sorted(p["blob"] for _, p in store.scroll()) == ["b2", "b3"]


def test_delete_path_keeps_the_new_blob_and_other_paths(store: VectorStore) -> None:
    old = [point("a.py", "old", i, seed=i) for i in range(3)]
    new = [point("a.py", "new", i, seed=20 + i) for i in range(2)]
    other = [point("b.py", "old", 0, seed=30)]
    with store.session():
        store.upsert(old + other)
        store.upsert(new)  # upsert first, then delete: a.py is never absent
        assert store.count() == 6
        store.delete_path("a.py", keep_blob="new")
        assert ids_by_path(store) == {"a.py": {p.id for p in new}, "b.py": {other[0].id}}
        store.delete_path("a.py")
        assert ids_by_path(store) == {"b.py": {other[0].id}}


def test_vectors_for_finds_stored_vectors_by_chunk_hash(store: VectorStore) -> None:
    points = [point(f"f{i % 5}.py", "b", i, seed=i) for i in range(1200)]  # more than one page
    with store.session():
        store.upsert(points)
        wanted = [f"h-{i}" for i in range(0, 1200, 1)] + ["h-unknown"]
        found = store.vectors_for(wanted)
    assert set(found) == {f"h-{i}" for i in range(1200)}
    for i in (0, 599, 1199):
        assert found[f"h-{i}"] == pytest.approx(unit(i), abs=1e-5)


def test_query_ranks_best_first_and_filters_paths(store: VectorStore) -> None:
    points = [point(f"src/m{i}.py", "b", 0, seed=i) for i in range(20)]
    with store.session():
        store.upsert(points)
        hits = store.query(Query(vector=unit(7), limit=5))
        assert hits[0].payload["path"] == "src/m7.py"
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True) and len(hits) == 5
        assert hits[0].payload["text"] == "text of src/m7.py chunk 0"

        only = store.query(Query(vector=unit(7), limit=5, where=(Match("path", ("src/m3.py", "src/m4.py")),)))
        assert {h.payload["path"] for h in only} == {"src/m3.py", "src/m4.py"}
        assert store.query(Query(vector=unit(7), limit=5, where=(Match("path", ()),))) == []


def worded(path: str, text: str, seed: int, symbol: str = "") -> PointData:
    """A point with both vectors, as sync writes them: the dense one arbitrary, the lexical one real."""
    return PointData(point_id(path, "b", 0), {DENSE: unit(seed), LEXICAL: lexical.document(path, symbol, text)}, {
        "path": path, "blob": "b", "hash": f"h-{seed}", "start_line": 1, "end_line": 3, "language": "python",
        "text": text, "symbol": symbol, "names": lexical.symbol_names(symbol),
        "defines": lexical.defined_names((symbol,) if symbol else ()),
    })


WORDED = [
    ("net/retry.py", "def parse_retry_after(header):\n    return int(header)", "parse_retry_after"),
    ("net/adapter.py", "class HTTPAdapter(BaseAdapter):\n    def send(self, request): ...", "HTTPAdapter"),
    ("net/session.py", "self.mount('https://', HTTPAdapter())\nself.mount('http://', HTTPAdapter())", ""),
    ("docs/notes.py", "the weather is fine today and nothing here is about networking", ""),
]


def test_lexical_and_hybrid_queries_rank_by_words_and_named_definitions(store: VectorStore) -> None:
    with store.session():
        store.upsert([worded(path, text, i, sym) for i, (path, text, sym) in enumerate(WORDED)])
        assert store.layout() == LAYOUT

        def paths(**query: object) -> list[str]:
            return [h.payload["path"] for h in store.query(Query(**query))]  # type: ignore[arg-type]

        # BM25: the identifier and its words find the one chunk holding them, whatever the dense side says.
        assert paths(sparse=lexical.query("parse_retry_after"), mode="lexical", limit=4)[0] == "net/retry.py"
        assert paths(sparse=lexical.query("retry after"), mode="lexical", limit=4)[0] == "net/retry.py"
        assert paths(sparse=lexical.query("zebra"), mode="lexical", limit=4) == []  # no word known: nothing
        # The dense vector alone points at the notes (seed 3); hybrid with the query's name puts
        # the definition of HTTPAdapter first, though the session mentions it twice.
        hybrid = dict(vector=unit(3), sparse=lexical.query("HTTPAdapter"), mode="hybrid", limit=4)
        assert paths(**hybrid, names=tuple(lexical.query_names("HTTPAdapter")))[0] == "net/adapter.py"
        assert paths(vector=unit(3), mode="dense", limit=1) == ["docs/notes.py"]
        # Filters hold in every source of a hybrid query.
        only = paths(**hybrid, names=("httpadapter",), where=(Match("path", ("net/session.py",)),))
        assert only == ["net/session.py"]
        assert paths(vector=unit(1), sparse=lexical.query("send"), mode="hybrid", limit=2,
                     where=(Match("names", ("httpadapter",)),)) == ["net/adapter.py"]


def _check_large_index_settings(store: RemoteStore, server: bool) -> None:
    store.upsert([worded("a.py", "def f(): pass", 1, "f")])
    config = store.client.get_collection(store.collection).config
    dense = config.params.vectors[DENSE]  # type: ignore[index]
    assert dense.on_disk and config.params.sparse_vectors[LEXICAL].index.on_disk  # type: ignore[index, union-attr]
    assert store.layout() == LAYOUT
    if server:  # local mode keeps only the vector parameters
        assert config.params.on_disk_payload and config.hnsw_config.m == 16
        assert config.quantization_config.scalar.always_ram  # type: ignore[union-attr]


def test_a_server_collection_is_made_for_a_large_shared_index() -> None:
    _check_large_index_settings(RemoteStore(QdrantClient(location=":memory:"), "demo", "memory"), server=False)


@pytest.mark.skipif(not os.environ.get("GITINDEX_TEST_QDRANT_URL"),
                    reason="no Qdrant server: set GITINDEX_TEST_QDRANT_URL (none can be installed on these machines)")
def test_a_live_server_collection_has_graph_quantization_and_disk_settings() -> None:
    url = os.environ["GITINDEX_TEST_QDRANT_URL"]
    name = f"gitindex-test-{uuid.uuid4().hex[:8]}"
    store = RemoteStore.connect(url, os.environ.get("QDRANT_API_KEY"), name)
    try:
        _check_large_index_settings(store, server=True)
    finally:
        store.drop()


def test_query_names_and_symbol_names() -> None:
    assert lexical.symbol_names("HTTPAdapter.send") == ["httpadapter", "httpadapter.send", "send"]
    assert lexical.symbol_names("") == []
    assert lexical.defined_names(("HTTPAdapter.send", "f")) == ["f", "httpadapter.send", "send"]  # no class
    assert lexical.query_names("HTTPAdapter") == ["httpadapter"]
    assert lexical.query_names("where is Session.send called") == ["session.send"]
    assert lexical.query_names("where do we retry failed uploads") == []  # a sentence names nothing
    assert lexical.query_names("http adapter") == ["http_adapter", "httpadapter"]  # a name spelled out
    assert lexical.query_names("parse_retry_after") == ["parse_retry_after"]
    assert lexical.query_names("retry") == ["retry"]  # one word alone may be a name


def test_scroll_leaves_text_out_unless_asked(store: VectorStore) -> None:
    with store.session():
        store.upsert([point("a.py", "b", 0, seed=1)])
        (pid, payload), = list(store.scroll())
        assert pid == point_id("a.py", "b", 0)
        assert "text" not in payload
        assert {"path", "blob", "hash", "start_line", "end_line", "commit"} <= set(payload)
        (_, full), = list(store.scroll(fields=None))
        assert full["text"] == "text of a.py chunk 0" and full["language"] == "python"


def test_drop_removes_everything_and_the_next_write_recreates(store: VectorStore) -> None:
    with store.session():
        store.upsert([point("a.py", "b", 0, seed=1)])
        store.drop()
        assert store.count() == 0
    assert not store.exists()
    with store.session():
        store.upsert([point("b.py", "b", 0, seed=2)])
        assert store.count() == 1
    assert store.exists()


def test_nested_sessions_share_one_open_store(store: VectorStore) -> None:
    """An inner session must neither close the outer one's store nor open a second copy."""
    with store.session():
        with store.session():
            store.upsert([point("a.py", "b", 0, seed=1)])
        assert store.count() == 1
        store.upsert([point("b.py", "b", 0, seed=2)])
        assert store.count() == 2
    with store.session():
        assert store.count() == 2


def test_embedded_store_persists_and_admits_one_session_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "qdrant" / "demo"
    first = EmbeddedStore(path, "demo", lock_timeout=1.0)
    with first.session():
        first.upsert([point("a.py", "b", i, seed=i) for i in range(3)])
        # Another opener (another process, in real life) waits for the lock, then gives up.
        other = EmbeddedStore(path, "demo", lock_timeout=0.2)
        with pytest.raises(LockedError, match="busy"), other.session():
            pass
    reopened = EmbeddedStore(path, "demo", lock_timeout=1.0)
    with reopened.session():
        assert reopened.count() == 3
        assert reopened.vectors_for(["h-2"])["h-2"] == pytest.approx(unit(2), abs=1e-5)


def _in_another_process(path: Path, code: str, timeout: float = 60) -> dict[str, object]:
    """Run `code` with `store` (an EmbeddedStore of `path`, lock timeout 20 s) in a fresh
    interpreter; it sets `out`, which comes back."""
    script = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "from gitindex.store.embedded import EmbeddedStore\n"
        f"store = EmbeddedStore(Path({str(path)!r}), 'demo', lock_timeout=20.0)\n"
        "out = {}\n"
        f"{code}\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


_READ = (
    "started = time.monotonic()\n"
    "with store.session():\n"
    "    out['waited'] = time.monotonic() - started\n"
    "    out['count'] = store.count()\n"
)


def test_a_writer_keeps_the_shard_open_until_a_reader_waits(tmp_path: Path) -> None:
    path = tmp_path / "qdrant" / "demo"
    writer = EmbeddedStore(path, "demo", lock_timeout=5.0)
    try:
        with writer.session(write=True):
            writer.upsert([point("a.py", "b", i, seed=i) for i in range(3)])
        # Between batches the shard stays open (and locked)...
        assert writer._kept and writer._shard is not None
        # ...but a reader in another process gets in, without waiting for the next batch.
        got = _in_another_process(path, _READ)
        assert got["count"] == 3 and float(got["waited"]) < 5.0, got  # type: ignore[arg-type]
        # The next batch opens the shard again and keeps it.
        with writer.session(write=True):
            writer.upsert([point("b.py", "b", 0, seed=9)])
            assert writer.count() == 4
        with writer.session():  # a read in the writer's own process reuses the open shard
            assert writer.count() == 4
    finally:
        writer.close()
    # close() flushed, closed and let go: anyone gets in at once.
    other = EmbeddedStore(path, "demo", lock_timeout=0.3)
    with other.session(write=True):
        assert other.count() == 4
    other.close()


def test_a_resident_reader_keeps_the_shard_and_hands_it_to_whoever_waits(tmp_path: Path) -> None:
    """`gitindex mcp` keeps its shard open between searches (keep_reads); a writer or a reader
    in another process gets it well within its lock timeout, and the resident's next read sees
    what the writer wrote."""
    path = tmp_path / "qdrant" / "demo"
    first = EmbeddedStore(path, "demo", lock_timeout=5.0)
    with first.session(write=True):
        first.upsert([point("a.py", "b", i, seed=i) for i in range(3)])
    first.close()
    resident = EmbeddedStore(path, "demo", lock_timeout=20.0)
    resident.keep_reads = True
    try:
        with resident.session():
            assert resident.count() == 3
        assert resident._kept and resident._shard is not None  # still open, lock held
        wrote = _in_another_process(path, (
            "started = time.monotonic()\n"
            "with store.session(write=True):\n"
            "    out['waited'] = time.monotonic() - started\n"
            "    from gitindex.store import DENSE, PointData, point_id\n"
            f"    store.upsert([PointData(point_id('c.py', 'b', 0), {{DENSE: [0.5] * {len(unit(1))}}}, {{'path': 'c.py'}})])\n"
            "store.close()\n"))
        assert float(wrote["waited"]) < 5.0, wrote  # type: ignore[arg-type]
        with resident.session():  # opened again: the writer's point is there
            assert resident.count() == 4
        assert resident._kept
        got = _in_another_process(path, _READ)
        assert got["count"] == 4 and float(got["waited"]) < 5.0, got  # type: ignore[arg-type]
    finally:
        resident.close()


def test_a_reader_waiting_during_a_write_session_goes_next(tmp_path: Path) -> None:
    path = tmp_path / "qdrant" / "demo"
    writer = EmbeddedStore(path, "demo", lock_timeout=5.0)
    with writer.session(write=True):
        writer.upsert([point("a.py", "b", 0, seed=1)])
    try:
        with writer.session(write=True):
            readers = path.parent / "demo.readers"
            script = (
                "import json, time\nfrom pathlib import Path\n"
                "from gitindex.store.embedded import EmbeddedStore\n"
                f"store = EmbeddedStore(Path({str(path)!r}), 'demo', lock_timeout=20.0)\n"
                "with store.session():\n    print(json.dumps({'count': store.count()}))\n"
            )
            proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 30
            while not readers.exists() and time.monotonic() < deadline:
                time.sleep(0.02)  # the reader is waiting now
            writer.upsert([point("a.py", "b", 1, seed=2)])
        out, _ = proc.communicate(timeout=30)  # the session's end let it in
        assert json.loads(out) == {"count": 2}
        # The reader is done: the writer's next session takes the shard back.
        with writer.session(write=True):
            assert writer.count() == 2
    finally:
        writer.close()


def test_a_killed_writer_loses_no_acknowledged_batch(tmp_path: Path) -> None:
    """A kept-open shard is flushed only now and then: what update() acknowledged is in its
    WAL, which the next open replays, so the manifest may record a batch once its session ends."""
    path = tmp_path / "qdrant" / "demo"
    script = (
        "import os, signal\n"
        "from pathlib import Path\n"
        "from gitindex.store import PointData\n"
        "from gitindex.store.embedded import EmbeddedStore\n"
        f"store = EmbeddedStore(Path({str(path)!r}), 'demo', lock_timeout=20.0)\n"
        "for b in range(5):\n"
        "    with store.session(write=True):\n"
        "        store.upsert([PointData(f'00000000-0000-0000-0000-0000000{b}{i:04d}', {'dense': [1.0] * 8},\n"
        "                                {'path': f'f{b}.py', 'blob': 'b', 'hash': f'h{b}-{i}'}) for i in range(10)])\n"
        "        if b == 4:\n"
        "            store.delete_path('f0.py')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == -9, done.stderr
    store = EmbeddedStore(path, "demo", lock_timeout=5.0)
    with store.session():
        assert store.count() == 40
        assert "f0.py" not in ids_by_path(store)


def write_in_sessions(store: EmbeddedStore, points: list[PointData], start: int, end: int) -> None:
    """Upsert points[start:end] 50 at a time, one write session each, as sync's batches do."""
    for i in range(start, end, 50):
        with store.session(write=True):
            store.upsert(points[i : min(i + 50, end)])


def test_full_appendable_segments_become_mapped_segments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded_module, "_SEGMENT_BYTES", 100 * DIM * 4)  # 100 points a segment
    monkeypatch.setattr(embedded_module, "_UPSERT_PAGE", 16)  # each upsert of 50 sent in 4 pages
    path = tmp_path / "qdrant" / "demo"
    store = EmbeddedStore(path, "demo", lock_timeout=5.0)
    points = [point(f"f{i // 10}.py", "b", i % 10, seed=i) for i in range(450)]
    try:
        write_in_sessions(store, points, 0, 450)
        assert store._shard is not None
        info = store._shard.info()
        assert info.segments_count >= 4  # four converted, one appendable
        assert info.points_count - info.indexed_vectors_count < 100
        with store.session(write=True):
            store.delete_path("f3.py")
            assert store.count() == 440
            assert store.query(Query(vector=unit(123), limit=1))[0].payload["path"] == "f12.py"
            assert store.vectors_for(["h-5"])["h-5"] == pytest.approx(unit(5), abs=1e-5)
    finally:
        store.close()
    config = json.loads((path / "edge_config.json").read_text())
    assert config["vectors"]["dense"]["memory"] == "cold" and config["payload_memory"] == "cold"


def test_mapped_segments_are_searched_by_graph_and_old_shards_get_graphs(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded_module, "_SEGMENT_BYTES", 100 * DIM * 4)  # 100 points a segment
    monkeypatch.setattr(embedded_module, "_FULL_SCAN_KB", 1)  # every mapped segment searched by its graph
    monkeypatch.setattr(embedded_module, "_HNSW_M", 0)  # first, as gitindex made shards before graphs
    path = tmp_path / "qdrant" / "demo"
    store = EmbeddedStore(path, "demo", lock_timeout=5.0)
    points = [point(f"f{i // 10}.py", "b", i % 10, seed=i) for i in range(450)]
    try:
        write_in_sessions(store, points, 0, 450)
    finally:
        store.close()
    assert json.loads((path / "edge_config.json").read_text())["hnsw_config"]["m"] == 0
    monkeypatch.setattr(embedded_module, "_HNSW_M", 16)
    store = EmbeddedStore(path, "demo", lock_timeout=5.0)
    with store.session(write=True):  # a writer's open settles the shard: graphs for the mapped segments
        assert store._shard is not None and store._shard.info().segments_count >= 4
    store.close()
    assert json.loads((path / "edge_config.json").read_text())["hnsw_config"]["m"] == 16
    with store.session():  # graph search finds each point's own vector first (8 dimensions, 450 points)
        found = [store.query(Query(vector=unit(i), limit=1))[0].payload["hash"] for i in range(0, 450, 7)]
        assert found == [f"h-{i}" for i in range(0, 450, 7)]


def test_a_shard_made_with_the_old_settings_is_moved_to_disk(tmp_path: Path) -> None:
    from qdrant_edge import Distance, EdgeConfig, EdgeShard, EdgeVectorParams, PayloadSchemaType, UpdateOperation

    from gitindex.store import INDEXED_FIELDS

    path = tmp_path / "qdrant" / "demo"
    old = EdgeShard.create(str(path), EdgeConfig(vectors={"dense": EdgeVectorParams(size=DIM, distance=Distance.Cosine)}))
    for name in INDEXED_FIELDS:
        old.update(UpdateOperation.create_field_index(name, PayloadSchemaType.Keyword))
    old.close()
    store = EmbeddedStore(path, "demo", lock_timeout=5.0)
    with store.session():  # a reader opens it as it is (layout 2: no lexical vector)
        store.upsert([p._replace(vectors={DENSE: p.vectors[DENSE]}) for p in (point("a.py", "b", i, seed=i) for i in range(3))])
    with store.session(write=True):
        assert store.count() == 3
        assert store._shard is not None
        schema = store._shard.info().payload_schema
        assert all(getattr(schema[name].params, "memory", None) is not None for name in INDEXED_FIELDS)
    store.close()
    config = json.loads((path / "edge_config.json").read_text())
    assert config["vectors"]["dense"]["memory"] == "cold"
    with store.session():
        assert ids_by_path(store) == {"a.py": {point("a.py", "b", i).id for i in range(3)}}


def test_unreachable_server_is_a_store_error_not_a_bug() -> None:
    store = RemoteStore.connect("http://127.0.0.1:9", "not-a-real-key", "demo", budget=0.5, timeout=0.5)
    with pytest.raises(StoreError, match=r"127\.0\.0\.1:9") as info:
        store.exists()  # asked outside a session by sync, search, status and verify
    assert "not-a-real-key" not in str(info.value)
    with pytest.raises(StoreError), store.session():
        store.count()


def test_full_sync_into_the_server_adapter(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({"app.py": python_source("app"), "lib.py": python_source("lib"), "README.md": "# Demo\n\nParses files.\n"})
    ix = open_index(repo.path, embedder)
    server = RemoteStore(QdrantClient(location=":memory:"), "demo", "memory")
    ix.workspace.__dict__["store"] = server  # the server adapter, on qdrant-client's local mode
    try:
        first = ix.sync()
        assert first.added == 3 and first.embedded == len(embedder.texts) > 0
        assert ix.verify().ok

        # Without the local vector cache, a rename takes its vectors back from the server.
        for name in ix.workspace.cache_dir.iterdir():
            if name.name.startswith("vectors.sqlite"):
                name.unlink()
        embedder.reset()
        repo.git("mv", "lib.py", "library.py")
        repo.commit({"app.py": python_source("app") + "\n\ndef extra():\n    return 'new text'\n"})
        second = ix.sync()
        assert second.renamed == 1 and second.modified == 1
        assert second.embedded == len(embedder.texts) == 1, embedder.texts
        result = ix.verify()
        assert result.ok and result.expected == server.count()
        with server.session():
            assert "lib.py" not in ids_by_path(server)
    finally:
        ix.close()


@pytest.fixture(params=STORES)
def two_repos(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[VectorStore, VectorStore]]:
    """Two repositories' views of one collection."""
    stores: list[VectorStore] = []
    client = QdrantClient(location=":memory:")
    shared = f"gitindex-test-{uuid.uuid4().hex[:8]}"
    for key in ("github.com/acme/one", "github.com/acme/two"):
        store: VectorStore
        if request.param == "embedded":
            store = EmbeddedStore(tmp_path / "qdrant" / "shared", "shared", lock_timeout=5.0)
        elif request.param == "remote":
            store = RemoteStore(client, "shared", "memory")
        else:
            store = RemoteStore.connect(str(LIVE), os.environ.get("QDRANT_API_KEY"), shared)
        store.repo = key
        stores.append(store)
    yield stores[0], stores[1]
    for store in stores:
        store.close()
    if request.param == "live":
        for store in stores:
            store.drop()


def repo_point(store: VectorStore, path: str, blob: str, i: int, seed: int) -> PointData:
    p = point(path, blob, i, seed=seed)
    return PointData(point_id(path, blob, i, store.repo), p.vectors, {**p.payload, "repo": store.repo})


def test_two_repositories_in_one_collection_never_touch_each_other(two_repos: tuple[VectorStore, VectorStore]) -> None:
    one, two = two_repos
    for store, seed in ((one, 1), (two, 2)):  # the same path and blob in both (a fork, a vendored file)
        with store.session(write=True):
            store.upsert([repo_point(store, "README.md", "b1", i, seed * 10 + i) for i in range(3)])
            store.upsert([repo_point(store, f"{store.repo[-3:]}.py", "b2", 0, seed * 10 + 5)])
        store.close()  # (an embedded writer keeps its shard open until then)
    with one.session(write=True):
        assert one.count() == 4 and set(ids_by_path(one)) == {"README.md", "one.py"}
        one.delete_path("README.md")  # only repository one's README goes
        assert set(ids_by_path(one)) == {"one.py"}
        hits = one.query(Query(vector=unit(21), limit=10))  # two's README point 1 is nearest: not one's to see
        assert {h.payload["repo"] for h in hits} == {"github.com/acme/one"}
        assert one.vectors_for(["h-21"])  # vectors are shared by text: another repository's serve too
    one.close()
    with two.session(write=True):
        assert two.count() == 4 and set(ids_by_path(two)) == {"README.md", "two.py"}
        assert two.query(Query(vector=unit(21), limit=1))[0].payload["path"] == "README.md"
        two.drop()  # a rebuild of one repository leaves the other's points
    two.close()
    with one.session():
        assert one.count() == 1 and set(ids_by_path(one)) == {"one.py"}
    with two.session():
        assert two.count() == 0


def test_word_weights_are_each_repository_s_own(two_repos: tuple[VectorStore, VectorStore]) -> None:
    one, two = two_repos

    def worded_in(store: VectorStore, path: str, text: str, seed: int) -> PointData:
        p = worded(path, text, seed)
        return PointData(point_id(path, "b", 0, store.repo), p.vectors, {**p.payload, "repo": store.repo})

    def score(store: VectorStore) -> float:
        with store.session():
            hits = store.query(Query(sparse=lexical.query("retry backoff"), mode="lexical", limit=1))
        store.close()
        return hits[0].score

    with one.session(write=True):
        one.upsert([worded_in(one, "net/retry.py", "retry with backoff", 1),
                    worded_in(one, "docs/a.md", "nothing of interest here", 2)])
    one.close()
    alone = score(one)
    with two.session(write=True):  # another repository where "retry" is in every document
        two.upsert([worded_in(two, f"r{i}.py", f"retry number {i}", 10 + i) for i in range(20)])
    two.close()
    assert score(one) == pytest.approx(alone)  # IDF counts repository one's points only


def test_two_repositories_sync_verify_and_adopt_in_one_server_collection(
        tmp_path: Path, embedder: CountingEmbedder) -> None:
    client = QdrantClient(location=":memory:")
    repos, indexes = [], []
    for name in ("one", "two"):
        repo = GitRepo(tmp_path / name)
        repo.git("remote", "add", "origin", f"git@github.com:acme/{name}.git")
        repo.commit({"README.md": "# Shared\n\nThe same text in both repositories.\n", f"{name}.py": python_source(name)})
        ix = open_index(repo.path, embedder)
        assert ix.workspace.repo_key == f"github.com/acme/{name}"
        server = RemoteStore(client, "team", "memory")
        server.repo = ix.workspace.repo_key
        ix.workspace.__dict__["store"] = server
        repos.append(repo)
        indexes.append(ix)
    try:
        for ix in indexes:
            ix.sync()
        repos[0].git("rm", "-q", "README.md")
        repos[0].commit(message="drop the readme")
        assert indexes[0].sync().deleted == 1
        for ix in indexes:
            assert ix.verify().ok  # each sees exactly its own tree, the other's points untouched
        assert indexes[1].search("the same text in both repositories", limit=1)[0].path == "README.md"
        assert indexes[0].search("the same text in both repositories", limit=1)[0].path != "README.md"
        # A fresh runner of repository two (no manifest) adopts two's points only.
        for name in indexes[1].workspace.data_dir.iterdir():
            if name.name.startswith("manifest"):
                name.unlink()
        indexes[1].workspace.__dict__.pop("manifest", None)
        embedder.reset()
        again = indexes[1].sync()
        assert any("adopted 2 indexed files" in note for note in again.notes), again.notes
        assert again.embedded == 0 and indexes[1].verify().ok
    finally:
        for ix in indexes:
            ix.close()


def test_n_shards_together_equal_one_sync_point_for_point(tmp_path: Path, embedder: CountingEmbedder) -> None:
    origin = GitRepo(tmp_path / "origin")
    origin.commit({f"pkg/m{i}.py": python_source(f"m{i}", functions=1) for i in range(7)} | {"README.md": "# Demo\n"})
    client = QdrantClient(location=":memory:")

    def job(name: str, collection: str, shard: str | None) -> gitindex.Index:
        """A CI job: a fresh clone, no manifest, the team's collection."""
        clone = tmp_path / name
        if clone.exists():
            shutil.rmtree(clone)
        git(tmp_path, "clone", "-q", str(origin.path), name)
        ix = open_index(clone, embedder)
        server = RemoteStore(client, collection, "memory")
        server.repo = ix.workspace.repo_key
        ix.workspace.__dict__["store"] = server
        ix.sync(shard=shard)
        return ix

    def points(collection: str) -> set[str]:
        return {pid for pid, _ in RemoteStore(client, collection, "memory").scroll()}

    for round_ in range(2):
        for k in (1, 2, 3):
            job(f"shard{k}", "sharded", f"{k}/3").close()
        job("single", "single", None).close()
        assert points("sharded") == points("single") and points("single")
        checker = job("check", "sharded", "1/1")  # every path is in shard 1 of 1
        assert checker.verify().ok
        checker.close()
        if round_ == 0:  # renames (across shards too), a deletion and an addition, then again
            origin.git("mv", "pkg/m1.py", "pkg/renamed1.py")
            (origin.path / "lib").mkdir()
            origin.git("mv", "pkg/m2.py", "lib/m2.py")
            origin.git("rm", "-q", "pkg/m3.py")
            origin.commit({"pkg/new.py": python_source("new")})
    with pytest.raises(gitindex.errors.ConfigError, match="bad shard"):
        open_index(origin.path, embedder).sync(shard="4/3")


def test_a_server_rebuild_is_blue_green_and_resumes(repo: GitRepo, embedder: CountingEmbedder) -> None:
    repo.commit({f"m{i}.py": python_source(f"m{i}") for i in range(4)})
    client = QdrantClient(location=":memory:")

    def index(**settings: object) -> gitindex.Index:
        ix = open_index(repo.path, embedder, **settings)
        server = RemoteStore(client, "team", "memory")
        server.repo = ix.workspace.repo_key
        ix.workspace.__dict__["store"] = server
        return ix

    def behind() -> str:
        (alias,) = [a for a in client.get_aliases().aliases if a.alias_name == "team"]
        return alias.collection_name

    with index() as ix:
        full = ix.sync()
    first = behind()  # searchers reach the collection through an alias from the start
    assert first != "team" and client.count("team").count == full.embedded

    with index(max_files=1) as ix:  # a rebuild cut short: searchers still see the whole old index
        cut = ix.sync(rebuild=True)
        assert not cut.complete and any("rebuilding into" in note for note in cut.notes)
    assert behind() == first and client.count("team").count == full.embedded
    with index() as reader:
        assert len(reader.search("handle m3 case 1", limit=20)) >= 4

    with index(backend="onnx", max_files=1) as ix:  # a rebuild with another model, cut short
        assert not ix.sync(rebuild=True).complete
    with index() as reader:  # searchers reach the old collection: its model's queries still work
        assert len(reader.search("handle m3 case 1", limit=20)) >= 4
    with index(backend="onnx") as reader, pytest.raises(gitindex.errors.IndexMismatchError, match="under way"):
        reader.search("handle m3 case 1")  # the new model's queries would not match the old vectors

    with index(backend="onnx") as ix:  # the next sync resumes the rebuild, completes it, and switches
        done = ix.sync()
        assert done.complete and any("resuming the rebuild" in note for note in done.notes)
        assert ix.verify().ok
    assert behind() != first and not client.collection_exists(first)  # the old collection is gone
    assert client.count("team").count == full.embedded


def test_repository_key_is_the_origin_without_scheme_user_or_suffix() -> None:
    from gitindex.workspace import repository_key

    for url in ("https://github.com/psf/requests.git", "git@github.com:psf/requests.git",
                "ssh://git@github.com:22/psf/requests", "https://user:token@GitHub.com/psf/requests/"):
        assert repository_key(url, "dir") == "github.com/psf/requests", url
    assert repository_key(None, "my-project") == "my-project"


def test_a_smaller_buffer_scale_writes_segments_out_sooner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded_module, "_SEGMENT_BYTES", 400 * DIM * 4)  # 400 points a segment
    path = tmp_path / "qdrant" / "demo"
    store = EmbeddedStore(path, "demo", lock_timeout=5.0)
    points = [point(f"f{i // 10}.py", "b", i % 10, seed=i) for i in range(300)]
    try:
        write_in_sessions(store, points, 0, 150)
        assert store._shard is not None and store._shard.info().segments_count == 1  # 150 < 400
        store.set_buffer_scale(0.25)  # memory pressure: segments of 100 points
        write_in_sessions(store, points, 150, 300)
        info = store._shard.info()
        assert info.segments_count >= 2 and info.points_count - info.indexed_vectors_count < 100
        with store.session():
            assert store.count() == 300
            assert store.query(Query(vector=unit(250), limit=1))[0].payload["path"] == "f25.py"
    finally:
        store.close()


def test_closing_an_index_lets_others_open_its_store(repo: GitRepo) -> None:
    repo.commit({"a.py": "x = 1\n"})
    ix = open_index(repo.path)
    with ix.workspace.store.session(write=True):  # a library user writing: the shard stays open after
        ix.workspace.store.upsert([point("a.py", "b", 0)])
    path = ix.workspace.data_dir / "qdrant" / ix.workspace.collection
    ix.close()
    other = EmbeddedStore(path, ix.workspace.collection, lock_timeout=1.0)
    with other.session(write=True):  # a writer waits (a reader would be let in by the open one)
        assert other.count() == 1
    other.close()
