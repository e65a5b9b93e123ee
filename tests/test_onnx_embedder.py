"""The ONNX embedder: same vectors as sentence-transformers, no torch at run time, atomic export."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import MODEL_CACHE, python_source

from gitindex.embedding import ModelSpec, SentenceTransformerEmbedder, resolve_model
from gitindex.errors import ModelError

pytest.importorskip("onnxruntime")

from gitindex import embedding
from gitindex import onnx_embedder as oe

ROOT = Path(__file__).resolve().parent.parent


def sample_texts() -> list[str]:
    """Real code of several lengths: this repository's own sources, cut into pieces."""
    texts = [python_source(n, functions=2) for n in ("parse", "upload", "retry")]
    for path in sorted((ROOT / "gitindex").glob("*.py"))[:6]:
        lines = path.read_text().splitlines()
        texts += ["\n".join(lines[i : i + 30]) for i in range(0, min(len(lines), 150), 30)]
    texts += ["x", "def f():\n    return 1", "word " * 600]  # tiny, short, and past max_seq_length
    return [t for t in texts if t.strip()]


@pytest.fixture(scope="session")
def spec() -> ModelSpec:
    return resolve_model("all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def onnx_cache(spec: ModelSpec) -> Path:
    """Both backends exported once per session (through the child process, as in real use), into
    the session's model cache that the other tests use too."""
    for backend in oe.BACKENDS:
        oe.ensure_model(spec, backend, MODEL_CACHE)
    return MODEL_CACHE


@pytest.fixture(scope="session")
def reference(spec: ModelSpec) -> tuple[list[str], np.ndarray]:
    """sentence-transformers on torch: the vectors the ONNX backends must reproduce."""
    texts = sample_texts()
    return texts, SentenceTransformerEmbedder(spec).embed(texts)


def test_fp32_matches_sentence_transformers(spec: ModelSpec, onnx_cache: Path,
                                            reference: tuple[list[str], np.ndarray]) -> None:
    texts, ref = reference
    vectors = oe.OnnxEmbedder(spec, "onnx", cache_dir=onnx_cache).embed(texts)
    assert vectors.dtype == np.float32 and vectors.shape == ref.shape
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosine = (vectors * ref).sum(axis=1)
    assert cosine.min() > 0.9999, cosine.min()


def test_int8_stays_close(spec: ModelSpec, onnx_cache: Path, reference: tuple[list[str], np.ndarray]) -> None:
    texts, ref = reference
    embedder = oe.OnnxEmbedder(spec, "onnx-int8", cache_dir=onnx_cache)
    assert embedder.variant == "int8s"  # on every CPU
    cosine = (embedder.embed(texts) * ref).sum(axis=1)
    assert cosine.mean() >= 0.99 and cosine.min() >= 0.97, (cosine.mean(), cosine.min())


def _others() -> list[str]:
    """40 real code chunks of many lengths (this repository's sources) to put a text among."""
    texts: list[str] = []
    for path in sorted((ROOT / "gitindex").glob("*.py")):
        lines = path.read_text().splitlines()
        texts += ["\n".join(lines[i : i + 12 + 9 * (len(texts) % 4)]) for i in range(0, len(lines), 60)]
    return [t for t in texts if t.strip()][:40]


@pytest.mark.parametrize("backend", oe.BACKENDS)
def test_a_text_gets_one_vector_whatever_its_batch(spec: ModelSpec, onnx_cache: Path, backend: str) -> None:
    """Issue 11: a vector is a function of (model, text) alone: the same alone, among 40 other
    texts, in reversed order, padded to the longest text of the batch, on 1 or 2 threads."""
    texts = [python_source("upload", functions=1), "def f():\n    return 1", sample_texts()[-1]]
    others = _others()
    batch = [*others, *texts]

    def embedder(threads: int, batch_tokens: int = 512) -> oe.OnnxEmbedder:
        return oe.OnnxEmbedder(spec, backend, cache_dir=onnx_cache, threads=threads, batch_tokens=batch_tokens)

    one, two = embedder(1), embedder(2)
    alone = np.vstack([one.embed([t]) for t in texts])
    runs = {
        "alone, 2 threads": np.vstack([two.embed([t]) for t in texts]),
        "in a batch": one.embed(batch)[len(others):],
        "in a batch, 2 threads": two.embed(batch)[len(others):],
        "reversed": two.embed(batch[::-1])[len(texts) - 1 :: -1],
        # one call, every text padded to the longest: the attention mask must make padding moot
        "all padded": embedder(2, batch_tokens=1 << 20).embed(batch)[len(others):],
    }
    for name, vectors in runs.items():
        cosine = (alone * vectors).sum(axis=1)
        assert cosine.min() >= 0.99999, (name, cosine)


def test_order_is_kept_across_length_buckets(spec: ModelSpec, onnx_cache: Path) -> None:
    texts = sample_texts()
    embedder = oe.OnnxEmbedder(spec, "onnx", cache_dir=onnx_cache, batch_size=3)
    together = embedder.embed(texts)
    alone = np.vstack([embedder.embed([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-4)
    assert embedder.embed([]).shape == (0, embedder.dim)


def test_embedding_imports_no_torch(spec: ModelSpec, onnx_cache: Path) -> None:
    code = (
        "import sys\n"
        "from gitindex.embedding import resolve_model\n"
        "from gitindex.onnx_embedder import OnnxEmbedder\n"
        f"for backend in ('onnx', 'onnx-int8'):\n"
        f"    e = OnnxEmbedder(resolve_model('all-MiniLM-L6-v2'), backend, cache_dir={str(onnx_cache)!r})\n"
        "    assert e.embed(['def retry(upload):\\n    pass']).shape == (1, 384)\n"
        "heavy = sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_cache_layout(spec: ModelSpec, onnx_cache: Path) -> None:
    where = oe.model_cache_dir(spec, onnx_cache)
    assert where.parent == onnx_cache
    assert where.name.startswith("all-MiniLM-L6-v2-") and len(where.name.rsplit("-", 1)[1]) == 12
    meta = json.loads((where / "fp32" / oe.META_FILE).read_text())
    assert meta["pooling"] == "mean" and meta["max_seq_length"] == spec.max_seq_length == 256
    assert not [p for p in where.iterdir() if p.name.startswith(".") and p.is_dir()]  # no temp dirs left


def test_concurrent_exports_are_atomic(spec: ModelSpec, tmp_path: Path) -> None:
    """Two processes exporting into one fresh cache: both succeed, one complete model, no leftovers.
    A half-written directory from a killed export (no META_FILE) is replaced, never used."""
    root = oe.model_cache_dir(spec, tmp_path)
    (root / "fp32").mkdir(parents=True)
    (root / "fp32" / oe.MODEL_FILE).write_bytes(b"half a model")
    cmd = [sys.executable, "-m", "gitindex.onnx_embedder", "export", "--location", spec.location,
           "--model-id", spec.model_id, "--max-seq-length", str(spec.max_seq_length),
           "--root", str(root), "--variant", "fp32"]
    procs = [subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["fp32"]
    vectors = oe.OnnxEmbedder(spec, "onnx", cache_dir=tmp_path).embed(["def f():\n    return 1"])
    assert vectors.shape == (1, 384)


def test_unknown_backend(spec: ModelSpec) -> None:
    with pytest.raises(ModelError, match="onnx-int8"):
        oe.OnnxEmbedder(spec, "tensorrt")


def test_missing_model_says_what_to_do(tmp_path: Path) -> None:
    spec = ModelSpec("nowhere/no-such-model", "nowhere/no-such-model", 256)
    with pytest.raises(ModelError, match="local sentence-transformers directory"):
        oe.OnnxEmbedder(spec, "onnx", cache_dir=tmp_path).embed(["x"])


def _expected_int8_support() -> str | None:
    """What this machine must give, derived here from its architecture and the CPU flags the
    kernel lists on the `flags` lines of /proc/cpuinfo (x86: VNNI, or else AVX2, or nothing)."""
    machine = platform.machine().lower()
    if machine in {"arm64", "aarch64"}:
        return "arm"  # NEON is part of every 64-bit ARM CPU
    if machine not in {"x86_64", "amd64"}:
        return None
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "avx2"  # not Linux: every x86-64 CPU onnxruntime supports has at least AVX2
    flags: set[str] = set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            flags.update(value.split())
    assert flags, "no CPU flags in /proc/cpuinfo"
    if flags & {"avx512_vnni", "avx_vnni", "amx_int8"}:
        return "vnni"
    return "avx2" if "avx2" in flags else None


def test_int8_support_is_the_one_this_cpu_has() -> None:
    assert embedding.int8_support() == _expected_int8_support()  # reported by benchmarks.run


@pytest.mark.parametrize("cpu", ["vnni", "avx2", "arm", None])
def test_model_key_names_model_and_precision_never_the_cpu(spec: ModelSpec, cpu: str | None,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11: indexes built on CPUs with and without VNNI must accept each other."""
    monkeypatch.setattr(embedding, "int8_support", lambda: cpu)  # as if on another CPU
    assert embedding.model_key(spec, "onnx-int8") == "all-MiniLM-L6-v2#int8s"
    assert embedding.model_key(spec, "onnx") == embedding.model_key(spec, "torch") == "all-MiniLM-L6-v2"
    assert embedding.variant("onnx-int8") == "int8s" and embedding.variant("onnx") == "fp32"


def test_int8_export_is_deterministic(spec: ModelSpec, onnx_cache: Path, tmp_path: Path) -> None:
    """The int8 model is made from fixed calibration texts, its ranges rounded: building it
    again gives the same file, as every machine should."""
    root = oe.model_cache_dir(spec, onnx_cache)
    oe._quantize_static(root / "fp32", tmp_path)
    assert (tmp_path / oe.MODEL_FILE).read_bytes() == (root / "int8s" / oe.MODEL_FILE).read_bytes()
    meta = json.loads((tmp_path / oe.META_FILE).read_text())
    assert meta["variant"] == "int8s" and len(meta["calibration"]) == 24  # 4 MatMul inputs a layer


def test_calibration_ranges_round_outward() -> None:
    assert [oe._round_up(x) for x in (0.0, -1.0, 0.1234, 1.0, 1.01, 9.91, 12.3456, 987.0)] == \
        [0.0, 0.0, 0.13, 1.0, 1.1, 10.0, 13.0, 990.0]
