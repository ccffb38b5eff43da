"""MLflow runs -> named columns.

- `mlflow:RUN_ID`: the run's metric histories from the tracking store that
  `MLFLOW_TRACKING_URI` names (a SQLite database, a tracking server, ...),
  through MLflow's own client (the `fitdoc[mlflow]` extra).
- `mlruns/EXPERIMENT_ID/RUN_ID`: a run of the file store read straight from
  its `metrics/` files (`TIMESTAMP VALUE STEP` per line; a key with `/` is a
  nested path) and `params/` files; no MLflow needed.

Metric keys are column names (`loss`, `val_loss`, `eval_loss`, ...); each
validation point pairs with the train values logged since the previous one.
Params that name a knob (`l2`, `dropout`, `lr`, ...) become the run's settings
(`readers.params`), so the suggestion is a concrete edit; a note says which.
"""

from __future__ import annotations

import os
from pathlib import Path

from fitdoc.errors import HistoryError, MissingDependencyError
from fitdoc.history.readers.params import knobs_from_params
from fitdoc.history.readers.steps import table_from_points
from fitdoc.history.readers.table import Table

PREFIX = "mlflow:"
INSTALL_HINT = "reading mlflow:RUN_ID needs MLflow's client: pip install 'fitdoc[mlflow]'"
_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


def is_mlflow_uri(path: object) -> bool:
    return str(path).startswith(PREFIX)


def is_file_store_run(path: Path) -> bool:
    return path.is_dir() and (path / "meta.yaml").is_file() and (path / "metrics").is_dir()


def find_file_store_runs(root: Path, files: list[Path] | None = None) -> list[Path]:
    """Runs of a file store under `root` (`mlruns/`, one experiment, or one run);
    `files`: the files under `root` when the caller has listed them already."""
    metas = root.rglob("meta.yaml") if files is None else (f for f in files if f.name == "meta.yaml")
    return sorted(meta.parent for meta in metas if is_file_store_run(meta.parent) and not _deleted(meta))


def _deleted(meta: Path) -> bool:
    """A run deleted in MLflow (its meta.yaml says `lifecycle_stage: deleted`) is not offered."""
    try:
        return "lifecycle_stage: deleted" in meta.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def read_mlflow(path: Path) -> Table:
    if is_mlflow_uri(path):
        return _read_tracking(str(path)[len(PREFIX) :].strip("/"), str(path))
    if not is_file_store_run(path):
        raise HistoryError(
            "not an MLflow run: expected `mlflow:RUN_ID` or a file-store run folder "
            "(mlruns/EXPERIMENT_ID/RUN_ID with meta.yaml and metrics/)",
            path=path,
        )
    return _read_file_store(path)


def _read_file_store(run: Path) -> Table:
    series: dict[str, dict[int, float]] = {}
    metrics = run / "metrics"
    for f in sorted(p for p in metrics.rglob("*") if p.is_file()):
        key = f.relative_to(metrics).as_posix()
        points: dict[int, float] = {}
        try:
            lines = f.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise HistoryError(f"unreadable metric file ({exc})", path=f) from None
        for number, line in enumerate(lines, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                value = float(parts[1])
                step = int(parts[2]) if len(parts) > 2 else 0
            except (IndexError, ValueError):
                raise HistoryError(
                    f"line {number}: expected `TIMESTAMP VALUE STEP`, got {line[:60]!r}", path=f
                ) from None
            points[step] = value  # the last value logged at a step wins, as MLflow shows it
        if points:
            series[key] = points
    if not series:
        raise HistoryError("the run has no metric histories in metrics/", path=run)
    params = {}
    for f in (
        sorted(p for p in (run / "params").rglob("*") if p.is_file()) if (run / "params").is_dir() else []
    ):
        params[f.relative_to(run / "params").as_posix()] = f.read_text(
            encoding="utf-8", errors="replace"
        ).strip()
    return _with_params(table_from_points(series, "mlflow"), params)


def _read_tracking(run_id: str, source: str) -> Table:
    if not run_id:
        raise HistoryError("expected mlflow:RUN_ID", path=source)
    try:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise MissingDependencyError(INSTALL_HINT, path=source) from None
    uri = os.environ.get("MLFLOW_TRACKING_URI", "(MLflow's default store)")
    # MLflow retries an unreachable server for minutes by default; a diagnosis says so in seconds.
    # The user's own settings of these variables win.
    for name, value in _HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    try:
        client = MlflowClient()
        run = client.get_run(run_id)
        series: dict[str, dict[int, float]] = {}
        for key in sorted(run.data.metrics):
            points: dict[int, float] = {}
            for m in sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp)):
                points[int(m.step)] = float(m.value)
            if points:
                series[key] = points
        params = dict(run.data.params)
    except MlflowException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "Max retries exceeded" in first or "Failed to establish" in first:
            first = "the tracking server does not answer (is it running, and is the URI right?)"
        raise HistoryError(f"cannot read the run from {uri}: {first}", path=source) from None
    if not series:
        raise HistoryError(f"the run has no metrics in {uri}", path=source)
    return _with_params(table_from_points(series, "mlflow"), params)


def _with_params(table: Table, params: dict[str, str]) -> Table:
    from dataclasses import replace

    knobs = knobs_from_params(params)
    if not knobs.notes:
        return table
    return replace(table, notes=(*table.notes, *knobs.notes), settings=knobs.settings)
