"""How much can any model read off the curves? A ceiling for the predicted verdict.

`calibrate.py` scores fitdoc's combiner leave-one-family-out; `calibrate.py --boosting`
asks whether a non-linear model on the same evidence does better. This asks the wider
question: given *everything* in a run's curves, not only fitdoc's features, how well can
the corpus' labels be predicted at all?

Gradient-boosted trees (`calibrate.fit_boosted`, the yardstick of `calibrate.py
--boosting`; scikit-learn, a benchmark-only dependency) are fitted on three
inputs, each with the config and from curves alone:

- `evidence`: the combiner's own vector (curve features, rule strengths, config terms);
- `whole curves`: the train and val series themselves, resampled to `POINTS` points on
  the run's own epoch axis, on a log scale relative to the final val (scale-free, as
  every fitdoc feature is), with the log of the run's length and, with the config, the
  combiner's own config terms (`CONFIG_TERMS`) and the number of hidden layers;
- `both`: the two side by side.

and scored two ways, on the runs the combiner decides (the gates and overrides aside):

- leave one family out, as the goals are stated;
- five folds grouped by path (no path's runs on both sides, every family seen): an
  optimistic ceiling, since a user's log comes from a family the corpus has never seen.
  (The shared labelled corpus records no paths, so its 570 runs are one group: that one
  family is left out whole in its fold.)

When even the in-family ceiling with the whole curves stays far below a goal, the goal is
beyond what the curves hold, whatever the model.

    python benchmarks/evidence_ceiling.py          # about 10 min on 2 cores
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.calibrate import (  # noqa: E402
    DATA_DIR,
    LABELS,
    SHARED_CORPUS,
    Sample,
    fit,
    fit_boosted,
    load_samples,
    load_shared_samples,
    pair_scores,
    probabilities,
)

# Points each series is resampled to: enough for a rebound, a plateau and a late fall.
POINTS = 24
FOLDS = 5
# Floor under a series before its log (a classification error of exactly 0).
FLOOR = 1e-12

# (x, label index, with config or not, the row's sample index)
Rows = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def all_curves(samples: Sequence[Sample]) -> dict[str, Any]:
    """Every run's curves by name: the factory's from their stored history, the shared
    corpus' from its files (its samples keep no history)."""
    from benchmarks.diagnosis_quality import load_cases
    from fitdoc.history.load import curves_from_mapping

    out = {case.name: case.curves for case in load_cases(SHARED_CORPUS)}
    for s in samples:
        if s.run.history:
            out[s.run.name] = curves_from_mapping(s.run.history, source=s.run.name)
    return out


def curve_vector(s: Sample, curves: Any, with_config: bool) -> np.ndarray:
    """The run's whole train and val curves, scale-free, with its length and (known) config."""
    from fitdoc.diagnosis.rules._config import regularization
    from fitdoc.diagnosis.rules.combiner import CONFIG_TERMS

    val = np.asarray(curves.val, dtype=float)
    train = np.asarray(curves.train, dtype=float)
    end = _finite_tail(val)
    grid = np.linspace(0.0, 1.0, POINTS)
    parts = [_resampled(val, grid) - math.log(end), _resampled(train, grid) - math.log(end)]
    n = len(val)
    reg = regularization(s.config) if with_config else None
    cfg = [0.0 if reg is None else term.value(reg) for term in CONFIG_TERMS]
    cfg.append(float(s.config.model.hidden_layers) if with_config else 0.0)
    return np.concatenate([*parts, [math.log(max(n, 1))], cfg])


def _finite_tail(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(max(finite[-3:].mean(), FLOOR)) if finite.size else 1.0


def _resampled(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """log of the series at `grid` (0 = first epoch, 1 = last), gaps filled by interpolation."""
    x = np.linspace(0.0, 1.0, len(values)) if len(values) > 1 else np.zeros(1)
    keep = np.isfinite(values)
    if not keep.any():
        return np.zeros_like(grid)
    return np.interp(grid, x[keep], np.log(np.maximum(values[keep], FLOOR)))


def rows(samples: Sequence[Sample], curves: dict[str, Any], inputs: str) -> Rows:
    """One row per (run, with/without config) the combiner decides."""
    xs, ys, known, idx = [], [], [], []
    for i, s in enumerate(samples):
        y = LABELS.index(s.run.label.label)
        for with_config, ev in ((True, s.x_config), (False, s.x_curves)):
            if ev is None:
                continue
            if inputs == "evidence":
                x = ev
            elif inputs == "whole curves":
                x = curve_vector(s, curves[s.run.name], with_config)
            else:
                x = np.concatenate([ev, curve_vector(s, curves[s.run.name], with_config)])
            xs.append(x)
            ys.append(y)
            known.append(with_config)
            idx.append(i)
    return np.asarray(xs), np.asarray(ys), np.asarray(known), np.asarray(idx)


Fitter = Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]]


def linear(xs: np.ndarray, ys: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    weights, bias = fit(xs, ys)
    return lambda x: np.stack([probabilities(weights, bias, row) for row in x])


def scored(split: Sequence[np.ndarray], data: Rows, fitter: Fitter) -> dict[bool, tuple[float, float]]:
    """(macro-F1, balanced recall) with config (True) and from curves alone (False), each
    test part predicted by a model fitted on the rest."""
    xs, ys, known, _ = data
    said = np.full(len(ys), -1)
    for test in split:
        train = np.setdiff1d(np.arange(len(ys)), test)
        said[test] = fitter(xs[train], ys[train])(xs[test]).argmax(axis=1)
    out = {}
    for with_config in (True, False):
        keep = known == with_config
        pairs = [(LABELS[a], LABELS[b]) for a, b in zip(said[keep], ys[keep], strict=True)]
        score = pair_scores(pairs)
        out[with_config] = (score["macro_f1"], score["balanced"][1])
    return out


def splits(samples: Sequence[Sample], idx: np.ndarray) -> dict[str, list[np.ndarray]]:
    """Leave one family out, and five folds grouped by path."""
    families = np.asarray([samples[i].run.family for i in idx])
    paths = sorted({s.run.path_key for s in samples})
    rng = np.random.default_rng(0)
    fold_of = dict(zip(paths, rng.permutation(len(paths)) % FOLDS, strict=True))
    folds = np.asarray([fold_of[samples[i].run.path_key] for i in idx])
    return {
        "leave one family out": [np.flatnonzero(families == f) for f in sorted(set(families))],
        f"{FOLDS} folds by path (every family seen)": [np.flatnonzero(folds == k) for k in range(FOLDS)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    samples, _ = load_samples(args.data_dir)
    samples += load_shared_samples(SHARED_CORPUS)
    curves = all_curves(samples)
    print(f"{len(samples)} labelled runs read in {time.perf_counter() - start:.0f} s")
    table = []
    for inputs, model_name, fitter in (
        ("evidence", "linear (fitdoc's combiner)", linear),
        ("evidence", "boosted trees", fit_boosted),
        ("whole curves", "boosted trees", fit_boosted),
        ("both", "boosted trees", fit_boosted),
    ):
        data = rows(samples, curves, inputs)
        for split_name, split in splits(samples, data[3]).items():
            f1 = scored(split, data, fitter)
            table.append((split_name, inputs, model_name, *f1[True], *f1[False]))
            print(
                f"  {split_name}, {inputs}, {model_name}: {f1[True][0]:.3f} / {f1[False][0]:.3f}", flush=True
            )
    n = len(data[0])
    print(
        f"\nMacro-F1 and balanced recall on the {n} (run, evidence) rows the combiner decides "
        "(goals: macro-F1 0.85 with config, 0.80 curves only; every recall 0.75)"
    )
    print(
        f"{'split':<40}{'input':<14}{'model':<28}{'config F1':>10}{'bal R':>7}{'curves F1':>11}{'bal R':>7}"
    )
    for split_name, inputs, model_name, a, ra, b, rb in table:
        print(f"{split_name:<40}{inputs:<14}{model_name:<28}{a:>10.3f}{ra:>7.2f}{b:>11.3f}{rb:>7.2f}")
    print(f"\nin {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
