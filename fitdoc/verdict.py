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

    def to_dict(self) -> dict[str, Any]:
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
