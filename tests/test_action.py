"""action.yml: checked as GitHub reads it, and its run steps executed as a runner would."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import GIT_ENV, GitRepo, git, python_source
from typer.testing import CliRunner

from gitindex.cli import app

ROOT = Path(__file__).resolve().parents[1]
ACTION_TEXT = (ROOT / "action.yml").read_text()
ACTION = yaml.safe_load(ACTION_TEXT)
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
CONTEXTS = {"github.action_path": str(ROOT), "runner.os": "Linux", "github.event.pull_request.number": ""}


def test_action_metadata() -> None:
    assert {"name", "description", "inputs", "outputs", "runs"} <= set(ACTION)
    assert ACTION["runs"]["using"] == "composite"
    inputs, steps = ACTION["inputs"], ACTION["runs"]["steps"]
    assert {"qdrant-url", "collection", "model", "paths", "batch-size"} <= set(inputs)
    for name, spec in inputs.items():
        assert spec.get("description"), name
        assert isinstance(spec.get("default", ""), str), f"{name}: GitHub passes inputs as strings"
    ids = {s["id"] for s in steps if "id" in s}
    for name, spec in ACTION["outputs"].items():
        assert spec.get("description"), name
        step, key = re.fullmatch(r"\$\{\{ steps\.([\w-]+)\.outputs\.([\w-]+) \}\}", spec["value"]).groups()  # type: ignore[union-attr]
        assert step in ids and key == name
    for expr in EXPRESSION.findall(ACTION_TEXT):
        for used in re.findall(r"inputs\.([\w-]+)", expr):
            assert used in inputs, f"${{{{ {expr} }}}} uses an undeclared input"
    for step in steps:
        assert ("run" in step) != ("uses" in step), step.get("name")
        if "run" in step:
            assert step.get("shell") == "bash", "composite run steps must name their shell"
            # Inputs reach scripts through env only: an expression in a script is an injection hole.
            assert "${{" not in step["run"], step["name"]
            # gitindex reads GITINDEX_* as settings and rejects unknown ones.
            assert not any(k.startswith("GITINDEX_") for k in step.get("env", {}))
        for cond in re.findall(r"inputs\.([\w-]+)", str(step.get("if", ""))):
            assert cond in inputs


def _expand(value: str, inputs: dict[str, str], contexts: dict[str, str] | None = None) -> str:
    def one(match: re.Match[str]) -> str:
        expr = match.group(1)
        if expr.startswith("inputs."):
            return inputs[expr.removeprefix("inputs.")]
        return (contexts or CONTEXTS)[expr]

    return EXPRESSION.sub(one, value)


def _condition(expr: str, inputs: dict[str, str]) -> bool:
    match = re.fullmatch(r"inputs\.([\w-]+) == '([^']*)'", expr.strip())
    assert match, f"this test evaluates only `inputs.x == 'y'`, not {expr!r}"
    return inputs[match.group(1)] == match.group(2)


def _outputs(path: Path) -> dict[str, str]:
    out, lines = {}, iter(path.read_text().splitlines())
    for line in lines:
        if "<<" in line:
            key, delimiter = line.split("<<", 1)
            out[key] = "\n".join(iter(lambda: next(lines), delimiter))
        else:
            key, value = line.split("=", 1)
            out[key] = value
    return out


def run_action(workspace: Path, tmp: Path, given: dict[str, str],
               contexts: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    """Run the action's `run:` steps the way a runner does: bash -eo pipefail, the step's env
    with inputs substituted, GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files. `uses:` steps (Python
    and cache set-up) are GitHub's own; gitindex is already installed here (input install=false)."""
    inputs = {k: str(v.get("default", "")) for k, v in ACTION["inputs"].items()} | given
    summary, output = tmp / "summary.md", tmp / "output.txt"
    summary.write_text("")
    output.write_text("")
    base = {**os.environ, **GIT_ENV, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output),
            "GITHUB_ACTION_PATH": str(ROOT), "GITHUB_WORKSPACE": str(workspace)}
    for i, step in enumerate(ACTION["runs"]["steps"]):
        if "run" not in step or ("if" in step and not _condition(step["if"], inputs)):
            continue
        script = tmp / f"step{i}.sh"
        script.write_text(step["run"])
        env = base | {k: _expand(str(v), inputs, {**CONTEXTS, **(contexts or {})}) for k, v in step.get("env", {}).items()}
        cwd = workspace / _expand(step.get("working-directory", "."), inputs)
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                              cwd=cwd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            return done.returncode, _outputs(output), summary.read_text()
    return 0, _outputs(output), summary.read_text()


def verified(path: Path, *args: str, include: str = "") -> bool:
    # verify takes the selection from the config (it has no --include flag): here, the environment.
    env = {"GITINDEX_INCLUDE": include} if include else None
    result = CliRunner().invoke(app, ["verify", str(path), "--json", *args], env=env)
    return bool(json.loads(result.stdout)["ok"])


def test_action_syncs_then_a_fresh_shallow_runner_embeds_only_what_changed(tmp_path: Path) -> None:
    origin = GitRepo(tmp_path / "origin")
    origin.commit({"app.py": python_source("app", functions=4), "lib.py": python_source("lib"),
                   "README.md": "# Demo\n\nParses configuration files.\n", "notes.txt": "not indexed\n"})
    inputs = {"install": "false", "collection": "demo", "paths": "*.py, README.md", "batch-size": "16"}
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{origin.path}", "ci1")
    ci1 = tmp_path / "ci1"
    assert (ci1 / ".git" / "shallow").exists()

    code, out, summary = run_action(ci1, tmp_path, inputs)
    assert code == 0, summary
    first = json.loads(out["json"])
    assert out["commit"] == origin.git("rev-parse", "HEAD") and out["files-added"] == "3"
    assert out["files-skipped"] == "1" and int(out["chunks-embedded"]) == first["chunks"]["embedded"] > 4
    assert "| chunks | embedded |" in summary and "collection `demo`" in summary
    assert verified(ci1, "--collection", "demo", include="*.py,README.md")

    # The next push: a fresh runner (no manifest, no vector cache, depth 1) and the same collection.
    origin.commit({"app.py": python_source("app", functions=4).replace("case 2.", "case two, carefully.")})
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{origin.path}", "ci2")
    ci2 = tmp_path / "ci2"
    shutil.copytree(ci1 / ".git" / "gitindex" / "qdrant", ci2 / ".git" / "gitindex" / "qdrant")  # the "server"
    code, out, summary = run_action(ci2, tmp_path, inputs)
    assert code == 0, summary
    second = json.loads(out["json"])
    assert any("adopted 3 indexed files" in n for n in second["notes"]), second
    assert (out["files-modified"], out["files-unchanged"], out["chunks-embedded"]) == ("1", "2", "1")
    assert "adopted 3 indexed files" in summary
    assert verified(ci2, "--collection", "demo", include="*.py,README.md")


def test_action_step_fails_with_a_summary_when_sync_fails(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"empty.txt": ""})
    code, out, summary = run_action(repo.path, tmp_path, {"install": "false", "batch-size": "0"})
    assert code == 2 and out == {}
    assert "gitindex sync failed (exit 2)" in summary


def test_action_inputs_reach_the_cli_unmangled(tmp_path: Path) -> None:
    """Patterns with spaces and newlines, and hostile-looking values, arrive as single arguments."""
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"docs/a b.md": "", "src/x.py": "", "other.txt": ""})
    code, out, _ = run_action(repo.path, tmp_path, {
        "install": "false", "paths": "docs/a b.md\n src/** ,", "exclude": "$(touch pwned)", "collection": "c1"})
    assert code == 0
    assert json.loads(out["json"])["files"]["skipped_by_reason"] == {"empty": 2, "excluded": 1}
    assert not (repo.path / "pwned").exists()


def test_a_pull_request_is_indexed_under_its_own_name_and_forgotten_when_it_closes(tmp_path: Path) -> None:
    """On a pull request the checkout is its merge commit, detached: the action names the ref
    `pull/N/merge` (not HEAD); a later job's `forget` input takes it off the index."""
    origin = GitRepo(tmp_path / "origin")
    origin.commit({"app.py": python_source("app", functions=3)})
    origin.git("checkout", "-q", "-b", "topic")
    origin.commit({"parcel.py": python_source("parcel", functions=2)})
    origin.git("checkout", "-q", "-b", "merge", "main")
    origin.git("merge", "-q", "--no-ff", "--no-edit", "topic")
    origin.git("update-ref", "refs/pull/7/merge", "HEAD")  # what GitHub keeps for pull request 7
    origin.git("checkout", "-q", "main")
    git(tmp_path, "clone", "-q", f"file://{origin.path}", "ci")
    ci = GitRepo(tmp_path / "ci")
    ci.git("fetch", "-q", "origin", "+refs/pull/7/merge:refs/remotes/pull/7/merge")  # as actions/checkout does
    ci.git("checkout", "-q", "--detach", "refs/remotes/pull/7/merge")

    code, out, summary = run_action(ci.path, tmp_path, {"install": "false"}, {"github.event.pull_request.number": "7"})
    assert code == 0, summary
    assert json.loads(out["json"])["refs"] == ["pull/7/merge"]
    hits = CliRunner().invoke(app, ["search", "parcel case", "--repo", str(ci.path), "--ref", "pull/7/merge", "--json"])
    assert "parcel.py" in {h["path"] for h in json.loads(hits.stdout)}

    ci.git("checkout", "-q", "main")  # the job that runs when the pull request closes
    code, out, summary = run_action(ci.path, tmp_path, {"install": "false", "forget": "pull/7/merge"})
    assert code == 0, summary
    done = json.loads(out["json"])
    assert done["refs"] == ["main"] and any("forgot ref pull/7/merge" in n for n in done["notes"]), done
    assert "forgot ref pull/7/merge" in summary
    status = json.loads(CliRunner().invoke(app, ["status", str(ci.path), "--json"]).stdout)
    assert [r["ref"] for r in status["refs"]] == ["main"]
