"""Reproducible benchmark corpora (git repositories) built from real PyPI wheels."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

DEFAULT_CACHE = Path.home() / ".cache" / "gitindex-bench" / "wheels"

# Seven consecutive patch releases of a pure-Python package: ~50 .py files,
# ~20k lines, so a first full index is several hundred ~40-line chunks.
DEFAULT_HISTORY: tuple[str, list[str]] = (
    "werkzeug",
    ["3.0.0", "3.0.1", "3.0.2", "3.0.3", "3.0.4", "3.0.5", "3.0.6"],
)

# Pure-Python (py3-none-any) wheels, in the order build_tree() uses them.
# Text-file counts (binaries dropped) are in the comments; ~51.5k in total.
TREE_PACKAGES: tuple[str, ...] = (
    "pip==23.3.2",  # 511
    "setuptools==69.0.3",  # 240
    "networkx==3.2.1",  # 560
    "twisted==23.10.0",  # 880
    "sympy==1.12",  # 1,472
    "django==4.2.0",  # 2,399
    "jedi==0.19.1",  # 1,874
    "transformers==4.36.2",  # 1,528
    "nova==28.0.0",  # 2,145
    "neutron==23.0.0",  # 2,040
    "cinder==23.0.0",  # 1,467
    "ansible-core==2.16.2",  # 1,003
    "kubernetes==29.0.0",  # 667
    "homeassistant==2024.1.0",  # 34,779
)

# Fixed identities, dates and config isolation so commit ids are reproducible.
_EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "gitindex-bench",
    "GIT_AUTHOR_EMAIL": "bench@gitindex.invalid",
    "GIT_COMMITTER_NAME": "gitindex-bench",
    "GIT_COMMITTER_EMAIL": "bench@gitindex.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


class DownloadError(RuntimeError):
    """A wheel could not be downloaded from the package index."""


def download_wheel(package: str, version: str, cache: Path | None = None) -> Path:
    """Return the cached wheel of ``package==version``, fetched with pip if absent."""
    slot = (cache or DEFAULT_CACHE) / re.sub(r"[-_.]+", "-", package).lower() / version
    wheels = sorted(slot.glob("*.whl"))
    if not wheels:
        slot.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--disable-pip-version-check",
            "--quiet",
            f"{package}=={version}",
            "-d",
            str(slot),
        ]
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
        wheels = sorted(slot.glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            shutil.rmtree(slot, ignore_errors=True)
            detail = proc.stderr.strip().splitlines()[-1:] or ["no wheel produced"]
            raise DownloadError(
                f"cannot download wheel {package}=={version}: {detail[0]}"
            )
    return wheels[0]


def wheel_files(wheel: Path) -> list[tuple[str, bytes]]:
    """Return sorted (path, content) of a wheel's text files, minus ``*.dist-info``.

    Binary files (a NUL byte in the first 8000 bytes, git's own test) are dropped.
    """
    files = []
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            parts = info.filename.split("/")
            if info.is_dir() or parts[0].endswith(".dist-info") or ".." in parts:
                continue
            data = zf.read(info)
            if b"\0" not in data[:8000]:
                files.append((info.filename.lstrip("/"), data))
    return sorted(files)


def _write(root: Path, files: list[tuple[str, bytes]]) -> None:
    for name, data in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _git(repo: Path, *args: str, date: int = _EPOCH) -> str:
    stamp = f"{date} +0000"
    env = {
        **os.environ,
        **_GIT_ENV,
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_DATE": stamp,
    }
    proc = subprocess.run(
        ["git", *args], check=False, cwd=repo, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def _init_repo(dest: Path) -> None:
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} exists and is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    _git(dest, "init", "--quiet", "--initial-branch=main")


def _commit(repo: Path, message: str, date: int) -> str:
    _git(repo, "add", "--all", "--force")
    _git(
        repo,
        "commit",
        "--quiet",
        "--allow-empty",
        "--no-verify",
        "-m",
        message,
        date=date,
    )
    return _git(repo, "rev-parse", "HEAD")


def build_release_history(
    dest: Path, package: str, versions: list[str], cache: Path | None = None
) -> list[str]:
    """Create a git repository at ``dest`` with one commit per release of ``package``.

    Each commit replaces the whole tree with the text files of that version's wheel,
    has message "PACKAGE VERSION" and tag "vVERSION". Returns the commit ids, in order.
    """
    dest = Path(dest)
    wheels = [download_wheel(package, v, cache) for v in versions]
    _init_repo(dest)
    commits = []
    for i, (version, wheel) in enumerate(zip(versions, wheels, strict=True)):
        for entry in dest.iterdir():
            if entry.name == ".git":
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        _write(dest, wheel_files(wheel))
        commits.append(_commit(dest, f"{package} {version}", _EPOCH + i * 86_400))
        _git(dest, "tag", f"v{version}")
    return commits


def build_tree(
    dest: Path,
    n_files: int,
    cache: Path | None = None,
    packages: list[str] | None = None,
) -> int:
    """Create a git repository at ``dest`` with one commit of ``n_files`` text files.

    Wheels from ``packages`` ("name==version", default ``TREE_PACKAGES``) are unpacked
    in order, each under a top-level directory "name-version"; the last one is cut
    (files in sorted path order). Returns the number of files committed; raises
    ValueError, leaving no commit, when the packages hold fewer than ``n_files`` files.
    """
    dest = Path(dest)
    _init_repo(dest)
    written = 0
    for spec in packages or TREE_PACKAGES:
        if written >= n_files:
            break
        name, _, version = spec.partition("==")
        files = wheel_files(download_wheel(name, version, cache))[: n_files - written]
        _write(dest / f"{name}-{version}", files)
        written += len(files)
    if written < n_files:
        raise ValueError(
            f"packages hold only {written} text files, {n_files} requested"
        )
    _commit(dest, f"tree of {n_files} files", _EPOCH)
    return n_files


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m benchmarks.corpus {history,tree} DEST ...``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.corpus", description=__doc__
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help=f"wheel cache directory (default {DEFAULT_CACHE})",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    hist = sub.add_parser("history", help="one commit per release of a package")
    hist.add_argument("dest", type=Path)
    hist.add_argument("--package", default=DEFAULT_HISTORY[0])
    hist.add_argument(
        "--versions",
        default=",".join(DEFAULT_HISTORY[1]),
        help="comma-separated release versions, oldest first",
    )
    tree = sub.add_parser("tree", help="one commit of N files from many packages")
    tree.add_argument("dest", type=Path)
    tree.add_argument("--files", type=int, required=True)
    for p in (hist, tree):
        p.add_argument(
            "--cache",
            type=Path,
            default=argparse.SUPPRESS,
            help="wheel cache directory",
        )
    args = parser.parse_args(argv)

    start = time.perf_counter()
    try:
        if args.command == "history":
            versions = [v.strip() for v in args.versions.split(",") if v.strip()]
            commits = build_release_history(
                args.dest, args.package, versions, args.cache
            )
            for version, commit in zip(versions, commits, strict=True):
                print(f"{commit}  v{version}")
            what = f"{len(commits)} commits of {args.package}"
        else:
            what = f"{build_tree(args.dest, args.files, args.cache)} files"
    except (DownloadError, FileExistsError, ValueError) as exc:
        sys.exit(f"error: {exc}")
    print(f"built {what} at {args.dest} in {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
