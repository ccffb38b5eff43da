"""The composite GitHub Action (`action.yml`), its steps run as a runner runs them.

Each step's `run:` script is taken from action.yml, its `${{ inputs.* }}`,
`${{ github.action_path }}` and `${{ steps.*.outputs.* }}` expressions are
filled in as Actions would (inputs fall back to their declared defaults), and
it runs under `bash --noprofile --norc -eo pipefail` (what `shell: bash`
means) with the variables a runner sets. The install step needs a package
index, so it is checked for what it installs rather than run; `python -m
fitdoc` then finds this checkout, as it would find the installed package.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ACTION = REPO / "action.yml"
VERDICTS = Path(__file__).parent / "fixtures" / "verdicts"
EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


def action() -> dict:
    return yaml.safe_load(ACTION.read_text(encoding="utf-8"))


def step(step_id: str) -> dict:
    return next(s for s in action()["runs"]["steps"] if s.get("id") == step_id)


@dataclass
class StepResult:
    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]


class ActionRunner:
    """Runs the action's steps in a workspace with given inputs; keeps outputs and the job summary."""

    def __init__(self, workspace: Path, **inputs: str) -> None:
        self.workspace = workspace
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.summary = workspace.parent / "step_summary.md"
        self.summary.write_text("")
        declared = action()["inputs"]
        unknown = set(inputs) - {name.replace("-", "_") for name in declared}
        assert not unknown, f"the action has no input {unknown}"
        self.inputs = {
            name: inputs.get(name.replace("-", "_"), str(spec.get("default", "")))
            for name, spec in declared.items()
        }
        self.outputs: dict[str, dict[str, str]] = {}

    def expand(self, text: str) -> str:
        def value(match: re.Match[str]) -> str:
            parts = match.group(1).split(".")
            if parts[0] == "inputs" and len(parts) == 2:
                return self.inputs[parts[1]]
            if parts == ["github", "action_path"]:
                return str(REPO)
            if len(parts) == 4 and parts[0] == "steps" and parts[2] == "outputs":
                return self.outputs.get(parts[1], {}).get(parts[3], "")
            raise AssertionError(f"the test runner does not evaluate ${{{{ {match.group(1)} }}}}")

        return EXPRESSION.sub(value, text)

    def run(self, step_id: str) -> StepResult:
        spec = step(step_id)
        assert spec["shell"] == "bash"
        output_file = self.workspace.parent / f"output_{step_id}.txt"
        output_file.write_text("")
        env = dict(os.environ)
        env.update({k: self.expand(str(v)) for k, v in spec.get("env", {}).items()})
        env.update(
            {
                "CI": "true",
                "GITHUB_ACTIONS": "true",
                "GITHUB_WORKSPACE": str(self.workspace),
                "GITHUB_ACTION_PATH": str(REPO),
                "GITHUB_STEP_SUMMARY": str(self.summary),
                "GITHUB_OUTPUT": str(output_file),
                # The runner's `python`, with fitdoc importable as after the install step.
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                "PYTHONPATH": str(REPO),
            }
        )
        script = self.workspace.parent / f"step_{step_id}.sh"
        script.write_text(self.expand(spec["run"]))
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=self.workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        outputs = dict(line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line)
        self.outputs[step_id] = outputs
        return StepResult(proc.returncode, proc.stdout, proc.stderr, outputs)


def overfit_run(root: Path, name: str = "overfit-run") -> Path:
    epochs = np.arange(120)
    train = 0.02 + 0.8 * np.exp(-epochs / 12)
    val = 0.2 + 0.6 * np.exp(-epochs / 8) + 0.003 * np.clip(epochs - 25, 0, None)
    run_dir = root / "runs" / name
    run_dir.mkdir(parents=True)
    frame = pd.DataFrame(
        {"epoch": epochs, "loss": train**2, "mae": train, "val_loss": val**2, "val_mae": val}
    )
    frame.to_csv(run_dir / "history.csv", index=False)
    return run_dir


def balanced_run(root: Path) -> Path:
    run_dir = root / "runs" / "balanced-run"
    shutil.copytree(VERDICTS / "founding-l2-0.0001", run_dir)
    return run_dir


# ---------------------------------------------------------------- running the steps


def test_an_overfit_run_fails_the_step_with_summary_and_annotation(tmp_path: Path) -> None:
    runner = ActionRunner(tmp_path / "repo", paths="runs/overfit-run")
    overfit_run(runner.workspace)
    result = runner.run("diagnose")
    assert result.returncode == 1, result.stderr
    assert result.outputs["exit-code"] == "1"
    summary = runner.summary.read_text()
    assert summary.startswith("## fitdoc diagnosis") and "overfit" in summary
    # The log: the text report, then one error annotation on the history file.
    assert "Suggested change" in result.stdout
    (annotation,) = [line for line in result.stdout.splitlines() if line.startswith("::")]
    assert re.match(r"::error file=runs/overfit-run/history\.csv,title=fitdoc%3A overfit", annotation)


def test_a_balanced_run_passes_without_annotations(tmp_path: Path) -> None:
    runner = ActionRunner(tmp_path / "repo", paths="runs/balanced-run")
    balanced_run(runner.workspace)
    result = runner.run("diagnose")
    assert result.returncode == 0, result.stderr
    assert result.outputs["exit-code"] == "0"
    assert "::" not in result.stdout
    assert "balanced" in runner.summary.read_text()


def test_paths_split_on_lines_and_spaces_and_globs_expand(tmp_path: Path) -> None:
    runner = ActionRunner(
        tmp_path / "repo", paths="runs/overfit-*\nruns/balanced-run", fail_on="", format="json"
    )
    overfit_run(runner.workspace, "overfit-a")
    overfit_run(runner.workspace, "overfit-b")
    balanced_run(runner.workspace)
    result = runner.run("diagnose")
    assert result.returncode == 0, result.stderr  # fail-on empty: a verdict never fails the step
    report = json.loads(result.stdout)
    sources = sorted(Path(r["source"]).parent.name for r in report["results"])
    assert sources == ["balanced-run", "overfit-a", "overfit-b"]
    assert runner.summary.read_text().count("### ") == 3


def test_github_format_annotates_once(tmp_path: Path) -> None:
    runner = ActionRunner(tmp_path / "repo", paths="runs/overfit-run", format="github")
    overfit_run(runner.workspace)
    result = runner.run("diagnose")
    assert result.returncode == 1
    assert len([line for line in result.stdout.splitlines() if line.startswith("::")]) == 1


def test_a_missing_path_is_exit_2_named_and_annotated(tmp_path: Path) -> None:
    runner = ActionRunner(tmp_path / "repo", paths="runs/overfit-run runs/nowhere")
    overfit_run(runner.workspace)
    result = runner.run("diagnose")
    assert result.returncode == 2
    assert result.outputs["exit-code"] == "2"
    (line,) = result.stderr.strip().splitlines()  # named once, not by every pass
    assert line.startswith("error: runs/nowhere")
    annotations = [line for line in result.stdout.splitlines() if line.startswith("::")]
    assert any(line.startswith("::error") and "runs/nowhere" in line for line in annotations)
    assert "overfit" in runner.summary.read_text()  # the readable run is still reported


def test_no_paths_is_a_usage_error(tmp_path: Path) -> None:
    runner = ActionRunner(tmp_path / "repo", paths="  \n ")
    result = runner.run("diagnose")
    assert result.returncode == 2
    assert result.stderr == "error: paths: no history given; name files, run directories or folders\n"
    assert result.outputs["exit-code"] == "2"


# ---------------------------------------------------------------- the action's shape


def test_inputs_outputs_and_composite_steps() -> None:
    spec = action()
    assert set(spec["inputs"]) == {"paths", "fail-on", "format", "install-train"}
    assert spec["inputs"]["paths"]["required"] is True
    assert spec["inputs"]["fail-on"]["default"] == "overfit"
    assert spec["inputs"]["install-train"]["default"] == "false"
    assert spec["runs"]["using"] == "composite"
    assert all(s["shell"] == "bash" for s in spec["runs"]["steps"])
    assert spec["outputs"]["exit-code"]["value"] == "${{ steps.diagnose.outputs.exit-code }}"
    ids = [s["id"] for s in spec["runs"]["steps"]]
    assert ids == ["install", "diagnose"]


@pytest.mark.parametrize(("install_train", "spec"), [("true", "[train]"), ("false", "")])
def test_the_install_step_adds_the_train_extra_only_when_asked(install_train: str, spec: str) -> None:
    # The step itself needs a package index; its choice of what to install runs here.
    install = step("install")
    script = install["run"].replace("python -m pip install", "echo")
    env = {
        **os.environ,
        "FITDOC_SOURCE": str(REPO),
        "FITDOC_INSTALL_TRAIN": install_train,
    }
    assert install["env"]["FITDOC_SOURCE"] == "${{ github.action_path }}"
    proc = subprocess.run(["bash", "-eo", "pipefail", "-c", script], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == f"{REPO}{spec}"


def test_the_install_step_refuses_a_bad_install_train() -> None:
    script = step("install")["run"]
    env = {**os.environ, "FITDOC_SOURCE": str(REPO), "FITDOC_INSTALL_TRAIN": "yes"}
    proc = subprocess.run(["bash", "-eo", "pipefail", "-c", script], env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr == "error: install-train: expected true or false, got 'yes'\n"


def test_the_readme_shows_the_action() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert re.search(r"uses: \S+/fitdoc@\S+", readme)
    for name in action()["inputs"]:
        assert f"{name}:" in readme, name
