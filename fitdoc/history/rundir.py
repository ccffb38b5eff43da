"""A run directory: its layout, its writers, and reading it back.

The one module that knows what a run directory holds (docs/json-schema.md
describes its run.json); `fitdoc train`, the Keras callback and `fitdoc tune` write
through it, `diagnose`, `plot` and `compare` load through it.

Layout of `<output.dir>/<name>-<YYYYmmdd-HHMMSS>[-N]/` (created with an
exclusive `mkdir`, so two processes starting in the same second get
different directories):

    config.yaml   the resolved config (absent for the Keras callback without one)
    history.csv   one row per finished epoch, flushed as written (HISTORY_COLUMNS first)
    run.json      the run record below
    model.keras   the trained model (`fitdoc train`, unless it diverged)
    probes/SLUG/  `--probe`: each neighbour's config.yaml, history.csv and run.json

`run.json` (schema_version 1; every writer sets these keys, `null` when unknown):

    schema_version  int     RUN_JSON_SCHEMA
    writer          str     "fitdoc train" | "fitdoc.keras.FitdocCallback"
    status          str     "running" | "completed" | "interrupted" | "diverged" | "failed"
    message         str     why it ended ("trained 100 epochs", "loss is nan at epoch 7", ...)
    versions        object  package -> version (importlib.metadata; "not installed" if absent)
    epochs          object  {planned, completed, early_stopped}
    final           object  the last epoch's row (history.csv's columns)
    best            object  the row with the lowest val_mae (or the monitored series)
    timings         object  seconds and ISO times
    model           object  {parameters, layers}
  `fitdoc train` adds name, seed, engine, data, files (and with `--probe`
  `probes`: [{slug, path, change: {key, from, to}, status, epochs}]); the callback
  adds monitor, stopped_epoch (0-based, as history.csv's epoch), stop_reason,
  restored_best_weights, diagnosis.

Files are written whole (`atomic_write_text`: temp file, fsync, rename) with
the permissions any tool's files get (0666 less the umask).
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from fitdoc.errors import FitdocError
from fitdoc.formatting import jsonable
from fitdoc.history.curves import Curves
from fitdoc.history.load import PROBES_DIR
from fitdoc.verdict import Change, Diagnosis

if TYPE_CHECKING:
    # pydantic models and YAML cost ~25 ms of a ~250 ms cold `diagnose`; load them only for a config.
    from pydantic import BaseModel

    from fitdoc.config import AnyConfig

HISTORY_FILE = "history.csv"
CONFIG_FILE = "config.yaml"
RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
RUN_JSON_SCHEMA = 1

HISTORY_COLUMNS = (
    "epoch",
    "loss",
    "mae",
    "val_loss",
    "val_mae",
    "reg_loss",
    "learning_rate",
    "epoch_seconds",
)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_UMASK_LOCK = threading.Lock()


# ---------------------------------------------------------------- writing files


def file_mode() -> int:
    """The mode a newly created file gets here: 0666 less the process umask."""
    return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux says it without changing it
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # elsewhere reading the umask means setting it: put it back at once
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def write_config(config: BaseModel, path: Path) -> None:
    """A config as YAML, written whole (the run directory's `config.yaml`, `--emit-config`'s file)."""
    from fitdoc.config import config_to_yaml

    atomic_write_text(path, config_to_yaml(config))


def atomic_write_text(path: Path, text: str) -> None:
    """Write then rename, so a reader never sees half a file; the old file stays
    whole when writing fails. The file gets the umask's mode, as `open` gives."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), file_mode())  # mkstemp's 0600 would survive the rename
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, value: Any) -> None:
    """`value` as indented strict JSON, written atomically."""
    atomic_write_text(path, json.dumps(jsonable(value), indent=2) + "\n")


def write_run_json(run_dir: Path, record: dict[str, Any]) -> None:
    """run.json, with `schema_version` set whatever the writer."""
    write_json(run_dir / RUN_FILE, {"schema_version": RUN_JSON_SCHEMA, **record})


def versions(
    packages: Iterable[str] = ("fitdoc", "tensorflow", "keras", "numpy", "pandas"),
) -> dict[str, str]:
    """Python, platform and package versions from package metadata (never by
    importing a package: a folder named like it beside a script would answer)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version(), "platform": platform.platform()}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def iso_time(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(timestamp))


# ---------------------------------------------------------------- the directory


def safe_name(name: str) -> str:
    """A run name usable as one path component: no separators, no leading dots, not empty."""
    cleaned = _UNSAFE.sub("-", name).strip("-.")
    cleaned = re.sub(r"-{2,}", "-", cleaned)[:60].strip("-.")
    return cleaned or "run"


def prepare_output_dir(directory: str | Path) -> Path:
    """`output.dir` created if needed and checked writable, before any training starts."""
    path = Path(directory).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise FitdocError("exists but is not a directory", path=path, field="output.dir") from None
    except OSError as exc:
        raise FitdocError(
            f"cannot create the output directory: {exc.strerror or exc}", path=path, field="output.dir"
        ) from None
    if not path.is_dir():
        raise FitdocError("exists but is not a directory", path=path, field="output.dir")
    if not os.access(path, os.W_OK | os.X_OK):
        raise FitdocError("output directory is not writable", path=path, field="output.dir")
    return path


def create_run_dir(output_dir: Path, name: str, *, now: float | None = None) -> Path:
    """A new, empty run directory; never an existing one."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = f"{safe_name(name)}-{stamp}"
    for attempt in range(1, 10_000):
        candidate = output_dir / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise FitdocError(
                f"cannot create the run directory: {exc.strerror or exc}", path=candidate, field="output.dir"
            ) from None
        return candidate
    raise FitdocError("too many runs with the same name in one second", path=output_dir, field="output.dir")


class HistoryWriter:
    """history.csv, one complete line per finished epoch, flushed as it is written.

    Keras CSVLogger's columns first, so tools reading either file read both.

    Example:
        >>> with HistoryWriter(run_dir / "history.csv", HISTORY_COLUMNS) as writer:
        ...     writer.write_row({"epoch": 0, "loss": 0.1, ...})
    """

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = tuple(columns)
        self.rows = 0
        self._handle: IO[str] | None = None

    def __enter__(self) -> HistoryWriter:
        self._handle = open(self.path, "w", encoding="utf-8", newline="")
        self._handle.write(",".join(self.columns) + "\n")
        self._handle.flush()
        return self

    def write_row(self, row: Mapping[str, float | int]) -> None:
        assert self._handle is not None, "use HistoryWriter as a context manager"
        # One write call per line: an interrupt lands between lines, never inside one.
        self._handle.write(history_line(self.columns, row))
        self._handle.flush()
        self.rows += 1

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None


def history_line(columns: Sequence[str], row: Mapping[str, float | int]) -> str:
    """One history.csv line: `epoch` as an integer, a missing or NaN value empty
    (as pandas writes NaN), other numbers to 9 significant digits."""
    return ",".join(_cell(column, row.get(column, math.nan)) for column in columns) + "\n"


def history_text(columns: Sequence[str], rows: Iterable[Mapping[str, float | int]]) -> str:
    """A whole history.csv: the header, then one `history_line` per row."""
    return ",".join(columns) + "\n" + "".join(history_line(columns, row) for row in rows)


def _cell(column: str, value: float | int) -> str:
    if column == "epoch" or isinstance(value, int):
        return str(int(value))
    if math.isnan(value):
        return ""
    return _format_value(value)


def _format_value(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    # 9 significant digits hold a float32 exactly, so histories compare bit for bit.
    return format(value, ".9g")


def as_written(value: float) -> float:
    """The value as history.csv stores it, so run.json quotes the same numbers."""
    return float(_format_value(float(value)))


# ---------------------------------------------------------------- reading a run back


@dataclass(frozen=True)
class ReadOptions:
    """How to read a history: its format and columns when not guessed."""

    format_in: str | None = None
    train_col: str | None = None
    val_col: str | None = None
    complete_lines: bool = False  # a file still being written: its last line only once it ends


@dataclass(frozen=True)
class Probe:
    """A neighbour `fitdoc train --probe` trained beside a run: its change, how it ended, its curves."""

    slug: str
    change: Change
    status: str
    curves: Curves
    config: AnyConfig | None = None


@dataclass(frozen=True)
class Run:
    """One run as diagnose, plot, compare and tune see it: its curves, and when
    known its diagnosis, config, history file and probed neighbours."""

    name: str
    curves: Curves
    diagnosis: Diagnosis | None = None
    config: AnyConfig | None = None
    path: Path | None = None
    probes: tuple[Probe, ...] = ()


class HistorySource(Protocol):
    """What `load_run` reads: `fitdoc.history.load.RunSource`'s fields."""

    @property
    def history_path(self) -> Path: ...
    @property
    def config_path(self) -> Path | None: ...
    @property
    def run_json_path(self) -> Path | None: ...
    @property
    def name(self) -> str: ...


def load_run(
    source: HistorySource, options: ReadOptions = ReadOptions(), config: AnyConfig | None = None
) -> Run:
    """Read one discovered source (`fitdoc.history.load.discover`'s `RunSource`).

    An explicit `config` wins over the run directory's own `config.yaml`.
    Raises FitdocError on bad input.
    """
    from fitdoc.history.load import read_history

    curves = read_history(
        source.history_path,
        format_in=options.format_in,
        train_col=options.train_col,
        val_col=options.val_col,
        complete_lines=options.complete_lines,
    )
    if config is None and source.config_path is not None:
        from fitdoc.config import load_config

        config = load_config(Path(source.config_path), model_only=True)
    if config is None:
        config = config_of_params(curves)
    elif curves.settings:
        # The note of the reader said which params it read; the config given wins over them.
        curves = replace(
            curves, notes=(*curves.notes, "the config given is used, not the run's logged params")
        )
    probes: tuple[Probe, ...] = ()
    run_json = source.run_json_path
    if run_json is not None:
        probes, notes = load_probes(Path(run_json))
        if notes:
            curves = replace(curves, notes=(*curves.notes, *notes))
    return Run(
        name=str(source.name), curves=curves, config=config, path=Path(source.history_path), probes=probes
    )


def with_probes(runs: Sequence[Run]) -> list[Run]:
    """Each run followed by its probed neighbours as runs of their own (for `compare`)."""
    out: list[Run] = []
    for run in runs:
        out.append(run)
        for probe in run.probes:
            out.append(
                Run(name=f"{run.name}/{PROBES_DIR}/{probe.slug}", curves=probe.curves, config=probe.config)
            )
    return out


def load_probes(run_json: Path) -> tuple[tuple[Probe, ...], tuple[str, ...]]:
    """The probed neighbours run.json lists (none for an unprobed run), and a note for each one missing."""
    from fitdoc.history.load import read_history

    try:
        record = json.loads(run_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return (), ()
    listed = record.get("probes") if isinstance(record, dict) else None
    if not isinstance(listed, list):
        return (), ()
    probes: list[Probe] = []
    missing: list[str] = []
    for entry in listed:
        if not isinstance(entry, dict) or not isinstance(entry.get("change"), dict):
            continue
        history = run_json.parent / str(entry.get("path", "")) / HISTORY_FILE
        change = entry["change"]
        try:
            curves = read_history(history)
        except FitdocError:
            missing.append(str(entry.get("path")))
            continue
        key = str(change.get("key"))
        config_path = history.parent / CONFIG_FILE
        config = None
        if config_path.is_file():
            from fitdoc.config import load_config

            config = load_config(config_path, model_only=True)
        probes.append(
            Probe(
                slug=str(entry.get("slug")),
                change=Change(
                    key,
                    change.get("from"),
                    change.get("to"),
                    f"{key}: {change.get('from')} -> {change.get('to')}",
                ),
                status=str(entry.get("status", "completed")),
                curves=curves,
                config=config,
            )
        )
    notes: tuple[str, ...] = ()
    if missing and not probes:
        notes = (
            f"run.json lists {len(missing)} probed neighbour(s) but their histories are gone; diagnosed from the curves",
        )
    elif missing:
        notes = (f"probed neighbour(s) missing: {', '.join(missing)}; measured from the others",)
    return tuple(probes), notes


def config_of_params(curves: Curves) -> AnyConfig | None:
    """The config a run's logged params make known (MLflow params, W&B config, TensorBoard
    hparams), or None when they name none of its regularization.

    Only a known regularization makes a config: without it the rules and the ladder would
    read fitdoc's default (no L2, no dropout) as the run's own. Knobs not logged keep
    fitdoc's defaults, except the epochs, which the history itself counts.
    """
    from fitdoc.history.readers.params import REGULARIZATION_KEYS, config_from_settings

    settings = dict(curves.settings)
    if not REGULARIZATION_KEYS & set(settings):
        return None
    if "training.epochs" not in settings and curves.point == "epoch" and len(curves):
        settings["training.epochs"] = len(curves)
    return config_from_settings(settings)
