"""A network too small for its data (issue 19): a 1-layer, 2-unit net on a sine plus
quadratic target with noise 0.3 levels off far above the noise, val level with train.
Trained by fitdoc and diagnosed with its config it is underfit (capacity), and the
suggestion doubles the units; with no regularization there is nothing to lower."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from fitdoc.cli import app
from fitdoc.config import validate_config
from fitdoc.diagnosis.decide import diagnose_curves
from fitdoc.history.curves import Curves
from fitdoc.verdict import Cause, Diagnosis, Verdict


def sine_quadratic(path: Path, rows: int = 3000, noise: float = 0.3) -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, (rows, 2))
    y = 2 * np.sin(2 * x[:, 0]) + x[:, 1] ** 2 + rng.normal(0, noise, rows)
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": y}).to_csv(path, index=False)


def tiny_config(folder: Path, *, epochs: int, rows: int = 3000) -> Path:
    """`folder/tiny.yaml`: the 2-unit, 1-layer net on `folder/data.csv` (written here)."""
    sine_quadratic(folder / "data.csv", rows=rows)
    config = {
        "name": "tiny",
        "seed": 1,
        "data": {"path": str(folder / "data.csv"), "target": "y"},
        "model": {"hidden_layers": 1, "units": 2},
        "training": {"epochs": epochs, "batch_size": 64},
        "output": {"dir": str(folder / "runs")},
    }
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.training
def test_a_two_unit_net_is_diagnosed_too_small(tmp_path: Path) -> None:
    tiny_config(tmp_path, epochs=300)
    result = CliRunner().invoke(app, ["train", str(tmp_path / "tiny.yaml"), "--format", "json", "--quiet"])
    assert result.exit_code == 0, result.output
    # The JSON, then the run directory on the last line.
    text, run_line = result.stdout.strip().rsplit("\n", 1)
    (diagnosis,) = json.loads(text)["results"]
    assert (diagnosis["verdict"], diagnosis["cause"]) == ("underfit", "capacity"), diagnosis["summary"]
    assert {f["rule_id"] for f in diagnosis["findings"]} >= {"FD203", "FD207"}
    suggestion = diagnosis["suggestion"]
    assert (suggestion["key"], suggestion["from"], suggestion["to"]) == ("model.units", 2, 4)
    # The history alone (no config): the width is unknown, so no capacity claim.
    bare_csv = tmp_path / "history.csv"
    bare_csv.write_bytes((Path(run_line) / "history.csv").read_bytes())
    bare = CliRunner().invoke(app, ["diagnose", str(bare_csv), "--format", "json"])
    (alone,) = json.loads(bare.stdout)["results"]
    assert not any(f["rule_id"] == "FD207" for f in alone["findings"])


def _still_falling(units: int, metric: str = "mae", **model: float) -> Diagnosis:
    # Train and val level and still falling: the combiner calls it underfit; the cause then
    # depends on what the config says of the net.
    epochs = np.arange(100)
    train = 0.5 + 2.0 * np.exp(-epochs / 150.0)
    config = validate_config({"model": {"hidden_layers": 2, "units": units, **model}}, model_only=True)
    return diagnose_curves(Curves(epochs, train, train * 1.02, metric), config)


@pytest.mark.parametrize("metric", ["mae", "loss"])
def test_an_underfit_narrow_net_without_regularization_is_first_too_small(metric: str) -> None:
    d = _still_falling(4, metric)
    assert (d.verdict, d.cause) == (Verdict.UNDERFIT, Cause.CAPACITY)
    assert d.summary.startswith("underfit (capacity): 4 units per hidden layer (<= 8)")
    assert d.suggestion is not None
    assert (d.suggestion.primary.key, d.suggestion.primary.to) == ("model.units", 8)
    # Val still falls, so training longer stays on offer.
    assert "training.epochs" in [c.key for c in d.suggestion.alternatives]
    assert any(f.cause is Cause.NOT_CONVERGED for f in d.findings)


def test_light_l2_leaves_a_narrow_net_first_too_small() -> None:
    d = _still_falling(4, l2=1e-4)
    assert (d.verdict, d.cause) == (Verdict.UNDERFIT, Cause.CAPACITY)
    assert "light regularization (L2/L1 <= 0.0001)" in d.summary


def test_a_wide_or_regularized_net_still_falling_is_not_converged() -> None:
    assert _still_falling(64).cause is Cause.NOT_CONVERGED
    regularized = _still_falling(4, dropout=0.2)
    assert regularized.cause is not Cause.CAPACITY
    assert not any(f.rule_id == "FD208" for f in regularized.findings)


def _barely_learned(units: int, **model: float) -> Diagnosis:
    # Train and val never 10 % below their first values: FD206 decides the verdict alone.
    epochs = np.arange(60)
    train = 1.0 - 0.05 * (1.0 - np.exp(-epochs / 20.0))
    config = validate_config({"model": {"hidden_layers": 1, "units": units, **model}}, model_only=True)
    # A loss, not a regression error: FD207 (a narrow net on a plateau) stays out of it.
    return diagnose_curves(Curves(epochs, train, train * 1.01, "loss"), config)


def test_a_narrow_net_that_barely_learned_is_first_too_small() -> None:
    d = _barely_learned(2)
    assert any(f.rule_id == "FD206" for f in d.findings)
    assert (d.verdict, d.cause) == (Verdict.UNDERFIT, Cause.CAPACITY)
    assert d.suggestion is not None
    assert (d.suggestion.primary.key, d.suggestion.primary.to) == ("model.units", 4)


def test_a_wide_or_regularized_net_that_barely_learned_trains_longer() -> None:
    for d in (_barely_learned(64), _barely_learned(2, dropout=0.2)):
        assert any(f.rule_id == "FD206" for f in d.findings)
        assert (d.verdict, d.cause) == (Verdict.UNDERFIT, Cause.NOT_CONVERGED)
        assert d.suggestion is not None and d.suggestion.primary.key == "training.epochs"


@pytest.mark.training
def test_the_probe_measures_a_too_small_net_beside_a_wider_one(tmp_path: Path) -> None:
    """`train --probe` of the 2-unit net trains a 32-unit one beside it: the capacity verdict
    is measured, and the wider net's config.yaml repeats its probed history when trained alone."""
    tiny_config(tmp_path, epochs=120, rows=1500)
    result = CliRunner().invoke(
        app, ["train", str(tmp_path / "tiny.yaml"), "--probe", "--format", "json", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    text, run_line = result.stdout.strip().rsplit("\n", 1)
    (diagnosis,) = json.loads(text)["results"]
    assert (diagnosis["verdict"], diagnosis["cause"], diagnosis["basis"]) == (
        "underfit",
        "capacity",
        "measured",
    )
    suggestion = diagnosis["suggestion"]
    assert (suggestion["key"], suggestion["from"], suggestion["to"]) == ("model.units", 2, 32)
    wider = Path(run_line) / "probes" / "units-32"
    assert json.loads((wider / "run.json").read_text())["status"] == "completed"
    alone = CliRunner().invoke(app, ["train", str(wider / "config.yaml"), "--quiet", "--format", "json"])
    assert alone.exit_code == 0, alone.output
    repeated = pd.read_csv(Path(alone.stdout.strip().splitlines()[-1]) / "history.csv")
    probed = pd.read_csv(wider / "history.csv")
    for column in ("loss", "mae", "val_loss", "val_mae"):
        np.testing.assert_allclose(repeated[column], probed[column], rtol=1e-4)
