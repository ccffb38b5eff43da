"""A Keras callback that diagnoses the learning curves while your own model trains.

This is the one fitdoc module (besides training) that imports Keras, and it is
only imported when used: `import fitdoc` stays light.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import keras

from fitdoc.errors import FitdocError
from fitdoc.history.best import BestSoFar
from fitdoc.history.rundir import (
    HISTORY_FILE,
    RUN_FILE,
    as_written,
    atomic_write_text,
    history_line,
    history_text,
    versions,
    write_run_json,
)
from fitdoc.verdict import Diagnosis, Verdict

if TYPE_CHECKING:
    from fitdoc.api import ConfigLike, ThresholdsLike

# Series preference when no `monitor` is given (the design notes: MAE where present, else the loss).
_AUTO_MONITORS = ("val_mae", "val_mean_absolute_error", "val_loss")
# history.csv column order (the design notes' "History columns"); other logged metrics follow.
_LEADING_COLUMNS = ("epoch", "loss", "mae", "val_loss", "val_mae")
_EXTRA_COLUMNS = ("learning_rate", "epoch_seconds")
_WRITER = "fitdoc.keras.FitdocCallback"


class FitdocCallback(keras.callbacks.Callback):
    """Diagnoses overfit / underfit every few epochs of `model.fit`.

    It keeps the history, runs fitdoc's rule engine every `every` epochs once
    `warmup` epochs have passed, and prints one line when the verdict changes
    (never one line per epoch). With `stop_on="overfit"` it stops training on
    a confident overfit verdict and restores the weights of the best
    validation epoch: EarlyStopping that looks at the train/validation gap.
    After `fit`, `callback.diagnosis` holds the verdict on the whole history.

    Args:
        every: epochs between two diagnoses.
        warmup: no diagnosis before this many epochs (too short to judge).
        monitor: the validation series to judge, e.g. `"val_loss"`; its train
            counterpart is the same name without `val_`. Default: `val_mae`
            when logged, else `val_loss`.
        stop_on: a verdict (or several) that stops training, e.g. `"overfit"`.
        min_confidence: the confidence a stopping verdict needs.
        restore_best_weights: with `stop_on`, restore the weights of the epoch
            with the best monitored value when training stops.
        log_dir: when given, writes a fitdoc-compatible `history.csv` (flushed
            every epoch) and, at the end, `run.json` there; `fitdoc diagnose`,
            `plot` and `compare` read that directory as a run. Each `fit`
            replaces them, as Keras' CSVLogger does.
        config: the config the model corresponds to, if any (a fitdoc
            `Config`, a dict or a YAML path), so suggestions are concrete edits.
        thresholds: rule threshold overrides (a dict or a file).
        mlflow: when True and an MLflow run is active at the end of `fit`,
            tag it with the verdict (`fitdoc.verdict`, `fitdoc.cause`,
            `fitdoc.confidence`) and log the suggested change as the param
            `fitdoc.suggestion`. Off by default; needs `fitdoc[mlflow]`.
        verbose: 0 silent; 1 (default) one line per verdict change and one
            at the end of training.
        stream: where those lines go (default: standard error).

    Example:
        ```python
        from fitdoc.keras import FitdocCallback

        doctor = FitdocCallback(stop_on="overfit", log_dir="runs/mine")
        model.fit(x, y, validation_split=0.2, epochs=500, callbacks=[doctor])
        print(doctor.diagnosis.verdict, doctor.diagnosis.summary)
        ```
    """

    def __init__(
        self,
        every: int = 10,
        warmup: int = 20,
        monitor: str | None = None,
        stop_on: str | Verdict | Iterable[str | Verdict] | None = None,
        min_confidence: float = 0.6,
        restore_best_weights: bool = True,
        log_dir: str | Path | None = None,
        config: ConfigLike = None,
        thresholds: ThresholdsLike = None,
        verbose: int = 1,
        stream: TextIO | None = None,
        mlflow: bool = False,
    ) -> None:
        super().__init__()
        if every < 1:
            raise FitdocError(f"must be at least 1, got {every}", field="every")
        if warmup < 0:
            raise FitdocError(f"must be at least 0, got {warmup}", field="warmup")
        if monitor is not None and not monitor.startswith("val_"):
            raise FitdocError(
                f"expected a validation series such as 'val_loss', got {monitor!r}", field="monitor"
            )
        self.every = int(every)
        self.warmup = int(warmup)
        self.monitor = monitor
        self.stop_on = _parse_stop_on(stop_on)
        self.min_confidence = float(min_confidence)
        self.restore_best_weights = restore_best_weights
        self.log_dir = None if log_dir is None else Path(log_dir)
        self.verbose = verbose
        self.stream = stream
        self.mlflow = mlflow
        # Resolved once, so a bad config or thresholds file fails before training, not after.
        from fitdoc.api import _resolve_config, _resolve_thresholds

        self.config = None if config is None else _resolve_config(config)
        self.thresholds = _resolve_thresholds(thresholds)
        self._reset()

    # ------------------------------------------------------------ results

    def _reset(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.diagnosis: Diagnosis | None = None
        self.checks: list[tuple[int, Diagnosis]] = []
        self.stopped_epoch: int | None = None
        self.stop_reason: str | None = None
        self._best = BestSoFar()
        self._best_weights: list[Any] | None = None
        self._said_no_validation = False
        self._last_said: tuple[str, str | None] | None = None
        self._epoch_started = 0.0
        self._train_started = 0.0
        self._columns: list[str] | None = None
        self._pending: list[str] = []
        self._problems: set[str] = set()

    # ------------------------------------------------------------ keras hooks

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:  # noqa: ARG002 (Keras hook)
        self._reset()
        self._train_started = time.perf_counter()
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            try:
                (self.log_dir / HISTORY_FILE).unlink(missing_ok=True)
            except OSError as exc:  # said, and the fit goes on; run.json still records it
                self._say_problem_once(f"could not write {HISTORY_FILE}: {exc}")

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:  # noqa: ARG002 (Keras hook)
        self._flush_lines()
        self._epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        row = self._record(epoch, logs or {})
        if self.log_dir is not None:
            self._append_csv(row)
        self._check_monitor()
        self._track_best(row)
        done = len(self.history["epoch"])
        if done < self.warmup or done % self.every != 0:
            return
        try:
            diagnosis = self._diagnose()
        except Exception as exc:  # a bookkeeping failure must not end the user's fit
            self._say_problem_once(f"diagnosis failed at epoch {epoch + 1}: {type(exc).__name__}: {exc}")
            return
        self.checks.append((epoch, diagnosis))
        self._say_if_changed(epoch, diagnosis)
        if self._should_stop(diagnosis):
            self.stopped_epoch = epoch
            self.stop_reason = diagnosis.summary
            self.model.stop_training = True

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:  # noqa: ARG002 (Keras hook)
        if not self.history.get("epoch"):
            return
        restored = False
        if self.stopped_epoch is not None and self.restore_best_weights and self._best_weights is not None:
            self.model.set_weights(self._best_weights)
            restored = True
        problem = None
        try:
            self.diagnosis = self._diagnose()
        except Exception as exc:  # the fit is done: a failed diagnosis must not lose it
            self.diagnosis = None
            problem = f"diagnosis failed: {type(exc).__name__}: {exc}"
        if self.log_dir is not None:
            self._write_run_json(restored, problem)
        if self.mlflow and self.diagnosis is not None:
            self._tag_mlflow_run(self.diagnosis)
        if self.diagnosis is None:
            self._say(f"fitdoc: {problem}")
            self._flush_lines()
            return
        if self.stopped_epoch is not None:
            kept = (
                f"; restored the weights of epoch {self.best_epoch + 1}"
                if restored and self.best_epoch is not None
                else ""
            )
            self._say(f"fitdoc: stopped at epoch {self.stopped_epoch + 1} on {self.diagnosis.verdict}{kept}")
        final = f"fitdoc: final, {len(self.history['epoch'])} epochs: {_label(self.diagnosis)}"
        if self.diagnosis.suggestion is not None:
            final += f" Next: {self.diagnosis.suggestion.primary.text}"
        self._say(final)
        self._flush_lines()

    # ------------------------------------------------------------ helpers

    def _tag_mlflow_run(self, diagnosis: Diagnosis) -> None:
        """Tag the active MLflow run with the verdict; a problem is said once, the fit is kept."""
        try:
            import mlflow

            if mlflow.active_run() is None:
                self._say_problem_once("mlflow: no active MLflow run to tag (start one around fit)")
                return
            mlflow.set_tags(
                {
                    "fitdoc.verdict": diagnosis.verdict.value,
                    "fitdoc.cause": "" if diagnosis.cause is None else diagnosis.cause.value,
                    "fitdoc.confidence": f"{diagnosis.confidence:.3f}",
                }
            )
            if diagnosis.suggestion is not None:
                mlflow.log_param("fitdoc.suggestion", diagnosis.suggestion.primary.text[:500])
        except ImportError:
            self._say_problem_once("mlflow: not installed; pip install 'fitdoc[mlflow]'")
        except Exception as exc:  # bookkeeping must never lose a finished fit
            self._say_problem_once(f"mlflow: could not tag the run: {type(exc).__name__}: {exc}")

    def _record(self, epoch: int, logs: Mapping[str, Any]) -> dict[str, float]:
        row: dict[str, float] = {"epoch": float(epoch)}
        for key, value in logs.items():
            number = _as_float(value)
            if number is not None:
                row[key] = number
        learning_rate = self._learning_rate()
        if learning_rate is not None and "learning_rate" not in row:
            row["learning_rate"] = learning_rate
        row["epoch_seconds"] = time.perf_counter() - self._epoch_started
        count = len(self.history.get("epoch", []))
        # Keep every series the same length: a key that appears late (validation_freq) is NaN-padded.
        for key in row:
            self.history.setdefault(key, [math.nan] * count)
        for key, series in self.history.items():
            series.append(row.get(key, math.nan))
        return row

    def _learning_rate(self) -> float | None:
        optimizer = getattr(self.model, "optimizer", None)
        value = getattr(optimizer, "learning_rate", None)
        if value is None:
            return None
        return _as_float(value)

    def _monitored(self) -> str | None:
        if self.monitor is not None:
            return self.monitor
        return next((key for key in _AUTO_MONITORS if key in self.history), None)

    def _check_monitor(self) -> None:
        # Fail at the first epoch with validation, not after `warmup` epochs of training.
        if self.monitor is None or self.monitor in self.history:
            return
        if any(key.startswith("val_") for key in self.history):
            available = ", ".join(k for k in self.history if k.startswith("val_"))
            raise FitdocError(
                f"{self.monitor!r} is not logged by model.fit; available: {available}", field="monitor"
            )

    @property
    def best_epoch(self) -> int | None:
        """0-based epoch of the monitored series' lowest value so far (None before one)."""
        return self._best.epoch

    @property
    def best_value(self) -> float:
        return self._best.value

    def _track_best(self, row: Mapping[str, float]) -> None:
        key = self._monitored()
        if not self._best.update(int(row["epoch"]), row.get(key) if key is not None else None):
            return
        # Weights are only copied when a stop may need them back.
        if self.stop_on and self.restore_best_weights:
            self._best_weights = self.model.get_weights()

    def _diagnose(self) -> Diagnosis:
        from fitdoc.diagnosis.decide import diagnose_curves
        from fitdoc.history.load import curves_from_mapping

        key = self._monitored()
        if key is None or key not in self.history:
            self._say_once_no_validation()
            key = None
        train_col = None if key is None else key.removeprefix("val_")
        if train_col is not None and train_col not in self.history:
            train_col = None
        curves = curves_from_mapping(
            {k: list(v) for k, v in self.history.items()},
            source="<FitdocCallback>" if self.log_dir is None else str(self.log_dir / HISTORY_FILE),
            train_col=train_col,
            val_col=key,
        )
        return diagnose_curves(curves, config=self.config, thresholds=self.thresholds)

    def _should_stop(self, diagnosis: Diagnosis) -> bool:
        return diagnosis.verdict in self.stop_on and diagnosis.confidence >= self.min_confidence

    def _say_if_changed(self, epoch: int, diagnosis: Diagnosis) -> None:
        said = (diagnosis.verdict.value, None if diagnosis.cause is None else diagnosis.cause.value)
        if said == self._last_said:
            return
        self._last_said = said
        total = (self.params or {}).get("epochs")
        self._say(f"fitdoc: epoch {epoch + 1}{'' if total is None else f'/{total}'}: {_label(diagnosis)}")

    def _say_once_no_validation(self) -> None:
        if not self._said_no_validation:
            self._said_no_validation = True
            self._say(
                "fitdoc: no validation data (pass validation_data or validation_split to fit); "
                "verdicts stay inconclusive"
            )

    def _say(self, line: str) -> None:
        # Held until the next epoch begins: Keras' progress bar finishes its line
        # after the callbacks' on_epoch_end, and a line written now would land inside it.
        if self.verbose:
            self._pending.append(" ".join(line.split()))

    def _flush_lines(self) -> None:
        if self._pending:
            stream = self.stream if self.stream is not None else sys.stderr
            stream.write("".join(line + "\n" for line in self._pending))
            stream.flush()
            self._pending.clear()

    # ------------------------------------------------------------ files

    def _append_csv(self, row: Mapping[str, float]) -> None:
        """history.csv grows by one line; a write that fails (disk full, folder gone)
        is said once and the fit goes on: run.json still gets the whole history."""
        try:
            self._write_csv(row)
        except OSError as exc:
            self._say_problem_once(f"could not write {HISTORY_FILE}: {exc}")

    def _say_problem_once(self, problem: str) -> None:
        if problem.split(":", 1)[0] not in self._problems:
            self._problems.add(problem.split(":", 1)[0])
            self._say(f"fitdoc: {problem}")

    def _write_csv(self, row: Mapping[str, float]) -> None:
        assert self.log_dir is not None
        path = self.log_dir / HISTORY_FILE
        if self._columns is None or any(key not in self._columns for key in row):
            # First epoch, or a series that appeared late: rewrite with the wider header.
            self._columns = _column_order(self.history)
            rows = [{k: self.history[k][i] for k in self._columns} for i in range(len(self.history["epoch"]))]
            atomic_write_text(path, history_text(self._columns, rows))
            return
        with path.open("a", encoding="utf-8", newline="") as handle:
            handle.write(history_line(self._columns, row))
            handle.flush()

    def _write_run_json(self, restored: bool, problem: str | None) -> None:
        """run.json, whatever else went wrong: a record that cannot be built in
        full is written with what is known and the error, never skipped."""
        assert self.log_dir is not None
        try:
            info = self._run_record(restored)
        except Exception as exc:  # bookkeeping must never lose a finished fit
            info = {"writer": _WRITER, "status": "completed", "epochs": self._epochs_record()}
            problem = problem or f"run record incomplete: {type(exc).__name__}: {exc}"
        if problem:
            info["message"] = problem
        try:
            write_run_json(self.log_dir, info)
        except OSError as exc:
            self._say(f"fitdoc: could not write {self.log_dir / RUN_FILE}: {exc}")

    def _epochs_record(self) -> dict[str, Any]:
        return {
            "planned": (self.params or {}).get("epochs"),
            "completed": len(self.history.get("epoch", [])),
            "early_stopped": self.stopped_epoch is not None,
        }

    def _run_record(self, restored: bool) -> dict[str, Any]:
        last = self._row(len(self.history["epoch"]) - 1)
        loss = last.get("loss", math.nan)
        monitored = self._monitored()
        return {
            "writer": _WRITER,
            "status": "diverged" if not math.isfinite(loss) else "completed",
            "message": self.stop_reason or f"trained {len(self.history['epoch'])} epochs",
            "versions": _versions(),
            # The same keys `fitdoc train` writes (fitdoc.training.run).
            "model": {"parameters": int(self.model.count_params()), "layers": len(self.model.layers)},
            "epochs": self._epochs_record(),
            "timings": {"total_seconds": round(time.perf_counter() - self._train_started, 3)},
            "monitor": monitored,
            "final": last,
            "best": None
            if self.best_epoch is None
            else self._row(self.history["epoch"].index(self.best_epoch)),
            "stopped_epoch": self.stopped_epoch,
            "stop_reason": self.stop_reason,
            "restored_best_weights": restored,
            "diagnosis": None if self.diagnosis is None else self.diagnosis.to_dict(),
        }

    def _row(self, index: int) -> dict[str, float]:
        """Epoch `index`'s values as history.csv holds them, so run.json quotes the same numbers."""
        return {k: as_written(v[index]) for k, v in self.history.items()}


def _parse_stop_on(stop_on: str | Verdict | Iterable[str | Verdict] | None) -> frozenset[Verdict]:
    if stop_on is None:
        return frozenset()
    items = [stop_on] if isinstance(stop_on, (str, Verdict)) else list(stop_on)
    verdicts = set()
    for item in items:
        try:
            verdicts.add(Verdict(str(item)))
        except ValueError:
            names = ", ".join(v.value for v in Verdict)
            raise FitdocError(
                f"unknown verdict {item!r}; expected one of: {names}", field="stop_on"
            ) from None
    return frozenset(verdicts)


def _label(diagnosis: Diagnosis) -> str:
    # The summary already opens with the verdict and its cause ("overfit (gap): ...").
    return f"{diagnosis.summary.rstrip('.')} (confidence {diagnosis.confidence:.2f})."


def _as_float(value: Any) -> float | None:
    # float() reads Python and NumPy numbers, tensors and Keras variables alike
    # (convert_to_numpy on a variable warns under NumPy 2).
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    try:
        return float(keras.ops.convert_to_numpy(value))
    except (TypeError, ValueError):
        return None


def _column_order(history: Mapping[str, list[float]]) -> list[str]:
    leading = [c for c in _LEADING_COLUMNS if c in history]
    extras = [c for c in _EXTRA_COLUMNS if c in history]
    others = sorted(c for c in history if c not in leading and c not in extras)
    return [*leading, *others, *extras]


def _versions() -> dict[str, str]:
    """Versions from package metadata (a `fitdoc` folder beside the user's script
    has no `__version__`), and the Keras backend in use."""
    found = versions(("fitdoc", "keras", "tensorflow", "numpy"))
    try:
        found["backend"] = str(keras.backend.backend())
    except Exception:  # a version string is never worth a lost run
        found["backend"] = "unknown"
    return found
