"""Issue 21 item 4: a run's logged params (MLflow params, TensorBoard hparams; W&B config in
test_readers_wandb) name the knobs the ladder turns, so the suggestion is a concrete edit,
and a note says which params were used."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fitdoc.cli import app
from fitdoc.history.load import read_history
from fitdoc.history.readers.params import PARAM_KNOBS, knobs_from_params, normalize_param

TRAIN = [1.0 / (e + 1) for e in range(30)]
VAL = [0.3 + 1.0 / (e + 1) + 0.0008 * max(0, e - 8) ** 2 for e in range(30)]  # an overfit


def test_usual_names_map_to_the_ladders_knobs_and_odd_values_are_left_out() -> None:
    knobs = knobs_from_params(
        {
            "l2": "0.0",
            "Dropout": 0.2,
            "optimizer/lr": "1e-3",
            "epochs": "many",
            "hidden-units": 64.0,
            "num_layers": 3,
            "batch_size": True,
        }
    )
    assert knobs.settings == {
        "model.l2": 0.0,
        "model.dropout": 0.2,
        "training.learning_rate": 0.001,
        "model.units": 64,
        "model.hidden_layers": 3,
    }
    used, skipped = knobs.notes
    assert used.startswith("run params used: ") and "l2=0.0 as model.l2" in used
    assert "epochs=many" in skipped and "batch_size=True" in skipped
    assert knobs_from_params({"dropout": 1.5}).settings == {}  # not a rate
    assert knobs_from_params({"weight_decay": "0.01"}).settings == {"model.l2": 0.01}
    # A top-level name wins over a nested one for the same knob.
    assert knobs_from_params({"model/lr": 0.1, "lr": 0.2}).settings == {"training.learning_rate": 0.2}
    assert normalize_param("hparams.Learning-Rate") == "learning_rate"
    assert set(PARAM_KNOBS.values()) <= {
        "model.l2",
        "model.l1",
        "model.dropout",
        "model.units",
        "model.hidden_layers",
        "training.learning_rate",
        "training.epochs",
        "training.batch_size",
    }


def _file_store_run(root: Path, params: dict[str, str]) -> Path:
    """An MLflow file-store run as MLflow writes it (`metrics/KEY`: `TIMESTAMP VALUE STEP` lines)."""
    run = root / "mlruns" / "1" / "abc123"
    (run / "metrics").mkdir(parents=True)
    (run / "params").mkdir()
    (run / "meta.yaml").write_text("run_id: abc123\nlifecycle_stage: active\n")
    (run / "metrics" / "loss").write_text("".join(f"1700000000 {v} {e}\n" for e, v in enumerate(TRAIN)))
    (run / "metrics" / "val_loss").write_text("".join(f"1700000000 {v} {e}\n" for e, v in enumerate(VAL)))
    for name, value in params.items():
        (run / "params" / name).write_text(value)
    return run


def _diagnose_json(path: Path) -> dict[str, object]:
    result = CliRunner().invoke(app, ["diagnose", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    (d,) = json.loads(result.stdout)["results"]
    return d  # type: ignore[no-any-return]


def test_an_mlflow_run_logged_without_regularization_gets_the_concrete_l2_step(tmp_path: Path) -> None:
    run = _file_store_run(tmp_path, {"l2": "0.0", "dropout": "0.0", "lr": "0.001"})
    d = _diagnose_json(run)
    assert d["verdict"] == "overfit"
    change = d["suggestion"]
    assert isinstance(change, dict)
    # The ladder's first rung from the logged knobs (not the generic wording): L2 0 -> 1e-4 or
    # dropout 0 -> 0.2, whichever the gain model ranks first, the other among the alternatives.
    first_rung = {("model.l2", 0.0, 0.0001), ("model.dropout", 0.0, 0.2)}
    primary = (change["key"], change["from"], change["to"])
    assert primary in first_rung
    others = [(a["key"], a["from"], a["to"]) for a in change["alternatives"]]
    assert all(step in others for step in first_rung - {primary})
    notes = d["notes"]
    assert isinstance(notes, list)
    assert (
        "run params used: dropout=0.0 as model.dropout, l2=0.0 as model.l2, "
        "lr=0.001 as training.learning_rate"
    ) in notes


def test_an_mlflow_run_with_l2_climbs_from_its_own_value(tmp_path: Path) -> None:
    run = _file_store_run(tmp_path, {"weight_decay": "0.0001"})
    suggestion = _diagnose_json(run)["suggestion"]
    assert isinstance(suggestion, dict)
    # The gain model orders the steps (dropout may come first); the L2 step, wherever it is
    # ranked, starts from the run's own L2.
    changes = [suggestion, *suggestion["alternatives"]]
    l2 = [(c["from"], c["to"]) for c in changes if c["key"] == "model.l2"]
    assert l2 == [(0.0001, 0.001)]


def test_params_that_name_no_regularization_keep_the_suggestion_generic(tmp_path: Path) -> None:
    run = _file_store_run(tmp_path, {"lr": "0.001"})
    d = _diagnose_json(run)
    change = d["suggestion"]
    assert isinstance(change, dict) and change["from"] is None and change["to"] is None
    assert any("no regularization param, so the suggestion stays generic" in n for n in d["notes"])  # type: ignore[union-attr]


def test_tensorboard_hparams_name_the_knobs(tmp_path: Path) -> None:
    if os.environ.get("CI", "").lower() != "true":
        pytest.importorskip("tensorboard", reason="tensorboard not installed (an optional extra)")
    if "tensorflow" not in sys.modules:  # tensorboard's own switch to its TensorFlow stub
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import summary_v2 as hp
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    logdir = tmp_path / "runs" / "trial-1"
    writer = EventFileWriter(str(logdir))
    writer.add_event(Event(step=0, wall_time=1.0, summary=hp.hparams_pb({"l2": 0.001, "dropout": 0.0})))
    for e, (t, v) in enumerate(zip(TRAIN, VAL, strict=True)):
        for tag, value in (("train/loss", t), ("val/loss", v)):
            summary = Summary(value=[Summary.Value(tag=tag, simple_value=value)])
            writer.add_event(Event(step=e, wall_time=1.0, summary=summary))
    writer.close()
    c = read_history(logdir)
    assert c.settings == {"model.l2": 0.001, "model.dropout": 0.0}
    assert any(n.startswith("hparams used: ") for n in c.notes)
    change = _diagnose_json(logdir)["suggestion"]
    assert isinstance(change, dict)
    assert (change["key"], change["from"], change["to"]) == ("model.l2", 0.001, 0.01)


def test_a_config_given_wins_over_the_logged_params_and_says_so(tmp_path: Path) -> None:
    run = _file_store_run(tmp_path, {"l2": "0.0", "dropout": "0.0"})
    config = tmp_path / "config.yaml"
    config.write_text("model:\n  l2: 0.001\n")
    result = CliRunner().invoke(app, ["diagnose", str(run), "--config", str(config), "--format", "json"])
    assert result.exit_code == 0, result.output
    (d,) = json.loads(result.stdout)["results"]
    assert (d["suggestion"]["key"], d["suggestion"]["from"]) == ("model.l2", 0.001)
    assert "the config given is used, not the run's logged params" in d["notes"]
