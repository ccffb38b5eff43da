"""Train the config's network and write its run directory.

`run_training` is the one entry point (the CLI's `train` and `tune` call it).
Two engines do the same training: `fast` (the stacked engine,
`fitdoc.training.engine`: the run as net 0 and, with `--probe`, its ladder
neighbours beside it) and `keras` (plain `model.fit`, the reference). Both
report each finished epoch to one `EpochMonitor`, which writes the history
row, updates the progress display, and decides whether to go on: a
non-finite loss stops the run as `diverged`, SIGINT/SIGTERM stop it as
`interrupted` after the epoch in progress, early stopping ends it as
`completed`, and any exception inside training as `failed` (its one-line
message in run.json). Each probed neighbour writes its own history
(`ProbeRun`) and stops alone if it diverges.

TensorFlow is imported only inside functions.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from fitdoc.config import Config
from fitdoc.errors import ConfigError, FitdocError
from fitdoc.history.load import PROBES_DIR
from fitdoc.history.rundir import (
    CONFIG_FILE,
    HISTORY_COLUMNS,
    HISTORY_FILE,
    MODEL_FILE,
    HistoryWriter,
    as_written,
    create_run_dir,
    iso_time,
    prepare_output_dir,
    versions,
    write_config,
    write_run_json,
)
from fitdoc.training.probe import ProbePlan, plan_probes

if TYPE_CHECKING:
    from fitdoc.training.data import Dataset

Status = Literal["completed", "interrupted", "diverged", "failed"]


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    status: Status
    history_path: Path
    message: str
    error: BaseException | None = None  # what ended a `failed` run
    probes: tuple[Path, ...] = ()


class Decision(Enum):
    CONTINUE = "continue"
    EARLY_STOP = "early_stop"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


# ---------------------------------------------------------------- signals


class StopSignals:
    """SIGINT/SIGTERM ask the run to stop after the epoch in progress; a second one stops at once.

    The first signal only sets `requested`, so the compiled epoch finishes and
    its history row is written. Previous handlers are restored on exit.
    Outside the main thread (where handlers cannot be installed) it does
    nothing and Ctrl-C raises KeyboardInterrupt as usual.
    """

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: object) -> None:  # noqa: ARG002 (signal handler signature)
        if self.requested is not None:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


# ---------------------------------------------------------------- progress


class ProgressDisplay:
    """A rich bar on a terminal, a summary line every `every` epochs elsewhere, or nothing.

    The first epoch carries tracing and compiling, often most of a short run, so
    the time left is estimated from the epochs after it, and only once
    `ETA_AFTER` epochs have finished: never "ETA 975s" for a ten-second run.
    The bar is replaced by a one-line summary when training ends, so a
    terminal keeps a record of the run, as a CI log does.
    """

    ETA_AFTER = 3

    def __init__(
        self,
        console: Console,
        *,
        total: int,
        enabled: bool,
        every: int | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._console = console
        self._total = total
        self._enabled = enabled
        self._every = every or max(1, math.ceil(total / 10))
        self._clock = clock
        self._progress: Progress | None = None
        self._task: Any = None
        self._started = clock()
        self._first_done: float | None = None
        self._last: dict[str, Any] | None = None

    def __enter__(self) -> ProgressDisplay:
        self._started = self._clock()
        if self._enabled and self._console.is_terminal:
            self._progress = Progress(
                TextColumn("epoch"),
                MofNCompleteColumn(),
                BarColumn(),
                TextColumn("mae {task.fields[mae]}  val_mae {task.fields[val_mae]}  ETA {task.fields[eta]}"),
                console=self._console,
                transient=True,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("train", total=self._total, mae="-", val_mae="-", eta="-")
        return self

    def eta(self, epochs_done: int) -> float | None:
        """Seconds left after `epochs_done` epochs, or None while too few have run to say."""
        if self._first_done is None or epochs_done < max(2, self.ETA_AFTER):
            return None
        per_epoch = (self._clock() - self._first_done) / (epochs_done - 1)
        return per_epoch * (self._total - epochs_done)

    def epoch_done(self, row: dict[str, Any]) -> None:
        if not self._enabled:
            return
        epoch = int(row["epoch"]) + 1
        if self._first_done is None:
            self._first_done = self._clock()
        self._last = row
        eta = self.eta(epoch)
        if self._progress is not None:
            self._progress.update(
                self._task,
                completed=epoch,
                mae=f"{row['mae']:.4g}",
                val_mae=f"{row['val_mae']:.4g}",
                eta="-" if eta is None else f"{eta:.0f}s",
            )
            return
        if epoch % self._every == 0 or epoch == self._total or epoch == 1:
            elapsed = self._clock() - self._started
            timing = f"{elapsed:.1f}s elapsed" + ("" if eta is None else f", ETA {eta:.0f}s")
            self._print(f"{_epoch_line(row, self._total)}  {timing}")

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)
            self._progress = None
            if self._last is not None:
                elapsed = self._clock() - self._started
                self._print(f"{_epoch_line(self._last, self._total)}  ({elapsed:.1f}s)")

    def _print(self, line: str) -> None:
        self._console.print(line, highlight=False, soft_wrap=True)


def _epoch_line(row: dict[str, Any], total: int) -> str:
    return (
        f"epoch {int(row['epoch']) + 1}/{total}  loss {row['loss']:.4g}  mae {row['mae']:.4g}  "
        f"val_loss {row['val_loss']:.4g}  val_mae {row['val_mae']:.4g}"
    )


# ---------------------------------------------------------------- per-epoch decisions


@dataclass
class EpochMonitor:
    """Receives each finished epoch from an engine; writes it and decides what comes next."""

    writer: HistoryWriter
    display: ProgressDisplay
    signals: StopSignals
    learning_rate: float
    early_stopping: Any = None  # EarlyStoppingConfig | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    decision: Decision = Decision.CONTINUE
    reason: str = ""
    best_epoch: int | None = None
    best_val_mae: float = math.inf
    best_weights: Any = None
    error: BaseException | None = None
    _wait: int = 0

    def epoch_done(
        self, epoch: int, values: dict[str, float], seconds: float, get_weights: Callable[[], Any]
    ) -> Decision:
        row = _history_row(epoch, values, self.learning_rate, seconds)
        bad = [k for k in ("loss", "val_loss") if not math.isfinite(row[k])]
        if bad:
            # The diverged epoch is not written: the history stays a valid record of finite epochs.
            self.decision = Decision.DIVERGED
            self.reason = (
                f"training diverged: {bad[0]} became {row[bad[0]]} at epoch {epoch}; "
                f"history keeps the {len(self.rows)} finished epoch(s) before it; "
                "try a lower training.learning_rate"
            )
            return self.decision
        self.writer.write_row(row)
        self.rows.append(row)
        self.display.epoch_done(row)
        self._track_best(epoch, row["val_mae"], get_weights)
        if self.signals.requested is not None:
            self.decision = Decision.INTERRUPTED
            self.reason = f"interrupted by {self.signals.requested} after epoch {epoch}"
        return self.decision

    def _track_best(self, epoch: int, val_mae: float, get_weights: Callable[[], Any]) -> None:
        es = self.early_stopping
        if es is None:
            if val_mae < self.best_val_mae:
                self.best_val_mae, self.best_epoch = val_mae, epoch
            return
        if epoch < es.start_from_epoch:
            return
        # Keras EarlyStopping on val_mae (mode min) with restore_best_weights.
        if self.best_epoch is None or val_mae < self.best_val_mae - es.min_delta:
            self.best_val_mae, self.best_epoch = val_mae, epoch
            self.best_weights = get_weights()
            self._wait = 0
            return
        self._wait += 1
        if self._wait >= es.patience and epoch > 0:
            self.decision = Decision.EARLY_STOP
            self.reason = (
                f"early stopping at epoch {epoch}: val_mae did not improve for {es.patience} epochs; "
                f"restored the weights of epoch {self.best_epoch}"
            )


# ---------------------------------------------------------------- probes


@dataclass
class ProbeRun:
    """One neighbour trained beside the run: its history writer and how it ended.

    A neighbour that diverges stops alone: its history ends at its last finite
    epoch and it is reported `diverged`; the run and the other neighbours go on.
    """

    plan: ProbePlan
    directory: Path
    writer: HistoryWriter
    learning_rate: float
    status: str = "running"
    message: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)

    def epoch_done(self, epoch: int, values: dict[str, float], seconds: float) -> None:
        if self.status != "running":
            return
        row = _history_row(epoch, values, self.learning_rate, seconds)
        bad = [k for k in ("loss", "val_loss") if not math.isfinite(row[k])]
        if bad:
            self.status = "diverged"
            self.message = f"diverged: {bad[0]} became {row[bad[0]]} at epoch {epoch + 1}"
            return
        self.writer.write_row(row)
        self.rows.append(row)

    def summary(self) -> dict[str, Any]:
        return {
            "slug": self.plan.slug,
            "path": f"{PROBES_DIR}/{self.plan.slug}",
            "change": {
                "key": self.plan.change.key,
                "from": self.plan.change.from_,
                "to": self.plan.change.to,
            },
            "status": self.status,
            "epochs": len(self.rows),
        }


def _history_row(
    epoch: int, values: dict[str, float], learning_rate: float, seconds: float
) -> dict[str, Any]:
    return {
        "epoch": epoch,
        **{k: as_written(v) for k, v in values.items()},
        "learning_rate": learning_rate,
        "epoch_seconds": as_written(seconds),
    }


def _start_probes(
    stack: ExitStack, plans: list[ProbePlan], run_dir: Path, columns: list[str], learning_rate: float
) -> list[ProbeRun]:
    probes = []
    for plan in plans:
        directory = plan.directory(run_dir)
        directory.mkdir(parents=True)
        write_config(plan.config, directory / CONFIG_FILE)
        writer = stack.enter_context(HistoryWriter(directory / HISTORY_FILE, columns))
        probes.append(ProbeRun(plan, directory, writer, learning_rate))
        write_run_json(directory, _probe_record(plan, "running", "", []))
    return probes


def _probe_record(plan: ProbePlan, status: str, message: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "writer": "fitdoc train --probe",
        "status": status,
        "message": message,
        "name": plan.config.name,
        "probe_of": "../..",
        "change": {"key": plan.change.key, "from": plan.change.from_, "to": plan.change.to},
        "files": {"config": CONFIG_FILE, "history": HISTORY_FILE},
        "epochs": {"planned": plan.config.training.epochs, "completed": len(rows)},
        "final": rows[-1] if rows else None,
        "best": _best_row(rows),
    }


def _finish_probes(probes: list[ProbeRun], status: Status) -> None:
    for probe in probes:
        if probe.status == "running":
            probe.status = status
            probe.message = f"{status} with the run after {len(probe.rows)} epochs"
        write_run_json(probe.directory, _probe_record(probe.plan, probe.status, probe.message, probe.rows))


# ---------------------------------------------------------------- engines


def _values(row: np.ndarray, has_test: bool) -> dict[str, float]:
    """The engine's per-net row as history columns (regression: the metric is MAE)."""
    from fitdoc.training.engine import FIELDS

    named = dict(zip(FIELDS, (float(v) for v in row), strict=True))
    values = {
        "loss": named["loss"],
        "mae": named["metric"],
        "val_loss": named["val_loss"],
        "val_mae": named["val_metric"],
        "reg_loss": named["reg_loss"],
    }
    if has_test:
        values["test_mae"] = named["test_metric"]
    return values


def _train_stacked(
    net: Any, data: Dataset, config: Config, monitor: EpochMonitor, probes: list[ProbeRun]
) -> None:
    """The run (net 0) and its probed neighbours as one stacked model (`fitdoc.training.engine`)."""
    from fitdoc.training.engine import Arrays, NetSpec, StackedEngine
    from fitdoc.training.model import make_optimizer

    training = config.training
    specs = [
        NetSpec(l2=c.model.l2, l1=c.model.l1, dropout=c.model.dropout)
        for c in (config, *(p.plan.config for p in probes))
    ]
    # A neighbour of another width starts from its own seeded build: the weights
    # `fitdoc train` of its config.yaml would start from.
    starts = {
        i: _seeded_weights(p.plan.config, data)
        for i, p in enumerate(probes, start=1)
        if p.plan.config.model.units != config.model.units
    }
    engine = StackedEngine(
        net.get_weights(),
        specs,
        Arrays(data.x_train, data.y_train, data.x_val, data.y_val, data.x_test, data.y_test),
        optimizer=make_optimizer(training),
        batch_size=training.batch_size,
        seed=config.seed,
        order="reshuffle" if training.shuffle else "none",
        activation=config.model.activation,
        starts=starts,
    )
    has_test = data.x_test is not None
    try:
        for epoch in range(training.epochs):
            started = time.perf_counter()
            rows = engine.run_epoch(epoch)
            seconds = time.perf_counter() - started
            for probe, row in zip(probes, rows[1:], strict=True):
                probe.epoch_done(epoch, _values(row, has_test), seconds)
            decision = monitor.epoch_done(
                epoch, _values(rows[0], has_test), seconds, lambda: engine.weights(0)
            )
            if decision != Decision.CONTINUE:
                return
    finally:
        net.set_weights(engine.weights(0))


def _seeded_weights(config: Config, data: Dataset) -> list[Any]:
    """The initial weights of `config`'s net, built after seeding as `run_training` builds the run's."""
    from fitdoc.training.model import build_model, import_keras

    import_keras().utils.set_random_seed(config.seed)
    weights: list[Any] = build_model(config.model, data.n_features, data.n_targets).get_weights()
    return weights


def _train_keras(
    net: Any, data: Dataset, config: Config, monitor: EpochMonitor, probes: list[ProbeRun]
) -> None:
    """Plain `model.fit`; an `mse` metric gives the regularization part as `loss - mse`."""
    import keras
    import tensorflow as tf

    assert not probes, "--probe is refused with training.engine: keras before training starts"
    training = config.training
    test_mae = None
    if data.x_test is not None:
        x_test, y_test = tf.constant(data.x_test), tf.constant(data.y_test)
        test_mae = tf.function(lambda: tf.reduce_mean(tf.abs(y_test - net(x_test, training=False))))

    class _Report(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:  # noqa: ARG002 (Keras hook)
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            logs = logs or {}
            values = {
                "loss": float(logs["loss"]),
                "mae": float(logs["mae"]),
                "val_loss": float(logs["val_loss"]),
                "val_mae": float(logs["val_mae"]),
                "reg_loss": max(0.0, float(logs["loss"]) - float(logs["mse"])),
            }
            if test_mae is not None:
                values["test_mae"] = float(test_mae())
            seconds = time.perf_counter() - self._started
            if monitor.epoch_done(epoch, values, seconds, net.get_weights) != Decision.CONTINUE:
                self.model.stop_training = True

    net.fit(
        data.x_train,
        data.y_train,
        batch_size=training.batch_size,
        epochs=training.epochs,
        validation_data=(data.x_val, data.y_val),
        shuffle=training.shuffle,
        verbose=0,
        callbacks=[_Report()],
    )


# ---------------------------------------------------------------- the entry point


def check_probe(config: Config) -> None:
    """`--probe` needs the stacked engine: one line, exit 2, before anything is created."""
    if config.training.engine != "fast":
        raise ConfigError(
            "--probe trains the neighbours in the stacked engine; set training.engine: fast "
            "(plain model.fit trains one net at a time)",
            field="training.engine",
        )


def run_training(
    config: Config, *, console: Console, progress: bool = True, probe: bool = False
) -> RunResult:
    """Train `config` (with `probe`, its ladder neighbours beside it), writing a new run directory.

    Never raises for an interrupt, a divergence or a failure inside training:
    each ends in run.json (`interrupted`, `diverged`, `failed`) with a valid
    history up to the last finished epoch. Raises FitdocError (DataError,
    MissingDependencyError, ...) for bad input before any run directory is
    created. Plotting is the caller's (the CLI's) job.
    """
    from fitdoc.training.model import build_model, compile_model, import_keras, require_training_extra

    if probe:
        check_probe(config)
    plans = plan_probes(config) if probe else []
    # Bad data is named before anything is created and before TensorFlow's seconds of
    # import; what was left out of it is said aloud. Reading it needs pandas, which
    # comes with TensorFlow in the `train` extra: without them, one line says so.
    require_training_extra()
    from fitdoc.training.data import load_data

    data = load_data(config.data, seed=config.seed, validation_split=config.training.validation_split)
    for note in data.notes:
        console.print(f"note: {data.source}: {note}", highlight=False, soft_wrap=True)
    if probe:
        said = ", ".join(p.slug for p in plans) or "none: the config is at the end of every ladder"
        console.print(f"probe: neighbours trained beside the run: {said}", highlight=False, soft_wrap=True)
    output_dir = prepare_output_dir(config.output.dir)
    keras = import_keras()
    import tensorflow as tf

    started_wall = time.time()
    # From here on a signal never leaves a run.json saying `running`: the first one is
    # recorded and honoured when the epoch in progress (at the earliest the first) ends.
    with StopSignals() as signals:
        run_dir = create_run_dir(output_dir, config.name, now=started_wall)
        write_config(config, run_dir / CONFIG_FILE)
        record = _start_record(config, data, started_wall)
        write_run_json(run_dir, record)

        keras.utils.set_random_seed(config.seed)
        tf.config.experimental.enable_op_determinism()
        net = compile_model(
            build_model(config.model, data.n_features, data.n_targets),
            config.training,
            extra_metrics=("mse",) if config.training.engine == "keras" else (),
        )
        record["model"] = {"parameters": int(net.count_params()), "layers": len(net.layers)}
        write_run_json(run_dir, record)
        monitor, probes, train_seconds = _train(net, data, config, run_dir, plans, console, progress, signals)
        return _finish(net, config, run_dir, record, monitor, probes, train_seconds)


def _start_record(config: Config, data: Dataset, started_wall: float) -> dict[str, Any]:
    return {
        "writer": "fitdoc train",
        "status": "running",
        "message": "",
        "name": config.name,
        "seed": config.seed,
        "engine": config.training.engine,
        "versions": versions(),
        "data": {**data.shape_summary(), "notes": data.notes},
        "files": {"config": CONFIG_FILE, "history": HISTORY_FILE},
        "timings": {"started_at": iso_time(started_wall), "_started": time.perf_counter()},
    }


def _train(
    net: Any,
    data: Dataset,
    config: Config,
    run_dir: Path,
    plans: list[ProbePlan],
    console: Console,
    progress: bool,
    signals: StopSignals,
) -> tuple[EpochMonitor, list[ProbeRun], float]:
    """Run the engine with every history open; whatever ends it is recorded in the monitor."""
    columns = [*HISTORY_COLUMNS] + (["test_mae"] if data.x_test is not None else [])
    engine = _train_stacked if config.training.engine == "fast" else _train_keras
    learning_rate = float(config.training.learning_rate)
    train_started = time.perf_counter()
    with ExitStack() as stack:
        writer = stack.enter_context(HistoryWriter(run_dir / HISTORY_FILE, columns))
        probes = _start_probes(stack, plans, run_dir, columns, learning_rate)
        display = stack.enter_context(
            ProgressDisplay(console, total=config.training.epochs, enabled=progress)
        )
        monitor = EpochMonitor(
            writer=writer,
            display=display,
            signals=signals,
            learning_rate=learning_rate,
            early_stopping=config.training.early_stopping,
        )
        try:
            engine(net, data, config, monitor, probes)
        except KeyboardInterrupt:
            monitor.decision = Decision.INTERRUPTED
            monitor.reason = f"interrupted during epoch {len(monitor.rows) + 1}"
        except Exception as exc:  # recorded in run.json, then reported by the caller (exit 4 or 2)
            monitor.decision = Decision.FAILED
            monitor.reason = f"training failed during epoch {len(monitor.rows) + 1}: {_one_line(exc)}"
            monitor.error = exc
    return monitor, probes, time.perf_counter() - train_started


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, FitdocError):
        return exc.one_line()
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def _finish(
    net: Any,
    config: Config,
    run_dir: Path,
    record: dict[str, Any],
    monitor: EpochMonitor,
    probes: list[ProbeRun],
    train_seconds: float,
) -> RunResult:
    status, message = _outcome(monitor)
    _finish_probes(probes, status)
    if monitor.best_weights is not None:
        net.set_weights(monitor.best_weights)
    if status in ("completed", "interrupted"):
        net.save(run_dir / MODEL_FILE)
        record["files"]["model"] = MODEL_FILE
    record.update(status=status, message=message)
    if probes:
        record["probes"] = [p.summary() for p in probes]
    record["epochs"] = {
        "planned": config.training.epochs,
        "completed": len(monitor.rows),
        "early_stopped": monitor.decision == Decision.EARLY_STOP,
    }
    started = record["timings"].pop("_started")
    record["timings"].update(
        finished_at=iso_time(time.time()),
        total_seconds=round(time.perf_counter() - started, 3),
        training_seconds=round(train_seconds, 3),
        first_epoch_seconds=monitor.rows[0]["epoch_seconds"] if monitor.rows else None,
    )
    record["final"] = monitor.rows[-1] if monitor.rows else None
    record["best"] = _best_row(monitor.rows)
    write_run_json(run_dir, record)
    return RunResult(
        run_dir=run_dir,
        status=status,
        history_path=run_dir / HISTORY_FILE,
        message=message,
        error=monitor.error,
        probes=tuple(p.directory for p in probes),
    )


def _outcome(monitor: EpochMonitor) -> tuple[Status, str]:
    if monitor.decision == Decision.DIVERGED:
        return "diverged", monitor.reason
    if monitor.decision == Decision.INTERRUPTED:
        return "interrupted", monitor.reason
    if monitor.decision == Decision.FAILED:
        return "failed", monitor.reason
    if monitor.decision == Decision.EARLY_STOP:
        return "completed", monitor.reason
    return "completed", f"trained {len(monitor.rows)} epochs"


def _best_row(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    finite = [r for r in rows if math.isfinite(r["val_mae"])]
    return min(finite, key=lambda r: r["val_mae"]) if finite else None
