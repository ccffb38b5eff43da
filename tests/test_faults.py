"""Fault tests on real processes: `python -m fitdoc ...` killed, starved and raced.

Issue 8: no fault may lose a finished epoch. Each test starts the real CLI in a
subprocess (TensorFlow included) on a tiny synthetic problem and checks what
is left on disk: a history whose every row is complete, a `run.json` that
says what happened, and the exit code the README documents.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.training

HEADER = ["epoch", "loss", "mae", "val_loss", "val_mae", "reg_loss", "learning_rate", "epoch_seconds"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
# Generous: one start imports TensorFlow on a shared, loaded CI machine.
START_TIMEOUT = 240


def write_config(folder: Path, *, name: str = "fault", epochs: int = 20, **sections: dict) -> Path:
    """A tiny founding-case run: 200 samples, 2 x 8 units, a few ms per epoch."""
    config: dict = {
        "name": name,
        "seed": 1,
        "data": {"synthetic": "founding", "n_samples": 200},
        "model": {"hidden_layers": 2, "units": 8},
        "training": {"epochs": epochs, "batch_size": 50},
        "output": {"dir": str(folder / "runs")},
    }
    for section, values in sections.items():
        config[section] = {**config.get(section, {}), **values}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class Proc:
    """`python -m fitdoc ARGS` with stdout/stderr in files (no pipe can fill up and block it)."""

    def __init__(self, folder: Path, *args: str, tag: str = "p") -> None:
        self.out = folder / f"{tag}.stdout"
        self.err = folder / f"{tag}.stderr"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "fitdoc", *args], stdout=out, stderr=err, env=ENV, cwd=folder
            )

    def wait(self, timeout: float = START_TIMEOUT) -> int:
        return self.popen.wait(timeout=timeout)

    @property
    def stdout(self) -> str:
        return self.out.read_text()

    @property
    def stderr_lines(self) -> list[str]:
        # TensorFlow's C++ start-up chatter is not ours; everything else is.
        noise = ("I0000", "W0000", "E0000", "WARNING: All log messages")
        return [line for line in self.err.read_text().splitlines() if not line.startswith(noise)]

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=30)


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Every process a test starts is gone when it ends, pass or fail."""
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.kill()


def train(procs: list[Proc], config: Path, *extra: str, tag: str = "train") -> Proc:
    proc = Proc(config.parent, "train", str(config), "--quiet", *extra, tag=tag)
    procs.append(proc)
    return proc


def run_dirs(folder: Path) -> list[Path]:
    runs = folder / "runs"
    return sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []


def data_rows(history: Path) -> int:
    try:
        return max(0, len(history.read_text().splitlines()) - 1)
    except FileNotFoundError:
        return 0


def check_history(history: Path) -> list[list[float]]:
    """Every row complete and finite, epochs 0, 1, 2, ... with no gap: a valid history."""
    text = history.read_text()
    assert text.endswith("\n"), "the last row is cut off"
    lines = text.splitlines()
    header = lines[0].split(",")
    assert header[: len(HEADER)] == HEADER
    rows = []
    for number, line in enumerate(lines[1:]):
        cells = line.split(",")
        assert len(cells) == len(header), f"row {number} is incomplete: {line!r}"
        values = [float(c) for c in cells]
        assert all(math.isfinite(v) for v in values), f"row {number}: {line!r}"
        assert values[0] == number, f"epoch {values[0]} in row {number}"
        rows.append(values)
    # And fitdoc's own reader takes it.
    if rows:
        from fitdoc.history.load import read_history

        assert len(read_history(history)) == len(rows)
    return rows


def check_run(run_dir: Path, status: str) -> tuple[dict, list[list[float]]]:
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == status, record.get("message")
    rows = check_history(run_dir / "history.csv")
    assert record["epochs"]["completed"] == len(rows)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["data"]["synthetic"] == "founding"
    leftovers = [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers, f"atomic-write temp files left: {leftovers}"
    return record, rows


def wait_for_rows(proc: Proc, folder: Path, rows: int) -> Path:
    """The run directory once its history holds `rows` finished epochs; run.json always parses."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert proc.popen.poll() is None, f"exited early ({proc.popen.returncode}): {proc.stderr_lines}"
        for run_dir in run_dirs(folder):
            if (run_dir / "run.json").exists():
                # Written by rename: a reader never sees half of it.
                json.loads((run_dir / "run.json").read_text())
            if data_rows(run_dir / "history.csv") >= rows:
                return run_dir
        time.sleep(0.02)
    pytest.fail(f"no history with {rows} rows after {START_TIMEOUT}s")


# ------------------------------------------------------------------ signals


@pytest.mark.parametrize(
    ("sig", "after_rows", "engine"),
    [(signal.SIGINT, 2, "fast"), (signal.SIGTERM, 7, "fast"), (signal.SIGTERM, 2, "keras")],
    ids=["SIGINT-after-2-fast", "SIGTERM-after-7-fast", "SIGTERM-after-2-keras"],
)
def test_signal_keeps_every_finished_epoch(
    tmp_path: Path, procs: list[Proc], sig: signal.Signals, after_rows: int, engine: str
) -> None:
    """SIGINT/SIGTERM mid-run, on either engine: exit 130, status `interrupted`,
    history valid to its last row. (The one place signal handling is tested.)"""
    proc = train(procs, write_config(tmp_path, epochs=100_000, training={"engine": engine}))
    run_dir = wait_for_rows(proc, tmp_path, after_rows)
    proc.popen.send_signal(sig)
    assert proc.wait() == 130, proc.stderr_lines
    record, rows = check_run(run_dir, "interrupted")
    assert len(rows) >= after_rows
    assert sig.name in record["message"]
    assert (run_dir / "model.keras").is_file()
    assert proc.stdout.splitlines()[-1] == str(run_dir)
    assert any("interrupted" in line for line in proc.stderr_lines)


def test_second_signal_stops_at_once_and_keeps_history(tmp_path: Path, procs: list[Proc]) -> None:
    """Ctrl-C twice: stop now; still a valid history and an `interrupted` run.json."""
    proc = train(procs, write_config(tmp_path, epochs=100_000))
    run_dir = wait_for_rows(proc, tmp_path, 3)
    proc.popen.send_signal(signal.SIGINT)
    proc.popen.send_signal(signal.SIGINT)
    assert proc.wait() == 130, proc.stderr_lines
    _, rows = check_run(run_dir, "interrupted")
    assert len(rows) >= 3


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_startup_leaves_a_truthful_run_json(
    tmp_path: Path, procs: list[Proc], sig: signal.Signals
) -> None:
    """A signal once the run directory exists but before the first epoch: still `interrupted`, exit 130."""
    proc = train(procs, write_config(tmp_path, epochs=100_000))
    deadline = time.monotonic() + START_TIMEOUT
    while not any((d / "run.json").exists() for d in run_dirs(tmp_path)):
        assert proc.popen.poll() is None and time.monotonic() < deadline, proc.stderr_lines
        time.sleep(0.005)
    proc.popen.send_signal(sig)
    assert proc.wait() == 130, proc.stderr_lines
    (run_dir,) = run_dirs(tmp_path)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "interrupted", record
    if (run_dir / "history.csv").exists():
        check_history(run_dir / "history.csv")


def test_sigterm_during_a_probed_run_keeps_every_net_valid(tmp_path: Path, procs: list[Proc]) -> None:
    """--probe: SIGTERM mid-run leaves the run's and every neighbour's history valid, all `interrupted`."""
    proc = train(procs, write_config(tmp_path, epochs=100_000, model={"hidden_layers": 2}), "--probe")
    run_dir = wait_for_rows(proc, tmp_path, 3)
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.wait() == 130, proc.stderr_lines
    record, rows = check_run(run_dir, "interrupted")
    # An 8-unit net is probed beside a 32-unit one too (the width neighbour).
    assert [p["slug"] for p in record["probes"]] == ["l2-0.0001", "dropout-0.2", "units-32"]
    for entry in record["probes"]:
        probe_rows = check_history(run_dir / entry["path"] / "history.csv")
        # The neighbours trained the same epochs as the run (they finish each epoch together).
        assert len(probe_rows) == len(rows) == entry["epochs"]
        assert entry["status"] == "interrupted"
        assert json.loads((run_dir / entry["path"] / "run.json").read_text())["status"] == "interrupted"


# ------------------------------------------------------------------ divergence


def test_nan_loss_is_diverged_with_history_kept(tmp_path: Path, procs: list[Proc]) -> None:
    """Learning rate 10 on a deep linear net blows up within a few epochs (seeded, checked)."""
    config = write_config(
        tmp_path,
        epochs=300,
        model={"hidden_layers": 4, "units": 16, "activation": "linear"},
        training={"learning_rate": 10},
    )
    proc = train(procs, config)
    assert proc.wait() == 3, proc.stderr_lines
    (run_dir,) = run_dirs(tmp_path)
    record, rows = check_run(run_dir, "diverged")
    assert 1 <= len(rows) < 300, "the finite epochs before the blow-up are kept"
    assert "diverged" in record["message"]
    assert proc.stdout.splitlines()[-1] == str(run_dir)
    assert any("diverged" in line and str(run_dir) in line for line in proc.stderr_lines)


# ------------------------------------------------------------------ output directory


def assert_one_error_line(proc: Proc, *needles: str) -> None:
    lines = proc.stderr_lines
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.mark.parametrize("kind", ["is-a-file", "under-a-file", "read-only"])
def test_unusable_output_dir_fails_before_training(tmp_path: Path, procs: list[Proc], kind: str) -> None:
    blocker = tmp_path / "blocker"
    if kind == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root can write into a read-only directory")
        blocker.mkdir()
        blocker.chmod(0o500)
        out_dir = blocker / "runs"
    else:
        blocker.write_text("not a directory\n")
        out_dir = blocker if kind == "is-a-file" else blocker / "runs"
    proc = train(procs, write_config(tmp_path, output={"dir": str(out_dir)}))
    try:
        assert proc.wait() == 2
    finally:
        if kind == "read-only":
            blocker.chmod(0o700)
    assert_one_error_line(proc, str(out_dir), "output.dir")
    assert not list(tmp_path.rglob("history.csv")), "training started anyway"


def test_existing_run_dir_name_gets_a_new_dir(tmp_path: Path, procs: list[Proc]) -> None:
    """Every name the run could take in the next minute already exists: a new one is made."""
    runs = tmp_path / "runs"
    runs.mkdir()
    now = time.time()
    taken = []
    for second in range(-2, 120):
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now + second))
        folder = runs / f"taken-{stamp}"
        folder.mkdir()
        (folder / "history.csv").write_text("mine\n")
        taken.append(folder)
    proc = train(procs, write_config(tmp_path, name="taken", epochs=3))
    assert proc.wait() == 0, proc.stderr_lines
    new = [d for d in run_dirs(tmp_path) if d not in taken]
    assert len(new) == 1 and new[0].name.startswith("taken-")
    check_run(new[0], "completed")
    assert all((d / "history.csv").read_text() == "mine\n" for d in taken), "an earlier run was overwritten"


def test_two_trainings_into_one_output_dir_at_once(tmp_path: Path, procs: list[Proc]) -> None:
    config = write_config(tmp_path, name="twin", epochs=15)
    first, second = train(procs, config, tag="a"), train(procs, config, tag="b")
    assert first.wait() == 0, first.stderr_lines
    assert second.wait() == 0, second.stderr_lines
    dirs = run_dirs(tmp_path)
    assert len(dirs) == 2
    assert {first.stdout.splitlines()[-1], second.stdout.splitlines()[-1]} == {str(d) for d in dirs}
    for run_dir in dirs:
        _, rows = check_run(run_dir, "completed")
        assert len(rows) == 15


# ------------------------------------------------------------------ hostile histories via the CLI

HOSTILE = {
    "binary.csv": bytes(range(256)) * 4,
    "empty.csv": b"",
    "header_only.csv": b"epoch,loss,val_loss\n",
    "no_numbers.csv": b"name,comment\nfoo,bar\nbaz,qux\n",
    "broken.json": b'{"loss": [1.0, 0.5, ',
    "wrong_shape.json": b'{"loss": {"a": 1}, "val_loss": "x"}',
    "trainer_state.json": b'{"log_history": 42}',
    "nul.csv": b"epoch,loss\x00,val_loss\n0,1\x00,2\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_cli_hostile_history_is_one_line_exit_2(tmp_path: Path, procs: list[Proc], name: str) -> None:
    path = tmp_path / name
    path.write_bytes(HOSTILE[name])
    proc = Proc(tmp_path, "diagnose", str(path), tag="diagnose")
    procs.append(proc)
    assert proc.wait(timeout=60) == 2, proc.stderr_lines
    assert_one_error_line(proc, str(path))
