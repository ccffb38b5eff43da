"""From a discovered source to what diagnose, plot and compare work on.

One place decides which config belongs to a history: an explicit `--config`
wins over the run directory's own `config.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fitdoc.curves import Curves

if TYPE_CHECKING:
    # pydantic models and YAML cost ~25 ms of a ~250 ms cold `diagnose`; load them only for a config.
    from fitdoc.config import AnyConfig


@dataclass(frozen=True)
class ReadOptions:
    format_in: str | None = None
    train_col: str | None = None
    val_col: str | None = None


@dataclass(frozen=True)
class LoadedRun:
    name: str
    path: Path
    curves: Curves
    config: AnyConfig | None


def load_run(source: object, options: ReadOptions, config: AnyConfig | None = None) -> LoadedRun:
    """Read one `RunSource` (from `fitdoc.history.discover`); raises FitdocError on bad input."""
    from fitdoc.history import read_history

    curves = read_history(
        source.history_path,  # type: ignore[attr-defined]
        format_in=options.format_in,
        train_col=options.train_col,
        val_col=options.val_col,
    )
    config_path = getattr(source, "config_path", None)
    if config is None and config_path is not None:
        from fitdoc.config import load_config

        config = load_config(Path(config_path), model_only=True)
    return LoadedRun(
        name=str(source.name),  # type: ignore[attr-defined]
        path=Path(source.history_path),  # type: ignore[attr-defined]
        curves=curves,
        config=config,
    )
