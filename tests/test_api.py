"""`fitdoc.diagnose()`: the CLI's engine from Python, on every kind of input it documents."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import fitdoc
from fitdoc.errors import ConfigError, FitdocError, HistoryError
from fitdoc.verdict import Diagnosis, Suggestion, Verdict

EPOCHS = np.arange(120)


def overfit_history() -> dict[str, list[float]]:
    """Train keeps falling; validation bottoms out at epoch ~25 and climbs back 60%."""
    train = 0.02 + 0.8 * np.exp(-EPOCHS / 12)
    val = 0.2 + 0.6 * np.exp(-EPOCHS / 8) + 0.003 * np.clip(EPOCHS - 25, 0, None)
    return {"loss": list(train**2), "mae": list(train), "val_loss": list(val**2), "val_mae": list(val)}


def balanced_history() -> dict[str, list[float]]:
    """Both curves fall together and flatten, validation 5% above train."""
    train = 0.1 + 0.8 * np.exp(-EPOCHS / 15)
    val = 1.05 * train
    return {"loss": list(train**2), "mae": list(train), "val_loss": list(val**2), "val_mae": list(val)}


def write_csv(history: dict[str, list[float]], path: Path) -> Path:
    frame = pd.DataFrame({"epoch": range(len(history["loss"])), **history})
    frame.to_csv(path, index=False)
    return path


class FakeKerasHistory:
    """The shape of `keras.callbacks.History` that `diagnose` relies on: a `.history` dict."""

    def __init__(self, history: dict[str, list[float]]) -> None:
        self.history = history


def without_source(diagnosis: Diagnosis) -> dict[str, object]:
    data = diagnosis.to_dict()
    data.pop("source")
    return data


def test_overfit_and_balanced_curves() -> None:
    overfit = fitdoc.diagnose(overfit_history())
    assert overfit.verdict is Verdict.OVERFIT
    assert overfit.epochs == 120
    assert "mae" in overfit.metric
    assert fitdoc.diagnose(balanced_history()).verdict is not Verdict.OVERFIT


def test_every_input_kind_gives_the_same_diagnosis(tmp_path: Path) -> None:
    history = overfit_history()
    csv_path = write_csv(history, tmp_path / "history.csv")
    expected = without_source(fitdoc.diagnose(history))
    inputs = [
        pd.DataFrame(history),
        FakeKerasHistory(history),
        csv_path,
        str(csv_path),
        tmp_path,  # a run directory
    ]
    for obj in inputs:
        assert without_source(fitdoc.diagnose(obj)) == expected, type(obj).__name__


def test_same_fields_as_the_cli_json(tmp_path: Path) -> None:
    csv_path = write_csv(overfit_history(), tmp_path / "history.csv")
    proc = subprocess.run(
        [sys.executable, "-m", "fitdoc", "diagnose", str(csv_path), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    assert fitdoc.diagnose(csv_path).to_dict() == result


def test_a_run_directorys_config_makes_the_suggestion_concrete(tmp_path: Path) -> None:
    write_csv(overfit_history(), tmp_path / "history.csv")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"model": {"l2": 0.0, "dropout": 0.0}}))
    primary = fitdoc.diagnose(tmp_path).suggestion.primary
    assert primary.key.startswith(("model.", "training."))
    # Concrete: a value to set (early stopping that was off has no `from`: none -> patience N).
    assert primary.to is not None
    assert primary.from_ is not None or primary.key == "training.early_stopping"

    # An explicit config wins over the directory's own, as with `fitdoc diagnose --config`.
    def l2_from(suggestion: Suggestion | None) -> set[float]:
        assert suggestion is not None
        return {c.from_ for c in (suggestion.primary, *suggestion.alternatives) if c.key == "model.l2"}  # type: ignore[misc]

    assert l2_from(fitdoc.diagnose(tmp_path).suggestion) == {0.0}
    assert l2_from(fitdoc.diagnose(tmp_path, config={"model": {"l2": 0.001}}).suggestion) == {0.001}


def test_config_as_a_yaml_path(tmp_path: Path) -> None:
    config_path = tmp_path / "model.yaml"
    config_path.write_text("model:\n  l2: 1e-4\n")  # YAML 1.1 reads 1e-4 as a string; fitdoc does not
    with_path = fitdoc.diagnose(overfit_history(), config=config_path)
    with_dict = fitdoc.diagnose(overfit_history(), config={"model": {"l2": 0.0001}})
    assert with_path.to_dict() == with_dict.to_dict()


def test_no_validation_is_inconclusive_not_an_error() -> None:
    history = overfit_history()
    diagnosis = fitdoc.diagnose({"loss": history["loss"], "mae": history["mae"]})
    assert diagnosis.verdict is Verdict.INCONCLUSIVE


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda tmp: tmp / "missing.csv", HistoryError, "no such file"),
        (lambda tmp: tmp, HistoryError, "no history"),
        (lambda _tmp: 42, HistoryError, "cannot diagnose a int"),
    ],
)
def test_bad_inputs_raise_one_line_fitdoc_errors(tmp_path: Path, make, error, words) -> None:
    with pytest.raises(error, match=words) as info:
        fitdoc.diagnose(make(tmp_path))
    assert "\n" not in info.value.one_line()


def test_a_folder_of_several_runs_is_refused_with_their_names(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        write_csv(overfit_history(), tmp_path / name / "history.csv")
    with pytest.raises(HistoryError, match="holds 2 runs") as info:
        fitdoc.diagnose(tmp_path)
    assert info.value.path == str(tmp_path)


def test_a_bad_config_names_the_field() -> None:
    with pytest.raises(ConfigError) as info:
        fitdoc.diagnose(overfit_history(), config={"model": {"l3": 0.1}})
    assert info.value.field == "model.l3"
    with pytest.raises(FitdocError, match="expected a Config"):
        fitdoc.diagnose(overfit_history(), config=3.5)  # type: ignore[arg-type]


def test_threshold_overrides_as_a_dict_or_a_file(tmp_path: Path) -> None:
    default = fitdoc.diagnose(overfit_history())
    assert default.cause is not None and default.cause.value == "gap"
    relaxed = fitdoc.diagnose(overfit_history(), thresholds={"FD101": {"max_ratio": 100}})
    assert "FD101" not in [f.rule_id for f in relaxed.findings]
    assert relaxed.cause is not None and relaxed.cause.value == "rebound"
    path = tmp_path / "thresholds.yaml"
    path.write_text("FD101:\n  max_ratio: 100\n")
    assert fitdoc.diagnose(overfit_history(), thresholds=path).to_dict() == relaxed.to_dict()
