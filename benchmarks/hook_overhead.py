"""How much time gitindex's hooks add to `git commit`: median of N commits with and without them.

    python -m benchmarks.hook_overhead [--commits 10] [--pre-commit]

Phases, each in the same fresh repository:
  baseline     no hooks at all
  idle         gitindex hooks installed; before each commit the background sync has finished,
               so each hook records the event and starts a runner (the spawn path)
  busy         commits back to back while the runner syncs (the path where the hook finds
               a live runner and starts nothing), alternating with commits that run no hook
               (busy-nohook) under the same background load; "added" compares the two
  script       the post-commit script run on its own, outside git
  pc-noop      (--pre-commit) the pre-commit framework running a post-commit hook that does nothing
  pc-gitindex  (--pre-commit) the framework running gitindex-system (language: system)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
}


def run(cwd: Path, *args: str) -> str:
    return subprocess.run(args, cwd=cwd, env=ENV, check=True, capture_output=True, text=True).stdout


def gitindex(cwd: Path, *args: str, check: bool = True) -> None:
    subprocess.run([sys.executable, "-m", "gitindex", *args], cwd=cwd, env=ENV, check=check,
                   capture_output=True)


def source(n: int) -> str:
    return "".join(f"\ndef handler_{n}_{i}(event):\n    \"\"\"Handle event {n}.{i}.\"\"\"\n"
                   f"    return event.get('{n}_{i}', {i})\n" for i in range(3))


def commits(repo: Path, count: int, tag: str, before: object = None, hooks: bool = True) -> list[float]:
    """Wall seconds of `git commit` for `count` commits (each adds a small Python file)."""
    times = []
    off = [] if hooks else ["-c", "core.hooksPath=/dev/null"]  # no hook can be found there
    for i in range(count):
        (repo / f"{tag}_{i}.py").write_text(source(i))
        run(repo, "git", "add", "-A")
        if callable(before):
            before()
        started = time.perf_counter()
        run(repo, "git", *off, "commit", "-q", "-m", f"{tag} {i}")
        times.append(time.perf_counter() - started)
    return times


def show(name: str, times: list[float], baseline: float | None) -> None:
    med = statistics.median(times)
    added = f"{(med - baseline) * 1000:+7.1f} ms" if baseline is not None else "        -"
    print(f"{name:12} median {med * 1000:7.1f} ms  min {min(times) * 1000:7.1f}  "
          f"max {max(times) * 1000:7.1f}  added {added}  (n={len(times)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=10)
    parser.add_argument("--pre-commit", action="store_true", help="also measure through the pre-commit framework")
    args = parser.parse_args()
    n = args.commits

    tmp = Path(tempfile.mkdtemp(prefix="gitindex-hook-bench-"))
    try:
        repo = tmp / "repo"
        repo.mkdir()
        run(repo, "git", "init", "-q", "-b", "main")
        (repo / "app.py").write_text(source(999))
        run(repo, "git", "add", "-A")
        run(repo, "git", "commit", "-q", "-m", "start")
        commits(repo, 3, "warmup")
        baseline = commits(repo, n, "base")

        gitindex(repo, "hooks", "install")
        gitindex(repo, "sync", "--quiet")  # the first full index, outside the measurement
        idle = commits(repo, n, "idle", before=lambda: gitindex(repo, "hooks", "wait", check=False))
        gitindex(repo, "hooks", "wait", check=False)
        busy, busy_off = [], []
        for i in range(n):  # alternate, so both see the same background load
            busy += commits(repo, 1, f"busy{i}")
            busy_off += commits(repo, 1, f"busyoff{i}", hooks=False)
        gitindex(repo, "hooks", "wait", "--timeout", "600", check=False)

        hook = repo / ".git" / "hooks" / "post-commit"
        script = []
        for _ in range(n):
            started = time.perf_counter()
            subprocess.run([str(hook)], cwd=repo, env=ENV, check=True)
            script.append(time.perf_counter() - started)
        gitindex(repo, "hooks", "wait", "--timeout", "600", check=False)

        base = statistics.median(baseline)
        print(f"git commit, {n} commits per phase, {os.cpu_count()} CPUs, git {run(repo, 'git', '--version').split()[-1]}")
        show("baseline", baseline, None)
        show("idle", idle, base)
        show("busy", busy, statistics.median(busy_off))
        show("busy-nohook", busy_off, base)
        show("script", script, None)

        if args.pre_commit:
            gitindex(repo, "hooks", "uninstall")
            published = tmp / "hook-repo"
            published.mkdir()
            run(published, "git", "init", "-q", "-b", "main")
            shutil.copy(ROOT / ".pre-commit-hooks.yaml", published)
            run(published, "git", "add", "-A")
            run(published, "git", "commit", "-q", "-m", "hooks")
            rev = run(published, "git", "rev-parse", "HEAD").strip()
            ENV["PRE_COMMIT_HOME"] = str(tmp / "pre-commit-home")
            noop = ("repos:\n- repo: local\n  hooks:\n  - id: noop\n    name: noop\n    entry: 'true'\n"
                    "    language: system\n    stages: [post-commit]\n    always_run: true\n    pass_filenames: false\n")
            ours = f"repos:\n- repo: {published}\n  rev: {rev}\n  hooks:\n  - id: gitindex-system\n"
            run(repo, sys.executable, "-m", "pre_commit", "install", "--hook-type", "post-commit")
            for name, config in (("pc-noop", noop), ("pc-gitindex", ours)):
                (repo / ".pre-commit-config.yaml").write_text(config)
                commits(repo, 2, f"{name}warm")
                gitindex(repo, "hooks", "wait", "--timeout", "600", check=False)
                framework = commits(repo, n, name, before=lambda: gitindex(repo, "hooks", "wait", check=False))
                gitindex(repo, "hooks", "wait", "--timeout", "600", check=False)
                show(name, framework, base)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
