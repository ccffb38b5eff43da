"""`fitdoc tune`: the driver around the ladder (tune directory, resume, display)
and one tiny real tune through the CLI. The loop's decisions themselves are
tested over scripted verdicts in test_ladder.py."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from fitdoc.config import Config, load_config
from fitdoc.errors import FitdocError
from fitdoc.tune import run_tune
from fitdoc.tune.display import TuneDisplay, changes_from
from fitdoc.tune.plan import Move, Trial
from fitdoc.tune.state import BEST_YAML, TUNE_CSV, TUNE_JSON, save_state, trials_to_csv
from fitdoc.tune.trials import settings_of, trial_config

TINY = """\
name: tiny
seed: 3
data: {synthetic: founding, n_samples: 200}
model: {hidden_layers: 2, units: 8}
training: {epochs: 6, batch_size: 50}
output: {dir: OUT}
"""


def tiny_config(tmp_path: Path, **text_replacements: str) -> Path:
    text = TINY.replace("OUT", str(tmp_path / "runs"))
    for old, new in text_replacements.items():
        text = text.replace(old, new)
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    return path


def fitdoc_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "fitdoc", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


def load_state(tune_dir: Path) -> dict:
    return json.loads((tune_dir / TUNE_JSON).read_text())


# ---------------------------------------------------------------- no training


def test_settings_and_trial_config_round_trip(tmp_path):
    config = load_config(tiny_config(tmp_path))
    settings = settings_of(config)
    assert settings == {
        "model.l2": 0.0,
        "model.dropout": 0.0,
        "training.epochs": 6,
        "training.early_stopping": None,
        "model.units": 8,
        "model.l1": 0.0,
        "model.hidden_layers": 2,
    }
    changed = {**settings, "model.l2": 1e-4, "training.early_stopping": {"patience": 3}}
    trial = trial_config(config, changed, 4, tmp_path / "tune")
    assert trial.model.l2 == 1e-4
    assert trial.training.early_stopping.patience == 3
    assert trial.output.dir == str(tmp_path / "tune" / "trials")
    assert trial.name == "trial-04"
    assert settings_of(trial)["training.early_stopping"]["patience"] == 3


def test_resume_refuses_a_different_config(tmp_path):
    config = load_config(tiny_config(tmp_path))
    tune_dir = tmp_path / "tune"
    tune_dir.mkdir()
    save_state(tune_dir, config, [], 3, 1, status="interrupted", stop_reason="")
    other = config.with_changes({"model.units": 9})
    with pytest.raises(FitdocError) as err:
        run_tune(other, tune_dir=tune_dir, max_runs=3, resume=True, console=Console(file=io.StringIO()))
    assert "model.units" in err.value.one_line() and "different config" in err.value.one_line()


def test_an_existing_tune_needs_resume_and_resume_needs_one(tmp_path):
    config = load_config(tiny_config(tmp_path))
    quiet = Console(file=io.StringIO())
    with pytest.raises(FitdocError, match="nothing to resume"):
        run_tune(config, tune_dir=tmp_path / "empty", max_runs=2, resume=True, console=quiet)
    tune_dir = tmp_path / "tune"
    tune_dir.mkdir()
    save_state(tune_dir, config, [], 3, 1, status="completed", stop_reason="")
    with pytest.raises(FitdocError, match="--resume"):
        run_tune(config, tune_dir=tune_dir, max_runs=2, console=quiet)


def test_corrupt_tune_json_is_a_one_line_error(tmp_path):
    config = load_config(tiny_config(tmp_path))
    tune_dir = tmp_path / "tune"
    tune_dir.mkdir()
    (tune_dir / TUNE_JSON).write_text("{not json")
    with pytest.raises(FitdocError, match="unreadable tune state"):
        run_tune(config, tune_dir=tune_dir, max_runs=2, resume=True, console=Console(file=io.StringIO()))


def test_csv_has_one_row_per_trial():
    trials = [
        Trial(0, {"model.l2": 0.0, "model.dropout": 0.0, "training.epochs": 10}, "overfit", "gap", 0.02),
        Trial(1, {"model.l2": 1e-4, "model.dropout": 0.0, "training.epochs": 10}, "balanced", None, 0.01,
              change="model.l2: 0 -> 0.0001", reason="trial 0 overfit (gap) -> more regularization"),
    ]  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(trials_to_csv(trials))))
    assert [r["verdict"] for r in rows] == ["overfit", "balanced"]
    assert rows[1]["l2"] == "0.0001" and rows[1]["best_val_mae"] == "0.01"
    assert rows[1]["reason"].startswith("trial 0 overfit")


def test_best_is_described_by_its_changes_from_the_base():
    base = {"model.l2": 0.0, "model.dropout": 0.0, "training.epochs": 1000, "training.early_stopping": None}
    best = {**base, "model.l2": 1e-4, "training.epochs": 2000}
    assert changes_from(base, best) == "model.l2: 0 -> 0.0001, training.epochs: 1000 -> 2000"
    assert changes_from(base, base) == "the base config"


def test_live_table_on_a_terminal_and_plain_lines_elsewhere():
    move = Move(
        {"model.l2": 1e-4}, 0, "model.l2: 0 -> 0.0001", "trial 0 overfit (gap) -> more regularization"
    )
    done = Trial(1, move.settings, "balanced", None, 0.0123, change=move.change, reason=move.reason)

    plain = io.StringIO()
    with TuneDisplay(Console(file=plain, width=200), max_runs=4) as display:
        display.started(1, move)
        display.finished(done)
    lines = plain.getvalue().splitlines()
    assert lines[0] == "trial 1: model.l2: 0 -> 0.0001  (why: trial 0 overfit (gap) -> more regularization)"
    assert lines[1] == "trial 1: balanced, best val MAE 0.0123"

    term = io.StringIO()
    console = Console(file=term, width=160, force_terminal=True, color_system=None)
    with TuneDisplay(console, max_runs=4) as display:
        display.started(1, move)
        display.finished(done)
    text = term.getvalue()
    assert "fitdoc tune (budget 4 trainings)" in text
    assert "val MAE" in text and "0.0123" in text and "balanced" in text


# ---------------------------------------------------------------- real trainings (tiny)


@pytest.mark.training
def test_tiny_tune_through_the_cli_then_resume(tmp_path):
    config_path = tiny_config(tmp_path)
    tune_dir = tmp_path / "tune"
    first = fitdoc_cli("tune", str(config_path), "--max-runs", "2", "--dir", str(tune_dir), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().splitlines()[-1] == str(tune_dir)
    state = load_state(tune_dir)
    assert state["status"] == "completed"
    assert state["stop_reason"].startswith("budget spent (2 of 2")
    assert [t["index"] for t in state["trials"]] == [0, 1]
    first_run_dirs = [t["run_dir"] for t in state["trials"]]
    for trial in state["trials"]:
        assert (Path(trial["run_dir"]) / "history.csv").is_file()
        assert Path(trial["run_dir"]).parent == tune_dir / "trials"
        assert trial["verdict"] in ("overfit", "underfit", "balanced", "inconclusive")
        assert trial["val_mae"] > 0
    # Each step is explained: the change and why, in the log and in tune.json.
    assert "trial 1: " in first.stderr and "why: trial 0 " in first.stderr
    assert state["trials"][1]["reason"].startswith("trial 0 ")
    best = load_config(tune_dir / BEST_YAML)
    assert isinstance(best, Config) and best.name == "tiny"
    assert best.output.dir == str(tmp_path / "runs")
    best_trial = state["trials"][state["best"]]
    assert best_trial["val_mae"] == min(t["val_mae"] for t in state["trials"])
    assert settings_of(best) == best_trial["settings"]
    assert len(list(csv.DictReader((tune_dir / TUNE_CSV).open()))) == 2

    # Resume with a bigger budget: the two finished trials are kept, one more trains.
    again = fitdoc_cli(
        "tune", str(config_path), "--max-runs", "3", "--dir", str(tune_dir), "--resume", cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr
    state = load_state(tune_dir)
    assert [t["index"] for t in state["trials"]] == [0, 1, 2]
    assert [t["run_dir"] for t in state["trials"][:2]] == first_run_dirs
    assert len(list((tune_dir / "trials").iterdir())) == 3
    keys = [json.dumps(t["settings"], sort_keys=True) for t in state["trials"]]
    assert len(set(keys)) == 3

    # A second start in the same directory without --resume is refused (exit 2, one line).
    refused = fitdoc_cli("tune", str(config_path), "--max-runs", "3", "--dir", str(tune_dir), cwd=tmp_path)
    assert refused.returncode == 2
    assert "--resume" in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.training
def test_parallel_trials_run_as_train_processes(tmp_path):
    config = load_config(tiny_config(tmp_path))
    log = io.StringIO()
    result = run_tune(
        config, tune_dir=tmp_path / "tune", max_runs=2, parallel=2, console=Console(file=log, width=200)
    )
    assert result.status == "completed"
    assert [t.index for t in result.trials] == [0, 1]
    second = result.trials[1]
    # Trained by a `fitdoc train --quiet` process from the trial's own config file.
    assert (tmp_path / "tune" / "configs" / "trial-01.yaml").is_file()
    assert Path(second.run_dir).parent == tmp_path / "tune" / "trials"
    assert second.verdict is not None and second.val_mae is not None
    assert result.exit_code == 0
