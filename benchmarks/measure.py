"""Run a command in a child process; measure its wall time, CPU time and peak RSS."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Measured:
    wall: float
    cpu: float  # user + system, of the child and the children it waited for
    peak_rss_mb: float  # the child's own peak (a child it spawns is not counted)
    rc: int
    stdout: str
    stderr: str

    def to_json(self) -> dict[str, Any]:
        return {"wall_s": round(self.wall, 3), "cpu_s": round(self.cpu, 3),
                "peak_rss_mb": round(self.peak_rss_mb, 1), "rc": self.rc}


class CommandFailed(RuntimeError):
    pass


def measure(cmd: Sequence[str], cwd: Path | None = None, env: Mapping[str, str] | None = None,
            timeout: float = 3600, check: bool = True) -> Measured:
    """Run `cmd` to completion; os.wait4 gives the child's own rusage (no sampling)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=dict(env) if env is not None else None,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
        out.seek(0)
        err.seek(0)
        result = Measured(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode,
                          out.read().decode(errors="replace"), err.read().decode(errors="replace"))
    if check and result.rc != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise CommandFailed(f"{' '.join(cmd)} (in {cwd}) exited {result.rc}:\n{tail}")
    return result
