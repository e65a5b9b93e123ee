"""The chunks gitindex would index in a tree, by its own selection and chunker: the lower bound."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TreeChunks:
    paths: list[str] = field(default_factory=list)  # the files gitindex selects
    hashes: set[str] = field(default_factory=set)  # distinct chunk texts (xxhash)
    chunks: int = 0  # chunks in all, duplicates counted
    texts: dict[str, str] = field(default_factory=dict)  # hash -> text, when asked for


def tree_chunks(repo_path: Path, rev: str = "HEAD", *, keep_texts: bool = False) -> TreeChunks:
    """Walk `rev`'s tree as a first sync would: skip what gitindex skips, chunk the rest."""
    from gitindex.config import Config
    from gitindex.index import Index, locate

    try:
        from gitindex.examine import examine
    except ImportError:  # before the engine split it out of sync.py
        from gitindex.sync import examine  # type: ignore[attr-defined,no-redef]

    repo, root = locate(repo_path)
    assert repo is not None
    ix = Index(repo, root, Config())
    target = repo.resolve(rev)
    counter = ix.spec.token_counter()
    out = TreeChunks()
    for entry in repo.walk(target.tree):
        reason, chunks = examine(ix, target, entry, counter)
        if reason is not None:
            continue
        out.paths.append(entry.path)
        out.chunks += len(chunks)
        for c in chunks:
            out.hashes.add(c.hash)
            if keep_texts:
                out.texts[c.hash] = c.text
    return out
