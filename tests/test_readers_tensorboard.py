"""TensorBoard log directories, written by the real writers and read back value for value.

The reader needs the `tensorboard` extra; without it these tests skip, except
under CI=true where the extra is installed and they must run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fitdoc.cli import app
from fitdoc.errors import MissingDependencyError
from fitdoc.history.load import discover, read_history


def _need(module: str):
    if os.environ.get("CI", "").lower() == "true":
        return __import__(module)
    return pytest.importorskip(module, reason=f"{module} not installed (an optional extra)")


def _write_simple(logdir: Path, scalars: dict[str, list[tuple[int, float]]]) -> None:
    """SummaryWriter-style simple values, through tensorboard's own event writer (what
    torch.utils.tensorboard and tensorboardX use), no TensorFlow."""
    _need("tensorboard")
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(logdir))
    for tag, points in scalars.items():
        for step, value in points:
            summary = Summary(value=[Summary.Value(tag=tag, simple_value=value)])
            writer.add_event(Event(step=step, wall_time=1.0, summary=summary))
    writer.close()


def test_summary_writer_tags_several_runs_one_diagnosis_each(tmp_path):
    train = [(e, 1.0 / (e + 1)) for e in range(12)]
    val = [(e, 1.2 / (e + 1) + 0.01 * e) for e in range(12)]
    _write_simple(tmp_path / "runs" / "slash_first", {"Loss/train": train, "Loss/val": val})
    _write_simple(tmp_path / "runs" / "split_first", {"train/loss": train, "val/loss": val})
    sources = discover([tmp_path])
    assert [s.name for s in sources] == ["runs/slash_first", "runs/split_first"]
    for src, names in zip(sources, [("Loss/train", "Loss/val"), ("train/loss", "val/loss")], strict=True):
        c = read_history(src.history_path)
        assert (c.train_name, c.val_name) == names
        assert c.format == "tensorboard" and c.point == "epoch"
        np.testing.assert_array_equal(c.epochs, np.arange(12))
        np.testing.assert_allclose(c.train, [v for _, v in train], rtol=1e-6)
        np.testing.assert_allclose(c.val, [v for _, v in val], rtol=1e-6)
    result = CliRunner().invoke(app, ["diagnose", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["results"]) == 2


def test_train_every_step_val_every_epoch_pairs_each_val_with_the_steps_before_it(tmp_path):
    # 10 steps an epoch, train logged every step, val at the last step of each epoch
    train = [(s, float(s)) for s in range(1, 51)]
    val = [(s, 100.0 + s) for s in range(10, 51, 10)]
    _write_simple(tmp_path, {"train/loss": train, "val/loss": val})
    c = read_history(tmp_path, format_in="tensorboard")
    np.testing.assert_allclose(c.val, [110, 120, 130, 140, 150])
    np.testing.assert_allclose(c.train, [5.5, 15.5, 25.5, 35.5, 45.5])
    assert c.point == "evaluation" and c.span == "5 evaluations over 50 steps"
    assert any("steps 10 to 50" in n for n in c.notes)


def test_train_only_run_reads_without_validation(tmp_path):
    _write_simple(tmp_path, {"loss": [(e, 1.0 / (e + 1)) for e in range(5)]})
    c = read_history(tmp_path)
    assert c.val is None and len(c) == 5 and c.train_name == "loss"


def test_tensor_valued_scalars_from_tf_summary(tmp_path):
    tf = _need("tensorflow")
    for split in ("train", "validation"):
        writer = tf.summary.create_file_writer(str(tmp_path / split))
        with writer.as_default():
            for e in range(8):
                value = 1.0 / (e + 1) if split == "train" else 1.5 / (e + 1)
                tf.summary.scalar("epoch_mae", value, step=e)
        writer.close()
    c = read_history(tmp_path)
    assert (c.train_name, c.val_name) == ("mae", "val_mae")
    np.testing.assert_allclose(c.train, [1.0 / (e + 1) for e in range(8)], rtol=1e-6)
    np.testing.assert_allclose(c.val, [1.5 / (e + 1) for e in range(8)], rtol=1e-6)


@pytest.mark.training
def test_keras_tensorboard_callback_reads_back_the_history_keras_returned(tmp_path):
    _need("tensorboard")
    tf = _need("tensorflow")
    import keras

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).random((120, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    logdir = tmp_path / "logs"
    history = model.fit(
        x, y, validation_split=0.25, epochs=6, verbose=0, callbacks=[keras.callbacks.TensorBoard(str(logdir))]
    )
    assert tf is not None
    assert {p.name for p in logdir.iterdir()} >= {"train", "validation"}
    c = read_history(logdir)
    assert (c.train_name, c.val_name) == ("mae", "val_mae")
    np.testing.assert_array_equal(c.epochs, np.arange(6))
    # value for value (float32 in the event file, as in Keras' own logs)
    np.testing.assert_allclose(c.train, history.history["mae"], rtol=1e-6)
    np.testing.assert_allclose(c.val, history.history["val_mae"], rtol=1e-6)
    np.testing.assert_allclose(c.train_loss, history.history["loss"], rtol=1e-6)
    np.testing.assert_allclose(c.val_loss, history.history["val_loss"], rtol=1e-6)
    # The CLI reads the same log directory in a fresh process that never imports TensorFlow.
    code = (
        "import sys\n"
        "from fitdoc.cli import main\n"
        "sys.argv = ['fitdoc', 'diagnose', sys.argv[1], '--format', 'json']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'torch', 'pandas') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.run(
        [sys.executable, "-c", code, str(logdir)], capture_output=True, text=True, timeout=120, env=env
    )
    assert "HEAVY []" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert '"epochs": 6' in proc.stdout


def test_diagnose_of_a_log_dir_never_imports_tensorflow(tmp_path):
    _write_simple(tmp_path / "run", {"Loss/train": [(0, 1.0), (1, 0.5)], "Loss/val": [(0, 1.1), (1, 0.7)]})
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "fitdoc", "diagnose", str(tmp_path), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = {
        ln.rsplit("|", 1)[1].strip() for ln in proc.stderr.splitlines() if ln.startswith("import time:")
    }
    assert "tensorboard" in {m.split(".")[0] for m in modules}
    assert not {m.split(".")[0] for m in modules} & {
        "tensorflow",
        "keras",
        "torch",
        "jax",
        "pandas",
        "matplotlib",
    }


def test_without_the_extra_one_line_says_how_to_install_it(tmp_path, monkeypatch):
    (tmp_path / "events.out.tfevents.1.host").write_bytes(b"\x00" * 16)
    monkeypatch.setitem(sys.modules, "tensorboard.backend.event_processing.event_file_loader", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'fitdoc\[tensorboard\]'"):
        read_history(tmp_path)
    result = CliRunner().invoke(app, ["diagnose", str(tmp_path)])
    assert result.exit_code == 2
    assert "fitdoc[tensorboard]" in result.output
    # Many log directories: the missing extra is said once, not once per directory.
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "events.out.tfevents.1.host").write_bytes(b"\x00" * 16)
    result = CliRunner().invoke(
        app, ["diagnose", str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "c")]
    )
    assert result.exit_code == 2
    assert result.output.count("fitdoc[tensorboard]") == 1


def test_a_corrupt_event_file_is_exit_2(tmp_path):
    _need("tensorboard")
    (tmp_path / "events.out.tfevents.1.host").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00garbage")
    result = CliRunner().invoke(app, ["diagnose", str(tmp_path)])
    assert result.exit_code == 2, result.output


def test_a_run_directory_with_event_files_beside_its_history_reads_the_history(tmp_path):
    run = tmp_path / "run1"
    _write_simple(run, {"loss": [(0, 1.0), (1, 0.5)]})
    (run / "history.csv").write_text("epoch,loss,mae,val_loss,val_mae\n0,1,0.9,1.1,1.0\n1,0.8,0.7,0.9,0.8\n")
    sources = discover([tmp_path])
    assert [s.history_path for s in sources] == [run / "history.csv"]
