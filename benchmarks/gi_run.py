"""Run the gitindex CLI in this process with a chosen embedder, timing its phases (benchmarks only).

    python -m benchmarks.gi_run [--backend torch|onnx|onnx-int8|fake] [--phases FILE] -- sync --json

A real backend is chosen as users choose it (GITINDEX_BACKEND); `fake` swaps in a cheap embedder
for the memory scenario (6), where the model's cost is not what is measured. With --phases, it writes its start-up time (interpreter to CLI ready) and, for engines
whose `sync --json` has no "phases" of its own, timers wrapped around the engine's calls that add
up exclusive time per phase (git, read+chunk, embed, model load, store, cache, manifest).
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402 - T0 first
import inspect  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402


class Phases:
    """Exclusive wall time per phase: a call inside another timed call counts only once. Each
    thread keeps its own stack; phases on different threads overlap and may add up past wall."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._local = threading.local()
        self._lock = threading.Lock()

    @property
    def stack(self) -> list[list[Any]]:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        stack: list[list[Any]] = self._local.stack
        return stack

    def _enter(self, phase: str) -> None:
        self.stack.append([phase, time.perf_counter(), 0.0])

    def _exit(self) -> None:
        phase, start, inner = self.stack.pop()
        elapsed = time.perf_counter() - start
        with self._lock:
            self.seconds[phase] += elapsed - inner
            self.calls[phase] += 1
        if self.stack:
            self.stack[-1][2] += elapsed

    def wrap(self, owner: Any, name: str, phase: str, context: bool = False) -> None:
        """Time owner.name; with `context`, it returns a context manager whose enter and exit
        are timed too."""
        fn = getattr(owner, name, None)
        if fn is None or getattr(fn, "_bench_wrapped", False):
            return
        phases = self
        if inspect.isgeneratorfunction(fn):
            def gen_wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
                it = fn(*args, **kwargs)
                while True:
                    phases._enter(phase)
                    try:
                        item = next(it)
                    except StopIteration:
                        return
                    finally:
                        phases._exit()
                    yield item
            wrapper: Callable[..., Any] = gen_wrapper
        else:
            def call_wrapper(*args: Any, **kwargs: Any) -> Any:
                phases._enter(phase)
                try:
                    result = fn(*args, **kwargs)
                finally:
                    phases._exit()
                if context:
                    return _TimedContext(result, phases, phase)
                return result
            wrapper = call_wrapper
        wrapper._bench_wrapped = True  # type: ignore[attr-defined]
        wrapper.__name__ = name
        setattr(owner, name, wrapper)

    def wrap_all(self, owner: Any, phase: str, names: list[str] | None = None) -> None:
        for name in names or [n for n in vars(owner) if not n.startswith("__") or n == "__init__"]:
            # (a static or class method would turn into a plain function taking self)
            if callable(getattr(owner, name, None)) and \
                    not isinstance(vars(owner).get(name), property | staticmethod | classmethod):
                self.wrap(owner, name, phase)


class _TimedContext:
    """A context manager whose enter and exit (opening and flushing the store) are timed."""

    def __init__(self, inner: Any, phases: Phases, phase: str) -> None:
        self.inner, self.phases, self.phase = inner, phases, phase

    def __enter__(self) -> Any:
        self.phases._enter(self.phase)
        try:
            return self.inner.__enter__()
        finally:
            self.phases._exit()

    def __exit__(self, *exc: Any) -> Any:
        self.phases._enter(self.phase)
        try:
            return self.inner.__exit__(*exc)
        finally:
            self.phases._exit()


def _instrument(phases: Phases) -> None:
    import gitindex.apply
    import gitindex.cache
    import gitindex.embedding
    import gitindex.manifest
    import gitindex.repo
    import gitindex.source
    import gitindex.store.embedded

    phases.wrap_all(gitindex.repo.Repo, "git")
    phases.wrap(gitindex.repo.Repo, "read", "read+chunk")
    phases.wrap(gitindex.apply, "examine", "read+chunk")
    phases.wrap(gitindex.source.DirectorySource, "read", "read+chunk", context=True)
    phases.wrap(gitindex.store.embedded.EmbeddedStore, "session", "store", context=True)
    phases.wrap_all(gitindex.store.embedded.EmbeddedStore, "store")
    phases.wrap_all(gitindex.cache.VectorCache, "cache")
    phases.wrap_all(gitindex.manifest.Manifest, "manifest")
    phases.wrap(gitindex.embedding.SentenceTransformerEmbedder, "_load", "model load")
    phases.wrap(gitindex.embedding.SentenceTransformerEmbedder, "embed", "embed")


def _embedder_factory(backend: str, onnx_cache: Path | None, phases: Phases | None) -> Callable[..., Any]:
    """A stand-in for gitindex.embedding.make_embedder that builds the cheap fake embedder."""
    from benchmarks.fake_embedder import FakeEmbedder

    if phases is not None:
        phases.wrap(FakeEmbedder, "embed", "embed")

    def make(spec: Any, *args: Any, **kwargs: Any) -> Any:
        return FakeEmbedder(spec.model_id)

    return make


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gi_run", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="torch", choices=("torch", "onnx", "onnx-int8", "fake"))
    parser.add_argument("--onnx-cache", type=Path, help="ONNX export cache (default: gitindex's)")
    parser.add_argument("--phases", type=Path, help="write phase timings (JSON) here")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="-- then the gitindex command line")
    ns = parser.parse_args(argv)
    args = ns.args[1:] if ns.args[:1] == ["--"] else ns.args

    phases = Phases() if ns.phases else None
    if ns.backend == "fake":  # memory scenario only: the engine without the model's cost
        import gitindex.workspace

        gitindex.workspace.make_embedder = _embedder_factory("fake", None, phases)  # type: ignore[assignment]
    else:  # a real backend, chosen the way users choose it
        os.environ["GITINDEX_BACKEND"] = ns.backend
        if ns.onnx_cache is not None:
            os.environ["GITINDEX_MODEL_CACHE"] = str(ns.onnx_cache)
    import gitindex.cli
    t_ready = time.perf_counter()
    if phases is not None:
        _instrument(phases)
    sys.argv = ["gitindex", *args]
    code = 0
    try:
        gitindex.cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        if phases is not None and ns.phases is not None:
            end = time.perf_counter()
            ns.phases.write_text(json.dumps({
                "startup_s": t_ready - T0,  # imports, measured from this module's first line
                "run_s": end - t_ready,
                "phases_s": dict(phases.seconds),
                "calls": dict(phases.calls),
            }))
    return code


if __name__ == "__main__":
    sys.exit(main())
