"""Run directories: created once, never reused, written so readers never see half a file.

A run lives in `<output.dir>/<name>-<YYYYmmdd-HHMMSS>[-N]`. The directory is
created with an exclusive `mkdir`, so two processes starting in the same
second get different directories.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from fitdoc.config import atomic_write_text
from fitdoc.errors import FitdocError

HISTORY_FILE = "history.csv"
CONFIG_FILE = "config.yaml"
RUN_FILE = "run.json"
MODEL_FILE = "model.keras"

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


def write_run_json(run_dir: Path, record: dict[str, Any]) -> None:
    atomic_write_text(run_dir / RUN_FILE, json.dumps(_jsonable(record), indent=2) + "\n")


def _jsonable(value: Any) -> Any:
    """Non-finite floats become null (strict JSON); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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

    def write_row(self, row: dict[str, float | int]) -> None:
        assert self._handle is not None, "use HistoryWriter as a context manager"
        # One write call per line: an interrupt lands between lines, never inside one.
        line = ",".join(_format_value(row[c]) for c in self.columns) + "\n"
        self._handle.write(line)
        self._handle.flush()
        self.rows += 1

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None


def _format_value(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    # 9 significant digits hold a float32 exactly, so histories compare bit for bit.
    return format(value, ".9g")


def as_written(value: float) -> float:
    """The value as history.csv stores it, so run.json quotes the same numbers."""
    return float(_format_value(float(value)))
