"""Step-based logs (Hugging Face `log_history`, its CSV exports) and column choice
(held-out `test_*` series, like-with-like pairs, count columns, unknown names)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fitdoc.cli import app
from fitdoc.errors import HistoryError
from fitdoc.history.curves import Curves
from fitdoc.history.load import read_history


def _hf_log(evals_per_epoch: int, epochs: int, logging_steps: int, steps_per_epoch: int = 20) -> list[dict]:
    """The entries a Trainer logs: train `loss` every `logging_steps`, then evaluations."""
    log: list[dict] = []
    total = epochs * steps_per_epoch
    eval_every = steps_per_epoch // evals_per_epoch
    for step in range(1, total + 1):
        ep = round(step / steps_per_epoch, 4)
        if step % logging_steps == 0:
            # train loss encodes its own step, so every pairing can be checked exactly
            log.append(
                {"loss": float(step), "grad_norm": 1.0, "learning_rate": 1e-5, "epoch": ep, "step": step}
            )
        if step % eval_every == 0:
            log.append(
                {
                    "eval_loss": 1000.0 + step,
                    "eval_runtime": 1.5,
                    "eval_samples_per_second": 300.0,
                    "eval_steps_per_second": 9.0,
                    "eval_num_tokens": 123456.0,
                    "epoch": ep,
                    "step": step,
                }
            )
    log.append(
        {"train_runtime": 99.0, "train_loss": 7.0, "total_flos": 1e12, "epoch": float(epochs), "step": total}
    )
    return log


def _write_state(tmp_path: Path, log: list[dict]) -> Path:
    p = tmp_path / "trainer_state.json"
    p.write_text(json.dumps({"global_step": log[-1]["step"], "log_history": log}))
    return p


def _write_export(tmp_path: Path, log: list[dict], index: bool = True) -> Path:
    """`pd.DataFrame(trainer.state.log_history).to_csv(...)`, written without pandas."""
    keys: list[str] = []
    for e in log:
        keys.extend(k for k in e if k not in keys)
    lines = [("," if index else "") + ",".join(keys)]
    for i, e in enumerate(log):
        cells = ["" if k not in e else repr(float(e[k])) for k in keys]
        lines.append((f"{i}," if index else "") + ",".join(cells))
    p = tmp_path / "log_history.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.mark.parametrize("writer", [_write_state, _write_export], ids=["trainer_state", "csv_export"])
def test_eval_at_epoch_end_pairs_with_the_train_steps_of_that_epoch(tmp_path, writer):
    c = read_history(writer(tmp_path, _hf_log(evals_per_epoch=1, epochs=3, logging_steps=5)))
    # train logs at steps 5,10,15,20 belong to the eval at step 20 (epoch 1.0), not 25..40
    np.testing.assert_allclose(c.train, [12.5, 32.5, 52.5])
    np.testing.assert_allclose(c.val, [1020, 1040, 1060])
    np.testing.assert_array_equal(c.epochs, [0, 1, 2])
    assert c.point == "epoch" and c.span == "3 epochs"
    np.testing.assert_allclose(c.epoch_at, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(c.steps, [20, 40, 60])
    assert (c.train_name, c.val_name) == ("loss", "eval_loss")


def test_csv_export_with_format_in_hf(tmp_path):
    path = _write_export(tmp_path, _hf_log(evals_per_epoch=1, epochs=2, logging_steps=5), index=False)
    c = read_history(path, format_in="hf")
    assert c.format == "hf_trainer_state"
    np.testing.assert_allclose(c.train, [12.5, 32.5])
    np.testing.assert_allclose(c.val, [1020, 1040])


@pytest.mark.parametrize("writer", [_write_state, _write_export], ids=["trainer_state", "csv_export"])
def test_fewer_train_logs_than_evals_are_left_missing_never_filled(tmp_path, writer):
    # eval every 5 steps (4 per epoch), train logged every 10 steps: half the evals have no train log
    c = read_history(writer(tmp_path, _hf_log(evals_per_epoch=4, epochs=2, logging_steps=10)))
    assert len(c) == 8
    np.testing.assert_allclose(c.val, [1005, 1010, 1015, 1020, 1025, 1030, 1035, 1040])
    assert np.isnan(c.train[0]) and c.train[1] == 10.0 and np.isnan(c.train[2]) and c.train[3] == 20.0
    assert np.isnan(c.train).sum() == 4
    assert any("4 of 8 evaluations have no train log" in n for n in c.notes)
    # mid-epoch evaluations: the points are evaluations, and the span says over how many epochs
    assert c.point == "evaluation"
    np.testing.assert_array_equal(c.epochs, np.arange(8))
    assert c.span == "8 evaluations over 2 epochs"


def test_train_only_step_log_averages_per_epoch_with_its_epoch_values(tmp_path):
    log = [e for e in _hf_log(1, 3, 5) if "eval_loss" not in e]
    c = read_history(_write_state(tmp_path, log))
    assert c.val is None
    np.testing.assert_allclose(c.train, [12.5, 32.5, 52.5])
    np.testing.assert_array_equal(c.epochs, [0, 1, 2])


def test_span_words_the_x_axis():
    c = Curves(epochs=np.arange(7), train=None, val=np.ones(7), metric="loss")
    assert c.span == "7 epochs"
    np.testing.assert_allclose(c.epochs_done, np.arange(1, 8))
    c = Curves(
        epochs=np.arange(7),
        train=None,
        val=np.ones(7),
        metric="loss",
        epoch_at=np.linspace(1.5, 13.5, 7),
        point="evaluation",
    )
    assert c.span == "7 evaluations over 13.5 epochs"
    c = Curves(
        epochs=np.arange(1),
        train=None,
        val=np.ones(1),
        metric="loss",
        steps=np.array([500.0]),
        point="evaluation",
    )
    assert c.span == "1 evaluation over 500 steps"


def test_real_whisper_log_reports_evaluations_over_epochs(corpus):
    c = read_history(corpus / "real" / "hf_trainer_state" / "whisper_small_hi_5000steps.json")
    assert c.point == "evaluation" and len(c) == 5
    assert c.span.startswith("5 evaluations over 12.")
    np.testing.assert_allclose(c.steps, [1000, 2000, 3000, 4000, 5000])


def test_count_and_throughput_columns_are_never_metrics(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text(
        "epoch,eval_num_tokens,train_tokens_per_second,total_flos,num_input_tokens_seen,eval_runtime,"
        "eval_samples_per_second,grad_norm,lr,step\n"
        "0,100,5,1,10,1,2,0.5,0.1,1\n1,200,5,1,20,1,2,0.4,0.1,2\n"
    )
    with pytest.raises(HistoryError, match="no usable numeric series"):
        read_history(p)
    # Beside a real loss they are not even listed as candidates.
    p.write_text("epoch,loss,eval_loss,eval_num_tokens,eval_runtime\n0,1,1.1,100,2\n1,0.8,0.9,200,2\n")
    c = read_history(p)
    assert (c.train_name, c.val_name) == ("loss", "eval_loss")
    assert not any("num_tokens" in n or "runtime" in n for n in c.notes)


def test_test_columns_stand_in_for_validation_only_when_there_is_none(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("epoch,train_loss,test_loss,test_mae\n0,1.0,1.2,0.9\n1,0.8,1.0,0.8\n2,0.6,0.9,0.7\n")
    c = read_history(p)
    assert (c.train_name, c.val_name) == ("train_loss", "test_loss")
    assert any("no validation series" in n and "test_loss" in n and "--val-col" in n for n in c.notes)
    # Beside a validation series they are not used, but a note says how to use them.
    p.write_text("epoch,train_loss,val_loss,test_loss\n0,1.0,1.1,1.2\n1,0.8,0.9,1.0\n")
    c = read_history(p)
    assert c.val_name == "val_loss"
    assert any("--val-col test_loss" in n for n in c.notes)
    # One final test value is no curve (Lightning's test row).
    p.write_text("epoch,step,train_loss,test_loss\n0,1,1.0,\n1,2,0.8,\n1,2,,0.7\n")
    c = read_history(p)
    assert c.val is None and c.train_name == "train_loss"


def test_fitdoc_test_mae_is_never_validation(tmp_path):
    p = tmp_path / "history.csv"
    p.write_text("epoch,loss,mae,reg_loss,epoch_seconds,test_mae\n0,1,0.9,0.1,1,0.8\n1,0.8,0.7,0.1,1,0.7\n")
    c = read_history(p)
    assert c.format == "fitdoc" and c.val is None


def test_train_nll_is_not_paired_silently_with_val_rmse(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("epoch,train_nll,val_rmse\n0,2.0,1.5\n1,1.5,1.2\n2,1.2,1.1\n")
    c = read_history(p)
    assert c.train is None or c.val is None
    assert any("no metric is logged for both train and validation" in n for n in c.notes)
    # A like pair beside them wins.
    p.write_text("epoch,train_nll,train_loss,val_rmse,val_loss\n0,2,1,1.5,1.1\n1,1.5,0.9,1.2,1.0\n")
    c = read_history(p)
    assert (c.train_name, c.val_name) == ("train_loss", "val_loss")
    # Chosen by hand, any pair goes, and the note says it is a pair of two metrics.
    c = read_history(p, train_col="train_nll", val_col="val_rmse")
    assert any("paired with validation `val_rmse`" in n for n in c.notes)


def test_columns_all_unknown_are_exit_2_naming_them_and_the_options(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("a,b,c\n1,2,3\n4,5,6\n7,8,9\n")
    with pytest.raises(HistoryError) as err:
        read_history(p)
    assert "columns: a, b, c" in err.value.message
    assert "--train-col" in err.value.message and "--val-col" in err.value.message
    result = CliRunner().invoke(app, ["diagnose", str(p)])
    assert result.exit_code == 2
    # Naming them is enough.
    c = read_history(p, train_col="a", val_col="b")
    np.testing.assert_allclose(c.train, [1, 4, 7])
    # Unknown metrics with split names are a curve.
    p.write_text("train_energy,val_energy\n1,2\n0.5,1\n")
    assert read_history(p).val_name == "val_energy"


def test_nan_train_points_survive_to_the_diagnosis_without_a_crash(tmp_path):
    path = _write_state(tmp_path, _hf_log(evals_per_epoch=4, epochs=6, logging_steps=10))
    result = CliRunner().invoke(app, ["diagnose", str(path), "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    result_0 = json.loads(result.stdout)["results"][0]
    assert result_0["epochs"] == 24
    assert any("have no train log before them" in n for n in result_0["notes"])


# ----------------------------------------------------------------- large files


def _same(a, b):
    if a is None or b is None:
        return a is None and b is None
    return np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=1e-12, atol=0, equal_nan=True)


def test_large_file_path_reads_every_real_csv_as_the_careful_reader_does(corpus, monkeypatch):
    import fitdoc.history.load as history

    files = sorted(p for p in (corpus / "real").glob("*/*") if p.suffix in (".csv", ".log"))
    assert len(files) > 30
    for path in files:
        careful = read_history(path)
        monkeypatch.setattr(history, "LARGE_BYTES", 0)
        fast = read_history(path)
        monkeypatch.setattr(history, "LARGE_BYTES", 1 << 20)
        name = path.name
        assert (fast.train_name, fast.val_name, fast.metric) == (
            careful.train_name,
            careful.val_name,
            careful.metric,
        ), name
        assert _same(fast.epochs, careful.epochs), name
        for attr in ("train", "val", "train_loss", "val_loss", "reg_loss"):
            assert _same(getattr(fast, attr), getattr(careful, attr)), (name, attr)
        assert fast.notes == careful.notes, name


def test_a_large_per_step_log_reads_through_pandas_in_chunks(tmp_path):
    p = tmp_path / "metrics.csv"
    lines = ["epoch,step,train_loss,val_loss"]
    step = 0
    for epoch in range(30):
        for _ in range(2000):
            lines.append(f"{epoch},{step},{1.0 / (epoch + 1):.6f},")
            step += 1
        lines.append(f"{epoch},{step - 1},,{1.1 / (epoch + 1):.6f}")
    p.write_text("\n".join(lines) + "\n")
    assert p.stat().st_size > (1 << 20)
    code = (
        "import sys\n"
        "from fitdoc.history.load import read_history\n"
        "c = read_history(sys.argv[1])\n"
        "print(len(c), c.train_name, c.val_name, 'pandas' in sys.modules)\n"
    )
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-c", code, str(p)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(repo)),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["30", "train_loss", "val_loss", "True"]
    c = read_history(p)
    np.testing.assert_allclose(c.train, [1.0 / (e + 1) for e in range(30)], atol=1e-6)
    np.testing.assert_allclose(c.val, [1.1 / (e + 1) for e in range(30)], atol=1e-6)


def test_hf_notebook_table_keeps_no_log_cells_missing(tmp_path):
    # The Trainer's notebook table, saved as CSV: "No log" where no train loss was logged yet.
    p = tmp_path / "hf_table.csv"
    p.write_text(
        "Epoch,Training Loss,Validation Loss,Accuracy\n1,No log,0.52,0.80\n2,0.41,0.47,0.84\n3,0.30,0.46,0.85\n"
    )
    c = read_history(p)
    assert (c.train_name, c.val_name) == ("Training Loss", "Validation Loss")
    assert np.isnan(c.train[0])
    np.testing.assert_allclose(c.train[1:], [0.41, 0.30])
    np.testing.assert_array_equal(c.epochs, [0, 1, 2])
