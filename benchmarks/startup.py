"""Start-up budget: the CLI's fixed cost next to the import floor, side by side in one run.

    python -m benchmarks.startup                    # a 60-file repository made here
    python -m benchmarks.startup --repo PATH ...    # repositories indexed already (e.g. the 10k tree)

The floor is `python -c "import pygit2, typer, sqlite3"`: what any git-aware typer CLI pays.
Each command runs in a new process, all of them interleaved round by round (so a busy moment
of the machine hits every command alike); the medians are reported as ratios to the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FLOOR = "import pygit2, typer, sqlite3"
QUERY = "parse the configuration file"
# The targets, as ratios to the floor (None: reported only). On a large tree the no-op sync's
# target is absolute instead (NOOP_LARGE_S): it diffs a large tree, which the floor does not.
TARGETS = {"--version": 1.2, "status": 1.5, "no-op sync": 1.5, "search": None}
NOOP_LARGE_S = 0.3


def _gitindex() -> list[str]:
    script = Path(sys.executable).parent / "gitindex"  # the installed entry point, as users run it
    return [str(script)] if script.exists() else [sys.executable, "-m", "gitindex"]


def small_repository(root: Path, files: int = 60) -> Path:
    """A repository of `files` small Python modules, committed and indexed."""
    repo = root / "small"
    (repo / "pkg").mkdir(parents=True)
    for i in range(files):
        (repo / "pkg" / f"m{i:02}.py").write_text(
            f'"""Module {i}."""\n\n\ndef handle_{i}(request):\n    """Handle request kind {i}."""\n'
            f"    return request.get({i!r})\n")
    env = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@b", "PATH": "/usr/bin:/bin"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run(["git", *args], cwd=repo, check=True, env=env)
    subprocess.run([*_gitindex(), "sync", "--quiet"], cwd=repo, check=True)
    return repo


def measure(repo: Path, rounds: int, *, large: bool = False) -> dict[str, Any]:
    gi = _gitindex()
    commands = {
        "floor": [sys.executable, "-c", FLOOR],
        "--version": [*gi, "--version"],
        "status": [*gi, "status"],
        "no-op sync": [*gi, "sync", "--quiet"],
        "search": [*gi, "search", QUERY, "--limit", "3"],
    }
    # As an installed gitindex runs: from .pyc files (pip writes them at install), not compiling
    # its modules at every start, which PYTHONDONTWRITEBYTECODE (set on some machines) would make
    # it do, while the floor's packages have theirs.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for argv in commands.values():  # warm the page cache and the .pyc files once
        subprocess.run(argv, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=env)
    walls: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, argv in commands.items():
            started = time.perf_counter()
            done = subprocess.run(argv, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False,
                                  env=env)
            walls[name].append(time.perf_counter() - started)
            if done.returncode != 0:
                raise SystemExit(f"{name} failed in {repo}: {done.stderr.decode()[-500:]}")
    floor = statistics.median(walls["floor"])
    out: dict[str, Any] = {"repo": str(repo), "rounds": rounds, "commands": {}}
    for name, values in walls.items():
        median = statistics.median(values)
        goal = TARGETS.get(name)
        entry: dict[str, Any] = {"median_s": round(median, 4), "ratio": round(median / floor, 2), "goal": goal,
                                 "met": None if goal is None else median / floor <= goal}
        if large and name == "no-op sync":
            entry.update(goal=None, goal_s=NOOP_LARGE_S, met=median <= NOOP_LARGE_S)
        out["commands"][name] = entry
    return out


def markdown(results: list[dict[str, Any]]) -> str:
    lines = ["| repository | command | median | x floor | target |", "|---|---|---|---|---|"]
    for r in results:
        for name, c in r["commands"].items():
            met = "met" if c["met"] else "missed"
            target = (f"<= {c['goal']}x ({met})" if c["goal"] is not None
                      else f"<= {c['goal_s']} s ({met})" if c.get("goal_s") else "")
            lines.append(f"| {r['label']} | {name} | {c['median_s'] * 1000:.0f} ms | {c['ratio']:.2f}x | {target} |")
    return "\n".join(lines)


def run(repos: list[tuple[str, Path]], rounds: int, *, large: bool = False) -> list[dict[str, Any]]:
    results = []
    for label, repo in repos:
        r = measure(repo, rounds, large=large)
        r["label"] = label
        results.append(r)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, action="append", default=[], help="an indexed repository (repeatable)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--large", action="store_true", help="the repositories are large trees (no-op target: 0.3 s)")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="gitindex-startup-"))
    try:
        repos = [(str(p), p.resolve()) for p in args.repo] or [("60 files", small_repository(scratch))]
        results = run(repos, args.rounds, large=args.large)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(markdown(results))


if __name__ == "__main__":
    main()
