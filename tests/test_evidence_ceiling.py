"""The evidence ceiling (benchmarks/evidence_ceiling.py): its whole-curve input is scale-free,
knows a config only when one is given, and its in-family folds never split a path."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from benchmarks.evidence_ceiling import POINTS, curve_vector, rows, splits
from fitdoc.history.load import curves_from_mapping

CONFIG = SimpleNamespace(model=SimpleNamespace(hidden_layers=2, units=16, l2=0.001, l1=0.0, dropout=0.2))


def _curves(scale: float, n: int = 30) -> Any:
    epochs = np.arange(1, n + 1)
    train = scale * (0.2 + 1.0 / epochs)
    val = scale * (0.3 + 1.0 / epochs + 0.002 * epochs)
    return curves_from_mapping({"loss": list(train), "val_loss": list(val)}, source="t")


def _sample(name: str, family: str, path: str, label: str = "overfit") -> Any:
    run = SimpleNamespace(name=name, family=family, path_key=path, label=SimpleNamespace(label=label))
    return SimpleNamespace(run=run, x_config=np.zeros(3), x_curves=np.ones(3), config=CONFIG)


def test_the_whole_curves_are_the_same_at_any_scale_of_the_metric() -> None:
    s = _sample("a", "f", "p1")
    small, large = curve_vector(s, _curves(0.003), True), curve_vector(s, _curves(30.0), True)
    assert small.shape == (2 * POINTS + 6,)
    np.testing.assert_allclose(small, large, atol=1e-9)
    # Relative to the final val: its own last points sit near 0, the early ones above.
    assert abs(small[POINTS - 1]) < 0.05 and small[0] > small[POINTS - 1]


def test_the_config_is_known_only_with_config() -> None:
    s = _sample("a", "f", "p1")
    with_cfg, without = curve_vector(s, _curves(1.0), True), curve_vector(s, _curves(1.0), False)
    np.testing.assert_array_equal(with_cfg[:-5], without[:-5])
    assert list(without[-5:]) == [0.0] * 5
    assert with_cfg[-5] == 1.0 and with_cfg[-3] == 0.2  # known, dropout


def test_folds_by_path_keep_each_path_on_one_side_and_families_are_left_out_whole() -> None:
    samples = [
        _sample(f"r{i}", f"fam{i % 3}", f"p{i // 2}", ("overfit", "underfit", "balanced")[i % 3])
        for i in range(40)
    ]
    curves = {s.run.name: _curves(1.0) for s in samples}
    xs, ys, known, idx = rows(samples, curves, "evidence")
    assert len(xs) == 80 and known.sum() == 40  # with config and curves only
    assert set(ys) == {0, 1, 2}
    parts = splits(samples, idx)
    lofo, folds = parts.values()
    assert len(lofo) == 3 and len(folds) == 5
    for split in (lofo, folds):
        assert sorted(np.concatenate(split)) == list(range(80))  # every row scored once
    for test in folds:
        inside = {samples[i].run.path_key for i in idx[test]}
        outside = {samples[i].run.path_key for i in idx[np.setdiff1d(np.arange(80), test)]}
        assert not inside & outside
    for test in lofo:
        assert len({samples[i].run.family for i in idx[test]}) == 1
