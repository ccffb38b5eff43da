"""History readers: each format, aliases, appended runs, overrides, errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fitdoc.errors import HistoryError
from fitdoc.history.load import FORMATS, read_history

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
        read_history(FIX / "fitdoc_history.csv", format_in="nope")


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


def test_pandas_dump_with_index_column():
    c = read_history(FIX / "pandas_index.csv")
    assert c.format == "pandas"
    assert (c.train_name, c.val_name) == ("mae", "val_mae")
    np.testing.assert_array_equal(c.epochs, [0, 1, 2])


def test_semicolon_delimiter_with_decimal_commas_and_no_epoch_column():
    c = read_history(FIX / "semicolon_decimal_comma.csv")
    np.testing.assert_allclose(c.train, [0.5, 0.4])
    np.testing.assert_allclose(c.val, [0.6, 0.55])
    np.testing.assert_array_equal(c.epochs, [0, 1])


def test_custom_tab_file_spaced_names_text_column_one_based_epochs():
    c = read_history(FIX / "custom_tab_1based.tsv")
    assert (c.train_name, c.val_name) == ("Train Loss", "Validation Loss")
    np.testing.assert_array_equal(c.epochs, [0, 1, 2])
    assert any("counts from 1" in n for n in c.notes)


def test_bom_and_latin1_bytes_and_camel_case_names():
    c = read_history(FIX / "bom_latin1.csv")
    assert (c.train_name, c.val_name) == ("TrainLoss", "ValLoss")
    np.testing.assert_allclose(c.val, [1.0, 0.8])


def test_lightning_sparse_rows_prefer_epoch_columns_and_drop_lr_rows():
    c = read_history(FIX / "lightning_sparse.csv")
    assert c.format == "lightning"
    np.testing.assert_array_equal(c.epochs, [0, 1])
    # val_mae has no train counterpart: the loss pair (train and val) wins.
    assert (c.train_name, c.val_name) == ("train_loss_epoch", "val_loss")
    np.testing.assert_allclose(c.train, [0.9, 0.5])
    np.testing.assert_allclose(c.val, [0.95, 0.6])


def test_lightning_step_only_train_series_is_averaged_per_epoch():
    c = read_history(FIX / "lightning_sparse.csv", train_col="train_loss_step")
    np.testing.assert_allclose(c.train, [0.9, 0.5])
    assert c.val_name == "val_loss"


def test_json_dict_of_lists_keeps_nan_and_inf():
    c = read_history(FIX / "keras_dict.json")
    assert c.format == "json"
    assert c.metric == "mae"
    assert np.isinf(c.val[2]) and math.isnan(c.val_loss[2])


def test_json_records_one_based_epochs_and_text_fields_ignored():
    c = read_history(FIX / "records.json")
    assert (c.train_name, c.val_name) == ("train_loss", "val_loss")
    np.testing.assert_array_equal(c.epochs, [0, 1, 2])


def test_prefixed_multi_head_json_prefers_the_mae_head():
    c = read_history(FIX / "prefixed_heads.json")
    assert (c.train_name, c.val_name) == ("reg_mae", "reg_val_mae")
    assert c.reg_loss is None  # `reg_loss` is the `reg` head's loss here, not an L2 share
    np.testing.assert_allclose(c.train_loss, [1.0, 0.9, 0.8])
    assert any("reg_val_mae" in n and "cls_val_loss" in n for n in c.notes)
    c = read_history(FIX / "prefixed_heads.json", val_col="cls_val_loss")
    assert c.train_name == "cls_loss" and len(c) == 2


def test_hf_trainer_state_one_point_per_evaluation():
    c = read_history(FIX / "hf_trainer_state.json")
    assert c.format == "hf_trainer_state"
    assert (c.train_name, c.val_name) == ("loss", "eval_loss")
    np.testing.assert_array_equal(c.epochs, [0, 1])
    np.testing.assert_allclose(c.train, [0.9, 0.5])
    np.testing.assert_allclose(c.val, [0.9, 0.85])


def test_format_override_is_honoured():
    c = read_history(FIX / "keras_mae_alias.csv", format_in="csv")
    assert c.format == "csv"
    with pytest.raises(HistoryError, match="log_history"):
        read_history(FIX / "keras_dict.json", format_in="hf_trainer_state")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"loss": [1, 2], "val_loss": [1, 2]', "invalid JSON"),
        (b"42", "no numeric series"),
        (b'{"name": "run", "loss": "low"}', "no numeric series"),
        (b'{"log_history": []}', "log_history` is empty"),
        (b'{"log_history": {"a": 1}}', "not a list"),
        (b'[{"epoch": 0, "acc": 0.5}]', "no usable numeric series"),
    ],
)
def test_bad_json_raises_history_error(tmp_path, content, message):
    f = tmp_path / "h.json"
    f.write_bytes(content)
    with pytest.raises(HistoryError, match=message):
        read_history(f)


def test_validation_only_and_train_only_histories_still_read(tmp_path):
    f = tmp_path / "v.csv"
    f.write_text("epoch,val_loss\n0,1.0\n1,0.9\n")
    c = read_history(f)
    assert c.train is None and c.val is not None and c.has_validation
    f.write_text("epoch,loss\n0,1.0\n1,0.9\n")
    c = read_history(f)
    assert c.val is None and not c.has_validation


def test_discover_files_run_dirs_and_plain_folders(tmp_path):
    from fitdoc.history.load import discover

    run = tmp_path / "runs" / "b-run"
    run.mkdir(parents=True)
    (run / "history.csv").write_bytes((FIX / "fitdoc_history.csv").read_bytes())
    (run / "config.yaml").write_text("model: {}\n")
    (run / "run.json").write_text("{}")
    (run / "predictions.csv").write_text("y\n1\n")  # not a history: inside a run dir
    other = tmp_path / "runs" / "a-logs"
    other.mkdir()
    (other / "training.log").write_bytes((FIX / "keras_mae_alias.csv").read_bytes())
    (other / "config.json").write_text("{}")
    (other / "trainer_state.json").write_bytes((FIX / "hf_trainer_state.json").read_bytes())
    (tmp_path / "runs" / ".git").mkdir()
    (tmp_path / "runs" / ".git" / "x.csv").write_text("loss\n1\n")

    sources = discover([tmp_path / "runs"])
    names = [s.history_path.relative_to(tmp_path).as_posix() for s in sources]
    assert names == [
        "runs/a-logs/trainer_state.json",
        "runs/a-logs/training.log",
        "runs/b-run/history.csv",
    ]
    by_name = {s.history_path.name: s for s in sources}
    assert by_name["history.csv"].config_path == run / "config.yaml"
    assert by_name["history.csv"].run_json_path == run / "run.json"
    assert by_name["training.log"].config_path is None

    (single,) = discover([run])
    assert single.name == "b-run" and single.config_path == run / "config.yaml"
    (one_file,) = discover([other / "training.log"])
    assert one_file.history_path == other / "training.log"
    # The same history named twice is listed once.
    assert len(discover([run, run / "history.csv"])) == 1


def test_discover_refuses_missing_paths_and_empty_folders(tmp_path):
    from fitdoc.history.load import discover

    with pytest.raises(HistoryError, match="no such file or directory") as err:
        discover([tmp_path / "missing"])
    assert err.value.path == str(tmp_path / "missing")
    with pytest.raises(HistoryError, match="no history files"):
        discover([tmp_path])


def test_curves_from_mapping_and_frame_match_the_file_reader():
    import pandas as pd

    from fitdoc.history.load import curves_from_frame, curves_from_mapping

    history = {
        "loss": [1.0, 0.6, 0.5],
        "mae": [0.8, 0.6, 0.5],
        "val_loss": [1.2, 0.9, 0.8],
        "val_mae": [0.9, 0.7, 0.65],
    }
    c = curves_from_mapping(history)
    assert (c.train_name, c.val_name, c.format) == ("mae", "val_mae", "mapping")
    np.testing.assert_array_equal(c.epochs, [0, 1, 2])
    f = curves_from_frame(pd.DataFrame(history), source="df")
    np.testing.assert_allclose(f.val, c.val)
    assert f.source == "df"
    with pytest.raises(HistoryError, match="not found; available: loss, mae, val_loss, val_mae"):
        curves_from_mapping(history, train_col="acc")
    with pytest.raises(HistoryError, match="DataFrame"):
        curves_from_frame(history)


# Fuzzing the readers (any bytes -> Curves or a HistoryError) lives in test_properties.py.


def test_classification_log_keeps_its_val_accuracy_beside_the_loss(tmp_path):
    # Keras' CSVLogger names for a binary classifier; `acc` is normalized to accuracy.
    f = tmp_path / "log.csv"
    f.write_text("epoch,acc,loss,val_acc,val_loss\n0,0.5,0.70,0.55,0.69\n1,0.6,0.66,0.58,0.67\n")
    c = read_history(f)
    assert (c.train_name, c.val_name) == ("loss", "val_loss")
    assert c.val_accuracy is not None
    np.testing.assert_allclose(c.val_accuracy, [0.55, 0.58])


def test_regression_log_has_no_val_accuracy():
    assert read_history(FIX / "pandas_index.csv").val_accuracy is None
