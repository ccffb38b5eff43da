"""FitdocCallback inside real, tiny `model.fit` calls (a few seconds each on 2 CPU cores)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras", reason="the Keras callback needs the `train` extra")

import fitdoc  # noqa: E402
from fitdoc.errors import FitdocError  # noqa: E402
from fitdoc.keras import FitdocCallback  # noqa: E402
from fitdoc.verdict import Verdict  # noqa: E402

pytestmark = pytest.mark.training


def overfit_data(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Few noisy samples: a wide net memorizes the train half within ~20 epochs."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = (0.5 * x[:, :1] + 0.5 * rng.normal(size=(n, 1))).astype("float32")
    return x, y


def wide_regressor(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.003), loss="mse", metrics=["mae"])
    return model


@dataclass
class FitResult:
    callback: FitdocCallback
    history: keras.callbacks.History
    output: str
    log_dir: Path


@pytest.fixture(scope="module")
def overfit_run(tmp_path_factory: pytest.TempPathFactory) -> FitResult:
    """One 60-epoch overfitting fit, shared by the tests that only read its results."""
    x, y = overfit_data()
    stream = io.StringIO()
    log_dir = tmp_path_factory.mktemp("callback") / "run"
    callback = FitdocCallback(every=10, warmup=20, log_dir=log_dir, stream=stream)
    history = wide_regressor().fit(
        x, y, validation_split=0.5, epochs=60, batch_size=32, verbose=0, callbacks=[callback]
    )
    return FitResult(callback, history, stream.getvalue(), log_dir)


def test_overfit_is_diagnosed_in_a_users_fit(overfit_run: FitResult) -> None:
    callback = overfit_run.callback
    assert callback.diagnosis is not None
    assert callback.diagnosis.verdict is Verdict.OVERFIT
    assert callback.diagnosis.epochs == 60
    assert callback.diagnosis.metric in ("mae", "val_mae")
    # Checked at epochs 20, 30, ..., 60 (1-based), not every epoch.
    assert [epoch + 1 for epoch, _ in callback.checks] == [20, 30, 40, 50, 60]
    assert callback.stopped_epoch is None
    assert len(callback.history["loss"]) == len(overfit_run.history.history["loss"]) == 60


def test_prints_only_verdict_changes_and_the_final_verdict(overfit_run: FitResult) -> None:
    lines = overfit_run.output.splitlines()
    callback = overfit_run.callback
    labels = [(d.verdict, d.cause) for _, d in callback.checks]
    changes = sum(1 for i, label in enumerate(labels) if i == 0 or label != labels[i - 1])
    assert len(lines) == changes + 1, lines
    assert lines[0].startswith("fitdoc: epoch 20/60: overfit")
    assert lines[-1].startswith("fitdoc: final, 60 epochs: overfit")
    assert "Next: " in lines[-1]
    assert all(line.startswith("fitdoc: ") for line in lines)


def test_log_dir_is_a_fitdoc_run_directory(overfit_run: FitResult) -> None:
    history_csv = overfit_run.log_dir / "history.csv"
    frame = pd.read_csv(history_csv)
    assert list(frame.columns[:5]) == ["epoch", "loss", "mae", "val_loss", "val_mae"]
    assert {"learning_rate", "epoch_seconds"} <= set(frame.columns)
    assert frame["epoch"].tolist() == list(range(60))
    np.testing.assert_allclose(frame["val_mae"], overfit_run.history.history["val_mae"], rtol=1e-6)
    np.testing.assert_allclose(frame["learning_rate"], 0.003, rtol=1e-6)

    run = json.loads((overfit_run.log_dir / "run.json").read_text())
    assert run["schema_version"] == 1 and run["writer"] == "fitdoc.keras.FitdocCallback"
    assert run["status"] == "completed"
    assert run["epochs"] == {"planned": 60, "completed": 60, "early_stopped": False}
    assert run["final"]["epoch"] == 59 and run["best"]["val_mae"] == min(frame["val_mae"])
    assert "stopped_early" not in run and "params" not in run  # the keys `fitdoc train` writes, only
    assert run["diagnosis"]["verdict"] == "overfit"
    assert run["model"]["parameters"] == 8 * 256 + 256 + 256 * 256 + 256 + 256 + 1
    assert run["model"]["layers"] == 3  # Dense, Dense, Dense (the Input is no layer)

    # The same engine reads the directory back to the same verdict.
    again = fitdoc.diagnose(overfit_run.log_dir)
    assert again.verdict is overfit_run.callback.diagnosis.verdict
    assert again.cause == overfit_run.callback.diagnosis.cause
    assert again.epochs == 60


def test_stop_on_overfit_stops_early_and_restores_best_weights() -> None:
    x, y = overfit_data()
    model = wide_regressor()
    stream = io.StringIO()
    callback = FitdocCallback(every=5, warmup=20, stop_on="overfit", stream=stream)
    history = model.fit(
        x, y, validation_split=0.5, epochs=300, batch_size=32, verbose=0, callbacks=[callback]
    )
    epochs_run = len(history.history["loss"])
    # Epochs people read are 1-based, as progress bars count, in every line and in the reason.
    out = stream.getvalue()
    assert callback.stopped_epoch is not None and callback.best_epoch is not None
    assert f"stopped at epoch {callback.stopped_epoch + 1} on overfit" in out
    assert f"restored the weights of epoch {callback.best_epoch + 1}" in out
    assert callback.stop_reason is not None
    minimum_at = {int(n) for n in re.findall(r"(?:minimum|lowest) at epoch (\d+)", callback.stop_reason)}
    assert minimum_at <= {callback.best_epoch + 1}
    assert callback.stopped_epoch is not None
    assert epochs_run == callback.stopped_epoch + 1 < 300
    assert callback.diagnosis is not None and callback.diagnosis.verdict is Verdict.OVERFIT
    val_mae = np.asarray(history.history["val_mae"])
    assert callback.best_epoch == int(np.argmin(val_mae))
    assert callback.best_epoch < callback.stopped_epoch
    # validation_split takes the last half: the restored model scores the best epoch's val MAE.
    _, mae_now = model.evaluate(x[32:], y[32:], verbose=0)
    assert mae_now == pytest.approx(val_mae.min(), rel=1e-4)
    assert mae_now < val_mae[-1]


def test_stop_on_does_not_stop_a_run_that_does_not_overfit() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(512, 4)).astype("float32")
    y = (x @ np.array([[0.5], [-1.0], [0.25], [2.0]]) + 0.01 * rng.normal(size=(512, 1))).astype("float32")
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    callback = FitdocCallback(every=10, warmup=20, stop_on="overfit", verbose=0)
    history = model.fit(
        x, y, validation_split=0.25, epochs=40, batch_size=128, verbose=0, callbacks=[callback]
    )
    assert len(history.history["loss"]) == 40
    assert callback.stopped_epoch is None
    assert callback.diagnosis is not None and callback.diagnosis.verdict is not Verdict.OVERFIT


def test_classification_with_validation_data_is_judged_on_the_loss() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(96, 6)).astype("float32")
    y = (x[:, 0] + 0.3 * rng.normal(size=96) > 0).astype("float32")[:, None]
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    callback = FitdocCallback(every=10, warmup=10, verbose=0)
    model.fit(
        x[:64],
        y[:64],
        validation_data=(x[64:], y[64:]),
        epochs=30,
        batch_size=32,
        verbose=0,
        callbacks=[callback],
    )
    assert callback.diagnosis is not None
    assert "loss" in callback.diagnosis.metric
    assert callback.diagnosis.epochs == 30
    assert [epoch + 1 for epoch, _ in callback.checks] == [10, 20, 30]


def test_without_validation_data_it_says_so_once_and_stays_inconclusive() -> None:
    x, y = overfit_data()
    stream = io.StringIO()
    callback = FitdocCallback(every=5, warmup=5, stop_on="overfit", stream=stream)
    history = wide_regressor().fit(x, y, epochs=25, batch_size=32, verbose=0, callbacks=[callback])
    assert len(history.history["loss"]) == 25
    assert callback.diagnosis is not None
    assert callback.diagnosis.verdict is Verdict.INCONCLUSIVE
    assert stream.getvalue().count("no validation data") == 1


def test_monitor_override_and_a_monitor_that_is_not_logged() -> None:
    x, y = overfit_data()
    callback = FitdocCallback(every=10, warmup=10, monitor="val_loss", verbose=0)
    wide_regressor().fit(
        x, y, validation_split=0.5, epochs=20, batch_size=32, verbose=0, callbacks=[callback]
    )
    assert callback.diagnosis is not None
    assert "loss" in callback.diagnosis.metric

    wrong = FitdocCallback(every=5, warmup=5, monitor="val_rmse", verbose=0)
    with pytest.raises(FitdocError, match=r"available: .*val_mae"):
        wide_regressor().fit(
            x, y, validation_split=0.5, epochs=5, batch_size=32, verbose=0, callbacks=[wrong]
        )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"stop_on": "overfitting"}, "stop_on"),
        ({"every": 0}, "every"),
        ({"warmup": -1}, "warmup"),
        ({"monitor": "mae"}, "monitor"),
    ],
)
def test_bad_arguments_are_fitdoc_errors(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(FitdocError) as info:
        FitdocCallback(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_callback_is_exported_lazily_from_the_package() -> None:
    assert fitdoc.FitdocCallback is FitdocCallback


# What `pip install -e .` adds to sys.meta_path (setuptools' editable finder), after
# the path finder: a `fitdoc` folder beside the script wins as a namespace package,
# while `fitdoc.keras` and the rest still come from the installed project.
USER_SCRIPT = """\
import importlib.machinery, json, sys
from pathlib import Path

PROJECT = sys.argv[1]

class EditableFinder:
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname == "fitdoc" or fullname.startswith("fitdoc."):
            parent = PROJECT if fullname == "fitdoc" else str(Path(PROJECT, *fullname.split(".")[:-1]))
            return importlib.machinery.PathFinder.find_spec(fullname, [parent])
        return None

sys.meta_path.append(EditableFinder)
import fitdoc
assert not hasattr(fitdoc, "__version__"), "the folder beside the script should shadow the package"
import keras
import numpy as np
from fitdoc.keras import FitdocCallback

keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4), keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse", metrics=["mae"])
x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
model.fit(x, x[:, :1], validation_split=0.25, epochs=3, verbose=0,
          callbacks=[FitdocCallback(warmup=1, log_dir="run", verbose=0)])
print("fit done")
"""


def test_a_fitdoc_folder_beside_the_script_never_loses_the_run(tmp_path: Path) -> None:
    """A clone named `fitdoc` next to the user's script (issue 13.1): the fit ends,
    run.json is written, versions come from package metadata."""
    (tmp_path / "fitdoc" / "docs").mkdir(parents=True)  # a clone: no __init__.py at its top
    (tmp_path / "fitdoc" / "README.md").write_text("a clone of fitdoc\n")
    (tmp_path / "train.py").write_text(USER_SCRIPT)
    project = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "train.py", str(project)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "fit done" in done.stdout
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["schema_version"] == 1 and run["status"] == "completed"
    assert run["epochs"]["completed"] == 3
    assert set(run["versions"]) >= {"fitdoc", "keras", "python", "backend"}
    assert (tmp_path / "run" / "history.csv").read_text().count("\n") == 4


def test_a_history_file_that_cannot_be_written_is_said_once_and_the_run_kept(tmp_path: Path) -> None:
    """Bookkeeping that fails (here history.csv is a folder) never ends the user's fit."""
    log_dir = tmp_path / "run"
    (log_dir / "history.csv").mkdir(parents=True)
    stream = io.StringIO()
    x, y = overfit_data(32)
    callback = FitdocCallback(warmup=2, log_dir=log_dir, stream=stream)
    history = wide_regressor().fit(x, y, validation_split=0.5, epochs=4, verbose=0, callbacks=[callback])
    assert len(history.history["loss"]) == 4
    said = [line for line in stream.getvalue().splitlines() if "could not write history.csv" in line]
    assert len(said) == 1, stream.getvalue()
    run = json.loads((log_dir / "run.json").read_text())
    assert run["status"] == "completed" and run["epochs"]["completed"] == 4
    assert callback.diagnosis is not None
