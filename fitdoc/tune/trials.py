"""One trial of a tune: the config it trains, and the record kept of it.

Both runners (local processes and Ray, `fitdoc.tune.loop` and
`fitdoc.tune.ray_backend`) build trials through here, so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fitdoc.config import Config
from fitdoc.errors import FitdocError
from fitdoc.formatting import jsonable
from fitdoc.history.curves import Curves
from fitdoc.history.rundir import write_config
from fitdoc.tune.plan import TUNED_KEYS, Move, Trial
from fitdoc.tune.state import CONFIGS_DIR, TRIALS_DIR
from fitdoc.verdict import Cause, Diagnosis, Verdict


def settings_of(config: Config) -> dict[str, Any]:
    """The tuned fields of a config, as plain values (what `fitdoc.tune.plan` works on)."""
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


def write_trial_config(tune_dir: Path, index: int, config: Config) -> Path:
    path = tune_dir / CONFIGS_DIR / f"trial-{index:02d}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_config(config, path)
    return path


def failed_trial(index: int, move: Move, message: str) -> Trial:
    return Trial(
        index=index,
        settings=dict(move.settings),
        verdict=None,
        status="failed",
        change=move.change,
        reason=move.reason,
        extra={"message": message},
    )


def record_run(index: int, move: Move, config: Config, run_dir: Path, status: str, message: str) -> Trial:
    """Diagnose a finished run and remember what the loop needs from it."""
    from fitdoc.diagnosis.decide import diagnose_curves
    from fitdoc.history.load import read_history

    try:
        curves = read_history(run_dir)
    except FitdocError as exc:
        return failed_trial(index, move, exc.one_line())
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
    """The trial record of one run: its best validation MAE (`fitdoc.report.figures`:
    the minimum; `final_val_mae` and `final_train_mae` the mean of the last tenth, as
    `compare` shows them), where the minimum
    lies (what the ladder's early stopping needs) and its diagnosis (None: not
    diagnosed, as for a diverged run)."""
    from fitdoc.diagnosis.features import compute_features
    from fitdoc.report.figures import run_figures

    extra: dict[str, Any] = {"message": message, "epochs_run": len(curves)}
    val_mae = None
    if curves.val is not None and curves.has_validation:
        features, figures = compute_features(curves), run_figures(curves)
        val_mae = figures.best_val
        extra["best_epoch"] = int(features.best_epoch)
        extra["best_position"] = round(float(features.best_position), 6)
        extra["final_val_mae"] = figures.final_val
        extra["final_train_mae"] = figures.final_train
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
        verdict=diagnosis.verdict,
        cause=diagnosis.cause,
        val_mae=val_mae,
        suggestion=jsonable(suggestion),
        extra=extra,
        leaning=leaning,
        leaning_cause=leaning_cause,
        **common,
    )


def _leaning(diagnosis: Diagnosis) -> tuple[Verdict | None, Cause | None]:
    """For an inconclusive diagnosis: the verdict of its strongest decisive finding."""
    if diagnosis.verdict is not Verdict.INCONCLUSIVE:
        return None, None
    votes = [f for f in diagnosis.findings if f.verdict in (Verdict.OVERFIT, Verdict.UNDERFIT)]
    if not votes:
        return None, None
    strongest = max(votes, key=lambda f: f.strength)
    return strongest.verdict, strongest.cause
