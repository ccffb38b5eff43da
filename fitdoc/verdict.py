"""The values a diagnosis is made of: findings, the verdict, the suggestion.

These are the JSON contract (docs/json-schema.md); `to_dict` is the
only place that decides field names, and `SCHEMA_VERSION` changes when they do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

SCHEMA_VERSION = 1


class Verdict(str, Enum):
    OVERFIT = "overfit"
    UNDERFIT = "underfit"
    BALANCED = "balanced"
    INCONCLUSIVE = "inconclusive"

    def __str__(self) -> str:
        return self.value


class Cause(str, Enum):
    OVER_REGULARIZED = "over-regularized"
    NOT_CONVERGED = "not converged"
    CAPACITY = "capacity"
    GAP = "gap"
    REBOUND = "rebound"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Finding:
    """One rule's observation: what it measured against which threshold."""

    rule_id: str
    name: str
    verdict: Verdict | None
    cause: Cause | None
    strength: float
    value: float | None
    threshold: float | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "name": self.name,
            "verdict": None if self.verdict is None else self.verdict.value,
            "cause": None if self.cause is None else self.cause.value,
            "strength": round(float(self.strength), 4),
            "value": _num(self.value),
            "threshold": _num(self.threshold),
            "message": self.message,
        }


@dataclass(frozen=True)
class Change:
    """One concrete config edit (`key: from -> to`), or a generic wording
    when the run's config is unknown (`from_`/`to` are then None)."""

    key: str
    from_: Any
    to: Any
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "from": self.from_, "to": self.to, "text": self.text}


@dataclass(frozen=True)
class Suggestion:
    primary: Change
    alternatives: tuple[Change, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.primary.to_dict(),
            "alternatives": [c.to_dict() for c in self.alternatives],
        }


@dataclass(frozen=True)
class Measurement:
    """One change a probed run measured: a trained neighbour, or stopping at the val minimum.

    `final_val` is its final val MAE, `gain` the relative fall against the run's
    (0.78: 78 % lower), `noise` the paired spread it was judged against, `clear`
    whether it won; `direction` +1 for more regularization, -1 for less.
    """

    change: Change
    final_val: float | None
    gain: float | None
    noise: float | None
    clear: bool
    status: str
    direction: int
    at_epoch: int | None = None  # early stopping: the (1-based) epoch it would restore

    def to_dict(self) -> dict[str, Any]:
        return {
            "change": {"key": self.change.key, "from": self.change.from_, "to": self.change.to},
            "final_val_mae": _num(self.final_val),
            "gain": _num(self.gain),
            "noise": _num(self.noise),
            "clear": self.clear,
            "status": self.status,
            "direction": "more" if self.direction > 0 else "less",
            **({} if self.at_epoch is None else {"at_epoch": self.at_epoch}),
        }


@dataclass(frozen=True)
class Diagnosis:
    source: str
    verdict: Verdict
    cause: Cause | None
    confidence: float
    findings: tuple[Finding, ...]
    suggestion: Suggestion | None
    metric: str
    epochs: int
    summary: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    # `measured` for a probed run (fitdoc.diagnosis.measured), with what each neighbour
    # showed and the curves-only verdict kept beside it; `curves` otherwise.
    basis: str = "curves"
    measured: tuple[Measurement, ...] = ()
    curves_verdict: tuple[Verdict, Cause | None, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = self._core()
        out["basis"] = self.basis
        if self.basis == "measured":
            out["measured"] = [m.to_dict() for m in self.measured]
            if self.curves_verdict is not None:
                verdict, cause, confidence = self.curves_verdict
                out["curves_verdict"] = {
                    "verdict": verdict.value,
                    "cause": None if cause is None else cause.value,
                    "confidence": round(float(confidence), 3),
                }
        return out

    def _core(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "source": self.source,
            "verdict": self.verdict.value,
            "cause": None if self.cause is None else self.cause.value,
            "confidence": round(float(self.confidence), 3),
            "summary": self.summary,
            "metric": self.metric,
            "epochs": self.epochs,
            "findings": [f.to_dict() for f in self.findings],
            "suggestion": None if self.suggestion is None else self.suggestion.to_dict(),
            "notes": list(self.notes),
        }


def _num(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return float(f"{value:.6g}")
