"""`fitdoc tune`: train, diagnose, take the next step on the ladder, repeat.

The decisions live in `fitdoc.ladder` (pure, tested over scripted verdicts),
which walks the one ladder of `fitdoc.suggest`;
this module runs them: each trial is an ordinary run directory under
`<tune dir>/trials/`, and after every trial `tune.json` and `tune.csv` are
rewritten atomically, so an interrupted tune resumes (`--resume`) without
repeating a finished trial. At the end the best trial by validation MAE is
written out as `best.yaml`, a config to train as it is.

Layout of a tune directory:

    tune.json    base config, every trial (settings, change, why, verdict, val MAE), best, stop reason
    tune.csv     the same trials as one table
    best.yaml    the best trial's config (the base config's name and output.dir)
    configs/     trial-NN.yaml, the config each trial trained
    trials/      the run directories
    trials.png   all trials' curves (with --plot)
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from fitdoc.config import Config, write_config
from fitdoc.curves import Curves
from fitdoc.errors import ExitCode, FitdocError
from fitdoc.ladder import TUNED_KEYS, Move, Trial, best_trial, plan_next, settings_key
from fitdoc.rundir import atomic_write_text, jsonable, write_json
from fitdoc.verdict import Diagnosis

TUNE_JSON = "tune.json"
TUNE_CSV = "tune.csv"
BEST_YAML = "best.yaml"
TRIALS_DIR = "trials"
CONFIGS_DIR = "configs"
PLOT_FILE = "trials.png"
TUNE_SCHEMA = 1

CSV_COLUMNS = (
    "index",
    "change",
    "l2",
    "dropout",
    "epochs",
    "early_stopping",
    "units",
    "status",
    "verdict",
    "cause",
    "val_mae",
    "train_mae",
    "best_epoch",
    "epochs_run",
    "run_dir",
    "reason",
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


def settings_of(config: Config) -> dict[str, Any]:
    """The tuned fields of a config, as plain values (what `fitdoc.ladder` works on)."""
    settings: dict[str, Any] = {}
    for key in TUNED_KEYS:
        value = config.get(key)
        settings[key] = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
    return settings


def config_for(base: Config, settings: Mapping[str, Any]) -> Config:
    return base.with_changes(dict(settings))


def trial_config(base: Config, settings: Mapping[str, Any], index: int, tune_dir: Path) -> Config:
    """The config trial `index` trains: its run directory goes under `<tune dir>/trials`."""
    return base.with_changes(
        {**dict(settings), "output.dir": str(tune_dir / TRIALS_DIR), "name": f"trial-{index:02d}"}
    )


# ---------------------------------------------------------------- the loop


def run_tune(
    config: Config,
    *,
    tune_dir: Path | None = None,
    max_runs: int,
    parallel: int = 1,
    resume: bool = False,
    console: Console,
    plot: bool = False,
) -> TuneResult:
    """Tune `config` within `max_runs` trainings; see the module docstring for the files.

    `tune_dir` None makes a new `tune-<name>-<stamp>` directory under
    `config.output.dir`. `resume` continues the tune recorded in `tune_dir`
    (which must have been started from the same config). `parallel` > 1 runs
    up to that many trials at once, each as a `fitdoc train` process.
    Raises FitdocError for a bad directory or a mismatching resume.
    """
    if max_runs < 1:
        raise FitdocError(f"must be at least 1 (got {max_runs})", field="--max-runs")
    if parallel < 1:
        raise FitdocError(f"must be at least 1 (got {parallel})", field="--parallel")
    tune_dir = _prepare_tune_dir(config, tune_dir, resume=resume)
    trials: list[Trial] = list(_load_trials(tune_dir, config)) if resume else []
    base = settings_of(config)
    display = TuneDisplay(console, max_runs=max_runs)
    for trial in trials:
        display.finished(trial, resumed=True)

    status, stop_reason = "completed", ""
    _save(tune_dir, config, trials, max_runs, parallel, status="running", stop_reason="")
    with display:
        while True:
            plan = plan_next(trials, base, max_runs=max_runs, max_parallel=parallel)
            if not plan.moves:
                stop_reason = plan.stop_reason or "nothing left to try"
                break
            start = _next_index(trials)
            for offset, move in enumerate(plan.moves):
                display.started(start + offset, move)
            if len(plan.moves) == 1 and parallel == 1:
                done, interrupted = _run_in_process(config, plan.moves[0], start, tune_dir)
            else:
                done, interrupted = _run_in_processes(config, plan.moves, start, tune_dir)
            for trial in done:
                trials.append(trial)
                display.finished(trial)
            _save(tune_dir, config, trials, max_runs, parallel, status="running", stop_reason="")
            if interrupted:
                status = "interrupted"
                stop_reason = "interrupted; continue with --resume (unfinished trials will be retrained)"
                break

    best = best_trial(trials)
    best_path = None
    if best is not None:
        best_path = tune_dir / BEST_YAML
        write_config(config_for(config, best.settings), best_path)
    _save(tune_dir, config, trials, max_runs, parallel, status=status, stop_reason=stop_reason)
    plot_path = _plot(tune_dir, config, trials) if plot and trials else None
    display.summary(best, best_path, stop_reason, base)
    return TuneResult(tune_dir, tuple(trials), best, best_path, stop_reason, status, plot_path)


def _next_index(trials: Sequence[Trial]) -> int:
    return max((t.index for t in trials), default=-1) + 1


# ---------------------------------------------------------------- running trials


def _run_in_process(base: Config, move: Move, index: int, tune_dir: Path) -> tuple[list[Trial], bool]:
    from fitdoc.train import run_training

    config = trial_config(base, move.settings, index, tune_dir)
    _write_trial_config(tune_dir, index, config)
    try:
        result = run_training(config, console=Console(stderr=True, quiet=True), progress=False)
    except KeyboardInterrupt:
        return [], True
    if result.status == "interrupted":
        return [], True
    return [_record(index, move, config, result.run_dir, result.status, result.message)], False


def _run_in_processes(
    base: Config, moves: Sequence[Move], start: int, tune_dir: Path
) -> tuple[list[Trial], bool]:
    """Each move as its own `python -m fitdoc train TRIAL.yaml --quiet` process."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    jobs = []
    for offset, move in enumerate(moves):
        index = start + offset
        config = trial_config(base, move.settings, index, tune_dir)
        path = _write_trial_config(tune_dir, index, config)
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
            done.append(_failed(index, move, f"`fitdoc train` exited {code}: {_last_line(stderr)}"))
            continue
        done.append(_record(index, move, config, Path(run_dir), status, message))
    return done, interrupted


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _write_trial_config(tune_dir: Path, index: int, config: Config) -> Path:
    path = tune_dir / CONFIGS_DIR / f"trial-{index:02d}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_config(config, path)
    return path


def _failed(index: int, move: Move, message: str) -> Trial:
    return Trial(
        index=index,
        settings=dict(move.settings),
        verdict=None,
        status="failed",
        change=move.change,
        reason=move.reason,
        extra={"message": message},
    )


def _record(index: int, move: Move, config: Config, run_dir: Path, status: str, message: str) -> Trial:
    """Diagnose a finished run and remember what the loop needs from it."""
    from fitdoc.diagnosis import diagnose_curves
    from fitdoc.history import read_history

    try:
        curves = read_history(run_dir)
    except FitdocError as exc:
        return _failed(index, move, exc.one_line())
    # A diverged run's early minimum is no candidate for "best": no diagnosis.
    diagnosis = diagnose_curves(curves, config) if status == "completed" else None
    return trial_from_run(index, move, curves, diagnosis, status=status, message=message, run_dir=run_dir)


def trial_from_run(
    index: int,
    move: Move,
    curves: Curves,
    diagnosis: Diagnosis | None,
    *,
    status: str = "completed",
    message: str = "",
    run_dir: Path | None = None,
) -> Trial:
    """The trial record of one run: its best validation MAE, where the minimum
    lies (what the ladder's early stopping needs) and its diagnosis (None: not
    diagnosed, as for a diverged run)."""
    from fitdoc.features import compute_features

    extra: dict[str, Any] = {"message": message, "epochs_run": len(curves)}
    val_mae = None
    if curves.val is not None and curves.has_validation:
        features = compute_features(curves)
        finite = [(v, i) for i, v in enumerate(curves.val) if math.isfinite(v)]
        best_value, best_pos = min(finite)
        val_mae = float(best_value)
        extra["best_epoch"] = int(features.best_epoch)
        extra["best_position"] = round(float(features.best_position), 6)
        if curves.train is not None and math.isfinite(curves.train[best_pos]):
            extra["train_mae"] = float(curves.train[best_pos])
        extra["final_val_mae"] = float(curves.val[-1]) if math.isfinite(curves.val[-1]) else None
    common: dict[str, Any] = {
        "index": index,
        "settings": dict(move.settings),
        "status": status,
        "change": move.change,
        "reason": move.reason,
        "run_dir": None if run_dir is None else str(run_dir),
    }
    if diagnosis is None:
        return Trial(verdict=None, extra=extra, **common)
    suggestion = diagnosis.suggestion.primary.to_dict() if diagnosis.suggestion is not None else None
    extra.update(confidence=round(float(diagnosis.confidence), 3), summary=diagnosis.summary)
    leaning, leaning_cause = _leaning(diagnosis)
    return Trial(
        verdict=diagnosis.verdict.value,
        cause=None if diagnosis.cause is None else diagnosis.cause.value,
        val_mae=val_mae,
        suggestion=jsonable(suggestion),
        extra=extra,
        leaning=leaning,
        leaning_cause=leaning_cause,
        **common,
    )


def _leaning(diagnosis: Any) -> tuple[str | None, str | None]:
    """For an inconclusive diagnosis: the verdict of its strongest decisive finding."""
    if diagnosis.verdict.value != "inconclusive":
        return None, None
    votes = [
        f for f in diagnosis.findings if f.verdict is not None and f.verdict.value in ("overfit", "underfit")
    ]
    if not votes:
        return None, None
    strongest = max(votes, key=lambda f: f.strength)
    return strongest.verdict.value, None if strongest.cause is None else strongest.cause.value


# ---------------------------------------------------------------- the tune directory


def _prepare_tune_dir(config: Config, tune_dir: Path | None, *, resume: bool) -> Path:
    from fitdoc.rundir import create_run_dir, prepare_output_dir

    if tune_dir is None:
        if resume:
            raise FitdocError("--resume needs the tune directory", field="--dir")
        return create_run_dir(prepare_output_dir(config.output.dir), f"tune-{config.name}")
    tune_dir = Path(tune_dir).expanduser()
    if resume:
        if not (tune_dir / TUNE_JSON).is_file():
            raise FitdocError(f"no {TUNE_JSON} here: nothing to resume", path=tune_dir, field="--resume")
        return tune_dir
    if (tune_dir / TUNE_JSON).is_file():
        raise FitdocError(
            f"already holds a tune ({TUNE_JSON}); continue it with --resume or choose another directory",
            path=tune_dir,
            field="--dir",
        )
    prepare_output_dir(tune_dir)
    return tune_dir


def _comparable(config: Config) -> dict[str, Any]:
    dumped = config.model_dump(mode="json")
    dumped.pop("output", None)
    return dumped


def _load_trials(tune_dir: Path, config: Config) -> list[Trial]:
    path = tune_dir / TUNE_JSON
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        stored_base = state["base"]
        trials = [Trial.from_dict(item) for item in state["trials"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FitdocError(f"unreadable tune state: {exc}", path=path) from None
    stored = dict(stored_base)
    stored.pop("output", None)
    now = _comparable(config)
    if stored != now:
        key = _first_difference(stored, now)
        raise FitdocError(
            f"this tune was started from a different config ({key} differs); "
            "resume with the same config or start a new tune",
            path=path,
            field=key,
        )
    return trials


def _first_difference(a: Any, b: Any, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
    return prefix.rstrip(".") or "(config)"


def _save(
    tune_dir: Path,
    config: Config,
    trials: Sequence[Trial],
    max_runs: int,
    parallel: int,
    *,
    status: str,
    stop_reason: str,
) -> None:
    best = best_trial(trials)
    state = {
        "schema_version": TUNE_SCHEMA,
        "status": status,
        "stop_reason": stop_reason,
        "max_runs": max_runs,
        "parallel": parallel,
        "best": None if best is None else best.index,
        "best_config": BEST_YAML if best is not None and status != "running" else None,
        "base": config.model_dump(mode="json"),
        "trials": [t.to_dict() for t in trials],
    }
    write_json(tune_dir / TUNE_JSON, state)
    atomic_write_text(tune_dir / TUNE_CSV, trials_to_csv(trials))


def trials_to_csv(trials: Sequence[Trial]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for t in trials:
        s = t.settings
        stopping = s.get("training.early_stopping")
        writer.writerow(
            {
                "index": t.index,
                "change": t.change,
                "l2": s.get("model.l2"),
                "dropout": s.get("model.dropout"),
                "epochs": s.get("training.epochs"),
                "early_stopping": "" if not stopping else stopping.get("patience"),
                "units": s.get("model.units"),
                "status": t.status,
                "verdict": t.verdict or "",
                "cause": t.cause or "",
                "val_mae": "" if t.val_mae is None else f"{t.val_mae:.6g}",
                "train_mae": _num(t.extra.get("train_mae")),
                "best_epoch": t.extra.get("best_epoch", ""),
                "epochs_run": t.extra.get("epochs_run", ""),
                "run_dir": t.run_dir or "",
                "reason": t.reason,
            }
        )
    return buffer.getvalue()


def _num(value: Any) -> str:
    return "" if value is None else f"{float(value):.6g}"


def _plot(tune_dir: Path, config: Config, trials: Sequence[Trial]) -> Path | None:
    """All trials' curves side by side (the same figure `fitdoc plot` draws)."""
    from fitdoc.diagnosis import diagnose_curves
    from fitdoc.history import read_history
    from fitdoc.report.plot import plot_runs
    from fitdoc.rundir import Run

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


# ---------------------------------------------------------------- display


class TuneDisplay:
    """A live table of trials on a terminal; one plain line per event elsewhere (CI logs)."""

    def __init__(self, console: Console, *, max_runs: int) -> None:
        self._console = console
        self._max_runs = max_runs
        self._rows: dict[int, tuple[Move | Trial, bool]] = {}
        self._live: Live | None = None

    def __enter__(self) -> TuneDisplay:
        if self._console.is_terminal:
            self._live = Live(self._render(), console=self._console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(None, None, None)
            self._live = None

    def started(self, index: int, move: Move) -> None:
        self._rows[index] = (move, False)
        if self._live is not None:
            self._live.update(self._render())
        else:
            self._console.print(
                f"trial {index}: {move.change}  (why: {move.reason})", highlight=False, soft_wrap=True
            )

    def finished(self, trial: Trial, *, resumed: bool = False) -> None:
        self._rows[trial.index] = (trial, resumed)
        if self._live is not None:
            self._live.update(self._render())
        elif resumed:
            self._console.print(f"trial {trial.index}: {_outcome(trial)} (from {TUNE_JSON})", highlight=False)
        else:
            self._console.print(f"trial {trial.index}: {_outcome(trial)}", highlight=False, soft_wrap=True)

    def summary(
        self, best: Trial | None, best_path: Path | None, stop_reason: str, base: Mapping[str, Any]
    ) -> None:
        self._console.print(f"stopped: {stop_reason}", highlight=False, soft_wrap=True)
        if best is not None:
            self._console.print(
                f"best: trial {best.index} ({changes_from(base, best.settings)}), val MAE {best.val_mae:.4g}, "
                f"{best.verdict or best.status}; config written to {best_path}",
                highlight=False,
                soft_wrap=True,
            )

    def _render(self) -> Table:
        table = Table(title=f"fitdoc tune (budget {self._max_runs} trainings)", expand=False)
        for name, kwargs in (
            ("#", {"justify": "right"}),
            ("change", {}),
            ("verdict", {}),
            ("val MAE", {"justify": "right"}),
            ("why", {"overflow": "fold", "max_width": 60}),
        ):
            table.add_column(name, **kwargs)
        finished = [v for v, _ in self._rows.values() if isinstance(v, Trial)]
        best = best_trial(finished)
        for index in sorted(self._rows):
            item, _ = self._rows[index]
            if isinstance(item, Trial):
                verdict = _verdict_text(item)
                mae = "-" if item.val_mae is None else f"{item.val_mae:.4g}"
                style = "bold green" if best is not None and best.index == index else ""
                table.add_row(str(index), item.change, verdict, mae, item.reason, style=style)
            else:
                table.add_row(str(index), item.change, Text("training...", style="yellow"), "", item.reason)
        return table


def changes_from(base: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    """`model.l2: 0 -> 0.0001, training.epochs: 1000 -> 2000`, or `the base config`."""
    edits = [
        f"{key}: {_show(base.get(key))} -> {_show(value)}"
        for key, value in settings.items()
        if settings_key({key: base.get(key)}) != settings_key({key: value})
    ]
    return ", ".join(edits) or "the base config"


def _show(value: Any) -> str:
    if value is None:
        return "off"
    if isinstance(value, Mapping):
        return "patience " + str(value.get("patience", "?"))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _verdict_text(trial: Trial) -> str:
    if trial.verdict is None:
        return trial.status
    text = trial.verdict + (f" ({trial.cause})" if trial.cause else "")
    if trial.leaning:
        text += f", leaning {trial.leaning}"
    return text


def _outcome(trial: Trial) -> str:
    mae = "" if trial.val_mae is None else f", val MAE {trial.val_mae:.4g}"
    where = f"  {trial.run_dir}" if trial.run_dir else ""
    return f"{_verdict_text(trial)}{mae}{where}"
