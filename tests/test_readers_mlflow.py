"""MLflow runs written with MLflow's own API, read back: `mlflow:RUN_ID` from a SQLite
tracking store through MLflow's client, `mlruns/EXP/RUN` file-store folders straight
from their files (no MLflow needed to read them).

Writing needs the `mlflow` extra; without it these tests skip, except under
CI=true where the extra is installed and they must run.
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
from fitdoc.errors import HistoryError, MissingDependencyError
from fitdoc.history.load import discover, read_history

REPO = Path(__file__).resolve().parents[1]
TRAIN = [1.0 / (e + 1) for e in range(15)]
VAL = [1.2 / (e + 1) + 0.02 * e for e in range(15)]

# Written in a subprocess: MLflow keeps a process-wide tracking URI and active run.
WRITER = """
import sys, mlflow
mlflow.set_tracking_uri(sys.argv[1])
train, val = eval(sys.argv[2]), eval(sys.argv[3])
with mlflow.start_run() as run:
    mlflow.log_params({"l2": 0.001, "dropout": 0.0, "units": 64})
    for e, (t, v) in enumerate(zip(train, val)):
        mlflow.log_metrics({"loss": t, "val_loss": v}, step=e)
print(run.info.experiment_id, run.info.run_id)
"""


def _need_mlflow() -> None:
    if os.environ.get("CI", "").lower() != "true":
        pytest.importorskip("mlflow", reason="mlflow not installed (an optional extra)")


def _write_run(uri: str, cwd: Path) -> tuple[str, str]:
    _need_mlflow()
    env = dict(os.environ, MLFLOW_ALLOW_FILE_STORE="true")
    proc = subprocess.run(
        [sys.executable, "-c", WRITER, uri, repr(TRAIN), repr(VAL)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    experiment, run_id = proc.stdout.split()[-2:]
    return experiment, run_id


def test_mlflow_run_id_from_a_sqlite_store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _, run_id = _write_run(uri, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    c = read_history(f"mlflow:{run_id}")
    assert c.format == "mlflow"
    assert (c.train_name, c.val_name) == ("loss", "val_loss")
    np.testing.assert_array_equal(c.epochs, np.arange(15))
    np.testing.assert_allclose(c.train, TRAIN)
    np.testing.assert_allclose(c.val, VAL)
    assert any("l2=0.001" in n for n in c.notes)
    result = CliRunner().invoke(app, ["diagnose", f"mlflow:{run_id}", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results"][0]["epochs"] == 15
    # An unknown run is one line and exit 2.
    result = CliRunner().invoke(app, ["diagnose", "mlflow:0123456789abcdef"])
    assert result.exit_code == 2
    assert "mlflow:0123456789abcdef" in result.output


def test_mlruns_file_store_reads_without_mlflow(tmp_path):
    experiment, run_id = _write_run(f"file://{tmp_path / 'mlruns'}", tmp_path)
    run_dir = tmp_path / "mlruns" / experiment / run_id
    assert (run_dir / "metrics" / "val_loss").is_file()
    # In a process where importing mlflow fails: the file store needs none of it.
    code = (
        "import sys, json\n"
        "sys.modules['mlflow'] = None\n"
        "from fitdoc.history.load import read_history\n"
        "c = read_history(sys.argv[1])\n"
        "print(json.dumps([c.train_name, c.val_name, list(c.train), list(c.val), list(c.notes)]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    train_name, val_name, train, val, notes = json.loads(proc.stdout)
    assert (train_name, val_name) == ("loss", "val_loss")
    np.testing.assert_allclose(train, TRAIN)
    np.testing.assert_allclose(val, VAL)
    assert any("dropout=0.0" in n for n in notes)
    # The whole store and one experiment are folders of runs, one diagnosis each.
    for root in (tmp_path / "mlruns", tmp_path / "mlruns" / experiment):
        assert [s.history_path for s in discover([root])] == [run_dir]


def test_file_store_layout_by_hand(tmp_path):
    run = tmp_path / "mlruns" / "1" / "abc123"
    (run / "metrics" / "Loss").mkdir(parents=True)
    (run / "params").mkdir()
    (run / "meta.yaml").write_text("run_id: abc123\n")
    (run / "metrics" / "Loss" / "train").write_text(
        "".join(f"1700000000 {t} {e}\n" for e, t in enumerate(TRAIN))
    )
    (run / "metrics" / "Loss" / "val").write_text("".join(f"1700000000 {v} {e}\n" for e, v in enumerate(VAL)))
    (run / "params" / "weight_decay").write_text("0.01")
    artifacts = run / "artifacts"
    artifacts.mkdir()
    (artifacts / "history.json").write_text('{"loss": [1, 2]}')  # an artifact is not a run of its own
    deleted = tmp_path / "mlruns" / "1" / "def456"
    (deleted / "metrics").mkdir(parents=True)
    (deleted / "meta.yaml").write_text("lifecycle_stage: deleted\nrun_id: def456\n")
    (deleted / "metrics" / "loss").write_text("1700000000 1.0 0\n")
    trashed = tmp_path / "mlruns" / ".trash" / "ghi789"
    (trashed / "metrics").mkdir(parents=True)
    (trashed / "meta.yaml").write_text("run_id: ghi789\n")
    assert [s.history_path for s in discover([tmp_path])] == [run]
    c = read_history(run)
    assert (c.train_name, c.val_name) == ("Loss/train", "Loss/val")
    np.testing.assert_allclose(c.val, VAL)
    assert any("weight_decay=0.01" in n for n in c.notes)
    (run / "metrics" / "Loss" / "val").write_text("not a metric line\n")
    with pytest.raises(HistoryError, match="TIMESTAMP VALUE STEP"):
        read_history(run)


def test_mlflow_uri_without_the_extra_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    monkeypatch.setitem(sys.modules, "mlflow.exceptions", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'fitdoc\[mlflow\]'"):
        read_history("mlflow:abc")
    result = CliRunner().invoke(app, ["diagnose", "mlflow:abc"])
    assert result.exit_code == 2
    assert "fitdoc[mlflow]" in result.output


def test_an_unreachable_tracking_server_is_exit_2_in_seconds(monkeypatch):
    _need_mlflow()
    import socket
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free, and nothing will listen there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    for name in (
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
        "MLFLOW_HTTP_REQUEST_TIMEOUT",
    ):
        monkeypatch.setenv(name, "0")  # recorded, so the reader's defaults are undone afterwards
        monkeypatch.delenv(name)
    start = time.perf_counter()
    result = CliRunner().invoke(app, ["diagnose", "mlflow:abc"])
    assert result.exit_code == 2
    assert "does not answer" in result.output
    assert time.perf_counter() - start < 60  # MLflow's own defaults retry for minutes


def _server_available() -> bool:
    try:
        import importlib.util

        return (
            importlib.util.find_spec("mlflow") is not None and importlib.util.find_spec("flask") is not None
        )
    except (ImportError, ValueError):
        return False


@pytest.mark.skipif(
    not _server_available(),
    reason="`mlflow server` needs the full mlflow package (Flask and the server extras), not mlflow-skinny",
)
def test_mlflow_run_id_over_http_from_a_real_tracking_server(tmp_path, monkeypatch):
    import socket
    import time
    import urllib.request

    store = f"sqlite:///{tmp_path / 'server.db'}"
    _, run_id = _write_run(store, tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            store,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"mlflow server did not start: {server.stderr.read()[-3000:] if server.stderr else ''}"
                )
            time.sleep(0.5)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
        c = read_history(f"mlflow:{run_id}")
        assert (c.train_name, c.val_name) == ("loss", "val_loss")
        np.testing.assert_allclose(c.train, TRAIN)
        np.testing.assert_allclose(c.val, VAL)
    finally:
        import signal

        # The server runs its workers as children, all in the session this test started.
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


CALLBACK_SCRIPT = """
import sys
import numpy as np
import keras
import mlflow
from fitdoc.keras import FitdocCallback

mlflow.set_tracking_uri(sys.argv[1])
keras.utils.set_random_seed(0)
x = np.random.default_rng(0).uniform(size=(120, 3)).astype("float32")
y = (x.sum(axis=1, keepdims=True) + 0.3 * np.random.default_rng(1).normal(size=(120, 1))).astype("float32")
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1)])
model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
doctor = FitdocCallback(mlflow=True, verbose=0, config={"model": {"hidden_layers": 1, "units": 64}})
with mlflow.start_run() as run:
    model.fit(x, y, validation_split=0.25, epochs=30, batch_size=16, verbose=0, callbacks=[doctor])
d = doctor.diagnosis
tags = mlflow.MlflowClient().get_run(run.info.run_id).data
print(d.verdict.value, d.cause.value if d.cause else "", tags.tags.get("fitdoc.verdict"),
      tags.tags.get("fitdoc.cause"), "fitdoc.suggestion" in tags.params, d.suggestion is not None, sep="|")
"""


@pytest.mark.training
def test_the_keras_callback_tags_the_active_mlflow_run(tmp_path):
    _need_mlflow()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.run(
        [sys.executable, "-c", CALLBACK_SCRIPT, uri],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    verdict, cause, tag_verdict, tag_cause, has_param, has_suggestion = (
        proc.stdout.strip().splitlines()[-1].split("|")
    )
    assert tag_verdict == verdict
    assert tag_cause == cause
    assert has_param == has_suggestion
