"""The peer: LangChain's indexing API over a working tree, one process per run like one `gitindex sync`.

Runs in its own venv (benchmarks/peers/requirements.txt; benchmarks/run.py creates it). A run
reads the listed files, splits them with RecursiveCharacterTextSplitter (from_language for the
languages LangChain knows), and calls, as LangChain documents for incremental indexing:

    index(docs, SQLRecordManager(sqlite file), QdrantVectorStore(qdrant-client local path mode),
          cleanup="incremental", source_id_key="source"[, batch_size=N])

The embeddings are HuggingFaceEmbeddings (sentence-transformers) over the same model directory
gitindex uses, wrapped only to count and time what index() asks it to embed. Prints one JSON object.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402 - T0 first: start-up is part of what is measured
import hashlib  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

COLLECTION = "gitindex-bench"
DIM = 384
_LANGUAGES = {".py": "PYTHON", ".pyi": "PYTHON", ".js": "JS", ".ts": "TS", ".md": "MARKDOWN",
              ".rst": "RST", ".html": "HTML", ".go": "GO", ".rs": "RUST", ".java": "JAVA",
              ".c": "C", ".h": "C", ".cpp": "CPP", ".rb": "RUBY", ".php": "PHP"}


def _files(repo: Path, listing: Path | None) -> list[str]:
    if listing is not None:
        return [line for line in listing.read_text().splitlines() if line]
    out = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True)
    return sorted(p for p in out.stdout.decode().split("\0") if p)


def _splitters(chunk_size: int) -> tuple[dict[str, Any], Any]:
    from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

    by_suffix = {s: RecursiveCharacterTextSplitter.from_language(Language[name], chunk_size=chunk_size, chunk_overlap=0)
                 for s, name in _LANGUAGES.items()}
    return by_suffix, RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=0)


def _documents(repo: Path, paths: list[str], chunk_size: int) -> list[Any]:
    by_suffix, default = _splitters(chunk_size)
    docs: list[Any] = []
    for path in paths:
        try:
            data = (repo / path).read_bytes()
        except OSError:
            continue
        if b"\0" in data[:8000]:
            continue
        splitter = by_suffix.get(Path(path).suffix.lower(), default)
        docs += splitter.create_documents([data.decode("utf-8", errors="replace")], metadatas=[{"source": path}])
    return docs


class _FakeEmbeddings:
    """Deterministic cheap vectors, for runs that measure everything but the model."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
            rows.append((v / np.linalg.norm(v)).tolist())
        return rows

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="langchain_peer", description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help="the working tree to index")
    parser.add_argument("--state", type=Path, required=True, help="record manager and Qdrant files")
    parser.add_argument("--model", required=True, help="sentence-transformers model directory")
    parser.add_argument("--files", type=Path, help="paths to index, one a line (default: git ls-files)")
    parser.add_argument("--batch-size", type=int, help="index() batch_size (default: LangChain's own, 100)")
    parser.add_argument("--chunk-size", type=int, default=800, help="splitter chunk size in characters")
    parser.add_argument("--fake-embeddings", action="store_true", help="cheap vectors (memory/no-op runs only)")
    parser.add_argument("--keys-out", type=Path, help="write one key (source + content hash) per document")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="Using SHA-1")  # index()'s default key_encoder, kept

    from langchain_core.embeddings import Embeddings
    from langchain_qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient, models

    try:
        from langchain.indexes import SQLRecordManager, index  # LangChain < 1.0
    except ImportError:
        from langchain_classic.indexes import SQLRecordManager, index
    t_import = time.perf_counter()

    if args.fake_embeddings:
        inner: Any = _FakeEmbeddings()
    else:
        from langchain_huggingface import HuggingFaceEmbeddings

        inner = HuggingFaceEmbeddings(model_name=args.model, encode_kwargs={"normalize_embeddings": True})
    t_model = time.perf_counter()

    stats = {"embedded": 0, "embed_s": 0.0}

    class Counting(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            started = time.perf_counter()
            vectors: list[list[float]] = inner.embed_documents(texts)
            stats["embedded"] += len(texts)
            stats["embed_s"] += time.perf_counter() - started
            return vectors

        def embed_query(self, text: str) -> list[float]:
            return list(inner.embed_query(text))

    args.state.mkdir(parents=True, exist_ok=True)
    client = QdrantClient(path=str(args.state / "qdrant"))
    if not client.collection_exists(COLLECTION):
        client.create_collection(COLLECTION, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE))
    store = QdrantVectorStore(client=client, collection_name=COLLECTION, embedding=Counting())
    records = SQLRecordManager(f"qdrant/{COLLECTION}", db_url=f"sqlite:///{args.state / 'record_manager.sqlite'}")
    records.create_schema()
    t_open = time.perf_counter()

    docs = _documents(args.repo, _files(args.repo, args.files), args.chunk_size)
    t_split = time.perf_counter()
    extra = {"batch_size": args.batch_size} if args.batch_size else {}
    result = index(docs, records, store, cleanup="incremental", source_id_key="source", **extra)
    t_index = time.perf_counter()
    points = client.count(COLLECTION, exact=True).count
    client.close()
    if args.keys_out is not None:
        keys = sorted({hashlib.sha1(f"{d.metadata['source']}\0{d.page_content}".encode()).hexdigest() for d in docs})
        args.keys_out.write_text("\n".join(keys))
    print(json.dumps({
        "docs": len(docs), "points": points, "embedded": stats["embedded"],
        "result": {k: int(v) for k, v in dict(result).items()},
        "batch_size": args.batch_size or "default",
        "seconds": {"import": t_import - T0, "model_load": t_model - t_import, "open": t_open - t_model,
                    "read_split": t_split - t_open, "index": t_index - t_split, "embed": stats["embed_s"],
                    "total": time.perf_counter() - T0},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    sys.exit(main())
