"""CSV-like histories: Keras CSVLogger, fitdoc, pandas dumps, Lightning
`metrics.csv` and hand-rolled layouts -> named numeric columns + epochs.

Appended logs are split where a header repeats or the epoch counter restarts;
the last run is diagnosed and a note says so. Lightning's sparse rows (train
per step, validation per epoch, `lr-*` rows without an epoch) are averaged per
epoch, preferring `_epoch` columns over `_step` ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fitdoc.history.readers.names import ColumnName, parse_names
from fitdoc.history.readers.table import Table
from fitdoc.history.readers.text import Segment, parse_csv, sniff_delimiter

CSV_FORMATS = ("fitdoc", "keras_csv", "pandas", "lightning", "csv")
_FITDOC_EXTRAS = frozenset({"reg_loss", "epoch_seconds"})


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
    if format_in in (None, "csv") and any(" - " in h for h in last.header):
        from fitdoc.history.readers import wandbrun

        if wandbrun.is_export_header(last.header):
            return _wandb_export_table(last, path)
    parsed = parse_names(list(last.header))
    fmt = format_in or detect_csv_format(last.header, parsed)
    if fmt == "lightning":
        return _lightning_table(last, parsed, segments, fmt)
    if len(segments) == 1:
        return _single_segment_table(last, parsed, fmt, format_in)
    return _epoch_table(segments, fmt)


def _single_segment_table(seg: Segment, parsed: list[ColumnName], fmt: str, format_in: str | None) -> Table:
    if any(c.kind == "epoch" for c in parsed):
        from fitdoc.history.readers.steps import is_step_log, step_table

        columns = _numeric_columns(seg, 0, seg.n_rows)
        if is_step_log(parse_names(list(columns)), columns):
            return step_table(columns, fmt if format_in else "hf_log_history")
    return _epoch_table([seg], fmt)


def _wandb_export_table(seg: Segment, path: object) -> Table:
    """A W&B panel export: `RUN - metric` columns renamed, bounds dropped, rows keyed by the
    x column (`Step`), each validation point paired with the train logs before it."""
    from fitdoc.errors import HistoryError
    from fitdoc.history.readers.steps import table_from_points
    from fitdoc.history.readers.wandbrun import export_columns

    names, note = export_columns(seg.header)
    x = next((j for j, n in enumerate(names) if n is not None and n == seg.header[j]), None)
    if x is None or x in seg.text_columns:
        raise HistoryError(
            "W&B export without a step column (expected `Step` before the `RUN - metric` columns)", path=path
        )
    steps = np.asarray(seg.columns[x], dtype=float)
    series: dict[str, dict[int, float]] = {}
    for j, name in enumerate(names):
        if name is None or j == x or j in seg.text_columns:
            continue
        values = np.asarray(seg.columns[j], dtype=float)
        ok = np.isfinite(steps) & ~np.isnan(values)
        series[name] = {int(s): float(v) for s, v in zip(steps[ok], values[ok], strict=True)}
    series = {k: v for k, v in series.items() if v}
    if not series:
        raise HistoryError("W&B export holds no values", path=path)
    table = table_from_points(series, "wandb_csv")
    return (
        table
        if note is None
        else Table(
            table.columns,
            table.epochs,
            table.format,
            (*table.notes, note),
            table.epoch_at,
            table.steps,
            table.point,
        )
    )


# Above this size a CSV is read by pandas' C parser (vectorized, in bounded memory); below it, by
# the pure-Python reader, so a small history never pays for importing pandas (the cold start).
LARGE_BYTES = 1 << 20
_CHUNK_ROWS = 20_000


def read_csv_large(path: Path, format_in: str | None = None) -> Table | None:
    """A large all-numeric CSV through pandas, chunk by chunk; None when the file needs the
    careful reader (text cells, repeated headers, decimal commas, odd encodings): it then
    takes the pure-Python path, slower but exact about what real files hold."""
    sniffed = _sniff_plain_csv(path)
    if sniffed is None:
        return None
    encoding, delimiter = sniffed
    try:
        import pandas as pd
    except ImportError:  # a core install without pandas reads it the slow way
        return None
    try:
        block = _read_block(path, encoding, delimiter)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    if block is None:
        return None
    names, data = block
    # Rows with no value at all (`,,,,`) are not rows, as in the careful reader.
    blank = np.isnan(data[0])
    for j in range(1, len(names)):
        blank &= np.isnan(data[j])
    if blank.any():
        data = data[:, ~blank]
    del blank
    columns = [data[j] for j in range(len(names))]
    header = tuple(_rename_index(names))
    seg = Segment(header, tuple(columns), frozenset(), len(columns[0]))
    parsed = parse_names(list(header))
    fmt = format_in or detect_csv_format(header, parsed)
    if fmt == "lightning":
        return _lightning_table(seg, parsed, [seg], fmt)
    return _single_segment_table(seg, parsed, fmt, format_in)


def _sniff_plain_csv(path: Path) -> tuple[str, str] | None:
    """(encoding, delimiter) of a file pandas can read plainly; None when its head says the
    careful reader is needed (UTF-16, NUL bytes, undecodable text, no delimiter)."""
    try:
        with path.open("rb") as f:
            head = f.read(65536)
    except OSError:
        return None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head:
        return None
    encoding = "utf-8-sig" if head.startswith(b"\xef\xbb\xbf") else "utf-8"
    try:
        lines = head.decode(encoding).lstrip("\ufeff").splitlines()
    except UnicodeDecodeError:
        return None
    first = next((ln for ln in lines if ln.strip()), "")
    delimiter = sniff_delimiter(first)
    if delimiter is None or " - " in first:
        return None  # a W&B export's `RUN - metric` columns are renamed by the careful reader
    return encoding, delimiter


def _read_block(path: Path, encoding: str, delimiter: str) -> tuple[list[str], np.ndarray] | None:
    """(column names, [columns, rows] values): one preallocated block for the whole file,
    filled chunk by chunk in bounded memory; None when it holds no rows or more rows than lines."""
    import pandas as pd

    capacity = _count_lines(path)
    data: np.ndarray | None = None
    names: list[str] = []
    filled = 0
    reader = pd.read_csv(
        path,
        sep=delimiter,
        dtype="float64",
        encoding=encoding,
        skipinitialspace=True,
        chunksize=_CHUNK_ROWS,
        engine="c",
    )
    with reader:
        for frame in reader:
            if data is None:
                names = [str(c).strip() for c in frame.columns]
                data = np.empty((len(names), capacity), dtype=np.float64)
            rows = len(frame)
            if filled + rows > capacity:
                return None
            for j, column in enumerate(frame.columns):
                data[j, filled : filled + rows] = frame[column].to_numpy(dtype=np.float64, copy=False)
            filled += rows
            del frame
    if data is None or not names or filled == 0:
        return None
    return names, data[:, :filled]


def _count_lines(path: Path) -> int:
    """Lines in the file (an upper bound on its rows), read in blocks."""
    count = 0
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            count += block.count(b"\n") + block.count(b"\r")
    return count + 1


def _rename_index(names: list[str]) -> list[str]:
    """pandas calls an unnamed first column `Unnamed: 0`; the careful reader calls it ``."""
    return ["" if i == 0 and n.startswith("Unnamed: 0") else n for i, n in enumerate(names)]


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


def _group_ids(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.unique(keys, return_inverse=True)`, without a sort when the keys are small counters."""
    if keys.size and keys.min() >= 0 and keys.max() < max(4 * keys.size, 1 << 16):
        seen = np.bincount(keys) > 0
        uniq = np.flatnonzero(seen)
        lookup = np.cumsum(seen) - 1
        return uniq, lookup[keys]
    uniq, idx = np.unique(keys, return_inverse=True)
    return uniq, idx.reshape(-1)


def _lightning_table(seg: Segment, parsed: list[ColumnName], segments: list[Segment], fmt: str) -> Table:
    columns = _numeric_columns(seg, 0, seg.n_rows)
    parsed = parse_names(list(columns))
    epoch_col = next((c for c in parsed if c.kind == "epoch"), None)
    notes: list[str] = []
    if len(segments) > 1:
        notes.append(f"file holds {len(segments)} header blocks; reading the last one")
    if epoch_col is None:
        return _epoch_table([seg], fmt)
    from fitdoc.history.readers.steps import is_step_log, step_table

    if is_step_log(parsed, columns):
        # A Hugging Face `log_history` export (fractional epochs, `eval_*` rows): pair each
        # evaluation with the train logs before it, not with whatever rounds to its epoch.
        return step_table(columns, "hf_log_history" if fmt == "lightning" else fmt, notes)
    ep = columns[epoch_col.raw]
    # `lr-Adam` rows carry no epoch; absurd epoch values are dropped too.
    rows = np.isfinite(ep) & (ep >= 0) & (ep < 2**31)
    every_row = bool(rows.all())
    ep_rows = ep if every_row else ep[rows]
    ep_int = ep_rows.astype(np.int64)
    if not np.array_equal(ep_int, ep_rows):
        ep_int = np.round(ep_rows).astype(np.int64)
    del ep_rows
    uniq, idx = _group_ids(ep_int)
    out: dict[str, np.ndarray] = {}
    stepped: list[str] = []
    for col in parsed:
        if col.kind in ("epoch", "step"):
            continue
        values = columns[col.raw] if every_row else columns[col.raw][rows]
        missing = np.isnan(values)
        # Sums and counts per epoch in two passes, without copies of the present rows.
        counts = np.bincount(idx, weights=~missing, minlength=len(uniq)).astype(np.int64)
        sums = np.bincount(idx, weights=np.where(missing, 0.0, values), minlength=len(uniq))
        del missing
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
