"""Data for training: built-in synthetic generators and CSV/Parquet files.

Every dataset ends up in the same shape: rows in file (or generation) order,
split the Keras way (the validation part is the *last* `validation_split` of
the rows given to training), inputs standardized with statistics of the
training part only. No TensorFlow here: this module is numpy and pandas.

Example:
    >>> from fitdoc.config import DataConfig
    >>> data = load_data(DataConfig(synthetic="founding", n_samples=500), seed=1)
    >>> data.x_train.shape, data.x_val.shape
    ((400, 12), (100, 12))
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fitdoc.config import DataConfig
from fitdoc.errors import DataError, MissingDependencyError

# A good size for the extra held-out sample of synthetic data
# (`data.heldout_samples`), as the benchmarks use it: large enough that test
# MAE is a steady label, small enough that evaluating it every epoch costs
# little next to training.
SYNTHETIC_HELDOUT_ROWS = 1000

# Below these a run says nothing: a network fitted to a handful of rows, judged
# on one or two, gives curves no rule can read. Refused, naming the counts.
MIN_TRAIN_ROWS = 10
MIN_VAL_ROWS = 5

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class Dataset:
    """Standardized, split arrays (float32) plus what they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    feature_names: list[str]
    target_names: list[str]
    source: str
    x_mean: np.ndarray
    x_std: np.ndarray
    notes: list[str] = field(default_factory=list)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_targets(self) -> int:
        return int(self.y_train.shape[1])

    def shape_summary(self) -> dict[str, object]:
        """For run.json: row counts per part and column counts."""
        return {
            "source": self.source,
            "n_train": int(self.x_train.shape[0]),
            "n_val": int(self.x_val.shape[0]),
            "n_test": 0 if self.x_test is None else int(self.x_test.shape[0]),
            "n_features": self.n_features,
            "n_targets": self.n_targets,
            "features": list(self.feature_names),
            "targets": list(self.target_names),
        }


# ---------------------------------------------------------------- generators


# The founding problem's four ridge directions over the first eight inputs
# (unit vectors), their offsets, and the mean/std of the raw sum (from 400,000
# draws), written out so the rows never depend on a random stream's layout.
_FOUNDING_DIRECTIONS = np.array(
    [
        [0.016, 0.655, 0.590, -0.246, -0.144, -0.254, 0.275, -0.027],
        [0.277, -0.685, 0.581, -0.036, 0.252, -0.051, -0.141, 0.172],
        [0.374, -0.092, -0.069, 0.311, -0.394, -0.686, 0.179, -0.304],
        [-0.637, -0.270, -0.155, -0.396, -0.495, 0.012, 0.298, -0.077],
    ]
)
_FOUNDING_OFFSETS = np.array([-0.125, 0.119, -0.021, -0.106])
_FOUNDING_WEIGHTS = np.array([-1.0, 1.3, -1.6, 1.9])
_FOUNDING_STEEPNESS = 30.0
_FOUNDING_MEAN, _FOUNDING_STD = -0.2811, 2.7897


def _founding(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Low-noise, targets in about [0.2, 0.83] (the founding case's regime).

    Twelve uniform inputs; the target is a sum of four steep ridges,
    tanh(30 (v . (x - 0.5) - b)), along oblique directions of the first eight
    inputs; the last four inputs are irrelevant. Why this shape: it makes the
    four founding runs tell the founding story on real training with the
    seed's network (5 x Dense(64), Adam 1e-3, batch 500, 1000 epochs). With
    no regularization the net memorizes the training rows (train MAE a few
    thousandths) and, with four irrelevant inputs to fit spurious structure
    in, interpolates far worse (the gap). A steep ridge needs large weights,
    so L2 0.001 blurs it (train many times worse: over-regularized), while
    L2 0.0001 and dropout 0.2, which does not price weight size, keep it.
    A gentle smooth function instead lets L2 0.001 win and leaves dropout
    worst (its train/inference mismatch dominates a low-noise fit).
    """
    x = rng.uniform(0.0, 1.0, size=(n, 12))
    projections = (x[:, :8] - 0.5) @ _FOUNDING_DIRECTIONS.T - _FOUNDING_OFFSETS
    f = np.tanh(_FOUNDING_STEEPNESS * projections) @ _FOUNDING_WEIGHTS
    return x, (0.5 + 0.15 * (f - _FOUNDING_MEAN) / _FOUNDING_STD)[:, None]


def _friedman1(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Friedman #1 (10 uniform inputs, 5 informative), scaled by 1/25."""
    x = rng.uniform(0.0, 1.0, size=(n, 10))
    f = (
        10.0 * np.sin(np.pi * x[:, 0] * x[:, 1])
        + 20.0 * (x[:, 2] - 0.5) ** 2
        + 10.0 * x[:, 3]
        + 5.0 * x[:, 4]
    )
    return x, (f / 25.0)[:, None]


def _wave(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """sin(2 pi x0) * x1 + 0.3 x2 on three uniform inputs."""
    x = rng.uniform(0.0, 1.0, size=(n, 3))
    f = np.sin(2.0 * np.pi * x[:, 0]) * x[:, 1] + 0.3 * x[:, 2]
    return x, f[:, None]


GENERATORS: dict[str, Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]] = {
    "founding": _founding,
    "friedman1": _friedman1,
    "wave": _wave,
}


def synthetic_arrays(name: str, n_samples: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows `(x, y)` of a built-in problem; the same seed gives the same rows."""
    try:
        generator = GENERATORS[name]
    except KeyError:
        raise DataError(
            f"unknown synthetic dataset {name!r}; available: {', '.join(GENERATORS)}",
            field="data.synthetic",
        ) from None
    rng = np.random.default_rng(seed)
    x, y = generator(rng, n_samples)
    y = y + noise * rng.standard_normal(y.shape)
    return x, y


# ---------------------------------------------------------------- files


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a frame; DataError / MissingDependencyError on failure."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        raise DataError(
            f"unsupported file type {suffix or '(none)'!r}; expected .csv or .parquet",
            path=path,
            field="data.path",
        )
    if not path.is_file():
        raise DataError("file not found", path=path, field="data.path")
    if suffix in PARQUET_SUFFIXES:
        if importlib.util.find_spec("pyarrow") is None:
            raise MissingDependencyError(
                "reading Parquet needs pyarrow, which is not installed: pip install 'fitdoc[parquet]'",
                path=path,
                field="data.path",
            )
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for bad files
            raise DataError(
                f"cannot read Parquet: {_first_line(exc)}", path=path, field="data.path"
            ) from None
    try:
        sep = "\t" if suffix == ".tsv" else ","
        return pd.read_csv(path, sep=sep)
    except pd.errors.EmptyDataError:
        raise DataError("file is empty", path=path, field="data.path") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"cannot read CSV: {_first_line(exc)}", path=path, field="data.path") from None


def select_columns(
    frame: pd.DataFrame, target: str | list[str], features: list[str] | None, *, path: object
) -> tuple[np.ndarray, np.ndarray, list[str], list[str], list[str]]:
    """Pick target and feature columns, checking they exist, are numeric and complete.

    Returns `(x, y, feature_names, target_names, notes)`. Without `features`,
    every other numeric column is used; skipped non-numeric ones are noted.
    """
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    targets = [target] if isinstance(target, str) else list(target)
    if not targets:
        raise DataError("at least one target column is required", path=path, field="data.target")
    _require_columns(targets, columns, path=path, field="data.target")
    notes: list[str] = []
    if features is None:
        candidates = [c for c in columns if c not in targets]
        feature_names = [c for c in candidates if _is_numeric(frame[c])]
        skipped = [c for c in candidates if c not in feature_names]
        if skipped:
            notes.append(f"non-numeric columns not used as features: {', '.join(skipped)}")
        if not feature_names:
            raise DataError(
                "no numeric feature columns besides the target"
                + (f" (non-numeric: {', '.join(skipped)})" if skipped else ""),
                path=path,
                field="data.features",
            )
    else:
        if not features:
            raise DataError("`features` is empty", path=path, field="data.features")
        _require_columns(features, columns, path=path, field="data.features")
        overlap = [c for c in features if c in targets]
        if overlap:
            raise DataError(
                f"column {overlap[0]!r} is both a feature and a target", path=path, field="data.features"
            )
        feature_names = list(features)
    for names, fld in ((targets, "data.target"), (feature_names, "data.features")):
        for name in names:
            _check_numeric_complete(frame[name], name, path=path, field=fld)
    x = frame[feature_names].to_numpy(dtype=np.float64)
    y = frame[targets].to_numpy(dtype=np.float64)
    return x, y, feature_names, targets, notes


def _require_columns(wanted: list[str], columns: list[str], *, path: object, field: str) -> None:
    missing = [c for c in wanted if c not in columns]
    if missing:
        shown = ", ".join(columns[:20]) + (", ..." if len(columns) > 20 else "")
        raise DataError(f"column {missing[0]!r} not found; available: {shown}", path=path, field=field)


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def _check_numeric_complete(series: pd.Series, name: str, *, path: object, field: str) -> None:
    if not _is_numeric(series):
        bad = series[pd.to_numeric(series, errors="coerce").isna() & series.notna()]
        example = f" (e.g. {bad.iloc[0]!r} in row {int(bad.index[0]) + 1})" if len(bad) else ""
        raise DataError(
            f"column {name!r} is not numeric{example}; encode it as numbers or leave it out",
            path=path,
            field=field,
        )
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    bad_rows = np.flatnonzero(~np.isfinite(values))
    if bad_rows.size:
        raise DataError(
            f"column {name!r} has {bad_rows.size} missing or infinite value(s), first in data row "
            f"{int(bad_rows[0]) + 1}; drop or fill them",
            path=path,
            field=field,
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# ---------------------------------------------------------------- splitting


def split_at(n_rows: int, fraction: float) -> int:
    """Index where the last `fraction` of `n_rows` starts, as Keras' validation_split."""
    return math.floor(n_rows * (1.0 - fraction))


def standardize(x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the training part; constant columns get std 1 (left centred, not blown up)."""
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return mean, std


def make_dataset(
    x: np.ndarray,
    y: np.ndarray,
    *,
    validation_split: float,
    test_split: float = 0.0,
    heldout: tuple[np.ndarray, np.ndarray] | None = None,
    feature_names: list[str],
    target_names: list[str],
    source: str,
    notes: list[str] | None = None,
    path: object = None,
) -> Dataset:
    """Order is [train | validation | test]: test is the last `test_split` of all rows,
    validation the last `validation_split` of the rest (as Keras)."""
    n = x.shape[0]
    x_test = y_test = None
    if test_split > 0:
        cut = split_at(n, test_split)
        x, y, x_test, y_test = x[:cut], y[:cut], x[cut:], y[cut:]
        if x_test.shape[0] == 0 or x.shape[0] == 0:
            raise DataError(
                f"{n} rows are too few for test_split={test_split}", path=path, field="data.test_split"
            )
    elif heldout is not None:
        x_test, y_test = heldout
    cut = split_at(x.shape[0], validation_split)
    if cut <= 0 or cut >= x.shape[0]:
        raise DataError(
            f"{x.shape[0]} rows are too few to split with validation_split={validation_split}",
            path=path,
            field="training.validation_split",
        )
    mean, std = standardize(x[:cut])

    def scaled(a: np.ndarray) -> np.ndarray:
        out: np.ndarray = ((a - mean) / std).astype(np.float32)
        return out

    return Dataset(
        x_train=scaled(x[:cut]),
        y_train=y[:cut].astype(np.float32),
        x_val=scaled(x[cut:]),
        y_val=y[cut:].astype(np.float32),
        x_test=None if x_test is None else scaled(x_test),
        y_test=None if y_test is None else y_test.astype(np.float32),
        feature_names=feature_names,
        target_names=target_names,
        source=source,
        x_mean=mean,
        x_std=std,
        notes=list(notes or []),
    )


def load_data(data: DataConfig, *, seed: int, validation_split: float = 0.2) -> Dataset:
    """The dataset a config describes, split and standardized."""
    dataset = _load_split(data, seed=seed, validation_split=validation_split)
    _require_enough_rows(dataset, data, validation_split)
    return dataset


def _load_split(data: DataConfig, *, seed: int, validation_split: float) -> Dataset:
    if data.synthetic is not None:
        x, y = synthetic_arrays(data.synthetic, data.n_samples, data.noise, seed)
        heldout = None
        if data.test_split == 0 and data.heldout_samples > 0:
            # A separate stream, so the training rows do not depend on the held-out size.
            heldout = synthetic_arrays(data.synthetic, data.heldout_samples, data.noise, seed + 7_919_000)
        return make_dataset(
            x,
            y,
            validation_split=validation_split,
            test_split=data.test_split,
            heldout=heldout,
            feature_names=[f"x{i}" for i in range(x.shape[1])],
            target_names=["y"],
            source=f"synthetic:{data.synthetic}",
        )
    assert data.path is not None and data.target is not None  # the config validator guarantees both
    path = Path(data.path)
    frame = read_table(path)
    if frame.shape[0] == 0:
        raise DataError("file has a header but no rows", path=path, field="data.path")
    x, y, feature_names, target_names, notes = select_columns(frame, data.target, data.features, path=path)
    return make_dataset(
        x,
        y,
        validation_split=validation_split,
        test_split=data.test_split,
        feature_names=feature_names,
        target_names=target_names,
        source=str(path),
        notes=notes,
        path=path,
    )


def _require_enough_rows(dataset: Dataset, data: DataConfig, validation_split: float) -> None:
    n_train, n_val = dataset.x_train.shape[0], dataset.x_val.shape[0]
    if n_train >= MIN_TRAIN_ROWS and n_val >= MIN_VAL_ROWS:
        return
    total = (
        n_train + n_val + (0 if data.synthetic is not None or dataset.x_test is None else len(dataset.x_test))
    )
    needed = _rows_needed(validation_split, data.test_split)
    hint = f" (at least {needed} rows at validation_split={validation_split:g})" if needed else ""
    raise DataError(
        f"{total} rows give {n_train} training and {n_val} validation rows; fitdoc needs at least "
        f"{MIN_TRAIN_ROWS} training and {MIN_VAL_ROWS} validation rows{hint}",
        path=data.path,
        field="data.n_samples" if data.synthetic is not None else "data.path",
    )


def _rows_needed(validation_split: float, test_split: float, limit: int = 1_000_000) -> int | None:
    """The fewest rows whose split meets both minimums (None past `limit`)."""
    for n in range(MIN_TRAIN_ROWS + MIN_VAL_ROWS, limit):
        rest = split_at(n, test_split) if test_split > 0 else n
        cut = split_at(rest, validation_split)
        if cut >= MIN_TRAIN_ROWS and rest - cut >= MIN_VAL_ROWS:
            return n
    return None
