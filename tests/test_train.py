"""run_training end to end on tiny data: run directory, history, reproducibility, divergence."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from fitdoc.config import Config
from fitdoc.errors import FitdocError
from fitdoc.history.rundir import HISTORY_COLUMNS, HistoryWriter, create_run_dir, safe_name
from fitdoc.training.run import Decision, EpochMonitor, ProgressDisplay, StopSignals

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

COLUMNS = [*HISTORY_COLUMNS, "test_mae"]


def tiny(tmp_path: Path, **changes: object) -> Config:
    raw = {
        "name": "tiny",
        "seed": 7,
        "data": {"synthetic": "wave", "n_samples": 200, "heldout_samples": 100},
        "model": {"hidden_layers": 2, "units": 8, "l2": 1e-4, "dropout": 0.2},
        "training": {"epochs": 4, "batch_size": 32},
        "output": {"dir": str(tmp_path / "runs")},
    }
    return Config.model_validate(raw).with_changes(changes)


def quiet() -> Console:
    return Console(file=io.StringIO(), width=100)


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def numeric_history(path: Path) -> list[list[float]]:
    header, rows = read_rows(path)
    return [[float(row[c]) for c in header if c != "epoch_seconds"] for row in rows]


def train(config: Config, console: Console | None = None, progress: bool = False):
    from fitdoc.training.run import run_training

    return run_training(config, console=console or quiet(), progress=progress)


# ---------------------------------------------------------------- end to end


@pytest.mark.training
@pytest.mark.parametrize("engine", ["fast", "keras"])
def test_run_directory_contents(tmp_path: Path, engine: str) -> None:
    result = train(tiny(tmp_path, **{"training.engine": engine}))
    assert result.status == "completed"
    assert result.run_dir.parent == tmp_path / "runs"
    assert result.run_dir.name.startswith("tiny-")
    assert {p.name for p in result.run_dir.iterdir()} == {
        "config.yaml",
        "history.csv",
        "run.json",
        "model.keras",
    }
    header, rows = read_rows(result.history_path)
    assert header == COLUMNS
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    for row in rows:
        values = {k: float(v) for k, v in row.items()}
        assert all(math.isfinite(v) for v in values.values())
        assert values["reg_loss"] > 0 and values["loss"] > values["reg_loss"]
        assert values["learning_rate"] == pytest.approx(0.001)
    record = json.loads((result.run_dir / "run.json").read_text())
    assert record["status"] == "completed" and record["engine"] == engine
    assert record["seed"] == 7
    assert record["data"]["n_train"] == 160 and record["data"]["n_val"] == 40
    assert record["model"]["parameters"] == 3 * 8 + 8 + 8 * 8 + 8 + 9
    assert record["epochs"]["completed"] == 4
    assert record["final"]["epoch"] == 3
    assert record["best"]["val_mae"] == min(float(r["val_mae"]) for r in rows)
    assert record["versions"]["tensorflow"] and record["timings"]["training_seconds"] > 0
    from fitdoc.config import load_config

    assert load_config(result.run_dir / "config.yaml") == tiny(tmp_path, **{"training.engine": engine})


@pytest.mark.training
@pytest.mark.parametrize("engine", ["fast", "keras"])
def test_same_seed_same_history(tmp_path: Path, engine: str) -> None:
    config = tiny(tmp_path, **{"training.engine": engine, "training.epochs": 3})
    first = numeric_history(train(config).history_path)
    second = numeric_history(train(config).history_path)
    np.testing.assert_allclose(first, second, rtol=1e-6, atol=1e-12)
    other = numeric_history(train(config.with_changes({"seed": 8})).history_path)
    assert not np.allclose(other, first, rtol=1e-3)


@pytest.mark.training
def test_engines_compute_the_same_training(tmp_path: Path) -> None:
    """Without shuffling or dropout both engines take the same steps, so the curves coincide."""
    config = tiny(tmp_path, **{"training.shuffle": False, "model.dropout": 0.0, "training.epochs": 3})
    fast = numeric_history(train(config).history_path)
    reference = numeric_history(train(config.with_changes({"training.engine": "keras"})).history_path)
    np.testing.assert_allclose(fast, reference, rtol=2e-3)


@pytest.mark.training
def test_divergence_stops_with_a_message(tmp_path: Path) -> None:
    config = tiny(
        tmp_path,
        **{
            "model.activation": "linear",
            "model.hidden_layers": 5,
            "model.units": 64,
            "model.dropout": 0.0,
            "training.learning_rate": 10.0,
            "training.batch_size": 16,
            "training.epochs": 30,
        },
    )
    result = train(config)
    assert result.status == "diverged"
    assert "diverged" in result.message and "learning_rate" in result.message
    header, rows = read_rows(result.history_path)
    assert header == COLUMNS
    assert all(math.isfinite(float(v)) for row in rows for v in row.values())
    record = json.loads((result.run_dir / "run.json").read_text())
    assert record["status"] == "diverged" and record["epochs"]["completed"] == len(rows)


@pytest.mark.training
def test_early_stopping_ends_completed(tmp_path: Path) -> None:
    config = tiny(
        tmp_path,
        **{
            "training.epochs": 400,
            "training.early_stopping": {"patience": 3},
            "training.learning_rate": 0.05,
        },
    )
    result = train(config)
    assert result.status == "completed"
    assert "early stopping" in result.message
    _, rows = read_rows(result.history_path)
    assert len(rows) < 400


@pytest.mark.training
def test_progress_lines_on_a_non_terminal_and_silence_when_quiet(tmp_path: Path) -> None:
    loud, silent = quiet(), quiet()
    train(tiny(tmp_path, **{"training.epochs": 20}), console=loud, progress=True)
    train(tiny(tmp_path, **{"training.epochs": 20}), console=silent, progress=False)
    lines = loud.file.getvalue().splitlines()
    assert lines[0].startswith("epoch 1/20") and lines[-1].startswith("epoch 20/20")
    assert len(lines) == 11 and "val_mae" in lines[-1] and "ETA" in lines[-1]
    assert silent.file.getvalue() == ""


@pytest.mark.training
def test_output_dir_must_be_a_writable_directory(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FitdocError) as info:
        train(tiny(tmp_path, **{"output.dir": str(blocker)}))
    assert info.value.field == "output.dir"
    with pytest.raises(FitdocError):
        train(tiny(tmp_path, **{"output.dir": str(blocker / "below")}))


# ---------------------------------------------------------------- pieces without TensorFlow


def test_run_dirs_are_unique_and_stay_inside(tmp_path: Path) -> None:
    made: list[Path] = []

    def make() -> None:
        made.append(create_run_dir(tmp_path, "../../etc/passwd", now=1_700_000_000))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made)) == 8
    assert all(p.parent == tmp_path and p.is_dir() for p in made)
    assert safe_name("../..") == "run" and safe_name("a/b c") == "a-b-c" and safe_name(".hidden") == "hidden"


def test_monitor_keeps_finite_history_when_loss_goes_nan(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    row = {"loss": 0.5, "mae": 0.4, "val_loss": 0.6, "val_mae": 0.5, "reg_loss": 0.0}
    with (
        HistoryWriter(path, HISTORY_COLUMNS) as writer,
        ProgressDisplay(quiet(), total=5, enabled=False) as display,
    ):
        monitor = EpochMonitor(writer=writer, display=display, signals=StopSignals(), learning_rate=0.001)
        assert monitor.epoch_done(0, row, 0.1, lambda: None) == Decision.CONTINUE
        assert monitor.epoch_done(1, {**row, "loss": math.inf}, 0.1, lambda: None) == Decision.DIVERGED
    assert "loss became inf at epoch 1" in monitor.reason
    header, rows = read_rows(path)
    assert header == list(HISTORY_COLUMNS) and len(rows) == 1


def test_stop_signals_restore_previous_handlers() -> None:
    import signal

    before = signal.getsignal(signal.SIGTERM)
    with StopSignals() as signals:
        assert signal.getsignal(signal.SIGTERM) != before
        signal.raise_signal(signal.SIGTERM)
        assert signals.requested == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == before
