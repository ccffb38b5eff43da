"""Every real-world history in ../shared/corpus/real reads into Curves, or is
refused with a clear HistoryError; the labelled Keras runs all read fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED, shared_corpus

from fitdoc.errors import HistoryError
from fitdoc.history.curves import Curves
from fitdoc.history.load import discover, read_history

_REAL = SHARED / "corpus" / "real"
_FILES = (
    sorted(
        p.relative_to(_REAL).as_posix()
        for p in _REAL.glob("*/*")
        if p.is_file() and p.suffix in (".csv", ".log", ".json")
    )
    if _REAL.is_dir()
    else []
)

# Files that truly hold no usable series, and the reason they must give.
REFUSED = {"hf_trainer_state/empty_log_history.json": "log_history` is empty"}


def _real() -> Path:
    return shared_corpus() / "real"


@pytest.mark.parametrize("name", _FILES or ["<no corpus>"])
def test_real_file_reads_or_is_refused_clearly(name):
    path = _real() / name
    if name in REFUSED:
        with pytest.raises(HistoryError, match=REFUSED[name]) as err:
            read_history(path)
        assert err.value.path == str(path)
        return
    c = read_history(path)
    assert isinstance(c, Curves)
    assert len(c) >= 1
    assert c.train is not None or c.val is not None
    for series in (c.train, c.val, c.train_loss, c.val_loss, c.reg_loss):
        assert series is None or len(series) == len(c)
    chosen = [s for s in (c.train, c.val) if s is not None]
    assert any(np.isfinite(s).any() for s in chosen)
    assert np.all(np.diff(c.epochs) > 0), "epochs must increase"
    assert c.epochs[0] >= 0
    assert "test" not in (c.train_name or "").lower() and "test" not in (c.val_name or "").lower()


def test_corpus_has_every_format():
    formats = {p.parent.name for p in _real().glob("*/*")}
    assert {"keras_csvlogger", "pandas_history", "history_json", "lightning_metrics"} <= formats
    assert len(_FILES) >= 55


@pytest.mark.parametrize(
    ("name", "train", "val", "n"),
    [
        ("keras_csvlogger/air_quality_rmse_3runs_appended.csv", "loss", "val_loss", 32),
        ("keras_csvlogger/irfanet_two_runs_appended_226rows.log", "loss", "val_loss", 200),
        ("keras_csvlogger/facial_emotion_2ep_crcrlf.csv", "loss", "val_loss", 2),
        ("keras_csvlogger/solar_multitask_power_mae_78ep.csv", "power_mae", "val_power_mae", 78),
        ("keras_csvlogger/streamflow_regression_150ep.csv", "mae", "val_mae", 150),
        ("lightning_metrics/hydrology_lstm_lr_monitor_50ep.csv", "train_loss", "val_loss", 50),
        ("lightning_metrics/oedometer_train_only_100ep.csv", "train_loss_epoch", None, 100),
        ("other/climate_eval_only_empty_row.csv", "loss", None, 11),
        ("other/sarcasm_valid_loss_naming_5ep.csv", "train_loss", "valid_loss", 5),
        ("other/tem_cnn_hparams_train_val_test_200ep.csv", "train_mae", "val_mae", 200),
        ("history_json/coil_custom_keys_30ep.json", "coil_train_losses", "coil_val_losses", 30),
        ("history_json/hdfc_reg_and_cls_prefixed.json", "reg_mae", "reg_val_mae", 30),
        ("history_json/shm_list_of_records_delayed_drop_60ep.json", "train_loss", "val_loss", 60),
        ("hf_trainer_state/codebert_cls_overfit_10ep.json", "loss", "eval_loss", 10),
        ("hf_trainer_state/weibo_rumor_train_only_100ep.json", "loss", None, None),
        ("pandas_history/energy_efficiency_acc_100ep.csv", "loss", "val_loss", 100),
    ],
)
def test_real_files_pick_the_expected_series(name, train, val, n):
    c = read_history(_real() / name)
    assert (c.train_name, c.val_name) == (train, val)
    if n is not None:
        assert len(c) == n


def test_appended_real_log_says_it_diagnoses_the_last_run():
    c = read_history(_real() / "keras_csvlogger/air_quality_rmse_3runs_appended.csv")
    assert any("3 runs" in note and "last run" in note for note in c.notes)
    assert c.epochs[0] == 0


def test_discover_real_corpus_is_sorted_and_skips_manifest():
    sources = discover([_real()])
    paths = [s.history_path for s in sources]
    assert paths == sorted(paths)
    assert len(sources) == len(_FILES)
    assert not any(p.name in ("MANIFEST.tsv", "README.md") for p in paths)


def test_labelled_runs_read_and_never_use_test_series():
    # How fast they read is benchmarks/diagnose_speed.py's to measure, not a test's to assert.
    runs = sorted((shared_corpus() / "labeled" / "runs").glob("*/history.csv"))
    assert len(runs) > 500
    for path in runs:
        c = read_history(path)
        assert c.metric == "mae" and c.val_name == "val_mae"
