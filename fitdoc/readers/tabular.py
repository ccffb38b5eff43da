"""CSV-like histories: Keras CSVLogger, fitdoc, pandas dumps, Lightning
`metrics.csv` and hand-rolled layouts -> named numeric columns + epochs.

Appended logs are split where a header repeats or the epoch counter restarts;
the last run is diagnosed and a note says so. Lightning's sparse rows (train
per step, validation per epoch, `lr-*` rows without an epoch) are averaged per
epoch, preferring `_epoch` columns over `_step` ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fitdoc.readers.names import ColumnName, parse_names
from fitdoc.readers.text import Segment, parse_csv

CSV_FORMATS = ("fitdoc", "keras_csv", "pandas", "lightning", "csv")
_FITDOC_EXTRAS = frozenset({"reg_loss", "epoch_seconds"})


@dataclass(frozen=True)
class Table:
    """Named numeric columns of equal length with their 0-based epochs.

    Step-based logs add what one point is (`point`: epoch or evaluation), the
    epochs of training done at each point (`epoch_at`, float) and the global
    step of each (`steps`); None when the file does not say.
    """

    columns: dict[str, np.ndarray]
    epochs: np.ndarray
    format: str
    notes: tuple[str, ...]
    epoch_at: np.ndarray | None = None
    steps: np.ndarray | None = None
    point: str = "epoch"


def detect_csv_format(header: tuple[str, ...], parsed: list[ColumnName]) -> str:
    kinds = {c.kind for c in parsed}
    norms = {c.norm for c in parsed}
    if "epoch" in kinds and "step" in kinds:
        return "lightning"
    if parsed and parsed[0].kind == "index":
        return "pandas"
    keras_like = all(
        c.kind != "series" or not c.norm.startswith(("train", "valid", "eval", "test")) for c in parsed
    ) and header == tuple(h.strip() for h in header)
    if header and header[0] == "epoch":
        if _FITDOC_EXTRAS & norms:
            return "fitdoc"
        return "keras_csv" if keras_like else "csv"
    if "epoch" not in kinds and keras_like and all(h == h.lower() for h in header):
        return "pandas"
    return "csv"


def read_csv_table(text: str, path: object, format_in: str | None = None) -> Table:
    segments = parse_csv(text, path)
    last = segments[-1]
    parsed = parse_names(list(last.header))
    fmt = format_in or detect_csv_format(last.header, parsed)
    if fmt == "lightning":
        return _lightning_table(last, parsed, segments, fmt)
    if len(segments) == 1 and any(c.kind == "epoch" for c in parsed):
        from fitdoc.readers.steps import is_step_log, step_table

        columns = _numeric_columns(last, 0, last.n_rows)
        if is_step_log(parse_names(list(columns)), columns):
            return step_table(columns, fmt if format_in else "hf_log_history")
    return _epoch_table(segments, fmt)


def _numeric_columns(seg: Segment, start: int, stop: int) -> dict[str, np.ndarray]:
    return {
        name: np.asarray(seg.columns[j][start:stop], dtype=float)
        for j, name in enumerate(seg.header)
        if j not in seg.text_columns
    }


def _epoch_index(parsed: list[ColumnName]) -> int | None:
    for j, col in enumerate(parsed):
        if col.kind == "epoch":
            return j
    return None


def _runs(seg: Segment, epoch_j: int | None) -> list[tuple[int, int]]:
    """Row ranges of the runs in one segment: a new run where the epoch restarts."""
    if epoch_j is None or seg.n_rows == 0:
        return [(0, seg.n_rows)]
    ep = np.asarray(seg.columns[epoch_j], dtype=float)
    with np.errstate(invalid="ignore"):
        drops = (ep[1:] <= ep[:-1]) & np.isfinite(ep[1:]) & np.isfinite(ep[:-1])
    restarts = (np.flatnonzero(drops) + 1).tolist()
    bounds = [0, *restarts, len(ep)]
    return [(bounds[k], bounds[k + 1]) for k in range(len(bounds) - 1)]


def _epoch_table(segments: list[Segment], fmt: str) -> Table:
    runs: list[tuple[Segment, int, int]] = []
    for seg in segments:
        epoch_j = _epoch_index(parse_names(list(seg.header)))
        runs.extend((seg, a, b) for a, b in _runs(seg, epoch_j))
    seg, start, stop = runs[-1]
    notes: list[str] = []
    if len(runs) > 1:
        lengths = ", ".join(str(b - a) for _, a, b in runs)
        notes.append(f"appended log with {len(runs)} runs ({lengths} rows); diagnosing the last run")
    columns = _numeric_columns(seg, start, stop)
    parsed = parse_names(list(columns))
    epochs, epoch_note = epochs_from(columns, parsed, stop - start, fmt)
    if epoch_note:
        notes.append(epoch_note)
    return Table(columns, epochs, fmt, tuple(notes))


def epochs_from(
    columns: dict[str, np.ndarray], parsed: list[ColumnName], n: int, fmt: str
) -> tuple[np.ndarray, str | None]:
    """0-based integer epochs: the epoch column when usable, else the row index."""
    col = next((c for c in parsed if c.kind == "epoch"), None)
    if col is None:
        return np.arange(n), None
    ep = columns[col.raw]
    sane = np.isfinite(ep).all() and (n == 0 or (ep.min() >= 0 and ep.max() < 2**31))
    if not sane or not np.all(ep == np.round(ep)):
        return np.arange(n), f"column `{col.raw}` is not a whole-number epoch counter; using the row index"
    ints = ep.astype(np.int64)
    if n and ints[0] == 1 and fmt != "fitdoc":
        return ints - 1, f"column `{col.raw}` counts from 1; epochs shifted to count from 0"
    return ints, None


def _lightning_table(seg: Segment, parsed: list[ColumnName], segments: list[Segment], fmt: str) -> Table:
    columns = _numeric_columns(seg, 0, seg.n_rows)
    parsed = parse_names(list(columns))
    epoch_col = next((c for c in parsed if c.kind == "epoch"), None)
    notes: list[str] = []
    if len(segments) > 1:
        notes.append(f"file holds {len(segments)} header blocks; reading the last one")
    if epoch_col is None:
        return _epoch_table([seg], fmt)
    from fitdoc.readers.steps import is_step_log, step_table

    if is_step_log(parsed, columns):
        # A Hugging Face `log_history` export (fractional epochs, `eval_*` rows): pair each
        # evaluation with the train logs before it, not with whatever rounds to its epoch.
        return step_table(columns, "hf_log_history" if fmt == "lightning" else fmt, notes)
    ep = columns[epoch_col.raw]
    # `lr-Adam` rows carry no epoch; absurd epoch values are dropped too.
    rows = np.isfinite(ep) & (ep >= 0) & (ep < 2**31)
    ep_int = np.round(ep[rows]).astype(np.int64)
    uniq, idx = np.unique(ep_int, return_inverse=True)
    out: dict[str, np.ndarray] = {}
    stepped: list[str] = []
    for col in parsed:
        if col.kind in ("epoch", "step"):
            continue
        values = columns[col.raw][rows]
        present = ~np.isnan(values)
        counts = np.bincount(idx[present], minlength=len(uniq))
        sums = np.bincount(idx[present], weights=values[present], minlength=len(uniq))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        out[col.raw] = mean
        if col.kind == "series" and counts.max(initial=0) > 1:
            stepped.append(col.raw)
    if stepped:
        listed = ", ".join(f"`{s}`" for s in stepped[:6])
        notes.append(f"per-step rows of {listed} averaged per epoch")
    if len(uniq) and uniq[0] == 1 and not (ep_int == 0).any():
        uniq = uniq - 1
    return Table(out, uniq, fmt, tuple(notes))
