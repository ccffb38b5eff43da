"""History readers: each format, aliases, appended runs, overrides, errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fitdoc.errors import HistoryError
from fitdoc.history import FORMATS, read_history

FIX = Path(__file__).parent / "fixtures" / "histories"


def test_fitdoc_history_reads_mae_extras_and_never_test_mae():
    c = read_history(FIX / "fitdoc_history.csv")
    assert c.format == "fitdoc"
    assert c.metric == "mae"
    assert (c.train_name, c.val_name) == ("mae", "val_mae")
    np.testing.assert_array_equal(c.epochs, [0, 1, 2, 3])
    np.testing.assert_allclose(c.train, [0.9, 0.7, 0.6, 0.55])
    np.testing.assert_allclose(c.val, [1.0, 0.8, 0.75, 0.78])
    np.testing.assert_allclose(c.train_loss, [1.5, 1.0, 0.8, 0.7])
    np.testing.assert_allclose(c.val_loss, [1.6, 1.2, 1.1, 1.15])
    np.testing.assert_allclose(c.reg_loss, [0.2, 0.19, 0.18, 0.17])
    assert "test_mae" not in (c.train_name, c.val_name)


def test_run_directory_reads_its_history(tmp_path):
    (tmp_path / "history.csv").write_bytes((FIX / "fitdoc_history.csv").read_bytes())
    assert read_history(tmp_path).val_name == "val_mae"


def test_keras_long_metric_names_are_mae():
    c = read_history(FIX / "keras_mae_alias.csv")
    assert c.format == "keras_csv"
    assert c.metric == "mae"
    assert c.val_name == "val_mean_absolute_error"


def test_na_cells_are_nan_and_inf_stays_inf():
    c = read_history(FIX / "keras_na_inf.csv")
    assert c.metric == "mae"
    assert math.isnan(c.train[1]) and math.isnan(c.val[1])
    # The divergence row: mae is nan but loss is inf and kept as inf.
    assert np.isinf(c.train_loss[2]) and np.isinf(c.val_loss[2])
    assert len(c) == 3


@pytest.mark.parametrize("name", ["keras_appended_header.csv", "keras_appended_restart_crcrlf.csv"])
def test_appended_runs_keep_the_last_run_and_say_so(name):
    c = read_history(FIX / name)
    np.testing.assert_array_equal(c.epochs, [0, 1])
    np.testing.assert_allclose(c.train, [2.0, 1.5])
    assert any("2 runs" in n and "last run" in n for n in c.notes)


def test_override_columns_and_unknown_column_lists_available():
    c = read_history(FIX / "fitdoc_history.csv", train_col="loss", val_col="val_loss")
    assert c.metric == "loss" and c.val_name == "val_loss"
    # One side given: the other is inferred from the same metric.
    c = read_history(FIX / "fitdoc_history.csv", val_col="val_loss")
    assert c.train_name == "loss"
    with pytest.raises(HistoryError) as err:
        read_history(FIX / "keras_appended_header.csv", val_col="val_mae")
    assert err.value.field == "val_col"
    assert "column `val_mae` not found; available: epoch, loss, val_loss" in err.value.message


def test_formats_tuple_and_unknown_format():
    assert {"fitdoc", "keras_csv", "pandas", "json", "lightning", "hf_trainer_state"} <= set(FORMATS)
    with pytest.raises(HistoryError, match="unknown format"):
        read_history(FIX / "fitdoc_history.csv", format_in="tensorboard")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"   \n\n", "empty file"),
        (b"\x00\x01\x02\x03garbage\x00\xff" * 20, "binary"),
        (b"epoch,loss,val_loss\n", "only a header"),
        (b"epoch,phase\n0,warmup\n1,full\n", "no usable numeric series"),
    ],
)
def test_bad_files_raise_history_error(tmp_path, content, message):
    f = tmp_path / "h.csv"
    f.write_bytes(content)
    with pytest.raises(HistoryError, match=message) as err:
        read_history(f)
    assert err.value.path == str(f)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(HistoryError, match="no such file") as err:
        read_history(tmp_path / "nope.csv")
    assert err.value.path.endswith("nope.csv")
