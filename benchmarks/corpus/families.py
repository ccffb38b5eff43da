"""The data families of the corpus factory: regression functions at several
noise levels, classification problems, and real datasets that ship inside a
package (scikit-learn's bundled files; nothing is downloaded).

A family draws `(x, y)` for a given row count, noise level and seed. Synthetic
families also draw a large held-out test set from the same distribution; a
real dataset's test set is a fixed part of its rows that no curve shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Arrays = tuple[np.ndarray, np.ndarray]
# Rows of the held-out test set of a synthetic family: large, so the label is
# decided by generalization, not by the luck of a small sample.
SYNTHETIC_TEST_ROWS = 2000


@dataclass(frozen=True)
class Family:
    name: str
    task: str  # "regression" or "classification"
    noises: tuple[float, ...]
    draw: Callable[[np.random.Generator, int, float], Arrays] | None = None
    real: Callable[[], Arrays] | None = None
    classes: int = 1

    @property
    def is_real(self) -> bool:
        return self.real is not None


def _friedman1(rng: np.random.Generator, n: int, noise: float) -> Arrays:
    x = rng.uniform(0.0, 1.0, size=(n, 10))
    f = 10 * np.sin(np.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2 + 10 * x[:, 3] + 5 * x[:, 4]
    return x, (f / 25.0 + noise * rng.standard_normal(n))[:, None]


def _wave(rng: np.random.Generator, n: int, noise: float) -> Arrays:
    x = rng.uniform(0.0, 1.0, size=(n, 3))
    f = np.sin(2 * np.pi * x[:, 0]) * x[:, 1] + 0.3 * x[:, 2]
    return x, (f + noise * rng.standard_normal(n))[:, None]


def _ridges(rng: np.random.Generator, n: int, noise: float) -> Arrays:
    """fitdoc's founding problem: steep ridges over 8 of 12 inputs."""
    from fitdoc.training.data import GENERATORS

    x, y = GENERATORS["founding"](rng, n)
    return x, y + noise * rng.standard_normal(y.shape)


def _sparse_linear(rng: np.random.Generator, n: int, noise: float) -> Arrays:
    """A linear target on 5 of 30 inputs: little to learn, much to overfit."""
    x = rng.standard_normal((n, 30))
    w = np.array([1.0, -0.8, 0.6, 0.4, -0.3])
    return x, (x[:, :5] @ w / 1.5 + noise * rng.standard_normal(n))[:, None]


def _friedman3(rng: np.random.Generator, n: int, noise: float) -> Arrays:
    """Friedman #3 (arctan of a ratio), standardized-ish to unit scale."""
    x0 = rng.uniform(0, 100, n)
    x1 = rng.uniform(40 * np.pi, 560 * np.pi, n)
    x2 = rng.uniform(0, 1, n)
    x3 = rng.uniform(1, 11, n)
    f = np.arctan((x1 * x2 - 1 / (x1 * x3)) / x0)
    x = np.column_stack([x0 / 100, x1 / (560 * np.pi), x2, x3 / 11])
    return x, (f + noise * rng.standard_normal(n))[:, None]


def _moons(rng: np.random.Generator, n: int, noise: float) -> Arrays:
    """Two interleaved half-circles in 2-D plus 6 noise inputs; `noise` flips labels."""
    y = rng.integers(0, 2, n)
    t = rng.uniform(0, np.pi, n)
    x0 = np.where(y == 0, np.cos(t), 1 - np.cos(t))
    x1 = np.where(y == 0, np.sin(t), 0.5 - np.sin(t))
    x = np.column_stack([x0, x1]) + 0.15 * rng.standard_normal((n, 2))
    x = np.column_stack([x, rng.standard_normal((n, 6))])
    flip = rng.uniform(size=n) < noise
    return x, np.where(flip, 1 - y, y)[:, None].astype(np.int64)


def _spirals(rng: np.random.Generator, n: int, noise: float) -> Arrays:
    """Three interleaved spirals (a hard 3-class problem); `noise` flips labels."""
    y = rng.integers(0, 3, n)
    r = rng.uniform(0.1, 1.0, n)
    angle = 3.5 * r + y * (2 * np.pi / 3) + 0.2 * rng.standard_normal(n)
    x = np.column_stack([r * np.cos(angle), r * np.sin(angle)])
    flip = rng.uniform(size=n) < noise
    y = np.where(flip, rng.integers(0, 3, n), y)
    return x, y[:, None].astype(np.int64)


def _blobs(rng: np.random.Generator, n: int, noise: float) -> Arrays:
    """Five classes of Gaussian clusters in 20 dimensions, 8 of them informative."""
    centers = np.random.default_rng(7).standard_normal((5, 8)) * 1.2
    y = rng.integers(0, 5, n)
    x_inf = centers[y] + rng.standard_normal((n, 8))
    x = np.column_stack([x_inf, rng.standard_normal((n, 12))])
    flip = rng.uniform(size=n) < noise
    y = np.where(flip, rng.integers(0, 5, n), y)
    return x, y[:, None].astype(np.int64)


def _diabetes() -> Arrays:
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    return x, ((y - y.mean()) / y.std())[:, None]


def _digits() -> Arrays:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x / 16.0, y[:, None].astype(np.int64)


def _breast_cancer() -> Arrays:
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    return x, y[:, None].astype(np.int64)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("friedman1", "regression", (0.02, 0.1, 0.3), draw=_friedman1),
        Family("wave", "regression", (0.0, 0.05, 0.2), draw=_wave),
        Family("ridges", "regression", (0.0, 0.015, 0.05), draw=_ridges),
        Family("sparse_linear", "regression", (0.1, 0.5, 1.0), draw=_sparse_linear),
        Family("friedman3", "regression", (0.0, 0.1, 0.3), draw=_friedman3),
        Family("moons", "classification", (0.0, 0.1, 0.25), draw=_moons, classes=2),
        Family("spirals", "classification", (0.0, 0.1, 0.2), draw=_spirals, classes=3),
        Family("blobs", "classification", (0.0, 0.1, 0.3), draw=_blobs, classes=5),
        Family("diabetes", "regression", (0.0,), real=_diabetes),
        Family("digits", "classification", (0.0,), real=_digits, classes=10),
        Family("breast_cancer", "classification", (0.0,), real=_breast_cancer, classes=2),
    )
}


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def make_split(family: Family, n: int, noise: float, seed: int, validation_split: float = 0.2) -> Split:
    """Train/val rows (val is the last fraction, as Keras' validation_split) and
    a held-out test set; inputs standardized on the training part."""
    rng = np.random.default_rng(seed)
    if family.real is not None:
        x_all, y_all = family.real()
        order = rng.permutation(len(x_all))
        # A real dataset is small: 60 % for train+val, 40 % held out.
        cut = round(0.6 * len(order))
        fit, test = order[:cut], order[cut:]
        x, y, x_test, y_test = x_all[fit], y_all[fit], x_all[test], y_all[test]
    else:
        assert family.draw is not None
        x, y = family.draw(rng, n, noise)
        # The test set is noise-free in its inputs' distribution but keeps the
        # label noise: held-out error is what a user would see on new data.
        x_test, y_test = family.draw(rng, SYNTHETIC_TEST_ROWS, noise)
    n_val = max(1, round(validation_split * len(x)))
    n_train = len(x) - n_val
    mean, std = x[:n_train].mean(axis=0), x[:n_train].std(axis=0)
    std = np.where(std > 0, std, 1.0)

    def scale(a: np.ndarray) -> np.ndarray:
        return ((a - mean) / std).astype(np.float32)

    y_dtype = np.int32 if family.task == "classification" else np.float32
    return Split(
        scale(x[:n_train]),
        y[:n_train].astype(y_dtype),
        scale(x[n_train:]),
        y[n_train:].astype(y_dtype),
        scale(x_test),
        y_test.astype(y_dtype),
    )
