"""The CI recipe (docs/ci.md, .github/workflows/fitdoc-example.yml), run as a runner would.

The steps' `run:` scripts are taken from the workflow file itself and executed
with `bash --noprofile --norc -eo pipefail` (what Actions runs for `shell:
bash`), with the variables a runner sets: GITHUB_ACTIONS, CI,
GITHUB_STEP_SUMMARY, GITHUB_OUTPUT. So the commands users copy are the ones
tested.
"""

from __future__ import annotations

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
WORKFLOW = REPO / ".github" / "workflows" / "fitdoc-example.yml"
DOC = REPO / "docs" / "ci.md"
EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


def load_workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def job() -> dict:
    (only,) = load_workflow()["jobs"].values()
    return only


def step(step_id: str) -> dict:
    return next(s for s in job()["steps"] if s.get("id") == step_id)


@dataclass
class StepResult:
    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]


class Runner:
    """Runs workflow steps in a workspace, keeping step outputs and the job summary."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.summary = workspace.parent / "step_summary.md"
        self.summary.write_text("")
        self.outputs: dict[str, dict[str, str]] = {}

    def expand(self, text: str) -> str:
        def value(match: re.Match[str]) -> str:
            expr = match.group(1)
            parts = expr.split(".")
            if len(parts) == 4 and parts[0] == "steps" and parts[2] == "outputs":
                return self.outputs.get(parts[1], {}).get(parts[3], "")
            raise AssertionError(f"the test runner does not evaluate ${{{{ {expr} }}}}")

        return EXPRESSION.sub(value, text)

    def run(self, step_id: str, env_overrides: dict[str, str] | None = None) -> StepResult:
        spec = step(step_id)
        output_file = self.workspace.parent / f"output_{step_id}.txt"
        output_file.write_text("")
        env = dict(os.environ)
        env.update({k: str(v) for k, v in job().get("env", {}).items()})
        env.update({k: self.expand(str(v)) for k, v in spec.get("env", {}).items()})
        env.update(
            {
                "CI": "true",
                "GITHUB_ACTIONS": "true",
                "GITHUB_WORKSPACE": str(self.workspace),
                "GITHUB_STEP_SUMMARY": str(self.summary),
                "GITHUB_OUTPUT": str(output_file),
                # `fitdoc` on PATH, as after the install step.
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            }
        )
        env.update(env_overrides or {})
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


def user_repo(tmp_path: Path) -> Path:
    """A checkout holding the recipe's config where the workflow expects it."""
    workspace = tmp_path / "repo"
    config = job()["env"]["FITDOC_CONFIG"]
    (workspace / config).parent.mkdir(parents=True)
    shutil.copy(REPO / config, workspace / config)
    return workspace


def overfit_run_dir(root: Path) -> Path:
    epochs = np.arange(120)
    train = 0.02 + 0.8 * np.exp(-epochs / 12)
    val = 0.2 + 0.6 * np.exp(-epochs / 8) + 0.003 * np.clip(epochs - 25, 0, None)
    run_dir = root / "runs" / "overfit-run"
    run_dir.mkdir(parents=True)
    frame = pd.DataFrame(
        {"epoch": epochs, "loss": train**2, "mae": train, "val_loss": val**2, "val_mae": val}
    )
    frame.to_csv(run_dir / "history.csv", index=False)
    return run_dir


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Runner, StepResult]:
    """The recipe's train step on its example config (a few seconds): shared by the tests below."""
    runner = Runner(user_repo(tmp_path_factory.mktemp("ci")))
    return runner, runner.run("train")


@pytest.mark.training
def test_train_step_writes_a_run_directory_and_outputs_its_path(trained: tuple[Runner, StepResult]) -> None:
    runner, result = trained
    assert result.returncode == 0, result.stderr
    run_dir = runner.workspace / result.outputs["run_dir"]
    assert run_dir.parent == runner.workspace / "runs"
    for name in ("history.csv", "config.yaml", "run.json"):
        assert (run_dir / name).is_file(), name
    assert (runner.workspace / "fitdoc-train.log").read_text().splitlines()[-1] == result.outputs["run_dir"]


@pytest.mark.training
def test_report_and_gate_pass_on_the_example_config(trained: tuple[Runner, StepResult]) -> None:
    runner, _ = trained
    report = runner.run("report")
    assert report.returncode == 0, report.stderr
    run_dir = runner.workspace / runner.outputs["train"]["run_dir"]
    assert (run_dir / "curves.png").stat().st_size > 1000
    assert "![learning curves](curves.png)" in (run_dir / "report.md").read_text()
    summary = runner.summary.read_text()
    assert summary.startswith("## fitdoc diagnosis")
    assert "curves.png" not in summary  # the job summary cannot show an artifact's picture

    gate = runner.run("gate")
    # The example config is meant to pass its own gate (a balanced run).
    assert gate.returncode == 0, gate.stdout + gate.stderr
    (annotation,) = gate.stdout.splitlines()
    assert annotation.startswith(("::notice file=", "::warning file="))
    assert "history.csv" in annotation


def test_gate_fails_the_job_on_an_overfit_run(tmp_path: Path) -> None:
    runner = Runner(user_repo(tmp_path))
    run_dir = overfit_run_dir(runner.workspace)
    runner.outputs["train"] = {"run_dir": str(run_dir.relative_to(runner.workspace))}

    report = runner.run("report")
    assert report.returncode == 0, report.stderr
    assert "overfit" in runner.summary.read_text()

    gate = runner.run("gate")
    assert gate.returncode == 1, gate.stdout + gate.stderr
    (annotation,) = gate.stdout.splitlines()
    # A verdict named in --fail-on is an error annotation (others are warnings or notices).
    assert re.match(r"::error file=runs/overfit-run/history\.csv,title=fitdoc%3A overfit", annotation)
    assert "%0ASuggested change: " in annotation


def test_gate_on_a_missing_run_is_a_usage_error(tmp_path: Path) -> None:
    runner = Runner(user_repo(tmp_path))
    gate = runner.run("gate", {"RUN_DIR": "runs/does-not-exist"})
    assert gate.returncode == 2
    assert gate.stderr.strip().startswith("error: runs/does-not-exist")


def test_workflow_shape() -> None:
    spec = job()
    assert spec["defaults"]["run"]["shell"] == "bash"  # -eo pipefail for `fitdoc train | tee`
    upload = next(s for s in spec["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert upload["with"]["path"] == "${{ steps.train.outputs.run_dir }}"
    assert "always()" in upload["if"]
    ids = [s.get("id") for s in spec["steps"]]
    assert ids.index("train") < ids.index("report") < ids.index("gate")
    assert "--fail-on" in step("gate")["run"]
    assert "$GITHUB_STEP_SUMMARY" in step("report")["run"]


def test_the_docs_show_the_workflow_verbatim() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert WORKFLOW.read_text(encoding="utf-8").strip() in text
