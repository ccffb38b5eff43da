"""The tune directory's state files: `tune.json` (what `--resume` reads back) and `tune.csv`."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fitdoc.config import Config
from fitdoc.errors import FitdocError
from fitdoc.history.rundir import atomic_write_text, write_json
from fitdoc.tune.plan import Trial, best_trial

TUNE_JSON = "tune.json"
TUNE_CSV = "tune.csv"
BEST_YAML = "best.yaml"
TRIALS_DIR = "trials"
CONFIGS_DIR = "configs"
PLOT_FILE = "trials.png"
TUNE_SCHEMA = 1

# The figures are `fitdoc.report.figures`' (the ones `compare` shows): best = the minimum
# over all epochs (what ranks the trials), final = the mean of the last tenth of the epochs.
CSV_COLUMNS = (
    "index",
    "change",
    "l2",
    "l1",
    "dropout",
    "hidden_layers",
    "units",
    "epochs",
    "early_stopping",
    "status",
    "verdict",
    "cause",
    "best_val_mae",
    "best_epoch",
    "final_val_mae",
    "final_train_mae",
    "epochs_run",
    "run_dir",
    "reason",
)


# ---------------------------------------------------------------- the tune directory


def prepare_tune_dir(config: Config, tune_dir: Path | None, *, resume: bool) -> Path:
    from fitdoc.history.rundir import create_run_dir, prepare_output_dir

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


def load_trials(tune_dir: Path, config: Config) -> list[Trial]:
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


def save_state(
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
                "l1": s.get("model.l1"),
                "dropout": s.get("model.dropout"),
                "hidden_layers": s.get("model.hidden_layers"),
                "units": s.get("model.units"),
                "epochs": s.get("training.epochs"),
                "early_stopping": "" if not stopping else stopping.get("patience"),
                "status": t.status,
                "verdict": "" if t.verdict is None else t.verdict.value,
                "cause": "" if t.cause is None else t.cause.value,
                "best_val_mae": _num(t.val_mae),
                "best_epoch": t.extra.get("best_epoch", ""),
                "final_val_mae": _num(t.extra.get("final_val_mae")),
                "final_train_mae": _num(t.extra.get("final_train_mae")),
                "epochs_run": t.extra.get("epochs_run", ""),
                "run_dir": t.run_dir or "",
                "reason": t.reason,
            }
        )
    return buffer.getvalue()


def _num(value: Any) -> str:
    return "" if value is None else f"{float(value):.6g}"
