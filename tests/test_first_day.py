"""Issue 13, what a new user trips on: each stumble, checked the way the user met it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fitdoc.cli import app, next_run_name

runner = CliRunner()
VERDICTS = Path(__file__).parent / "fixtures" / "verdicts"
NOREG = VERDICTS / "founding-noreg"
OVERREG = VERDICTS / "founding-l2-0.001"
BALANCED = VERDICTS / "founding-l2-0.0001"


def run_fitdoc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fitdoc", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


# ---------------------------------------------------------------- 4. --emit-config


def test_emitted_config_is_named_after_its_change(tmp_path: Path) -> None:
    out = tmp_path / "next.yaml"
    proc = run_fitdoc("diagnose", str(NOREG), "--emit-config", str(out))
    assert proc.returncode == 0, proc.stderr
    emitted = yaml.safe_load(out.read_text())
    assert emitted["model"]["l2"] == pytest.approx(1e-4)
    assert emitted["name"] == "founding-noreg-l2-0.0001"
    assert "founding-noreg-l2-0.0001" in proc.stderr


def test_emitting_twice_replaces_the_suffix_instead_of_stacking(tmp_path: Path) -> None:
    config = tmp_path / "mine.yaml"
    config.write_text("name: founding-l2-1e-3\ndata:\n  synthetic: founding\nmodel:\n  l2: 0.001\n")
    out = tmp_path / "next.yaml"
    result = runner.invoke(
        app, ["diagnose", str(OVERREG / "history.csv"), "--config", str(config), "--emit-config", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(out.read_text())["name"] == "founding-l2-0.0001"


@pytest.mark.parametrize(
    ("name", "key", "value", "expected"),
    [
        ("run", "model.dropout", 0.2, "run-dropout-0.2"),
        ("run-l2-1e-05", "model.l2", 0.0, "run-l2-0"),
        ("run", "training.epochs", 2000, "run-epochs-2000"),
        ("run", "model.hidden_layers", 6, "run-hidden-layers-6"),
        ("run", "training.early_stopping", {"patience": 50}, "run-early-stopping-patience-50"),
        ("x" * 100, "model.l2", 1e-4, "x" * 90 + "-l2-0.0001"),
    ],
)
def test_next_run_name(name: str, key: str, value: object, expected: str) -> None:
    assert next_run_name(name, key, value) == expected


def test_balanced_run_writes_nothing_says_so_and_exits_0(tmp_path: Path) -> None:
    out = tmp_path / "next.yaml"
    proc = run_fitdoc("diagnose", str(BALANCED), "--emit-config", str(out), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert not out.exists()
    assert (
        proc.stderr.strip() == f"{out}: nothing written: the run is balanced, so there is no change to apply"
    )
