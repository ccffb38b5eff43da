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
from collections.abc import Callable, Sequence
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


def _log1p(value: float) -> float:
    return math.log1p(value) if value > -1 else math.nan


# The constants inside the evidence terms are part of the fitted model, like its weights:
# the weights in combiner.json were fitted on terms built with these values, so they are
# declared here (and shown by `fitdoc rules` in each term's description), not overridable.
RATIO_LOG_RANGE = (-1.0, 3.0)  # log(val/train) is clipped to this range
CHANGE_RANGE = (-1.0, 1.0)  # relative changes (a fall of 0.3 is 30 %) are clipped to this
SHORT_RUN_EVALUATIONS = 20.0  # `short` is this many evaluations over the run's (1 at 20)
SHORT_MAX = 2.0  # ... clipped here: 10 evaluations, the shortest runs it was fitted on
GAP_CLOSED_WITHIN = 0.05  # `gap_closed` falls from 1 to 0 as |log(val/train)| grows to this
PENALTY_FLOOR = 1e-6  # L2/L1 factors at or below this count as none (0 on the log scale)
PENALTY_DECADES = 4.0  # decades from the floor to 1 on the log scale (1e-6 -> 0, 1e-2 -> 1)
PENALTY_MAX = 1.5  # the log-scale penalty is clipped here
NARROW_FROM = 32  # hidden layers this wide or wider count as not narrow (0) ...
NARROW_FULL = 2  # ... and this narrow as fully narrow (1), on a log scale between


@dataclass(frozen=True)
class Term:
    """One evidence term of the curves, declared once: its name, what it measures, its function."""

    name: str
    description: str
    value: Callable[[Features], float]


@dataclass(frozen=True)
class ConfigTerm:
    """One evidence term of the run's regularization (0 when the config is unknown)."""

    name: str
    description: str
    value: Callable[[Regularization], float]


def _known(reg: Regularization) -> float:
    """1 whenever the config is known (the term of a known config, whatever it holds)."""
    return 1.0


def _penalty(reg: Regularization) -> float:
    penalty = max(reg.l2, reg.l1, PENALTY_FLOOR)
    return _clip((math.log10(penalty) - math.log10(PENALTY_FLOOR)) / PENALTY_DECADES, 0.0, PENALTY_MAX)


def _narrow(reg: Regularization) -> float:
    if reg.units <= 0:
        return 0.0
    return _clip(math.log2(NARROW_FROM / reg.units) / math.log2(NARROW_FROM / NARROW_FULL), 0.0, 1.0)


# Each term a (name, what it measures, function) of the features, in weight-vector order.
CURVE_TERMS: tuple[Term, ...] = (
    Term(
        "log_gap_end",
        "log of val/train at the end (last tenth)",
        lambda f: _clip(_log(f.gap_ratio_end), *RATIO_LOG_RANGE),
    ),
    Term(
        "log_gap_best",
        "log of val/train around the val minimum",
        lambda f: _clip(_log(f.gap_ratio_best), *RATIO_LOG_RANGE),
    ),
    Term(
        "stop_gain",
        "fall of the final val had the run stopped at E/2",
        lambda f: _clip(f.val_stop_gain, *CHANGE_RANGE),
    ),
    Term(
        "val_gain_2x",
        "predicted fall of val at twice the epochs",
        lambda f: _clip(f.val_gain_2x, *CHANGE_RANGE),
    ),
    Term(
        "val_last_fall",
        "realized fall of val over the last doubling (E/2 to E)",
        lambda f: _clip(f.val_last_fall, *CHANGE_RANGE),
    ),
    Term(
        "train_half_drop",
        "log(1 + fall of train over the second half)",
        lambda f: _clip(_log1p(f.train_half_drop), *RATIO_LOG_RANGE),
    ),
    Term(
        "train_gain_2x",
        "predicted fall of train at twice the epochs",
        lambda f: _clip(f.train_gain_2x, *CHANGE_RANGE),
    ),
    Term(
        "val_rebound",
        "log(1 + rise of the final val above its minimum)",
        lambda f: _clip(_log1p(f.val_rebound), 0.0, RATIO_LOG_RANGE[1]),
    ),
    Term(
        "best_position",
        "where the val minimum lies (fraction of the run)",
        lambda f: _clip(f.best_position, 0.0, 1.0),
    ),
    Term("val_noise", "val's jitter around its running median", lambda f: _clip(f.val_noise, 0.0, 1.0)),
    Term(
        "progress",
        "largest fall of train or val below its first value",
        lambda f: _clip(max(f.train_progress, f.val_progress), 0.0, 1.0),
    ),
    Term(
        "short",
        f"{SHORT_RUN_EVALUATIONS:g} / evaluations (large for short runs), at most {SHORT_MAX:g}",
        lambda f: _clip(SHORT_RUN_EVALUATIONS / max(f.n_epochs, 1), 0.0, SHORT_MAX),
    ),
    Term(
        "val_gain_2x_half",
        "predicted fall of val at twice the epochs, from the trend of the second half",
        lambda f: _clip(f.val_gain_2x_half, *CHANGE_RANGE),
    ),
    Term(
        "loss_gain_2x",
        "predicted fall of val_loss at twice the epochs (when the metric is not the loss)",
        lambda f: _clip(f.loss_gain_2x, *CHANGE_RANGE),
    ),
    Term(
        "gap_closed",
        f"1 when val equals train at the end, falling to 0 when they are {GAP_CLOSED_WITHIN:.0%} apart",
        lambda f: _clip(1.0 - abs(_log(f.gap_ratio_end)) / GAP_CLOSED_WITHIN, 0.0, 1.0),
    ),
)
CONFIG_TERMS: tuple[ConfigTerm, ...] = (
    ConfigTerm("reg_known", "1 when the run's config is known", _known),
    ConfigTerm(
        "reg_penalty",
        f"L2/L1 factor on a log scale: 0 for none or {PENALTY_FLOOR:g}, 1 for "
        f"{PENALTY_FLOOR * 10**PENALTY_DECADES:g}, at most {PENALTY_MAX:g} (config known)",
        _penalty,
    ),
    ConfigTerm(
        "reg_dropout",
        "dropout rate (config known)",
        lambda r: _clip(r.dropout, 0.0, 1.0),
    ),
    ConfigTerm(
        "net_narrow",
        f"how narrow the hidden layers are, on a log scale: 0 at {NARROW_FROM} units or more, "
        f"1 at {NARROW_FULL} or fewer (config known)",
        _narrow,
    ),
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
    # A narrow net level with train on a flat plateau has no room left (capacity); a wide
    # one there is at the data's noise floor.
    ("narrow_x_gap_closed", "net_narrow", "gap_closed"),
    ("narrow_x_train_drop", "net_narrow", "train_half_drop"),
)
# The rules' own reading: the first verdict in this order that has a finding.
PRECEDENCE = ("FD101", "FD201", "FD204", "FD205", "FD102", "FD103", "FD202", "FD203", "FD301")
CURVE_EVIDENCE: tuple[tuple[str, str], ...] = tuple((t.name, t.description) for t in CURVE_TERMS)
CONFIG_EVIDENCE: tuple[tuple[str, str], ...] = tuple((t.name, t.description) for t in CONFIG_TERMS)
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
EVIDENCE_NAMES = tuple(name for name, _ in EVIDENCE)


def evidence(features: Features, findings: Sequence[Finding], reg: Regularization | None) -> np.ndarray:
    """The evidence vector of one run, in `EVIDENCE_NAMES` order (NaN features count as 0)."""
    base = {term.name: float(term.value(features)) for term in CURVE_TERMS}
    base.update({term.name: 0.0 if reg is None else float(term.value(reg)) for term in CONFIG_TERMS})
    strengths = {f.rule_id: f.strength for f in findings}
    base.update({code: float(strengths.get(code, 0.0)) for code in EVIDENCE_RULES})
    base.update({name: base[a] * base[b] for name, a, b in INTERACTIONS})
    first = next((f for code in PRECEDENCE for f in findings if f.rule_id == code), None)
    base.update({f"first_{c.value}": float(first is not None and first.verdict is c) for c in CLASSES})
    return np.array([base[name] for name in EVIDENCE_NAMES], dtype=float)


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
        p: np.ndarray = np.exp(z)
        return p / float(p.sum())

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
