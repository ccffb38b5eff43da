"""The gain model: for each change the ladder could propose, the predicted relative
change in held-out error it would bring.

Where the combiner says which class a run most likely belongs to, this model
says what following each change would likely give: for a run's evidence (the
combiner's vector: curve features, rule strengths, the regularization when
the config is known), one small ensemble of regression trees per change
predicts `1 - new error / old error` on data the run never saw (positive:
the change helps). The changes are the ladder's steps (`CHANGES`): one rung
more or less L2/L1, one dropout step more or less, stopping at the val
minimum, training twice as long (and twice the units, once the corpus has
width steps).

The trees are data: `gains.json` beside this module, written by
`benchmarks/fit_gains.py` from the corpus factory's runs, where every
neighbour's held-out error is known. Inference is numpy only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from fitdoc.verdict import Cause, Verdict

WEIGHTS_FILE = Path(__file__).with_name("gains.json")


@dataclass(frozen=True)
class ChangeKind:
    """One kind of ladder step: which way it moves the run and what it says about it."""

    name: str
    verdict: Verdict
    cause: Cause
    text: str


CHANGES: tuple[ChangeKind, ...] = (
    ChangeKind("penalty_up", Verdict.OVERFIT, Cause.GAP, "one rung more L2/L1 (0 -> 1e-4, then x10)"),
    ChangeKind("dropout_up", Verdict.OVERFIT, Cause.GAP, "one dropout step more (0 -> 0.2 -> 0.5)"),
    ChangeKind("stop_at_min", Verdict.OVERFIT, Cause.REBOUND, "stop at the val minimum"),
    ChangeKind("penalty_down", Verdict.UNDERFIT, Cause.OVER_REGULARIZED, "one rung less L2/L1 (/10, then 0)"),
    ChangeKind("dropout_down", Verdict.UNDERFIT, Cause.OVER_REGULARIZED, "one dropout step less"),
    ChangeKind("epochs_x2", Verdict.UNDERFIT, Cause.NOT_CONVERGED, "train twice as long"),
    ChangeKind("units_x2", Verdict.UNDERFIT, Cause.CAPACITY, "twice the units per hidden layer"),
)
KINDS = {c.name: c for c in CHANGES}
# Twice the units is predicted only for nets known to be narrower than this: the corpus'
# width steps are mostly narrow nets (2-16 units), so for a wider or unknown width the
# trees would extrapolate.
UNITS_X2_BELOW = 32
# A change whose held-out skill (`GainModel.skill`) is below this has its prediction quoted
# as weak in the ranker's note (twice the units: 0.01); it decides no verdict, only wording.
WEAK_SKILL = 0.1


def predictable(kind: str, units: int | None) -> bool:
    """Whether the gain model predicts this change for a net of `units` (None: unknown)."""
    return kind != "units_x2" or (units is not None and units < UNITS_X2_BELOW)


@dataclass(frozen=True)
class Trees:
    """A boosted ensemble of regression trees, flattened to arrays (one row per node).

    `feature[i] < 0` marks a leaf with output `value[i]`; otherwise go `left[i]`
    when x[feature[i]] <= threshold[i], else `right[i]`. Every tree starts at its
    `roots` entry. The prediction is `base + sum of the leaves reached`.
    """

    base: float
    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray

    def predict(self, x: np.ndarray) -> float:
        node = self.roots.copy()
        for _ in range(64):  # deeper than any fitted tree
            inner = self.feature[node] >= 0
            if not inner.any():
                break
            f = self.feature[node[inner]]
            go_left = x[f] <= self.threshold[node[inner]]
            node[inner] = np.where(go_left, self.left[node[inner]], self.right[node[inner]])
        return float(self.base + self.value[node].sum())

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": round(self.base, 6),
            "roots": self.roots.tolist(),
            "feature": self.feature.tolist(),
            "threshold": [round(float(t), 6) for t in self.threshold],
            "left": self.left.tolist(),
            "right": self.right.tolist(),
            "value": [round(float(v), 6) for v in self.value],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Trees:
        return cls(
            base=float(raw["base"]),
            roots=np.asarray(raw["roots"], dtype=np.int64),
            feature=np.asarray(raw["feature"], dtype=np.int64),
            threshold=np.asarray(raw["threshold"], dtype=float),
            left=np.asarray(raw["left"], dtype=np.int64),
            right=np.asarray(raw["right"], dtype=np.int64),
            value=np.asarray(raw["value"], dtype=float),
        )

    def importance(self, n_features: int) -> np.ndarray:
        """How often each evidence term is split on (a plain count: what the trees weigh)."""
        inner = self.feature[self.feature >= 0]
        return np.bincount(inner, minlength=n_features).astype(float)


@dataclass(frozen=True)
class GainModel:
    """Per change, the trees that predict its relative gain; the margin that counts as clear;
    and the confidence maps (predicted margin -> share of verdicts right, held out)."""

    evidence: tuple[str, ...]
    trees: Mapping[str, Trees]
    # A change is predicted to gain clearly when its predicted gain is at least this.
    min_gain: float
    calibration: Mapping[str, tuple[tuple[float, ...], tuple[float, ...]]]
    fitted_on: str = ""
    # What the product uses it for, chosen by `benchmarks/fit_gains.py` from held-out scores:
    # "ranker" (the combiner's verdict, the best-predicted step in its direction),
    # "decision" (verdict and step from the predicted gains) or "off".
    use: str = "ranker"
    # A balanced verdict of the combiner is overturned when some change is predicted to gain
    # at least this (chosen by `benchmarks/fit_gains.py` on held-out families); None: never.
    override_gain: float | None = None
    # Per change, its skill: the correlation of predicted with measured gain, held out (one
    # family at a time), as `benchmarks/fit_gains.py` measured it when it wrote the model.
    skill: Mapping[str, float] = field(default_factory=dict)
    # Per kind of the ladder's own first step, how much more another must be predicted to gain
    # before it goes first (`rank`), chosen by `benchmarks/fit_gains.py` on held-out advice; a
    # kind not named uses `min_gain`, the label's margin.
    rank_margins: Mapping[str, float] = field(default_factory=dict)

    def predict(self, x: np.ndarray, available: Sequence[str] | None = None) -> dict[str, float]:
        """Predicted relative gain of each available change (positive: lower held-out error)."""
        names = [n for n in self.trees if available is None or n in available]
        return {n: self.trees[n].predict(x) for n in names}

    def rank(self, gains: Mapping[str, float], verdict: Verdict, incumbent: str = "") -> list[str]:
        """The changes in this verdict's direction, best predicted gain first; except that the
        ladder's own first step (`incumbent`, a change kind or any other name) stays first unless
        another is predicted to gain clearly more (by `rank_margin(incumbent)`; an incumbent
        with no prediction counts as 0): a small predicted edge does not overturn the ladder."""
        same_way = sorted((n for n in gains if KINDS[n].verdict is verdict), key=lambda n: -gains[n])
        if not incumbent or not same_way or same_way[0] == incumbent:
            return same_way
        if gains[same_way[0]] - gains.get(incumbent, 0.0) >= self.rank_margin(incumbent):
            return same_way
        return [incumbent, *(n for n in same_way if n != incumbent)]

    def rank_margin(self, incumbent: str) -> float:
        """The predicted edge over the ladder's step `incumbent` that puts another first."""
        return self.rank_margins.get(incumbent, self.min_gain)

    def decide(self, gains: Mapping[str, float]) -> tuple[Verdict, Cause | None, str | None, float]:
        """(verdict, cause, the best change or None, calibrated confidence) from predicted gains."""
        if not gains:
            return Verdict.BALANCED, None, None, self.confidence("balanced", self.min_gain)
        best = max(gains, key=lambda n: gains[n])
        margin = gains[best] - self.min_gain
        if margin < 0:
            return Verdict.BALANCED, None, None, self.confidence("balanced", -margin)
        kind = KINDS[best]
        return kind.verdict, kind.cause, best, self.confidence("directed", margin)

    def overturn(self, gains: Mapping[str, float]) -> str | None:
        """The change that overturns a balanced verdict: the best predicted one, when it is
        predicted to gain at least `override_gain`; else None."""
        if self.override_gain is None or not gains:
            return None
        best = max(gains, key=lambda n: gains[n])
        return best if gains[best] >= self.override_gain else None

    def confidence(self, which: str, margin: float) -> float:
        xs, ys = self.calibration.get(which, ((), ()))
        if not xs:
            return 0.5
        return float(np.interp(margin, xs, ys))

    def to_dict(self) -> dict[str, Any]:
        return {
            "evidence": list(self.evidence),
            "min_gain": self.min_gain,
            "calibration": {
                k: {"margin": list(x), "right": list(y)} for k, (x, y) in self.calibration.items()
            },
            "fitted_on": self.fitted_on,
            "use": self.use,
            "override_gain": self.override_gain,
            "skill": {k: round(float(v), 3) for k, v in self.skill.items()},
            "rank_margins": {k: float(v) for k, v in self.rank_margins.items()},
            "trees": {name: t.to_dict() for name, t in self.trees.items()},
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> GainModel:
        from fitdoc.diagnosis.rules.combiner import EVIDENCE_NAMES

        names = tuple(raw["evidence"])
        if names != EVIDENCE_NAMES:
            raise ValueError(f"gain model is for evidence {list(names)}, not {list(EVIDENCE_NAMES)}")
        unknown = set(raw["trees"]) - set(KINDS)
        if unknown:
            raise ValueError(f"gain model has trees for unknown changes {sorted(unknown)}")
        return cls(
            evidence=names,
            trees={name: Trees.from_dict(t) for name, t in raw["trees"].items()},
            min_gain=float(raw["min_gain"]),
            calibration={
                k: (tuple(float(v) for v in c["margin"]), tuple(float(v) for v in c["right"]))
                for k, c in raw.get("calibration", {}).items()
            },
            fitted_on=str(raw.get("fitted_on", "")),
            use=str(raw.get("use", "ranker")),
            override_gain=None if raw.get("override_gain") is None else float(raw["override_gain"]),
            skill={str(k): float(v) for k, v in raw.get("skill", {}).items()},
            rank_margins={str(k): float(v) for k, v in raw.get("rank_margins", {}).items()},
        )

    def importance(self) -> dict[str, dict[str, float]]:
        """Per change, the share of splits on each evidence term (the ones it weighs)."""
        out = {}
        for name, trees in self.trees.items():
            counts = trees.importance(len(self.evidence))
            total = counts.sum() or 1.0
            out[name] = {e: float(c / total) for e, c in zip(self.evidence, counts, strict=True) if c}
        return out


@cache
def default_gain_model() -> GainModel | None:
    """The committed gain model, or None when none is committed."""
    if not WEIGHTS_FILE.is_file():
        return None
    return GainModel.from_dict(json.loads(WEIGHTS_FILE.read_text()))
