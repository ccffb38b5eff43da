"""A real process interrupted by SIGINT/SIGTERM keeps a valid history and says `interrupted`."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = """
import sys
from rich.console import Console
from fitdoc.config import Config
from fitdoc.train import run_training

config = Config.model_validate({
    "name": "long",
    "data": {"synthetic": "wave", "n_samples": 200},
    "model": {"hidden_layers": 2, "units": 8},
    "training": {"epochs": 100000, "batch_size": 64, "engine": sys.argv[2]},
    "output": {"dir": sys.argv[1]},
})
result = run_training(config, console=Console(stderr=True), progress=False)
print(result.run_dir)
sys.exit(130 if result.status == "interrupted" else 0)
"""


def _wait_for_rows(runs: Path, rows: int, proc: subprocess.Popen, deadline: float) -> Path:
    while time.monotonic() < deadline:
        for history in runs.glob("*/history.csv"):
            if len(history.read_text().splitlines()) >= rows + 1:
                return history
        if proc.poll() is not None:
            pytest.fail(f"training exited early: {proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no history rows within the deadline")


@pytest.mark.training
@pytest.mark.parametrize(
    ("sig", "engine"),
    [(signal.SIGINT, "fast"), (signal.SIGTERM, "keras")],
    ids=["SIGINT-fast", "SIGTERM-keras"],
)
def test_interrupted_run_keeps_a_valid_history(tmp_path: Path, sig: signal.Signals, engine: str) -> None:
    pytest.importorskip("tensorflow")
    runs = tmp_path / "runs"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(runs), engine],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    history = _wait_for_rows(runs, 2, proc, time.monotonic() + 90)
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the run did not stop after the signal")
    assert proc.returncode == 130, err[-2000:]
    run_dir = Path(out.strip().splitlines()[-1])
    assert run_dir == history.parent
    with open(history, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    assert header[:5] == ["epoch", "loss", "mae", "val_loss", "val_mae"]
    assert len(rows) >= 2
    assert [int(r[0]) for r in rows] == list(range(len(rows)))
    assert all(len(r) == len(header) and all(math.isfinite(float(v)) for v in r) for r in rows)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "interrupted"
    assert signal.Signals(sig).name in record["message"]
    assert record["epochs"]["completed"] == len(rows)
