"""Step-based logs -> one point per evaluation, paired with the train logs before it.

Hugging Face's `log_history` (and its CSV exports, `pd.DataFrame(log_history)`)
interleaves train entries (`loss` every `logging_steps`) with evaluation
entries (`eval_*` every `eval_steps` or epoch). One point per evaluation: its
train value is the mean of the train logs after the previous evaluation and
up to this one (by global step; the train log of the evaluation's own step
comes before it, as the Trainer logs it first). So an evaluation at epoch 2.0
pairs with the train steps of epoch 1..2, never with the next epoch's.

Nothing is invented: an evaluation with no train log since the previous one
keeps a NaN train value (fewer train logs than evaluations is normal with a
large `logging_steps`), and train logs after the last evaluation are dropped
with a note. The epoch and step of each point are kept, so a report can say
"7 evaluations over 13.5 epochs".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from fitdoc.history.readers.names import ColumnName, parse_names
from fitdoc.history.readers.table import Table


def _finite_rows(columns: Mapping[str, np.ndarray], cols: list[ColumnName], n: int) -> np.ndarray:
    rows = np.zeros(n, dtype=bool)
    for c in cols:
        rows |= np.isfinite(columns[c.raw])
    return rows


def is_step_log(parsed: list[ColumnName], columns: Mapping[str, np.ndarray]) -> bool:
    """Epochs logged as fractions, or `eval_*` rows interleaved with train rows: a step log.

    Per-epoch records (train and validation values on one row) are not, nor are
    Lightning's sparse rows (whole epochs, `val_*` names), which group by epoch.
    """
    epoch = next((c for c in parsed if c.kind == "epoch"), None)
    if epoch is None:
        return False
    n = len(columns[epoch.raw])
    series = [c for c in parsed if c.kind == "series"]
    train = _finite_rows(columns, [c for c in series if c.split == "train"], n)
    evals = _finite_rows(columns, [c for c in series if c.split == "val"], n)
    if (train & evals).any():
        return False
    ep = columns[epoch.raw]
    ep = ep[np.isfinite(ep)]
    fractional = bool(ep.size) and not np.all(ep == np.round(ep))
    hf_names = any(c.split == "val" and c.norm.startswith("eval_") for c in series)
    return fractional or (hf_names and bool(train.any()) and bool(evals.any()))


def step_table(
    columns: Mapping[str, np.ndarray],
    fmt: str,
    notes: list[str] | None = None,
    eval_splits: tuple[str, ...] = ("val",),
) -> Table:
    """Rows of a step log (in logging order) -> one row per evaluation, or per epoch without any."""
    notes = list(notes or [])
    parsed = parse_names(list(columns))
    cols, n = _without_summary_rows(columns, parsed)
    step_col = next((c for c in parsed if c.kind == "step"), None)
    epoch_col = next((c for c in parsed if c.kind == "epoch"), None)
    series = [c for c in parsed if c.kind == "series"]
    evals = [c for c in series if c.split in eval_splits]
    trains = [c for c in series if c.split == "train"]
    eval_rows = _finite_rows(cols, evals, n)
    train_rows = _finite_rows(cols, trains, n) & ~eval_rows
    steps = cols[step_col.raw] if step_col is not None else None
    epochs = cols[epoch_col.raw] if epoch_col is not None else None
    if not eval_rows.any():
        return _per_epoch(cols, trains, train_rows, epochs, steps, fmt, notes)

    e_idx = np.flatnonzero(eval_rows)
    t_idx = np.flatnonzero(train_rows)
    use_steps = steps is not None and np.isfinite(steps[e_idx]).all() and np.isfinite(steps[t_idx]).all()
    key = steps if use_steps and steps is not None else np.arange(n, dtype=float)
    e_idx, point_keys, point_of_eval = _evaluation_points(key, e_idx)
    n_points = len(point_keys)
    out = {c.raw: _first_finite(cols[c.raw][e_idx], point_of_eval, n_points) for c in evals}
    # Train rows: the point of the first evaluation at or after their step.
    t_point = np.searchsorted(point_keys, key[t_idx], side="left")
    after_last = t_point >= n_points
    most = 0
    for c in trains:
        out[c.raw], count = _train_means(cols[c.raw][t_idx], t_point, after_last, n_points)
        most = max(most, count)
    if trains:
        empty = int(np.isnan(out[trains[0].raw]).sum())
        notes += _alignment_notes(n_points, most, empty, int(t_idx.size), int(after_last.sum()))
    point_ep = _first_finite(epochs[e_idx], point_of_eval, n_points) if epochs is not None else None
    point_step = _first_finite(steps[e_idx], point_of_eval, n_points) if steps is not None else None
    index, point = _point_index(point_ep, n_points)
    if point == "evaluation" and point_ep is not None and np.isfinite(point_ep).any():
        notes.append(
            f"evaluations at fractional epochs ({np.nanmin(point_ep):.3g} to {np.nanmax(point_ep):.3g}); "
            "points are numbered by evaluation"
        )
    return Table(out, index, fmt, tuple(notes), epoch_at=point_ep, steps=point_step, point=point)


def _without_summary_rows(
    columns: Mapping[str, np.ndarray], parsed: list[ColumnName]
) -> tuple[dict[str, np.ndarray], int]:
    """The columns as floats without the Trainer's final summary row (`train_runtime`,
    `train_loss` over the whole run), which is not a point; and their row count."""
    n = len(next(iter(columns.values()))) if columns else 0
    keep = np.ones(n, dtype=bool)
    for c in parsed:
        if c.norm == "train_runtime":
            keep &= ~np.isfinite(columns[c.raw])
    return {k: np.asarray(v, dtype=float)[keep] for k, v in columns.items()}, int(keep.sum())


def _evaluation_points(key: np.ndarray, e_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(evaluation rows in step order, the points' keys, each evaluation's point):
    evaluations at the same step (several eval sets logged apart) are one point."""
    e_key = key[e_idx]
    if not np.all(np.diff(e_key) >= 0):
        order = np.argsort(e_key, kind="stable")
        e_idx, e_key = e_idx[order], e_key[order]
    point_keys, point_of_eval = np.unique(e_key, return_inverse=True)
    return e_idx, point_keys, point_of_eval


def _train_means(
    values: np.ndarray, t_point: np.ndarray, after_last: np.ndarray, n_points: int
) -> tuple[np.ndarray, int]:
    """Per point, the mean of the train logs that precede it (NaN: none); and the most
    train logs any one point averages."""
    ok = ~after_last & ~np.isnan(values)
    counts = np.bincount(t_point[ok], minlength=n_points)
    sums = np.bincount(t_point[ok], weights=values[ok], minlength=n_points)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return means, int(counts.max(initial=0))


def _alignment_notes(n_points: int, most: int, empty: int, n_trains: int, late: int) -> list[str]:
    """What pairing train logs with evaluations averaged, left missing or dropped."""
    plural = "evaluation" if n_points == 1 else "evaluations"
    notes = []
    if most > 1:
        notes.append(f"{n_points} {plural}; train values averaged over the train logs since the previous one")
    if empty:
        notes.append(
            f"{empty} of {n_points} {plural} have no train log before them "
            f"({n_trains} train logs); their train value is left missing"
        )
    if late:
        notes.append(f"{late} train log{'' if late == 1 else 's'} after the last evaluation not used")
    return notes


def _first_finite(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group, the first finite value in row order (NaN when none)."""
    out = np.full(n_groups, np.nan)
    ok = np.flatnonzero(np.isfinite(values) | np.isinf(values))
    if ok.size:
        # Reversed assignment: the first occurrence is written last and wins.
        rev = ok[::-1]
        out[group[rev]] = values[rev]
    return out


def _point_index(point_ep: np.ndarray | None, n: int) -> tuple[np.ndarray, str]:
    """0-based epochs when every evaluation closes a whole epoch, else the evaluation number."""
    if point_ep is not None and n and np.isfinite(point_ep).all():
        rounded = np.round(point_ep)
        whole = np.allclose(point_ep, rounded, atol=1e-3) and rounded.min() >= 1
        if whole and np.all(np.diff(rounded) > 0):
            return rounded.astype(np.int64) - 1, "epoch"
    return np.arange(n), "evaluation"


def _per_epoch(
    cols: Mapping[str, np.ndarray],
    trains: list[ColumnName],
    train_rows: np.ndarray,
    epochs: np.ndarray | None,
    steps: np.ndarray | None,  # noqa: ARG001  (same call shape as the evaluated branch)
    fmt: str,
    notes: list[str],
) -> Table:
    """No evaluation at all: train logs averaged per epoch (a log at epoch 1.0 closes epoch 0)."""
    idx = np.flatnonzero(train_rows)
    if epochs is None or not np.isfinite(epochs[idx]).all():
        out = {c.raw: cols[c.raw][idx] for c in trains}
        notes.append("no evaluation entries")
        return Table(out, np.arange(idx.size), fmt, tuple(notes), point="evaluation")
    ep = epochs[idx]
    bucket = np.maximum(np.ceil(ep - 1e-9) - 1, 0).astype(np.int64)
    uniq, inv = np.unique(bucket, return_inverse=True)
    out = {}
    for c in trains:
        values = cols[c.raw][idx]
        present = ~np.isnan(values)
        counts = np.bincount(inv[present], minlength=len(uniq))
        sums = np.bincount(inv[present], weights=values[present], minlength=len(uniq))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[c.raw] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    last = np.zeros(len(uniq))
    np.maximum.at(last, inv, ep)
    notes.append("no evaluation entries; train values averaged per epoch")
    return Table(out, uniq, fmt, tuple(notes), epoch_at=last)


def table_from_points(series: dict[str, dict[int, float]], fmt: str) -> Table:
    """Named (step, value) points (TensorBoard scalars, MLflow metric histories) -> a Table.

    One row per validation point, paired with the train values logged since the
    previous one; without validation, one row per logged step. Steps that count
    0, 1, 2, ... are epochs; other steps stay the x-axis, said in a note.
    """

    names = list(series)
    parsed = parse_names(names)
    is_val = {c.raw: c.kind == "series" and c.split in ("val", "test") for c in parsed}
    if not any(is_val.values()):
        # Train only: one row per logged step.
        steps = np.array(sorted({step for points in series.values() for step in points}), dtype=float)
        at = {int(step): i for i, step in enumerate(steps)}
        wide = {name: np.full(steps.size, np.nan) for name in names}
        for name, points in series.items():
            for step, v in points.items():
                wide[name][at[step]] = v
        return _x_axis(Table(wide, np.arange(steps.size), fmt, ("no validation scalars",), steps=steps))
    rows: list[tuple[int, int, str, float]] = []
    for name, points in series.items():
        rows.extend((step, int(is_val[name]), name, v) for step, v in points.items())
    rows.sort(key=lambda r: (r[0], r[1]))
    n = len(rows)
    columns = {name: np.full(n, np.nan) for name in names}
    steps = np.empty(n)
    for i, (step, _, name, v) in enumerate(rows):
        columns[name][i] = v
        steps[i] = step
    columns["step"] = steps
    return _x_axis(step_table(columns, fmt, eval_splits=("val", "test")))


def _x_axis(table: Table) -> Table:
    # Steps that count 0, 1, 2, ... (Keras' epoch_* scalars, a SummaryWriter given the epoch) are epochs.
    s = table.steps
    if s is not None and s.size and np.isfinite(s).all() and np.all(np.diff(s) > 0):
        first = int(s[0])
        consecutive = s[-1] - s[0] == s.size - 1 and first in (0, 1)
        if consecutive:
            return replace(table, epochs=(s - first).astype(np.int64), point="epoch", steps=None)
        notes = (*table.notes, f"x-axis: steps {s[0]:g} to {s[-1]:g}")
        return replace(table, notes=notes)
    return table
