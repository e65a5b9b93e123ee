"""`gitindex status`: what is indexed, how it compares with HEAD, where it is stored."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from gitindex.cli.options import CollOpt, JsonOpt, ModelOpt, PathArg, UrlOpt, open_index


def status(
    path: PathArg = Path("."), as_json: JsonOpt = False, qdrant_url: UrlOpt = None,
    collection: CollOpt = None, model: ModelOpt = None,
) -> None:
    """Show what is indexed, how it compares with HEAD, and where it is stored."""
    with open_index(path, plain=True, qdrant_url=qdrant_url, collection=collection, model=model) as index:
        info = index.status()
    if as_json:
        typer.echo(json.dumps(info))
        return
    synced = (info["synced_commit"] or "nothing")[:12]
    head = (info["head"] or "no commit")[:12]
    typer.echo(f"indexed:  {synced} (HEAD {head}); {info['files']} files, {info['points']} points")
    if info["pending_files"]:
        typer.echo(f"pending:  {info['pending_files']} files differ from HEAD: run `gitindex sync`")
    if len(info["refs"]) > 1 or (info["refs"] and info["refs"][0]["ref"] != info["ref"]):
        for ref in info["refs"]:
            state = {True: "fresh", False: "moved since: run `gitindex sync`", None: ""}[ref["fresh"]]
            if ref["origin"] == "store":
                state = "synced by another machine"
            mark = "*" if ref["ref"] == info["ref"] else " "
            shared = f" (on {ref['base']}'s points, {ref['own_files']} of its own)" if ref["base"] else ""
            typer.echo(f"ref:     {mark}{ref['ref']} at {(ref['commit'] or 'nothing')[:12]}, {ref['files']} files"
                       + shared + (f"; {state}" if state else ""))
    if info["switch"]:
        new = info["switch"]
        typer.echo(f"switch:   building {new['model']} (chunker {new['chunker']}) beside this index, which "
                   "searches use until it is complete: run `gitindex sync` to finish it")
    typer.echo(f"store:    {info['store']} (collection {info['collection']})")
    typer.echo(f"model:    {info['model']}")
    last = info["last_run"]
    if last:
        outcome = f"failed: {last['error']}" if last["error"] else "ok"
        typer.echo(f"last run: {last['label']} {outcome}")
    for line in hook_lines(info.get("hooks")):
        typer.echo(line)


def hook_lines(info: Mapping[str, Any] | None) -> list[str]:
    """Lines about hooks and background runs, as `gitindex status` shows them."""
    if not info:
        return []
    from gitindex.hooks import describe

    installed = info["installed"]
    lines = [f"hooks:    {' '.join(installed) if installed else 'not installed'}"
             + (f" ({'foreground' if info['foreground'] else 'background'})" if installed else "")]
    if info["runner_pid"]:
        lines.append(f"background: syncing (pid {info['runner_pid']}), {info['pending']} events waiting")
    elif info["pending"]:
        lines.append(f"background: {info['pending']} events waiting for a sync")
    last = info["last_run"]
    if last:
        lines.append(f"last background run: {describe(last)}")
        if not last.get("ok"):
            lines.append(f"  the git command was not affected; details: `gitindex log`, {info['log']}")
    return lines
