"""Val at twice the epochs: a fitted extrapolator against the power-law fit, self-supervised.

Every corpus net was trained to twice its longest cut, so any cut E of its
curves has a known future: the relative fall of val from E to 2E,
`1 - val(2E) / val(E)` (each the mean of the five epochs ending there). This
script cuts every stored net at several lengths, measures the curves up to E
the way `fitdoc diagnose` does (`compute_features`), and predicts that fall:

- `power law`: the features' own `val_gain_2x` (the log-log slope of the last
  quarter extrapolated to 2E);
- `power law, half`: the same over the last half (`val_gain_2x_half`);
- `last doubling again`: val falls over E..2E as it did over E/2..E;
- `fitted`: a ridge regression over the curve evidence the combiner reads
  (`CURVE_EVIDENCE`), fitted on the other families (leave one family out).

It prints each predictor's mean absolute error and correlation with the
realized fall, per family held out and overall, and how often each gets the
decision "does twice the epochs lower val by 10 %?" right.

    python benchmarks/fit_extrapolator.py
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.corpus.labels import mean_at  # noqa: E402
from benchmarks.corpus.store import DATA_DIR, read_paths  # noqa: E402

CUT_FRACTIONS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0)  # of the path's longest cut
RIDGE = 1.0


def examples(data_dir: Path) -> Iterator[tuple[str, np.ndarray, float, float, float, float]]:
    """(family, curve evidence, realized fall, power law, power law half, last doubling) per cut."""
    from fitdoc.diagnosis.features import compute_features
    from fitdoc.diagnosis.rules.combiner import CURVE_EVIDENCE, evidence
    from fitdoc.history.load import curves_from_mapping

    n_curve = len(CURVE_EVIDENCE)
    for path in read_paths(data_dir):
        metric = "mae" if path["task"] == "regression" else "accuracy"
        e_max = max(path["cuts"])
        cuts = sorted({max(10, round(f * e_max)) for f in CUT_FRACTIONS})
        for net in path["nets"]:
            full = {
                "loss": net["loss"],
                metric: net["metric"],
                "val_loss": net["val_loss"],
                f"val_{metric}": net["val_metric"],
            }
            whole = curves_from_mapping(_clean(full), source=path["key"])
            val = np.asarray(whole.val, dtype=float)
            for e in cuts:
                if 2 * e > val.size:
                    continue
                now, later = mean_at(val, e), mean_at(val, 2 * e)
                if not (math.isfinite(now) and math.isfinite(later) and now > 0):
                    continue
                cut = curves_from_mapping(_clean({k: v[:e] for k, v in full.items()}), source=path["key"])
                f = compute_features(cut)
                if not f.positive:
                    continue
                x = evidence(f, (), None)[:n_curve]
                fall = float(np.clip(1.0 - later / now, -1.0, 1.0))
                yield (
                    path["family"],
                    x,
                    fall,
                    _finite(f.val_gain_2x),
                    _finite(f.val_gain_2x_half),
                    _finite(f.val_last_fall),
                )


def _clean(mapping: dict[str, list[float | None]]) -> dict[str, list[float]]:
    return {k: [math.nan if v is None else float(v) for v in values] for k, values in mapping.items()}


def _finite(value: float) -> float:
    return float(np.clip(value, -1.0, 1.0)) if math.isfinite(value) else 0.0


def ridge(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, float]:
    mean_x, mean_y = xs.mean(axis=0), ys.mean()
    xc = xs - mean_x
    w = np.linalg.solve(xc.T @ xc + RIDGE * np.eye(xs.shape[1]), xc.T @ (ys - mean_y))
    return w, float(mean_y - mean_x @ w)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)

    rows = list(examples(args.data_dir))
    families = np.array([r[0] for r in rows])
    xs = np.array([r[1] for r in rows])
    ys = np.array([r[2] for r in rows])
    baselines = {
        "power law": np.array([r[3] for r in rows]),
        "power law, half": np.array([r[4] for r in rows]),
        "last doubling again": np.array([r[5] for r in rows]),
        "no change": np.zeros(len(rows)),
    }
    fitted = np.zeros(len(rows))
    for family in sorted(set(families)):
        inside = families == family
        w, b = ridge(xs[~inside], ys[~inside])
        fitted[inside] = xs[inside] @ w + b
    predictors = {**baselines, "fitted (held out)": fitted}
    print(f"{len(rows)} cuts of {len(set(families))} families; realized fall at 2E: mean {ys.mean():+.3f}")
    print()
    print(f"{'predictor':<22}{'MAE':>7}{'corr':>7}{'10 % call right':>17}")
    for name, pred in predictors.items():
        corr = float(np.corrcoef(pred, ys)[0, 1]) if pred.std() > 0 else math.nan
        right = float(np.mean((pred >= 0.10) == (ys >= 0.10)))
        print(f"{name:<22}{np.mean(np.abs(pred - ys)):>7.3f}{corr:>7.2f}{right:>17.1%}")
    print()
    print(f"{'family (held out)':<18}{'cuts':>6}{'power law MAE':>15}{'fitted MAE':>12}")
    for family in sorted(set(families)):
        inside = families == family
        pl = np.mean(np.abs(baselines["power law"][inside] - ys[inside]))
        ft = np.mean(np.abs(fitted[inside] - ys[inside]))
        print(f"{family:<18}{inside.sum():>6}{pl:>15.3f}{ft:>12.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
