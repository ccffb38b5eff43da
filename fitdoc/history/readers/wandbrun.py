"""Weights & Biases runs -> named columns.

- A local run directory (`wandb/run-DATE-ID/`, `wandb/offline-run-DATE-ID/`):
  its `run-ID.wandb` transaction log holds every `wandb.log` call and the
  run's config. It is read by wandb's own reader, the `wandb-core` program that
  the `wandb` package ships (`wandb leet inspect --json`), called directly
  with telemetry off, so nothing reaches the network and the cost is the
  read (tens of milliseconds), not `import wandb` (a second). The
  `fitdoc[wandb]` extra installs it.
- A `wandb/` folder (or any folder) of such runs: one source each (discovery).

Every numeric key of a history record is a series (`train/loss`,
`val_loss`, ...; wandb's own `_step`, `_runtime`, `_timestamp` are not); the
record's `_step` is its step. Each validation point pairs with the train
values logged since the previous one, so a run that logs train every batch
and validation every epoch reads as one point per evaluation. A logged
`epoch` (or `trainer/epoch`, `train/epoch`) names the points' epochs. The
run's config (`l2`, `dropout`, `weight_decay`, `lr`, ...) names its knobs
through `readers.params`.

W&B's CSV exports (a panel's "Export CSV") are read by the CSV reader:
`wandb_csv_columns` turns their `RUN - metric` columns into plain ones.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from fitdoc.errors import HistoryError, MissingDependencyError
from fitdoc.history.readers.params import knobs_from_params
from fitdoc.history.readers.steps import table_from_points
from fitdoc.history.readers.table import Table

INSTALL = "pip install 'fitdoc[wandb]'"
_EPOCH_KEYS = ("epoch", "trainer/epoch", "train/epoch")
_TIMEOUT_S = 120.0


def is_log_file(path: Path) -> bool:
    return path.suffix == ".wandb" and path.name.startswith("run-") and path.is_file()


def log_file(path: Path) -> Path | None:
    """The `.wandb` log of a run directory (or the file itself); None when `path` is neither."""
    if is_log_file(path):
        return path
    if not path.is_dir():
        return None
    logs = sorted(f for f in path.glob("run-*.wandb") if f.is_file())
    return logs[-1] if logs else None


def is_run_dir(path: Path) -> bool:
    return log_file(path) is not None


def find_runs(root: Path, files: Sequence[Path] | None = None) -> list[Path]:
    """Run directories under `root` (itself included); `files`: its files when already listed.
    A walk does not follow links, so `wandb/latest-run` is read only when named itself."""
    listed = root.rglob("run-*.wandb") if files is None else (f for f in files if f.suffix == ".wandb")
    runs = {f.parent for f in listed if is_log_file(f)}
    return sorted(runs)


@dataclass(frozen=True)
class RunLog:
    """What one `.wandb` log holds, as fitdoc reads it."""

    history: list[dict[str, object]]
    config: dict[str, object]
    state: str  # "running" until the log holds the run's exit record, then "finished" / "failed"


def read_wandb(path: Path) -> Table:
    """One run directory (or its `.wandb` file) -> a Table, one row per validation point."""
    log = read_log(path)
    return table_from_log(log, path)


def run_state(path: Path) -> str:
    """`running`, `finished` or `failed`, as the run's log says now."""
    return read_log(path).state


def read_log(path: Path) -> RunLog:
    """The records of a run's `.wandb` log, through wandb's own reader."""
    log = log_file(path)
    if log is None:
        raise HistoryError("not a W&B run: expected a run directory holding run-ID.wandb", path=path)
    core = _core_binary(path)
    # wandb-core's inspector wants the wandb directory and the file; `--no-observability`
    # keeps its own telemetry off, so reading a run never opens a connection.
    args = [str(core), "leet", "inspect", "--no-observability", "--json", "--run-file", str(log)]
    args.append(str(log.parent.parent))
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    try:
        proc = subprocess.run(args, capture_output=True, timeout=_TIMEOUT_S, env=env, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HistoryError(f"wandb's reader failed ({type(exc).__name__}: {exc})", path=log) from None
    if proc.returncode != 0:
        why = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise HistoryError(
            f"wandb's reader cannot read this log: {why[-1] if why else f'exit {proc.returncode}'}", path=log
        )
    return parse_records(proc.stdout.decode("utf-8", "replace").splitlines(), log)


def _core_binary(path: Path) -> Path:
    """The `wandb-core` program inside the installed `wandb` package, found without importing
    wandb (`wandb.util.get_core_path` looks in the same place)."""
    try:
        spec = find_spec("wandb")
    except (ImportError, ValueError):
        spec = None
    origin = None if spec is None or spec.origin is None else Path(spec.origin).parent
    core = None if origin is None else origin / "bin" / "wandb-core"
    if core is None or not core.is_file():
        missing = "wandb is not installed" if origin is None else "wandb's reader (wandb-core) is missing"
        raise MissingDependencyError(
            f"reading a W&B run needs the wandb package ({missing}): {INSTALL}", path=path
        )
    return core


def parse_records(lines: Sequence[str], source: object) -> RunLog:
    """`wandb leet inspect --json` lines -> history rows, merged config and state."""
    history: list[dict[str, object]] = []
    config: dict[str, object] = {}
    state = "running"
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise HistoryError(
                f"wandb's reader wrote an unreadable record (line {number})", path=source
            ) from None
        if not isinstance(record, dict):
            continue
        kind = record.get("type")
        body = record.get(kind) if isinstance(kind, str) else None
        if not isinstance(body, dict):
            continue
        if kind == "history":
            row = _history_row(body)
            if row:
                history.append(row)
        elif kind in ("run", "config"):
            update = body.get("config", {}).get("update") if kind == "run" else body.get("update")
            if isinstance(update, dict):
                config.update(_config_values(update))
        elif kind == "exit":
            code = body.get("exit_code", 0)
            state = "finished" if not code else "failed"
    return RunLog(history, config, state)


def _history_row(body: Mapping[str, object]) -> dict[str, object]:
    item = body.get("item")
    if not isinstance(item, dict):
        return {}
    row = dict(item)
    step = body.get("step")
    if isinstance(step, dict) and "num" in step:
        row["_step"] = step["num"]
    row.setdefault("_step", item.get("_step", 0))
    return row


def _config_values(update: Mapping[str, object]) -> dict[str, object]:
    """Config keys -> values; wandb's own `_wandb` entry is not the user's, and an old-style
    `{"value": x, "desc": ...}` entry is its value. Nested dicts flatten to `a.b`."""
    out: dict[str, object] = {}
    for key, value in update.items():
        if key.startswith("_"):
            continue
        if isinstance(value, dict) and "value" in value and set(value) <= {"value", "desc"}:
            value = value["value"]
        if isinstance(value, dict):
            for sub, inner in _config_values(value).items():
                out[f"{key}.{sub}"] = inner
        else:
            out[key] = value
    return out


def table_from_log(log: RunLog, source: object) -> Table:
    if not log.history:
        raise HistoryError("the W&B run has no logged history yet (no wandb.log records)", path=source)
    series: dict[str, dict[int, float]] = {}
    epoch_at: dict[int, float] = {}
    for row in log.history:
        step = _number(row.get("_step"))
        if step is None:
            continue
        at = int(step)
        for key, raw in row.items():
            value = _number(raw)
            if key.startswith("_") or value is None:
                continue
            if key in _EPOCH_KEYS:
                epoch_at.setdefault(at, value)
                continue
            series.setdefault(key, {})[at] = value  # a later log at the same step wins, as W&B shows it
    if not series:
        raise HistoryError("the W&B run logged no numeric series", path=source)
    table = _with_epochs(table_from_points(series, "wandb"), epoch_at)
    knobs = knobs_from_params(log.config, "W&B config")
    if knobs.notes:
        table = replace(table, notes=(*table.notes, *knobs.notes), settings=knobs.settings)
    return table


def _with_epochs(table: Table, epoch_at: Mapping[int, float]) -> Table:
    """Points numbered by the epoch the run logged beside them, when it logged one at each."""
    if table.point == "epoch" or table.steps is None or not epoch_at:
        return table
    epochs = np.array([epoch_at.get(int(s), math.nan) for s in table.steps], dtype=float)
    if not np.isfinite(epochs).all() or not np.all(np.diff(epochs) > 0):
        return table
    if np.all(epochs == np.round(epochs)):
        # A whole-number `epoch` key counts from 0, as Lightning's and Keras' loggers write it.
        start = int(epochs[0])
        shift = 1 if start == 1 and not (epochs == 0).any() else 0
        notes = tuple(n for n in table.notes if not n.startswith("x-axis: steps"))
        return replace(table, epochs=epochs.astype(np.int64) - shift, point="epoch", notes=notes)
    return replace(table, epoch_at=epochs)


def _number(raw: object) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None
    return float(raw)  # NaN stays: a point with no value, never filled in


# ---------------------------------------------------------------- CSV exports

# `RUN - metric`, `RUN - metric__MIN`, `RUN - metric__MAX`: the UI's "Export CSV" of a panel.
_EXPORT = re.compile(r"^(?P<run>.+?) - (?P<metric>.+?)(?P<bound>__MIN|__MAX)?$")


def is_export_header(header: Sequence[str]) -> bool:
    """A W&B panel export: `Step` (or another x key) then `RUN - metric` columns with bounds."""
    matched = [_EXPORT.match(h.strip()) for h in header]
    return (
        any(m is not None and m.group("bound") for m in matched) and sum(m is not None for m in matched) >= 2
    )


def export_columns(header: Sequence[str]) -> tuple[list[str | None], str | None]:
    """New names for an export's columns (None: drop it) and a note.

    The `__MIN`/`__MAX` companions (the range of a smoothed or sampled line) are dropped;
    `RUN - metric` becomes `metric`. An export of several runs keeps the first run's
    columns and says which others it holds."""
    runs: list[str] = []
    names: list[str | None] = []
    for raw in header:
        m = _EXPORT.match(raw.strip())
        if m is None:
            names.append(raw)
            continue
        if m.group("run") not in runs:
            runs.append(m.group("run"))
        names.append(None if m.group("bound") or m.group("run") != runs[0] else m.group("metric"))
    note = None
    if len(runs) > 1:
        others = ", ".join(runs[1:4]) + (f" and {len(runs) - 4} more" if len(runs) > 4 else "")
        note = f"W&B export of {len(runs)} runs; diagnosing `{runs[0]}` (also: {others})"
    return names, note
