"""JSON histories -> named columns: Keras `History.history` dicts of lists,
lists of per-epoch records, nested or prefixed multi-head dicts, and Hugging
Face `trainer_state.json` (`log_history`).

Hugging Face logs are step-based: each evaluation entry becomes one point, its
train value the mean of the train `loss` entries logged since the previous
evaluation. Without evaluations, train entries are averaged per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from fitdoc.errors import HistoryError
from fitdoc.history.readers.names import parse_names
from fitdoc.history.readers.steps import step_table
from fitdoc.history.readers.table import Table
from fitdoc.history.readers.tabular import epochs_from
from fitdoc.history.readers.text import parse_number

_SHAPES = (
    'expected a dict of lists ({"loss": [...], "val_loss": [...]}), a list of '
    "per-epoch records, or a Hugging Face trainer_state.json"
)


def _number(value: Any) -> float | None:
    """A JSON value as a float; None when it is not a number at all."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if value is None:
        return math.nan
    if isinstance(value, str):
        return parse_number(value)
    return None


def _series(values: list[Any]) -> list[float] | None:
    out = [_number(v) for v in values]
    if not out or all(v is None for v in out):
        return None
    nums = [math.nan if v is None else v for v in out]
    if all(math.isnan(v) for v in nums):
        return None
    return nums


def table_from_json(obj: Any, path: object, fmt: str | None) -> Table:
    if isinstance(obj, Mapping) and "log_history" in obj:
        return _hf_table(obj["log_history"], path)
    if fmt == "hf_trainer_state":
        raise HistoryError("no `log_history` list: not a trainer_state.json", path=path, field="log_history")
    columns: dict[str, list[float]] = {}
    notes: list[str] = []
    if isinstance(obj, Mapping):
        obj = _unwrap(obj)
        if _is_epoch_keyed(obj):
            records = [obj[k] for k in sorted(obj, key=lambda k: float(k))]
            _collect_records(records, columns)
        else:
            _collect_mapping(obj, "", columns)
    elif isinstance(obj, list):
        if obj and all(isinstance(r, Mapping) for r in obj):
            _collect_records(obj, columns)
        else:
            values = _series(obj)
            if values is not None:
                columns["loss"] = values
    if not columns:
        raise HistoryError(f"JSON holds no numeric series; {_SHAPES}", path=path)
    lengths = {len(v) for v in columns.values()}
    n = max(lengths)
    if len(lengths) > 1:
        shown = ", ".join(str(x) for x in sorted(lengths, reverse=True))
        notes.append(f"series of different lengths ({shown}); shorter ones padded with NaN")
    arrays = {k: np.asarray(v + [math.nan] * (n - len(v)), dtype=float) for k, v in columns.items()}
    epochs, note = epochs_from(arrays, parse_names(list(arrays)), n, "json")
    if note:
        notes.append(note)
    return Table(arrays, epochs, "json", tuple(notes))


def _unwrap(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """`{"history": {...}}` and similar one-key wrappers hold the real dict."""
    for _ in range(3):
        has_lists = any(isinstance(v, list) for v in obj.values())
        dicts = [v for v in obj.values() if isinstance(v, Mapping)]
        if has_lists or len(dicts) != 1:
            break
        obj = dicts[0]
    return obj


def _is_epoch_keyed(obj: Mapping[str, Any]) -> bool:
    if not obj or not all(isinstance(v, Mapping) for v in obj.values()):
        return False
    try:
        [float(k) for k in obj]
    except (TypeError, ValueError):
        return False
    return True


def _collect_mapping(obj: Mapping[str, Any], prefix: str, columns: dict[str, list[float]]) -> None:
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, list):
            if value and all(isinstance(r, Mapping) for r in value):
                # `train_metrics: [{mae: .., r2: ..}, ...]` -> `train_metrics_mae`, ...
                sub: dict[str, list[float]] = {}
                _collect_records(value, sub)
                columns.update({f"{name}_{k}": v for k, v in sub.items()})
            else:
                values = _series(value)
                if values is not None:
                    columns[name] = values
        elif isinstance(value, Mapping) and prefix.count("_") < 3:
            # `{"train": {"loss": [...]}, "val": {...}}` -> `train_loss`, `val_loss`.
            _collect_mapping(value, f"{name}_", columns)


def _collect_records(records: list[Any], columns: dict[str, list[float]]) -> None:
    keys: dict[str, None] = {}
    for r in records:
        if isinstance(r, Mapping):
            for k, v in r.items():
                if not isinstance(v, (list, Mapping)):
                    keys.setdefault(str(k), None)
    for k in keys:
        raw = [r.get(k) if isinstance(r, Mapping) else None for r in records]
        values = _series(raw)
        if values is not None:
            columns[k] = values


def _hf_table(log: Any, path: object) -> Table:
    if not isinstance(log, list):
        raise HistoryError("`log_history` is not a list", path=path, field="log_history")
    entries = [e for e in log if isinstance(e, Mapping)]
    if not entries:
        raise HistoryError(
            "`log_history` is empty: nothing was logged before this checkpoint",
            path=path,
            field="log_history",
        )
    columns: dict[str, list[float]] = {}
    _collect_records(entries, columns)
    arrays = {k: np.asarray(v, dtype=float) for k, v in columns.items()}
    parsed = parse_names(list(arrays))
    train = [c for c in parsed if c.kind == "series" and c.split == "train" and c.norm != "train_loss"]
    evals = [c for c in parsed if c.kind == "series" and c.split == "val"]
    if not evals and not train:
        raise HistoryError("`log_history` has no `loss` or `eval_*` entries", path=path, field="log_history")
    return step_table(arrays, "hf_trainer_state")
