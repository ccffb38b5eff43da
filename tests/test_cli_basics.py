"""The CLI surface that needs no training: help, version, schema, usage errors, imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fitdoc import __version__
from fitdoc.cli import app

runner = CliRunner()


def run_fitdoc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fitdoc", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"fitdoc {__version__}"


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "diagnose", "plot", "compare", "tune", "rules", "schema"):
        assert command in result.stdout


def test_schema_is_json_schema() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "Config"
    assert "data" in schema["required"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["diagnose", "--bogus"], "No such option: --bogus"),
        (["nonsense"], "No such command"),
        (["train"], "Missing argument 'CONFIG'"),
        (["diagnose", "x.csv", "--fail-on", "overfot"], "--fail-on: unknown verdict overfot"),
    ],
)
def test_usage_errors_are_one_line_exit_2(args: list[str], words: str) -> None:
    proc = run_fitdoc(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert words in lines[0]
    assert "Traceback" not in proc.stderr


def test_bad_config_is_one_line_naming_file_and_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("data:\n  synthetic: founding\nmodel:\n  l2s: 0.1\n")
    proc = run_fitdoc("train", str(config))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {config}: model.l2s: unknown key; did you mean 'l2'?"


def test_missing_config_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2
    assert "file not found" in result.stderr


def test_train_without_tensorflow_says_how_to_install(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  synthetic: founding\n  n_samples: 100\ntraining:\n  epochs: 2\n")
    # A finder that refuses TensorFlow and Keras, as on a core-only install.
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorflow', 'keras'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from fitdoc.cli import main\n"
        f"main(['train', {str(config)!r}])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: TensorFlow is not installed; install the training extra: pip install 'fitdoc[train]'"
    ]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
