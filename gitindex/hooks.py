"""Plain git hooks: install, chain and uninstall them; the files their background runner keeps."""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitindex.errors import HooksError
from gitindex.repo import Repo
from gitindex.workspace import DATA_DIR

if TYPE_CHECKING:
    from logging.handlers import RotatingFileHandler

EVENTS = ("post-commit", "post-merge", "post-checkout", "post-rewrite")
MARK = "# gitindex-hook:"  # the second line of every script we write: how we know it is ours
CHAINED = ".pre-gitindex"  # the hook we replaced keeps this suffix, and ours runs it first
LOG_MAX_BYTES = 512 * 1024  # then the log is rotated once (one .1 file kept)

_SCRIPT = """\
#!/bin/sh
{mark} {event}
# Keeps the gitindex semantic index fresh; see `gitindex hooks status` and `gitindex log`.
# Written by `gitindex hooks install`; `gitindex hooks uninstall` removes it and puts back the
# hook it replaced (kept beside it as {event}{chained} and run first, so it still works).
# It never slows git down or fails it: it records the event and starts one detached background
# sync unless one is already running (that one syncs again when it is done), then returns.
event={event}
python={python}
mode={mode}

status=0
case $0 in */*) here=${{0%/*}} ;; *) here=. ;; esac
if [ -x "$here/$event{chained}" ]; then
    "$here/$event{chained}" "$@" || status=$?
fi
# post-checkout also fires for file checkouts: only a branch switch (third argument 1) counts.
if [ "$event" = post-checkout ] && [ "$3" != 1 ]; then exit $status; fi
line="$event $*"

if [ -n "$python" ] && [ -x "$python" ]; then
    set -- "$python" -m gitindex hooks run $mode "$event" -- "$@"
elif command -v gitindex >/dev/null 2>&1; then
    set -- gitindex hooks run $mode "$event" -- "$@"
else
    exit $status  # gitindex is not installed where this hook can see it
fi
if [ "$mode" = --foreground ]; then
    "$@" || :
    exit $status
fi

state=$(git rev-parse --absolute-git-dir 2>/dev/null)/{data_dir}/hooks || exit $status
[ -d "$state" ] || mkdir -p "$state" 2>/dev/null || exit $status
printf '%s\\n' "$line" >>"$state/pending" 2>/dev/null || exit $status
# The runner removes its pid file before its last look at `pending`: if it is alive, it sees ours.
if [ -f "$state/runner.pid" ] && {{ read -r pid <"$state/runner.pid"; }} 2>/dev/null &&
    kill -0 "$pid" 2>/dev/null; then
    exit $status
fi
# Low priority, so that the sync never competes with the git commands that follow.
nohup nice -n 10 "$@" </dev/null >/dev/null 2>&1 &
exit $status
"""


def render(event: str, python: str = "", foreground: bool = False) -> str:
    """The hook script for `event`; `python` is the interpreter gitindex is installed in
    (empty: `gitindex` from PATH)."""
    return _SCRIPT.format(
        mark=MARK, event=event, python=shlex.quote(python), chained=CHAINED, data_dir=DATA_DIR,
        mode="--foreground" if foreground else "--detached",
    )


def hooks_dir(repo: Repo) -> Path:
    """Where git runs this repository's hooks from: core.hooksPath if set (relative to the top
    of the worktree, where git runs hooks), else the hooks/ directory of the common git dir
    (shared by every worktree). Read from git's config through libgit2 (tests check it against
    `git rev-parse --git-path hooks`): asking git would cost `status` a process."""
    try:
        configured = str(repo.git.config["core.hooksPath"])
    except KeyError:
        return repo.commondir / "hooks"
    except ValueError as exc:  # an unreadable config
        raise HooksError(f"cannot read core.hooksPath of {repo.gitdir}: {exc}") from None
    base = repo.workdir if repo.workdir is not None else repo.gitdir
    return (base / Path(configured).expanduser()).resolve()


@dataclass(frozen=True, slots=True)
class HookFile:
    """One hook in the hooks directory, as `hooks status` reports it."""

    event: str
    path: Path
    state: str  # "gitindex", "other" (someone else's) or "absent"
    chained: bool  # ours runs a previous hook first (kept as <event>.pre-gitindex)
    foreground: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"event": self.event, "path": str(self.path), "state": self.state,
                "chained": self.chained, "foreground": self.foreground}


def _is_ours(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return MARK.encode() in f.read(256)
    except OSError:
        return False


def inspect(directory: Path, events: Sequence[str] = EVENTS) -> list[HookFile]:
    """What is installed for each event."""
    out = []
    for event in events:
        path = directory / event
        chained = os.path.lexists(directory / f"{event}{CHAINED}")
        if _is_ours(path):
            out.append(HookFile(event, path, "gitindex", chained, "mode=--foreground" in path.read_text()))
        else:
            out.append(HookFile(event, path, "other" if os.path.lexists(path) else "absent", False))
    return out


def install(directory: Path, python: str, *, foreground: bool = False,
            events: Sequence[str] = EVENTS) -> list[str]:
    """Write our hook for each event. A hook that is not ours is kept as <event>.pre-gitindex
    and run first; nothing is overwritten. Returns what was done, one line per event."""
    current = inspect(directory, events)
    for hook in current:  # check everything before changing anything
        if hook.state == "other" and os.path.lexists(directory / f"{hook.event}{CHAINED}"):
            raise HooksError(
                f"{hook.path} is not gitindex's, and {hook.path.name}{CHAINED} already exists beside it; "
                "move one of them away, then run `gitindex hooks install` again"
            )
    directory.mkdir(parents=True, exist_ok=True)
    done = []
    for hook in current:
        note = "installed"
        if hook.state == "other":
            os.rename(hook.path, directory / f"{hook.event}{CHAINED}")  # a symlink moves as a link
            note = f"installed; the existing hook now runs first, from {hook.event}{CHAINED}"
        elif hook.state == "gitindex":
            note = "updated" + ("; it still runs the previous hook first" if hook.chained else "")
        tmp = hook.path.with_name(f".{hook.event}.gitindex-tmp")
        tmp.write_text(render(hook.event, python, foreground))
        tmp.chmod(0o755)
        os.replace(tmp, hook.path)
        done.append(f"{hook.event}: {note}")
    return done


def uninstall(directory: Path, events: Sequence[str] = EVENTS) -> list[str]:
    """Remove our hooks and put back the hooks they replaced. Never touches a hook that is not ours."""
    done = []
    for hook in inspect(directory, events):
        if hook.state != "gitindex":
            if hook.state == "other":
                done.append(f"{hook.event}: left alone (not gitindex's)")
            continue
        hook.path.unlink()
        previous = directory / f"{hook.event}{CHAINED}"
        if os.path.lexists(previous):
            os.rename(previous, hook.path)
            done.append(f"{hook.event}: removed; the previous hook is back")
        else:
            done.append(f"{hook.event}: removed")
    return done


# -- the background runner ----------------------------------------------------------------------
@dataclass(frozen=True)
class RunnerFiles:
    """The runner's files, under <git dir>/gitindex/hooks/ (per worktree, like the index)."""

    dir: Path

    @classmethod
    def of(cls, repo: Repo) -> RunnerFiles:
        return cls(repo.gitdir / DATA_DIR / "hooks")

    @property
    def pending(self) -> Path:  # one line per event not yet synced; the shell script appends
        return self.dir / "pending"

    @property
    def syncing(self) -> Path:  # the events the runner is syncing now
        return self.dir / "syncing"

    @property
    def lock(self) -> Path:  # held by the one runner
        return self.dir / "runner.lock"

    @property
    def pid(self) -> Path:  # the runner's pid while it holds the lock (the shell's cheap check)
        return self.dir / "runner.pid"

    @property
    def log(self) -> Path:  # one JSON object per sync
        return self.dir / "runs.jsonl"

    @property
    def output(self) -> Path:  # the runner's stderr: warnings, and tracebacks of bugs
        return self.dir / "output.log"


def record_event(files: RunnerFiles, event: str, args: Sequence[str]) -> None:
    """Note an event for the runner (what the shell script does, for callers in Python)."""
    files.dir.mkdir(parents=True, exist_ok=True)
    with files.pending.open("a") as f:
        f.write(" ".join([event, *args]) + "\n")


def runner_pid(files: RunnerFiles) -> int | None:
    """The pid of the live runner, if any."""
    try:
        pid = int(files.pid.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def pending_events(files: RunnerFiles) -> list[str]:
    """Events no sync has started on yet."""
    return read_lines(files.pending)


def read_lines(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def _rotating(path: Path) -> RotatingFileHandler:
    """An append-only file rotated once it passes LOG_MAX_BYTES (one .1 file kept)."""
    import logging
    from logging.handlers import RotatingFileHandler  # 4 ms: `status` reads logs, never writes them

    path.parent.mkdir(parents=True, exist_ok=True)
    handler = RotatingFileHandler(path, maxBytes=LOG_MAX_BYTES, backupCount=1, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def redirect_output(files: RunnerFiles) -> None:
    """Send this process's stdout and stderr (warnings, native libraries' messages, tracebacks
    of bugs) to the runner's output log, rotated first if it has grown too large."""
    import logging

    handler = _rotating(files.output)
    try:
        if handler.shouldRollover(logging.makeLogRecord({"msg": ""})):
            handler.doRollover()
        assert handler.stream is not None
        os.dup2(handler.stream.fileno(), 1)
        os.dup2(handler.stream.fileno(), 2)
    finally:
        handler.close()


def append_log(files: RunnerFiles, record: dict[str, Any]) -> None:
    """One line of JSON per sync, in runs.jsonl."""
    import logging

    handler = _rotating(files.log)
    try:
        handler.emit(logging.makeLogRecord({"msg": json.dumps(record)}))
    finally:
        handler.close()


def read_log(files: RunnerFiles, last: int | None = None) -> list[dict[str, Any]]:
    """The logged runs, oldest first (the last `last` of them)."""
    try:
        lines = files.log.read_text().splitlines()
    except FileNotFoundError:
        return []
    records = []
    for line in lines[-last:] if last else lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a crash
            continue
    return records


def describe(record: dict[str, Any]) -> str:
    """One line for a logged run, as `gitindex log` prints it."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.get("started_at", 0)))
    names = [e.split(" ", 1)[0] for e in record.get("events", [])]
    counts = {n: names.count(n) for n in dict.fromkeys(names)}
    trigger = ", ".join(f"{n} x{c}" if c > 1 else n for n, c in counts.items()) or "-"
    if not record.get("ok"):
        outcome = f"FAILED: {record.get('error')}"
    elif "summary" in record:
        s = record["summary"]
        f, c = s["files"], s["chunks"]
        outcome = (f"ok {record.get('label', '')}: files +{f['added']} ~{f['modified']} -{f['deleted']}, "
                   f"chunks {c['embedded']} embedded {c['reused']} reused {c['deleted']} deleted")
    else:
        outcome = f"ok: {record.get('note', '')}"
    return f"{when}  {record.get('mode', '?'):10}  {trigger}  {outcome}  ({record.get('seconds', 0):.1f} s)"


def summary(repo: Repo, root: Path) -> dict[str, Any]:
    """Hooks and background runs of a repository, for `status`."""
    files = RunnerFiles.of(repo)
    try:
        directory: Path | None = hooks_dir(repo)
    except HooksError:
        directory = None
    hooks = inspect(directory) if directory is not None else []
    last = read_log(files, 1)
    return {
        "dir": str(directory) if directory else None,
        "installed": [h.event for h in hooks if h.state == "gitindex"],
        "foreground": any(h.foreground for h in hooks if h.state == "gitindex"),
        "runner_pid": runner_pid(files),
        "pending": len(pending_events(files)),
        "last_run": last[-1] if last else None,
        "log": str(files.log),
    }
