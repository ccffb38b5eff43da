"""The tuning loop: plan with `fitdoc.tune.plan`, train each trial, record it, repeat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rich.console import Console

from fitdoc.config import Config
from fitdoc.errors import ExitCode, FitdocError
from fitdoc.history.rundir import write_config
from fitdoc.tune.display import TuneDisplay
from fitdoc.tune.plan import Move, Trial, best_trial, plan_next
from fitdoc.tune.state import (
    BEST_YAML,
    PLOT_FILE,
    load_trials,
    prepare_tune_dir,
    save_state,
)
from fitdoc.tune.trials import (
    config_for,
    failed_trial,
    record_run,
    settings_of,
    trial_config,
    write_trial_config,
)


@dataclass(frozen=True)
class TuneResult:
    tune_dir: Path
    trials: tuple[Trial, ...]
    best: Trial | None
    best_config_path: Path | None
    stop_reason: str
    status: str  # "completed" | "interrupted"
    plot_path: Path | None = None

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.INTERRUPTED if self.status == "interrupted" else ExitCode.OK


# ---------------------------------------------------------------- settings <-> config


# ---------------------------------------------------------------- the loop


def run_tune(
    config: Config,
    *,
    tune_dir: Path | None = None,
    max_runs: int,
    parallel: int | None = None,
    resume: bool = False,
    console: Console,
    plot: bool = False,
    backend: str = "local",
    address: str | None = None,
    cpus_per_trial: float | None = None,
) -> TuneResult:
    """Tune `config` within `max_runs` trainings; see the module docstring for the files.

    `tune_dir` None makes a new `tune-<name>-<stamp>` directory under
    `config.output.dir`. `resume` continues the tune recorded in `tune_dir`
    (which must have been started from the same config). `parallel` is how
    many trials a round may run at once: on the `local` backend (default 1)
    each as a `fitdoc train` process when above 1; on the `ray` backend
    (`fitdoc.tune.ray_backend`; default: the cluster's CPUs over
    `cpus_per_trial`) each as a Ray task, on a local Ray instance or the
    cluster at `address`. Raises FitdocError for a bad directory, a
    mismatching resume or an unusable backend.
    """
    if max_runs < 1:
        raise FitdocError(f"must be at least 1 (got {max_runs})", field="--max-runs")
    if parallel is not None and parallel < 1:
        raise FitdocError(f"must be at least 1 (got {parallel})", field="--parallel")
    runner = make_runner(backend, parallel=parallel, address=address, cpus_per_trial=cpus_per_trial)
    tune_dir = prepare_tune_dir(config, tune_dir, resume=resume)
    trials: list[Trial] = list(load_trials(tune_dir, config)) if resume else []
    base = settings_of(config)
    display = TuneDisplay(console, max_runs=max_runs)
    for trial in trials:
        display.finished(trial, resumed=True)

    with _entered(runner, tune_dir):
        save_state(tune_dir, config, trials, max_runs, runner.width, status="running", stop_reason="")
        with display:
            status, stop_reason = _loop(config, tune_dir, trials, display, runner, max_runs=max_runs)

    best = best_trial(trials)
    best_path = None
    if best is not None:
        best_path = tune_dir / BEST_YAML
        write_config(config_for(config, best.settings), best_path)
    save_state(tune_dir, config, trials, max_runs, runner.width, status=status, stop_reason=stop_reason)
    plot_path = _plot(tune_dir, config, trials) if plot and trials else None
    display.summary(best, best_path, stop_reason, base)
    return TuneResult(tune_dir, tuple(trials), best, best_path, stop_reason, status, plot_path)


@contextmanager
def _entered(runner: TrialRunner, tune_dir: Path) -> Iterator[TrialRunner]:
    """`with runner`; a tune directory still empty when the runner cannot start
    (no cluster at `--address`) is removed again."""
    try:
        runner.__enter__()
    except BaseException:
        with suppress(OSError):
            tune_dir.rmdir()  # only an empty one: a new tune's
        raise
    try:
        yield runner
    finally:
        runner.__exit__()


def _loop(
    config: Config,
    tune_dir: Path,
    trials: list[Trial],
    display: TuneDisplay,
    runner: TrialRunner,
    *,
    max_runs: int,
) -> tuple[str, str]:
    """Plan, train, record until the ladder says stop; keeps `trials` in index order.
    Each finished trial is saved at once, whatever order a round's trials finish in.
    Returns the tune's status (`completed` | `interrupted`) and why it stopped."""
    base = settings_of(config)

    def record(trial: Trial) -> None:
        trials.append(trial)
        trials.sort(key=lambda t: t.index)
        display.finished(trial)
        save_state(tune_dir, config, trials, max_runs, runner.width, status="running", stop_reason="")

    while True:
        plan = plan_next(trials, base, max_runs=max_runs, max_parallel=runner.width)
        if not plan.moves:
            return "completed", plan.stop_reason or "nothing left to try"
        start = _next_index(trials)
        for offset, move in enumerate(plan.moves):
            display.started(start + offset, move)
        if runner.run_round(config, plan.moves, start, tune_dir, record):
            return "interrupted", "interrupted; continue with --resume (unfinished trials will be retrained)"


def _next_index(trials: Sequence[Trial]) -> int:
    return max((t.index for t in trials), default=-1) + 1


# ---------------------------------------------------------------- running trials


class TrialRunner(Protocol):
    """Runs one round of trials. A context manager (a backend may hold a cluster
    connection); `width` is how many trials a round may hold once entered."""

    width: int

    def __enter__(self) -> TrialRunner: ...

    def __exit__(self, *exc: object) -> None: ...

    def run_round(
        self,
        base: Config,
        moves: Sequence[Move],
        start: int,
        tune_dir: Path,
        record: Callable[[Trial], None],
    ) -> bool:
        """Train `moves` as trials `start`, `start + 1`, ...; `record` each finished
        (or failed) one. Returns True when interrupted."""
        ...


class LocalRunner:
    """Trials in this process (one at a time) or as `fitdoc train` processes."""

    def __init__(self, parallel: int) -> None:
        self.width = parallel

    def __enter__(self) -> LocalRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def run_round(
        self,
        base: Config,
        moves: Sequence[Move],
        start: int,
        tune_dir: Path,
        record: Callable[[Trial], None],
    ) -> bool:
        if len(moves) == 1 and self.width == 1:
            done, interrupted = _run_in_process(base, moves[0], start, tune_dir)
        else:
            done, interrupted = _run_in_processes(base, moves, start, tune_dir)
        for trial in done:
            record(trial)
        return interrupted


BACKENDS = ("local", "ray")


def make_runner(
    backend: str, *, parallel: int | None, address: str | None, cpus_per_trial: float | None
) -> TrialRunner:
    """The runner for `--backend`; FitdocError for options the backend has no use for,
    or when what trains the trials (TensorFlow locally, Ray) is not installed (nothing is
    started or created yet)."""
    if backend == "ray":
        from fitdoc.tune.ray_backend import RayRunner

        return RayRunner(parallel=parallel, address=address, cpus_per_trial=cpus_per_trial)
    if backend != "local":
        raise FitdocError(
            f"unknown backend `{backend}`; choose one of: {', '.join(BACKENDS)}", field="--backend"
        )
    for option, value in (("--address", address), ("--cpus-per-trial", cpus_per_trial)):
        if value is not None:
            raise FitdocError("only with --backend ray", field=option)
    # Local trials train here: without TensorFlow, one line now, before a tune directory
    # exists (not a "trial 0" line and an empty tune.csv). Ray's workers check their own.
    from fitdoc.training.model import require_training_extra

    require_training_extra()
    return LocalRunner(parallel or 1)


def _run_in_process(base: Config, move: Move, index: int, tune_dir: Path) -> tuple[list[Trial], bool]:
    from fitdoc.training.run import run_training

    config = trial_config(base, move.settings, index, tune_dir)
    write_trial_config(tune_dir, index, config)
    try:
        result = run_training(config, console=Console(stderr=True, quiet=True), progress=False)
    except KeyboardInterrupt:
        return [], True
    if result.status == "interrupted":
        return [], True
    return [record_run(index, move, config, result.run_dir, result.status, result.message)], False


def _run_in_processes(
    base: Config, moves: Sequence[Move], start: int, tune_dir: Path
) -> tuple[list[Trial], bool]:
    """Each move as its own `python -m fitdoc train TRIAL.yaml --quiet` process."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    jobs = []
    for offset, move in enumerate(moves):
        index = start + offset
        config = trial_config(base, move.settings, index, tune_dir)
        path = write_trial_config(tune_dir, index, config)
        command = [sys.executable, "-m", "fitdoc", "train", str(path), "--quiet"]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        jobs.append((index, move, config, process))
    interrupted = False
    outputs: dict[int, tuple[str, str]] = {}
    for index, _move, _config, process in jobs:
        while True:
            try:
                outputs[index] = process.communicate()
                break
            except KeyboardInterrupt:
                # Ask every child to finish its epoch and stop, then collect them.
                interrupted = True
                for *_, other in jobs:
                    if other.poll() is None:
                        other.send_signal(signal.SIGINT)
    done = []
    for index, move, config, process in jobs:
        stdout, stderr = outputs[index]
        code = process.returncode
        if code == ExitCode.INTERRUPTED or code < 0:
            interrupted = True
            continue
        run_dir = _last_line(stdout)
        status = {0: "completed", 1: "completed", 3: "diverged"}.get(code, "failed")
        message = _last_line(stderr) if status != "completed" else ""
        if not run_dir or not Path(run_dir).is_dir():
            done.append(failed_trial(index, move, f"`fitdoc train` exited {code}: {_last_line(stderr)}"))
            continue
        done.append(record_run(index, move, config, Path(run_dir), status, message))
    return done, interrupted


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _plot(tune_dir: Path, config: Config, trials: Sequence[Trial]) -> Path | None:
    """All trials' curves side by side (the same figure `fitdoc plot` draws)."""
    from fitdoc.diagnosis.decide import diagnose_curves
    from fitdoc.history.load import read_history
    from fitdoc.history.rundir import Run
    from fitdoc.report.plot import plot_runs

    views = []
    for t in trials:
        if not t.run_dir or not Path(t.run_dir).is_dir():
            continue
        try:
            curves = read_history(t.run_dir)
        except FitdocError:
            continue
        trial_cfg = config_for(config, t.settings)
        views.append(
            Run(
                name=f"trial {t.index}: {t.change}",
                curves=curves,
                diagnosis=diagnose_curves(curves, trial_cfg),
                config=trial_cfg,
            )
        )
    return plot_runs(views, tune_dir / PLOT_FILE) if views else None
