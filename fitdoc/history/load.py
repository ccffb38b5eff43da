"""Read any supported training history into one `Curves` value.

Formats (`FORMATS`, the names `--format-in` accepts): fitdoc run histories,
Keras CSVLogger files, pandas dumps of `History.history`, JSON dicts of lists
(or lists of per-epoch records), PyTorch Lightning `metrics.csv`, Hugging Face
`trainer_state.json`, hand-rolled CSV layouts (`csv`, W&B panel exports
among them), TensorBoard log directories, MLflow runs and W&B run directories. Detection is
automatic; `format_in`, `train_col` and `val_col` override it.

Values: missing cells (`NA`, empty) become NaN; `inf` stays inf so divergence
rules can see it. Epochs in `Curves` count from 0. Every failure on a user's
file is a `HistoryError` naming the file (and the field when there is one).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fitdoc.errors import HistoryError
from fitdoc.history.curves import Curves
from fitdoc.history.readers import jsonfmt
from fitdoc.history.readers.select import build_curves
from fitdoc.history.readers.table import Table
from fitdoc.history.readers.tabular import CSV_FORMATS, LARGE_BYTES, read_csv_large, read_csv_table
from fitdoc.history.readers.text import decode, read_bytes

FORMATS: tuple[str, ...] = (
    "fitdoc",
    "keras_csv",
    "pandas",
    "json",
    "lightning",
    "hf_trainer_state",
    "csv",
    "tensorboard",
    "mlflow",
    "wandb",
)
_FORMAT_ALIASES = {
    "keras": "keras_csv",
    "csvlogger": "keras_csv",
    "hf": "hf_trainer_state",
    "huggingface": "hf_trainer_state",
    "trainer_state": "hf_trainer_state",
    "pl": "lightning",
    "tb": "tensorboard",
    "tfevents": "tensorboard",
    "wb": "wandb",
    "weights_and_biases": "wandb",
}


@dataclass(frozen=True)
class RunSource:
    """One history to read, with the run directory's config and run.json when present."""

    history_path: Path
    config_path: Path | None
    run_json_path: Path | None
    name: str


def read_history(
    path: str | Path,
    *,
    format_in: str | None = None,
    train_col: str | None = None,
    val_col: str | None = None,
    complete_lines: bool = False,
) -> Curves:
    """Read one history file (or a run directory's `history.csv`) into `Curves`.

    `complete_lines`: read a text file only up to its last line break, so a row
    another process is writing is not read half-written (`fitdoc watch`).
    """
    p = Path(path)
    fmt = _check_format(format_in, p)
    if p.is_dir() and (p / "history.csv").is_file() and fmt not in ("tensorboard", "mlflow", "wandb"):
        p = p / "history.csv"
    table = _read_other_source(p, fmt)
    if table is None and _is_large_csv(p, fmt) and (not complete_lines or _ends_a_line(p)):
        table = read_csv_large(p, fmt)
    if table is None:
        raw = read_bytes(p)
        if complete_lines and p.suffix.lower() != ".json":
            raw = raw[: max(raw.rfind(b"\n"), raw.rfind(b"\r")) + 1]
        text = decode(raw, p)
        table = _read_table(text, p, fmt)
    curves = build_curves(
        table.columns,
        epochs=table.epochs,
        source=str(p),
        fmt=table.format,
        notes=table.notes,
        train_col=train_col,
        val_col=val_col,
        path=p,
        epoch_at=table.epoch_at,
        steps=table.steps,
        point=table.point,
    )
    # The knobs the run's params name travel with its curves, so loading builds a config from them.
    return replace(curves, settings=table.settings) if table.settings else curves


def _read_other_source(p: Path, fmt: str | None) -> Table | None:
    """TensorBoard log directories, MLflow runs and W&B runs; None for a history file."""
    plain_file = fmt is None and p.is_file() and ".tfevents." not in p.name and p.suffix != ".wandb"
    if plain_file and not str(p).startswith("mlflow:"):
        return None  # the common case decides without loading any of these readers
    from fitdoc.history.readers import mlflowrun, tbevents, wandbrun

    if fmt == "wandb" or (fmt is None and wandbrun.is_run_dir(p)):
        if not p.exists():
            raise HistoryError("no such file or directory", path=p)
        return wandbrun.read_wandb(p)

    if fmt == "mlflow" or mlflowrun.is_mlflow_uri(p) or (fmt is None and mlflowrun.is_file_store_run(p)):
        return mlflowrun.read_mlflow(p)
    if fmt == "tensorboard":
        if not p.exists():
            raise HistoryError("no such file or directory", path=p)
        return tbevents.read_tensorboard(p)
    if fmt is None and (p.is_dir() or tbevents.is_event_file(p)) and tbevents.has_event_files(p):
        return tbevents.read_tensorboard(p)
    return None


def _is_large_csv(p: Path, fmt: str | None) -> bool:
    if fmt not in (None, *CSV_FORMATS) or p.suffix.lower() == ".json":
        return False
    try:
        return p.is_file() and p.stat().st_size > LARGE_BYTES
    except OSError:
        return False


def _ends_a_line(p: Path) -> bool:
    """The file's last byte ends a line: no row is being written, so the fast reader may read it all."""
    try:
        with p.open("rb") as f:
            f.seek(-1, 2)
            return f.read(1) in (b"\n", b"\r")
    except OSError:
        return False


def _check_format(format_in: str | None, path: Path) -> str | None:
    if format_in is None:
        return None
    name = format_in.strip().lower().replace("-", "_")
    name = _FORMAT_ALIASES.get(name, name)
    if name not in FORMATS:
        raise HistoryError(
            f"unknown format `{format_in}`; expected one of: {', '.join(FORMATS)}",
            path=path,
            field="format_in",
        )
    return name


def _looks_like_json(text: str) -> bool:
    head = text.lstrip()[:1]
    return head in ("{", "[")


def _read_table(text: str, path: Path, fmt: str | None) -> Table:
    is_json = path.suffix.lower() == ".json" or _looks_like_json(text)
    if fmt == "hf_trainer_state" and not is_json:
        # A CSV export of `log_history` (`pd.DataFrame(state.log_history).to_csv()`).
        return read_csv_table(text, path, fmt)
    if fmt in ("json", "hf_trainer_state") or (fmt is None and is_json):
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as exc:
            if fmt is None and path.suffix.lower() != ".json" and not text.lstrip().startswith("{"):
                # `[` may start a CSV header like `[epoch]`; try CSV before giving up.
                return read_csv_table(text, path, None)
            raise HistoryError(f"invalid JSON ({exc})", path=path) from None
        return jsonfmt.table_from_json(obj, path, fmt)
    if fmt is not None and fmt not in CSV_FORMATS:
        raise HistoryError(f"format `{fmt}` cannot read this file", path=path, field="format_in")
    return read_csv_table(text, path, fmt)


def curves_from_mapping(
    mapping: Mapping[str, Any],
    *,
    source: str = "<mapping>",
    train_col: str | None = None,
    val_col: str | None = None,
) -> Curves:
    """`Curves` from a dict of lists, e.g. Keras' `History.history`."""
    return _curves_from_columns(dict(mapping), source, "mapping", train_col, val_col)


def curves_from_frame(
    df: Any,
    *,
    source: str = "<frame>",
    train_col: str | None = None,
    val_col: str | None = None,
) -> Curves:
    """`Curves` from a pandas DataFrame (e.g. `pd.DataFrame(history.history)`)."""
    import pandas as pd  # only the frame API needs pandas

    if not isinstance(df, pd.DataFrame):
        raise HistoryError(f"expected a pandas DataFrame, got {type(df).__name__}", path=source)
    columns: dict[str, list[float]] = {}
    for name in df.columns:
        values = pd.to_numeric(df[name], errors="coerce")
        if values.notna().any():
            columns[str(name)] = values.astype(float).tolist()
    return _curves_from_columns(columns, source, "pandas", train_col, val_col)


def _curves_from_columns(
    columns: dict[str, Any], source: str, fmt: str, train_col: str | None, val_col: str | None
) -> Curves:
    """In-memory series (a dict or a frame's columns) read as a JSON dict of lists is."""
    table = jsonfmt.table_from_json(columns, source, "json")
    return build_curves(
        table.columns,
        epochs=table.epochs,
        source=source,
        fmt=fmt,
        notes=table.notes,
        train_col=train_col,
        val_col=val_col,
        path=source,
    )


# Files in a plain directory that are never histories.
_NOT_HISTORY = (
    "config",
    "run.json",
    "tokenizer",
    "vocab",
    "special_tokens",
    "manifest",
    "index.json",
    "package",
)
_SKIP_DIRS = frozenset(
    {".git", "__pycache__", "node_modules", ".venv", "venv", ".mypy_cache", ".pytest_cache"}
)
_HISTORY_SUFFIXES = frozenset({".csv", ".log", ".json"})
# `fitdoc train --probe` writes each neighbour to RUN/probes/SLUG/ (fitdoc.history.rundir).
PROBES_DIR = "probes"


def _run_source(history: Path, name: str) -> RunSource:
    folder = history.parent
    config = folder / "config.yaml"
    run_json = folder / "run.json"
    is_run = history.name == "history.csv"
    return RunSource(
        history_path=history,
        config_path=config if is_run and config.is_file() else None,
        run_json_path=run_json if is_run and run_json.is_file() else None,
        name=name,
    )


def discover(paths: Sequence[str | Path]) -> list[RunSource]:
    """Histories named by files, run directories, or folders holding them (recursive)."""
    out: list[RunSource] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        if str(raw).startswith("mlflow:"):
            out.append(
                RunSource(history_path=Path(str(raw)), config_path=None, run_json_path=None, name=str(raw))
            )
            continue
        if not p.exists():
            raise HistoryError("no such file or directory", path=p)
        if p.is_file():
            found = [_run_source(p, p.parent.name if p.name == "history.csv" else p.name)]
        elif (p / "history.csv").is_file():
            found = [_run_source(p / "history.csv", p.resolve().name)]
        elif not p.is_dir():  # /dev/null, a FIFO, a socket: no file of a history, nor a folder of them
            raise HistoryError(
                "not a regular file or a directory; expected a history file or a folder", path=p
            )
        else:
            found = _walk(p)
            if not found:
                raise HistoryError(
                    "no history files found in this directory (CSV, JSON, TensorBoard event files, "
                    "MLflow or W&B runs)",
                    path=p,
                )
        for src in found:
            key = src.history_path.resolve()
            if key not in seen:
                seen.add(key)
                out.append(src)
    return out


def _is_probe_history(f: Path) -> bool:
    folder = f.parent.parent
    return f.name == "history.csv" and folder.name == PROBES_DIR and (folder.parent / "history.csv").is_file()


def _walk(root: Path) -> list[RunSource]:
    from fitdoc.history.readers import mlflowrun, tbevents, wandbrun

    found: list[RunSource] = []
    run_dirs: set[Path] = set()
    files = sorted(
        f
        for f in root.rglob("*")
        if f.is_file() and not _SKIP_DIRS.intersection(f.relative_to(root).parts[:-1])
    )
    # TensorBoard runs and MLflow file-store runs are folders: one source each, and
    # nothing inside them (artifacts, split subfolders) is read as a history of its own.
    wandb_runs = wandbrun.find_runs(root, files)
    folders = [
        *tbevents.find_runs(root, files),
        *mlflowrun.find_file_store_runs(root, files),
        *wandb_runs,
    ]
    # A fitdoc run directory is read from its history.csv even when event files sit beside it.
    folders = [
        f
        for f in folders
        if not any(part.startswith(".") for part in f.relative_to(root).parts)
        and not (f / "history.csv").is_file()
    ]
    for folder in sorted(set(folders)):
        rel = folder.relative_to(root)
        found.append(RunSource(folder, None, None, str(rel) if rel != Path(".") else root.name))
    if folders:
        inside = set(folders)
        files = [f for f in files if not inside.intersection(f.parents)]
    # A probed run's neighbours (RUN/probes/SLUG/history.csv) are part of that run, not runs of their own.
    files = [f for f in files if not _is_probe_history(f)]
    # A `wandb/` folder's own debug logs (links into its runs) are not histories.
    wandb_dirs = {run.parent for run in wandb_runs}
    files = [f for f in files if not (f.parent in wandb_dirs and f.suffix == ".log")]
    for f in files:
        if f.name == "history.csv":
            run_dirs.add(f.parent)
    for f in files:
        rel = f.relative_to(root)
        if f.name == "history.csv":
            found.append(_run_source(f, str(rel.parent) if rel.parent != Path(".") else root.name))
            continue
        if f.parent in run_dirs or f.suffix.lower() not in _HISTORY_SUFFIXES:
            continue
        if any(part.startswith(".") for part in rel.parts):
            continue
        lowered = f.name.lower()
        if any(word in lowered for word in _NOT_HISTORY):
            continue
        found.append(_run_source(f, str(rel)))
    return sorted(found, key=lambda src: src.history_path)
