"""`fitdoc tune --backend ray`: trials as tasks on a real local Ray instance (no mocks).

The training tests start Ray with 2 CPUs, so a round holds two trials; the
tiny config overfits, so its second round tries two ladder moves at once
(more L2, dropout). Without Ray installed, `--backend ray` says how to
install it in one line (fast suite).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rich.console import Console

from fitdoc.config import load_config
from fitdoc.errors import FitdocError
from fitdoc.tune import run_tune
from fitdoc.tune.ray_backend import KILL_TRIAL_ENV, RAY_MISSING, pack_run_dir, unpack_run_dir
from fitdoc.tune.state import BEST_YAML, TUNE_JSON

# Overfits at baseline: round two is `model.l2: 0 -> 0.0001` and `model.dropout: 0 -> 0.2` at once.
OVERFIT = """\
name: tiny
seed: 3
data: {synthetic: founding, n_samples: 300}
model: {hidden_layers: 2, units: 64}
training: {epochs: 40, batch_size: 50}
output: {dir: OUT}
"""


def overfit_config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(OVERFIT.replace("OUT", str(tmp_path / "runs")))
    return path


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def run_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "fitdoc", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def walk(tune_dir: Path) -> list[tuple[int, str, str | None, str]]:
    state = json.loads((tune_dir / TUNE_JSON).read_text())
    return [(t["index"], t["change"], t["verdict"], t["status"]) for t in state["trials"]]


# ---------------------------------------------------------------- no Ray needed


def test_without_ray_the_backend_says_how_to_install_it(tmp_path: Path) -> None:
    config = overfit_config(tmp_path)
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'ray':\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from fitdoc.cli import main\n"
        f"main(['tune', {str(config)!r}, '--backend', 'ray', '--dir', 'tune'])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {RAY_MISSING}"]
    assert not (tmp_path / "tune").exists()


def test_ray_options_need_the_ray_backend(tmp_path: Path) -> None:
    config = load_config(overfit_config(tmp_path))
    with pytest.raises(FitdocError, match="only with --backend ray") as err:
        run_tune(config, tune_dir=tmp_path / "t", max_runs=2, console=quiet(), address="auto")
    assert err.value.field == "--address"
    proc = run_cli("tune", str(tmp_path / "tiny.yaml"), "--cpus-per-trial", "2", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --cpus-per-trial: only with --backend ray"


def test_an_address_where_no_cluster_answers_is_one_line_at_once(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    config = load_config(overfit_config(tmp_path))
    with pytest.raises(FitdocError, match=r"no Ray cluster answers at 127\.0\.0\.1:1") as err:
        run_tune(config, max_runs=2, backend="ray", address="127.0.0.1:1", console=quiet())
    assert err.value.field == "--address"
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_run_directory_travels_as_bytes_and_lands_whole(tmp_path: Path) -> None:
    run = tmp_path / "worker" / "trial-00-20260101-000000"
    (run / "sub").mkdir(parents=True)
    (run / "history.csv").write_text("epoch,loss\n0,1.0\n")
    (run / "sub" / "model.bin").write_bytes(b"\x00\x01")
    files = pack_run_dir(run)
    assert files == {"history.csv": b"epoch,loss\n0,1.0\n", "sub/model.bin": b"\x00\x01"}
    first = unpack_run_dir(files, tmp_path / "trials", run.name)
    again = unpack_run_dir(files, tmp_path / "trials", run.name)  # the name taken: a suffix
    assert first.name == run.name and again.name == f"{run.name}-2"
    assert (again / "sub" / "model.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(FitdocError, match="unsafe path"):
        unpack_run_dir({"../escape.txt": b"x"}, tmp_path / "trials", "evil")
    assert not (tmp_path / "escape.txt").exists()
    assert sorted(p.name for p in (tmp_path / "trials").iterdir()) == [first.name, again.name]


# ---------------------------------------------------------------- a real local Ray


@pytest.fixture
def local_ray(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Starts a 2-CPU local Ray when called (with environment variables its workers inherit)."""
    ray = pytest.importorskip("ray")

    def start(**env: str) -> None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)

    yield start
    ray.shutdown()


@pytest.mark.training
def test_ray_walks_the_same_ladder_to_the_same_best_as_local_processes(tmp_path: Path, local_ray) -> None:
    config = load_config(overfit_config(tmp_path))
    local = run_tune(config, tune_dir=tmp_path / "local", max_runs=3, parallel=2, console=quiet())
    local_ray()
    on_ray = run_tune(config, tune_dir=tmp_path / "ray", max_runs=3, backend="ray", console=quiet())

    assert walk(tmp_path / "ray") == walk(tmp_path / "local")
    assert [t.change for t in on_ray.trials] == [
        "baseline",
        "model.l2: 0 -> 0.0001",
        "model.dropout: 0 -> 0.2",
    ]
    assert [t.val_mae for t in on_ray.trials] == pytest.approx([t.val_mae for t in local.trials], rel=1e-5)
    assert (tmp_path / "ray" / BEST_YAML).read_text() == (tmp_path / "local" / BEST_YAML).read_text()
    assert json.loads((tmp_path / "ray" / TUNE_JSON).read_text())["parallel"] == 2
    for trial in on_ray.trials:  # the run directory came back whole, with the driver's paths
        run_dir = Path(trial.run_dir or "")
        assert run_dir.parent == tmp_path / "ray" / "trials"
        assert {p.name for p in run_dir.iterdir()} == {
            "config.yaml",
            "history.csv",
            "run.json",
            "model.keras",
        }
        assert load_config(run_dir / "config.yaml").output.dir == str(tmp_path / "ray" / "trials")
    assert (tmp_path / "ray" / "tune.csv").read_text().count("\n") == 4


@pytest.mark.training
def test_a_worker_killed_mid_trial_fails_that_trial_not_the_sweep(tmp_path: Path, local_ray) -> None:
    local_ray(**{KILL_TRIAL_ENV: "1"})
    config = load_config(overfit_config(tmp_path))
    result = run_tune(config, tune_dir=tmp_path / "tune", max_runs=3, backend="ray", console=quiet())

    assert result.status == "completed" and result.exit_code == 0
    assert [t.status for t in result.trials] == ["completed", "failed", "completed"]
    killed = result.trials[1]
    assert killed.run_dir is None and killed.verdict is None
    assert "Ray worker died mid-trial (WorkerCrashedError)" in killed.extra["message"]
    assert result.best is not None and result.best.index in (0, 2)
    assert (tmp_path / "tune" / BEST_YAML).is_file()


@pytest.mark.training
def test_resume_after_the_driver_is_killed_repeats_no_finished_trial(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    config, tune_dir = overfit_config(tmp_path), tmp_path / "tune"
    args = [
        "tune",
        str(config),
        "--backend",
        "ray",
        "--parallel",
        "2",
        "--max-runs",
        "3",
        "--dir",
        str(tune_dir),
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    driver = subprocess.Popen(
        [sys.executable, "-m", "fitdoc", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the driver and the Ray it started
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and driver.poll() is None:
            if (tune_dir / TUNE_JSON).is_file() and walk(tune_dir):
                break
            time.sleep(0.2)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    before = json.loads((tune_dir / TUNE_JSON).read_text())
    assert before["status"] == "running" and 1 <= len(before["trials"]) < 3

    again = run_cli(*args[:-2], "--dir", str(tune_dir), "--resume", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    after = json.loads((tune_dir / TUNE_JSON).read_text())
    assert after["status"] == "completed" and len(after["trials"]) == 3
    assert after["trials"][: len(before["trials"])] == before["trials"]  # kept as recorded
    settings = [json.dumps(t["settings"], sort_keys=True) for t in after["trials"]]
    assert len(set(settings)) == 3
    run_dirs = sorted(p for p in (tune_dir / "trials").iterdir() if not p.name.startswith("."))
    assert sorted(Path(t["run_dir"]) for t in after["trials"]) == run_dirs
