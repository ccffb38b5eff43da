"""The Python API: the CLI's rule engine, called from a script or a notebook.

`diagnose()` takes whatever a user has at hand (a history file, a run
directory, a DataFrame, a dict of lists, a Keras `History`) and returns the
same `Diagnosis` that `fitdoc diagnose --format json` prints. It never imports
TensorFlow.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fitdoc.config import AnyConfig, Config, ModelOnlyConfig, load_config, validate_config
from fitdoc.errors import FitdocError, HistoryError
from fitdoc.history.curves import Curves
from fitdoc.history.rundir import Probe
from fitdoc.verdict import Diagnosis

ConfigLike = AnyConfig | Mapping[str, Any] | str | Path | None
ThresholdsLike = Mapping[str, Any] | str | Path | None


def diagnose(
    obj: Any,
    config: ConfigLike = None,
    *,
    thresholds: ThresholdsLike = None,
    train_col: str | None = None,
    val_col: str | None = None,
) -> Diagnosis:
    """Diagnose one training run's learning curves.

    Args:
        obj: a history file (any format `fitdoc diagnose` reads), a run
            directory (a folder with a `history.csv`), a pandas DataFrame, a
            dict of lists (`{"loss": [...], "val_loss": [...]}`), a Keras
            `History` object (anything with a `.history` dict), or `Curves`.
        config: the run's config, so the suggestion is a concrete edit: a
            `Config`, a dict, or a YAML path (only the model and training
            sections matter). For a run directory its `config.yaml` is used
            when this is None.
        thresholds: rule threshold overrides, as a dict or a YAML/JSON file
            (the format `fitdoc diagnose --thresholds` takes).
        train_col, val_col: choose the series when the automatic choice (val
            MAE, else val loss) is not the one you want.

    Returns:
        A `Diagnosis`; `diagnosis.to_dict()` is the JSON output's object.

    Raises:
        FitdocError: the input cannot be read (the message names the file and
            the field). A history without validation data is not an error:
            it is diagnosed `inconclusive`.
    """
    from fitdoc.diagnosis.measured import diagnose_run

    curves, found_config, probes = _curves_and_config(obj, train_col=train_col, val_col=val_col)
    resolved = _resolve_config(config) if config is not None else found_config
    return diagnose_run(curves, resolved, probes, _resolve_thresholds(thresholds))


def _curves_and_config(
    obj: Any, *, train_col: str | None, val_col: str | None
) -> tuple[Curves, AnyConfig | None, tuple[Probe, ...]]:
    """The curves, the config when a run directory has one, and a probed run's neighbours."""
    from fitdoc.history import load as history

    if isinstance(obj, Curves):
        return obj, None, ()
    if isinstance(obj, (str, Path)):
        return _curves_from_path(Path(obj), train_col=train_col, val_col=val_col)
    if _is_dataframe(obj):
        return history.curves_from_frame(obj, train_col=train_col, val_col=val_col), None, ()
    # A Keras History (duck-typed so that this module never imports Keras).
    if not isinstance(obj, Mapping) and isinstance(getattr(obj, "history", None), Mapping):
        obj = obj.history
    if isinstance(obj, Mapping):
        return history.curves_from_mapping(dict(obj), train_col=train_col, val_col=val_col), None, ()
    raise HistoryError(
        f"cannot diagnose a {type(obj).__name__}; expected a path, a DataFrame, "
        "a dict of lists, a Keras History or Curves",
        path="<python object>",
    )


def _curves_from_path(
    path: Path, *, train_col: str | None, val_col: str | None
) -> tuple[Curves, AnyConfig | None, tuple[Probe, ...]]:
    # The same discovery and loading as `fitdoc diagnose PATH`, so both agree on what a path holds.
    from fitdoc.history.load import discover
    from fitdoc.history.rundir import ReadOptions, load_run

    runs = discover([path])
    if len(runs) > 1:
        names = ", ".join(str(run.history_path) for run in runs[:5])
        more = f" and {len(runs) - 5} more" if len(runs) > 5 else ""
        raise HistoryError(
            f"holds {len(runs)} runs ({names}{more}); pass one of them, or use `fitdoc diagnose` for all",
            path=path,
        )
    loaded = load_run(runs[0], ReadOptions(train_col=train_col, val_col=val_col))
    return loaded.curves, loaded.config, loaded.probes


def _resolve_config(config: ConfigLike) -> AnyConfig:
    if isinstance(config, (Config, ModelOnlyConfig)):
        return config
    if isinstance(config, (str, Path)):
        return load_config(Path(config), model_only=True)
    if isinstance(config, Mapping):
        return validate_config(dict(config), path="<config dict>", model_only=True)
    raise FitdocError(
        f"expected a Config, a dict or a YAML path, got {type(config).__name__}", field="config"
    )


def _resolve_thresholds(thresholds: ThresholdsLike) -> dict[str, Any] | None:
    if thresholds is None:
        return None
    if isinstance(thresholds, (str, Path)):
        from fitdoc.diagnosis.rules.registry import load_threshold_overrides

        return load_threshold_overrides(Path(thresholds))
    if isinstance(thresholds, Mapping):
        return dict(thresholds)
    raise FitdocError(f"expected a dict or a file path, got {type(thresholds).__name__}", field="thresholds")


def _is_dataframe(obj: Any) -> bool:
    # A pandas DataFrame exists only once pandas is imported: never import it here
    # (it is not a core dependency, and a dict or a path should not pay for it).
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(obj, pd.DataFrame)
