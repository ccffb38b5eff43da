"""Data loading: synthetic generators, CSV/Parquet, column checks, splits, scaling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fitdoc.config import DataConfig
from fitdoc.errors import DataError, MissingDependencyError
from fitdoc.training.data import SYNTHETIC_HELDOUT_ROWS, load_data, make_dataset, split_at, synthetic_arrays


def _frame(n: int = 50) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(size=n), "y": rng.normal(size=n)})


@pytest.mark.parametrize("name", ["founding", "friedman1", "wave"])
def test_synthetic_is_seeded_and_shaped(name: str) -> None:
    x1, y1 = synthetic_arrays(name, 200, 0.01, seed=3)
    x2, y2 = synthetic_arrays(name, 200, 0.01, seed=3)
    x3, _ = synthetic_arrays(name, 200, 0.01, seed=4)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert not np.array_equal(x1, x3)
    assert y1.shape == (200, 1) and x1.shape[0] == 200


def test_founding_targets_are_smooth_and_in_unit_range() -> None:
    _, y = synthetic_arrays("founding", 20_000, 0.0, seed=0)
    assert y.min() > -0.05 and y.max() < 1.05
    assert 0.1 < y.std() < 0.35  # a real signal, not a constant


def test_synthetic_dataset_has_heldout_sample_and_keras_split() -> None:
    spec = DataConfig(synthetic="wave", n_samples=101, heldout_samples=SYNTHETIC_HELDOUT_ROWS)
    data = load_data(spec, seed=1, validation_split=0.2)
    assert data.x_train.shape[0] == split_at(101, 0.2) == 80
    assert data.x_val.shape[0] == 21
    assert data.x_test is not None and data.x_test.shape[0] == SYNTHETIC_HELDOUT_ROWS
    assert data.x_train.dtype == np.float32
    # The held-out sample is a separate stream: asking for it leaves the training rows alone.
    plain = load_data(DataConfig(synthetic="wave", n_samples=101), seed=1, validation_split=0.2)
    np.testing.assert_array_equal(plain.x_train, data.x_train)
    assert plain.x_test is None  # test_split 0 and no held-out sample: no test_mae column


def test_validation_is_the_last_fraction_and_scaling_uses_train_stats_only() -> None:
    x = np.arange(20, dtype=float).reshape(10, 2)
    x[8:] += 1000.0  # validation rows far away: must not move the scaling
    y = np.arange(10, dtype=float)[:, None]
    data = make_dataset(
        x, y, validation_split=0.2, feature_names=["p", "q"], target_names=["y"], source="test"
    )
    np.testing.assert_allclose(data.x_mean, x[:8].mean(axis=0))
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(data.y_val[:, 0], [8.0, 9.0])  # the last rows, unshuffled
    assert data.x_val.min() > 100  # far away in train-std units


def test_test_split_comes_off_the_end_before_validation() -> None:
    x = np.arange(100, dtype=float)[:, None]
    data = make_dataset(
        x,
        x.copy(),
        validation_split=0.25,
        test_split=0.2,
        feature_names=["x"],
        target_names=["x"],
        source="t",
    )
    assert data.y_test is not None
    assert data.y_test[:, 0].tolist() == list(range(80, 100))
    assert data.y_val[:, 0].tolist() == list(range(60, 80))
    assert data.y_train.shape[0] == 60


def test_csv_target_and_default_numeric_features(tmp_path: Path) -> None:
    frame = _frame()
    frame["city"] = "x"
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    data = load_data(DataConfig(path=str(path), target="y"), seed=0)
    assert data.feature_names == ["a", "b"]
    assert data.target_names == ["y"]
    assert any("city" in note for note in data.notes)
    assert data.x_test is None


def test_csv_explicit_features_and_several_targets(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    _frame().to_csv(path, index=False)
    data = load_data(DataConfig(path=str(path), target=["y", "b"], features=["a"]), seed=0)
    assert data.n_features == 1 and data.n_targets == 2


def test_parquet_reads_like_csv(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "d.parquet"
    _frame().to_parquet(path)
    data = load_data(DataConfig(path=str(path), target="y"), seed=0)
    assert data.feature_names == ["a", "b"]


def test_parquet_without_pyarrow_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "d.parquet"
    path.write_bytes(b"PAR1")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "pyarrow" else real(n, *a))
    with pytest.raises(MissingDependencyError, match="pyarrow"):
        load_data(DataConfig(path=str(path), target="y"), seed=0)


@pytest.mark.parametrize(
    ("change", "field", "pattern"),
    [
        ({"target": "nope"}, "data.target", r"'nope' not found; available: a, b, y"),
        ({"target": "y", "features": ["a", "zz"]}, "data.features", r"'zz' not found"),
        ({"target": "y", "features": ["a", "name"]}, "data.features", r"'name' is not numeric \(e.g. 'bob'"),
        ({"target": "name"}, "data.target", r"'name' is not numeric"),
        ({"target": "y", "features": ["gap"]}, "data.features", r"'gap' has 1 missing .* row 3"),
        ({"target": "y", "features": ["a", "y"]}, "data.features", r"both a feature and a target"),
    ],
)
def test_column_errors_are_one_line_data_errors(
    tmp_path: Path, change: dict[str, object], field: str, pattern: str
) -> None:
    frame = _frame(5)
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    if "name" in str(change) or "gap" in str(change):
        frame["name"] = ["al", "bob", "al", "cy", "al"]
        frame["name"] = frame["name"].where(frame.index != 0, "7")  # one parsable cell, the rest not
        frame["gap"] = [1.0, 2.0, np.nan, 4.0, 5.0]
        frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=pattern) as info:
        load_data(DataConfig(path=str(path), **change), seed=0)
    assert info.value.field == field
    assert info.value.path == str(path)
    assert "\n" not in info.value.one_line()


@pytest.mark.parametrize(
    ("name", "content", "pattern"),
    [
        ("missing.csv", None, "file not found"),
        ("empty.csv", "", "empty"),
        ("only_header.csv", "a,y\n", "no rows"),
        ("data.xlsx", "x", "unsupported file type"),
        ("bad.parquet", "not parquet", "cannot read Parquet"),
    ],
)
def test_file_errors(tmp_path: Path, name: str, content: str | None, pattern: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=pattern):
        load_data(DataConfig(path=str(path), target="y"), seed=0)


def test_too_few_rows_for_the_split(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    _frame(1).to_csv(path, index=False)
    with pytest.raises(DataError, match="too few") as info:
        load_data(DataConfig(path=str(path), target="y"), seed=0)
    assert info.value.field == "training.validation_split"
