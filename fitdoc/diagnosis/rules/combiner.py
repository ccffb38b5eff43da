"""The fitted combiner: rule evidence in, one verdict and a calibrated confidence out.

Rules measure and vote; this module weighs their votes. The evidence of a run
is a short vector of scale-free numbers (the curve features the rules read,
the strength of each rule's finding, and the regularization when the config
is known). A multinomial logistic model turns it into probabilities of
overfit / underfit / balanced; the largest wins. Its confidence is that
probability passed through a fitted calibration map, so that verdicts shown
at confidence 0.9 are right about 90 % of the time on runs the model was not
fitted on.

The weights live in `combiner.json` beside this file, written by
`benchmarks/calibrate.py` (fitted on the corpus factory's runs); `fitdoc
rules` prints them. Nothing here keys on a dataset, its size or its name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from fitdoc.diagnosis.features import Features
from fitdoc.diagnosis.rules._config import Regularization
from fitdoc.verdict import Finding, Verdict

WEIGHTS_FILE = Path(__file__).with_name("combiner.json")
CLASSES = (Verdict.OVERFIT, Verdict.UNDERFIT, Verdict.BALANCED)
# Rules whose finding strength is evidence (the inconclusive gates and the FD206 override
# are not: they decide alone).
EVIDENCE_RULES = ("FD101", "FD102", "FD103", "FD201", "FD202", "FD203", "FD204", "FD205", "FD301")


def _clip(value: float, lo: float, hi: float) -> float:
    return 0.0 if not math.isfinite(value) else min(hi, max(lo, value))


def _log(value: float) -> float:
    return math.log(value) if math.isfinite(value) and value > 0 else math.nan


# Each entry: (name, what it measures). The order is the weight vector's order.
CURVE_EVIDENCE: tuple[tuple[str, str], ...] = (
    ("log_gap_end", "log of val/train at the end (last tenth)"),
    ("log_gap_best", "log of val/train around the val minimum"),
    ("stop_gain", "fall of the final val had the run stopped at E/2"),
    ("val_gain_2x", "predicted fall of val at twice the epochs"),
    ("val_last_fall", "realized fall of val over the last doubling (E/2 to E)"),
    ("train_half_drop", "log(1 + fall of train over the second half)"),
    ("train_gain_2x", "predicted fall of train at twice the epochs"),
    ("val_rebound", "log(1 + rise of the final val above its minimum)"),
    ("best_position", "where the val minimum lies (fraction of the run)"),
    ("val_noise", "val's jitter around its running median"),
    ("progress", "largest fall of train or val below its first value"),
    ("short", "20 / evaluations (large for short runs)"),
    ("val_gain_2x_half", "predicted fall of val at twice the epochs, from the trend of the second half"),
    ("loss_gain_2x", "predicted fall of val_loss at twice the epochs (when the metric is not the loss)"),
    ("gap_closed", "1 when val equals train at the end, falling to 0 when they are 5 % apart"),
)
# Products of two evidence terms, where one changes what the other means.
INTERACTIONS: tuple[tuple[str, str, str], ...] = (
    ("penalty_x_gap", "reg_penalty", "log_gap_end"),
    ("dropout_x_gap", "reg_dropout", "log_gap_end"),
    ("penalty_x_train_drop", "reg_penalty", "train_half_drop"),
    ("gap_x_val_gain", "log_gap_end", "val_gain_2x"),
    ("short_x_stop_gain", "short", "stop_gain"),
    ("gap_squared", "log_gap_end", "log_gap_end"),
    ("penalty_x_gap_closed", "reg_penalty", "gap_closed"),
    ("dropout_x_gap_closed", "reg_dropout", "gap_closed"),
)
CONFIG_EVIDENCE: tuple[tuple[str, str], ...] = (
    ("reg_known", "1 when the run's config is known"),
    ("reg_penalty", "L2/L1 factor on a log scale: 0 for none or 1e-6, 1 for 1e-2 (config known)"),
    ("reg_dropout", "dropout rate (config known)"),
)
EVIDENCE: tuple[tuple[str, str], ...] = (
    *CURVE_EVIDENCE,
    *CONFIG_EVIDENCE,
    *((f"{code}", f"strength of {code}'s finding (0 when it did not fire)") for code in EVIDENCE_RULES),
    *((name, f"{a} x {b}") for name, a, b in INTERACTIONS),
    *(
        (
            f"first_{v}",
            f"1 when the first finding in precedence order (gap, over-regularized, rebound, not converged, capacity, settled) votes {v}",
        )
        for v in ("overfit", "underfit", "balanced")
    ),
)
# The rules' own reading: the first verdict in this order that has a finding.
PRECEDENCE = ("FD101", "FD201", "FD204", "FD205", "FD102", "FD103", "FD202", "FD203", "FD301")
EVIDENCE_NAMES = tuple(name for name, _ in EVIDENCE)


def evidence(features: Features, findings: Sequence[Finding], reg: Regularization | None) -> np.ndarray:
    """The evidence vector of one run, in `EVIDENCE_NAMES` order (NaN features count as 0)."""
    f = features
    curve = (
        _clip(_log(f.gap_ratio_end), -1.0, 3.0),
        _clip(_log(f.gap_ratio_best), -1.0, 3.0),
        _clip(f.val_stop_gain, -1.0, 1.0),
        _clip(f.val_gain_2x, -1.0, 1.0),
        _clip(f.val_last_fall, -1.0, 1.0),
        _clip(math.log1p(f.train_half_drop) if f.train_half_drop > -1 else math.nan, -1.0, 3.0),
        _clip(f.train_gain_2x, -1.0, 1.0),
        _clip(math.log1p(f.val_rebound) if f.val_rebound > -1 else math.nan, 0.0, 3.0),
        _clip(f.best_position, 0.0, 1.0),
        _clip(f.val_noise, 0.0, 1.0),
        _clip(max(f.train_progress, f.val_progress), 0.0, 1.0),
        # Clipped at the shortest runs the combiner was fitted on (10 evaluations).
        _clip(20.0 / max(f.n_epochs, 1), 0.0, 2.0),
        _clip(f.val_gain_2x_half, -1.0, 1.0),
        _clip(f.loss_gain_2x, -1.0, 1.0),
        _clip(1.0 - abs(_log(f.gap_ratio_end)) / 0.05, 0.0, 1.0),
    )
    if reg is None:
        config = (0.0, 0.0, 0.0)
    else:
        penalty = max(reg.l2, reg.l1, 1e-6)
        config = (1.0, _clip((math.log10(penalty) + 6.0) / 4.0, 0.0, 1.5), _clip(reg.dropout, 0.0, 1.0))
    strengths = {f.rule_id: f.strength for f in findings}
    rules = tuple(float(strengths.get(code, 0.0)) for code in EVIDENCE_RULES)
    base = dict(zip(EVIDENCE_NAMES, (*curve, *config, *rules), strict=False))
    products = tuple(base[a] * base[b] for _, a, b in INTERACTIONS)
    first = next((f for code in PRECEDENCE for f in findings if f.rule_id == code), None)
    precedence = tuple(float(first is not None and first.verdict is c) for c in CLASSES)
    return np.array((*curve, *config, *rules, *products, *precedence), dtype=float)


@dataclass(frozen=True)
class Combiner:
    """Weights [classes, evidence], biases, and the confidence calibration map."""

    weights: np.ndarray
    bias: np.ndarray
    # Piecewise-linear map from the winning probability to the chance it is right.
    calibration_x: tuple[float, ...]
    calibration_y: tuple[float, ...]
    fitted_on: str = ""
    # The fewest evaluations of a run it was fitted on: shorter runs are outside its domain.
    min_evaluations: int = 10

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        z = self.weights @ x + self.bias
        z = z - z.max()
        p = np.exp(z)
        return p / p.sum()

    def decide(self, x: np.ndarray) -> tuple[Verdict, float, np.ndarray]:
        """(winning verdict, calibrated confidence, class probabilities)."""
        p = self.probabilities(x)
        k = int(np.argmax(p))
        return CLASSES[k], self.calibrate(float(p[k])), p

    def calibrate(self, p: float) -> float:
        if not self.calibration_x:
            return p
        return float(np.interp(p, self.calibration_x, self.calibration_y))

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": [c.value for c in CLASSES],
            "evidence": list(EVIDENCE_NAMES),
            "weights": [[round(float(w), 5) for w in row] for row in self.weights],
            "bias": [round(float(b), 5) for b in self.bias],
            "calibration": {"p": list(self.calibration_x), "right": list(self.calibration_y)},
            "fitted_on": self.fitted_on,
            "min_evaluations": self.min_evaluations,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Combiner:
        names = list(raw["evidence"])
        if names != list(EVIDENCE_NAMES):
            raise ValueError(f"combiner weights are for evidence {names}, not {list(EVIDENCE_NAMES)}")
        calibration: dict[str, Any] = raw.get("calibration") or {}
        return cls(
            weights=np.asarray(raw["weights"], dtype=float),
            bias=np.asarray(raw["bias"], dtype=float),
            calibration_x=tuple(float(v) for v in calibration.get("p", ())),
            calibration_y=tuple(float(v) for v in calibration.get("right", ())),
            fitted_on=str(raw.get("fitted_on", "")),
            min_evaluations=int(raw.get("min_evaluations", 10)),
        )


@cache
def default_combiner() -> Combiner:
    return Combiner.from_dict(json.loads(WEIGHTS_FILE.read_text()))
