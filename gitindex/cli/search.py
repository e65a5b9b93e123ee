"""`gitindex search`: the chunks that best answer a query."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gitindex.cli.options import BackendOpt, CollOpt, DeviceOpt, JsonOpt, ModelOpt, UrlOpt, err, open_index
from gitindex.errors import GitindexError

if TYPE_CHECKING:
    from gitindex.api import Index
    from gitindex.search import Hit

SNIPPET_LINES = 8  # lines shown of each hit: the window of the chunk where the query's words are densest
_WORD = re.compile(r"[A-Za-z0-9_]{2,}")


def search(
    query: Annotated[str, typer.Argument(help="What to look for: plain words, or an identifier or path.")],
    path: Annotated[Path, typer.Option("--repo", help="A directory inside the repository.")] = Path("."),
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="How many results.")] = 10,
    path_glob: Annotated[str | None, typer.Option("--path", help="Only paths matching this glob, e.g. 'src/**/*.py'.")] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="hybrid (meaning and words, the default), dense (meaning) or lexical (words, BM25).")] = None,
    lang: Annotated[str | None, typer.Option("--lang", help="Only chunks of this language: python, javascript, go...")] = None,
    symbol: Annotated[str | None, typer.Option("--symbol", help="Only chunks defining this name: send, Session.send.")] = None,
    files_only: Annotated[bool, typer.Option("--files-only", "-l", help="Print only the paths of the files hit, best first.")] = False,
    context: Annotated[int, typer.Option("--context", "-C", min=0, help="Show N more lines of the file around each snippet.")] = 0,
    refresh: Annotated[bool, typer.Option("--refresh", help="Sync first if the index lags HEAD.")] = False,
    ref: Annotated[str | None, typer.Option("--ref", help="Only chunks of this tracked ref's tree (default: the checked-out branch).")] = None,
    all_refs: Annotated[bool, typer.Option("--all-refs", help="Search every tracked ref; each hit says which refs hold it.")] = False,
    as_json: JsonOpt = False, model: ModelOpt = None, qdrant_url: UrlOpt = None,
    collection: CollOpt = None, device: DeviceOpt = None, backend: BackendOpt = None,
) -> None:
    """Find the chunks of code that best answer QUERY.

    Examples: gitindex search "where do we retry failed uploads" --path '*.py';
    gitindex search HTTPAdapter --lang python
    """
    if path_glob is not None or lang is not None or symbol is not None:
        from gitindex.search import check_filters

        check_filters(path_glob, lang, symbol)  # before anything is opened (search checks it again)
    with open_index(path, plain=True, model=model, qdrant_url=qdrant_url, collection=collection,
                    device=device, backend=backend) as index:
        fresh = index.freshness(ref) if index.is_git and not all_refs else None
        if fresh is not None and fresh.stale and refresh:
            index.sync(ref)
            fresh = index.freshness(ref)
        if fresh is not None and fresh.note:
            err(f"gitindex: {fresh.note}")
        if fresh is not None and fresh.stale:
            err(f"gitindex: {fresh.describe()}")
        hits = index.search(query, limit=limit, path=path_glob, mode=mode, lang=lang, symbol=symbol,
                            ref=ref, all_refs=all_refs)
        if files_only:
            _print_files(hits, as_json)
        elif as_json:
            typer.echo(json.dumps([h.to_json() for h in hits]))
        elif hits:
            _print_hits(index, hits, query, context, all_refs)
    if not hits and not as_json:
        err("gitindex: no results (is the repository indexed? run `gitindex sync`)")


def _print_files(hits: Sequence[Hit], as_json: bool) -> None:
    best: dict[str, float] = {}
    for hit in hits:
        best.setdefault(hit.path, hit.score)
    if as_json:
        typer.echo(json.dumps([{"path": p, "score": round(s, 4)} for p, s in best.items()]))
    else:
        from gitindex.repo import display_path

        for p in best:
            typer.echo(display_path(p))


def snippet(hit: Hit, query: str, lines: int = SNIPPET_LINES) -> tuple[int, int]:
    """The 1-based line range of the hit to show: `lines` lines where the query's words occur most."""
    text = hit.text.split("\n")
    if len(text) <= lines:
        return hit.start_line, hit.start_line + len(text) - 1
    words = {w.lower() for w in _WORD.findall(query)}
    marks = [sum(w in line.lower() for w in words) for line in text]
    best = max(range(len(text) - lines + 1), key=lambda i: (sum(marks[i:i + lines]), -i))
    return hit.start_line + best, hit.start_line + best + lines - 1


def _shown(index: Index, hit: Hit, query: str, context: int) -> tuple[int, list[str]]:
    """The first line number and the lines to show of a hit: its snippet, and `context` lines
    of the indexed file around it."""
    first, last = snippet(hit, query)
    code = hit.text.split("\n")[first - hit.start_line:last - hit.start_line + 1]
    if context:
        try:
            around = index.read(hit.path, max(1, first - context), last + context)
            return max(1, first - context), [line.rstrip("\r\n") for line in around]
        except GitindexError:  # the file is gone (a plain directory changed): the chunk alone
            pass
    return first, code


def _heading(hit: Hit, refs: bool = False) -> str:
    from gitindex.repo import display_path  # a path's bytes that are not UTF-8, as \xNN

    symbol = f"  {hit.symbol}" + (f" ({hit.kind})" if hit.kind else "") if hit.symbol else ""
    held = f"  in {', '.join(hit.refs)}" if refs and hit.refs else ""
    return f"{display_path(hit.path)}:{hit.start_line}-{hit.end_line}{symbol}  score {hit.score:.3f}{held}"


def _print_hits(index: Index, hits: Sequence[Hit], query: str, context: int, refs: bool = False) -> None:
    """path:start-end, symbol and score, then the snippet with line numbers: highlighted with
    rich on a terminal, plain text otherwise (a pipe needs no colours, nor their 0.1 s)."""
    if not (sys.stdout.isatty() or os.environ.get("FORCE_COLOR")):
        for n, hit in enumerate(hits):
            first, code = _shown(index, hit, query, context)
            width = len(str(first + len(code) - 1)) + 2
            lines = [_heading(hit, refs)] + [f"{first + i:>{width}} {line}" for i, line in enumerate(code)]
            typer.echo(("\n" if n else "") + "\n".join(lines) + _more(hit, len(code), context))
        return
    from rich.console import Console
    from rich.syntax import Syntax
    from rich.text import Text

    console = Console(highlight=False, soft_wrap=True)
    words = sorted({w for w in _WORD.findall(query)}, key=len, reverse=True)
    for n, hit in enumerate(hits):
        head = Text()
        head.append(_heading(hit).split("  ", 1)[0], style="bold cyan")
        if hit.symbol:
            head.append(f"  {hit.symbol}", style="bold")
            if hit.kind:
                head.append(f" ({hit.kind})", style="dim")
        head.append(f"  score {hit.score:.3f}", style="dim")
        if refs and hit.refs:
            head.append(f"  in {', '.join(hit.refs)}", style="yellow")
        if n:
            console.print()
        console.print(head)
        first, code = _shown(index, hit, query, context)
        syntax = Syntax("\n".join(code), hit.language or "text", line_numbers=True, start_line=first,
                        word_wrap=False, theme="ansi_dark", background_color="default")
        for row, line in enumerate(code, 1):  # the query's words, marked in the code
            low = line.lower()
            for word in words:
                at = low.find(word.lower())
                while at >= 0:
                    syntax.stylize_range("bold reverse", (row, at), (row, at + len(word)))
                    at = low.find(word.lower(), at + len(word))
        console.print(syntax)
        more = _more(hit, len(code), context)
        if more:
            console.print(Text(more.strip("\n"), style="dim"))


def _more(hit: Hit, shown: int, context: int) -> str:
    hidden = hit.end_line - hit.start_line + 1 - shown
    return f"\n    … {hidden} more line{'s' if hidden > 1 else ''} in this chunk" if hidden > 0 and not context else ""
