"""W&B runs written by `wandb.init(mode="offline")` itself, read back through wandb's reader;
W&B panel exports through the CSV reader; the run's config as the suggestion's knobs.

Writing a run needs the `wandb` extra; without it these tests skip, except under
CI=true where the extra is installed and they must run. Nothing reaches the
network: the writer runs offline, and the reader is wandb-core's inspector with
its telemetry off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fitdoc.cli import app
from fitdoc.history.load import discover, read_history
from fitdoc.history.readers import wandbrun

TRAIN = [1.0 / (e + 1) for e in range(30)]
VAL = [0.55 + 0.002 * (e - 10) ** 2 for e in range(30)]  # falls, then rises: an overfit

# One subprocess writes both runs: importing wandb costs a second or two. Run directories
# are named offline-run-<second>-<id>: both runs often start in the same second, so their
# ids are set to sort in the order they were written.
WRITER = """
import sys, wandb
train, val = eval(sys.argv[1]), eval(sys.argv[2])
run = wandb.init(project="fitdoc", id="fitdoc1", config={"l2": 0.0, "dropout": 0.0, "lr": 1e-3, "epochs": 30})
for e, (t, v) in enumerate(zip(train, val)):
    wandb.log({"epoch": e, "train/loss": t, "val/loss": v})
run.finish()
# Train every batch (10 a epoch), validation at the end of each epoch, config updated later.
run = wandb.init(project="fitdoc", id="fitdoc2", config={"optimizer": {"lr": 0.01}})
wandb.config.update({"weight_decay": 0.01})
for e in range(8):
    for b in range(10):
        wandb.log({"train/loss": float(100 * e + b), "trainer/epoch": e})
    wandb.log({"val/loss": 1000.0 + e, "trainer/epoch": e})
run.finish()
"""


def _need_wandb() -> None:
    if os.environ.get("CI", "").lower() != "true":
        pytest.importorskip("wandb", reason="wandb not installed (an optional extra)")


def offline_env(tmp: Path) -> dict[str, str]:
    """A wandb that stays offline and quiet and writes under `tmp`."""
    return dict(
        os.environ,
        WANDB_MODE="offline",
        WANDB_DIR=str(tmp),
        WANDB_SILENT="true",
        WANDB_CONSOLE="off",
        WANDB_DISABLE_GIT="true",
        WANDB_CONFIG_DIR=str(tmp / ".config"),
        WANDB_CACHE_DIR=str(tmp / ".cache"),
    )


@pytest.fixture(scope="module")
def wandb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _need_wandb()
    tmp = tmp_path_factory.mktemp("wb")
    proc = subprocess.run(
        [sys.executable, "-c", WRITER, repr(TRAIN), repr(VAL)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp,
        env=offline_env(tmp),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "wandb"


def _runs(wandb_dir: Path) -> list[Path]:
    runs = sorted(wandb_dir.glob("offline-run-*"))
    assert len(runs) == 2, runs
    return runs


def test_an_offline_run_reads_value_for_value_with_its_config(wandb_dir: Path) -> None:
    first, _ = _runs(wandb_dir)
    c = read_history(first)
    assert c.format == "wandb" and (c.train_name, c.val_name) == ("train/loss", "val/loss")
    assert c.point == "epoch"
    np.testing.assert_array_equal(c.epochs, np.arange(30))
    np.testing.assert_allclose(c.train, TRAIN)
    np.testing.assert_allclose(c.val, VAL)
    assert c.settings["model.l2"] == 0 and c.settings["model.dropout"] == 0
    assert c.settings["training.epochs"] == 30
    assert any(n.startswith("W&B config used: ") and "l2=0" in n for n in c.notes)


def test_a_wandb_folder_is_a_folder_of_runs_and_the_config_makes_the_suggestion_concrete(
    wandb_dir: Path,
) -> None:
    first, second = _runs(wandb_dir)
    # `latest-run` links to the second run; the walk reads each run once, and no debug log.
    assert [s.history_path for s in discover([wandb_dir])] == [first, second]
    assert [s.history_path for s in discover([wandb_dir.parent])] == [first, second]
    result = CliRunner().invoke(app, ["diagnose", str(first), "--format", "json"])
    assert result.exit_code == 0, result.output
    (d,) = json.loads(result.stdout)["results"]
    assert d["verdict"] == "overfit"
    change = d["suggestion"]
    # A concrete first rung from the run's config (L2 0 -> 1e-4 or dropout 0 -> 0.2, as ranked).
    assert (change["key"], change["from"], change["to"]) in {
        ("model.l2", 0.0, 0.0001),
        ("model.dropout", 0.0, 0.2),
    }
    assert any("W&B config used" in n for n in d["notes"])


def test_per_batch_train_logs_pair_with_the_evaluation_after_them(wandb_dir: Path) -> None:
    _, second = _runs(wandb_dir)
    c = read_history(second)
    assert (c.train_name, c.val_name) == ("train/loss", "val/loss")
    np.testing.assert_allclose(c.val, [1000.0 + e for e in range(8)])
    # Each evaluation's train value is the mean of that epoch's ten batches, never the next epoch's.
    np.testing.assert_allclose(c.train, [100 * e + 4.5 for e in range(8)])
    np.testing.assert_array_equal(c.epochs, np.arange(8))  # from the logged `trainer/epoch`
    # Config set after init and nested config keys count too.
    assert c.settings["model.l2"] == 0.01
    assert c.settings["training.learning_rate"] == 0.01


def test_run_state_says_finished_once_the_run_has_ended(wandb_dir: Path) -> None:
    first, _ = _runs(wandb_dir)
    assert wandbrun.run_state(first) == "finished"
    # The log itself names the same run as its directory.
    assert wandbrun.log_file(first) == next(first.glob("run-*.wandb"))


def test_without_the_extra_one_line_names_the_path_and_the_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "wandb" / "offline-run-20260101_000000-abc"
    run.mkdir(parents=True)
    (run / "run-abc.wandb").write_bytes(b":W&B\x00\x01\x00")
    monkeypatch.setattr(wandbrun, "find_spec", lambda _name: None)
    result = CliRunner().invoke(app, ["diagnose", str(run)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(run) in lines[0] and "pip install 'fitdoc[wandb]'" in lines[0]
    assert "Traceback" not in result.output


def test_wandb_export_csv_drops_the_bounds_and_the_run_prefix(tmp_path: Path) -> None:
    # The UI's "Export CSV" of a panel with two lines of one run, sampled every step.
    head = [
        "Step",
        "brisk-sun-3 - train/loss",
        "brisk-sun-3 - train/loss__MIN",
        "brisk-sun-3 - train/loss__MAX",
        "brisk-sun-3 - val/loss",
        "brisk-sun-3 - val/loss__MIN",
        "brisk-sun-3 - val/loss__MAX",
        "calm-sea-4 - val/loss",
    ]
    rows = [",".join(f'"{h}"' for h in head)]
    for e, (t, v) in enumerate(zip(TRAIN, VAL, strict=True)):
        rows.append(f"{e},{t},{t},{t},{v},{v},{v},{v * 2}")
    export = tmp_path / "wandb_export_2026-12-01T10_00_00.csv"
    export.write_text("\n".join(rows) + "\n")
    c = read_history(export)
    assert c.format == "wandb_csv" and (c.train_name, c.val_name) == ("train/loss", "val/loss")
    np.testing.assert_allclose(c.train, TRAIN)
    np.testing.assert_allclose(c.val, VAL)
    assert any("calm-sea-4" in n and "brisk-sun-3" in n for n in c.notes)


def test_a_sparse_export_pairs_each_validation_with_the_train_steps_before_it(tmp_path: Path) -> None:
    rows = ['"Step","r - train_loss","r - train_loss__MIN","r - train_loss__MAX","r - val_loss"']
    for step in range(1, 31):
        val = f"{100.0 + step}" if step % 10 == 0 else ""
        rows.append(f"{step},{float(step)},{float(step)},{float(step)},{val}")
    export = tmp_path / "export.csv"
    export.write_text("\n".join(rows) + "\n")
    c = read_history(export)
    np.testing.assert_allclose(c.val, [110.0, 120.0, 130.0])
    np.testing.assert_allclose(c.train, [5.5, 15.5, 25.5])


LIVE_WRITER = """
import time, wandb
run = wandb.init(project="fitdoc", config={"l2": 0.0, "dropout": 0.0})
for e in range(300):
    wandb.log({"epoch": e, "train/loss": 1 / (e + 1), "val/loss": 0.3 + 1 / (e + 1) + 0.0008 * max(0, e - 8) ** 2})
    time.sleep(0.05)
run.finish()
"""


def test_watch_follows_a_live_wandb_run_and_stops_it_on_overfit(tmp_path: Path) -> None:
    _need_wandb()
    writer = subprocess.Popen([sys.executable, "-c", LIVE_WRITER], cwd=tmp_path, env=offline_env(tmp_path))
    try:
        deadline = time.monotonic() + 60
        while not list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb")):
            assert time.monotonic() < deadline and writer.poll() is None, "wandb never started the run"
            time.sleep(0.05)
        (run,) = (tmp_path / "wandb").glob("offline-run-*")
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
        proc = subprocess.run(
            [sys.executable, "-m", "fitdoc", "watch", str(run), "--fail-on", "overfit", "--interval", "0.1"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        still_writing = writer.poll() is None
    finally:
        writer.kill()
        writer.wait()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert still_writing
    assert "overfit reached at evaluation" in proc.stdout and "add L2: model.l2 0 -> 0.0001" in proc.stdout


def test_watching_a_finished_wandb_run_ends_at_once(wandb_dir: Path) -> None:
    first, _ = _runs(wandb_dir)
    result = CliRunner().invoke(app, ["watch", str(first), "--format", "json", "--idle", "60"])
    assert result.exit_code == 0, result.output
    end = json.loads(result.stdout.splitlines()[-1])
    assert (end["event"], end["reason"], end["evaluation"]) == ("end", "finished", 30)
