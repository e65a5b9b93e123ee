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
    import gitindex
    from gitindex.examine import examine
    from gitindex.source import GitSource

    ws = gitindex.open(repo_path).workspace  # nothing of it is opened: no index is made
    assert ws.repo is not None
    source = GitSource(ws.repo, ws.repo.resolve(rev), baseline=None)
    counter, budget = ws.spec.token_counter(), ws.spec.budget
    out = TreeChunks()
    for entry in source.entries():
        reason, chunks = examine(source, ws.selector, entry, counter, budget)
        if reason is not None:
            continue
        out.paths.append(entry.path)
        out.chunks += len(chunks)
        for c in chunks:
            out.hashes.add(c.hash)
            if keep_texts:
                out.texts[c.hash] = c.text
    return out
