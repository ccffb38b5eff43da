"""What a rule is: a code, a dotted name, a one-line description, named
thresholds with their defaults, and a pure check over curve features.

A rule's check returns a `Vote` (or None when it sees nothing); `Rule.evaluate`
stamps the rule's code and name on it, so checks stay small and a rule cannot
mislabel its own finding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import NamedTuple

from fitdoc.diagnosis.features import Features
from fitdoc.diagnosis.rules._config import Regularization
from fitdoc.verdict import Cause, Finding, Verdict


@dataclass(frozen=True)
class Threshold:
    """One named, documented threshold: its default and its unit. A finding's
    strength is 0.5 at its threshold and 1.0 at a declared `full_*` threshold.

    Units: `ratio` (val/train), `fraction` (a share of a value: 0.10 is 10 %),
    `fraction of the run` (a position, 0.75 is the last quarter), `epochs`,
    `noise units` (a change divided by its standard error), `L2 factor`,
    `dropout rate`.
    """

    name: str
    default: float
    description: str
    unit: str = "fraction"


class Vote(NamedTuple):
    verdict: Verdict | None
    cause: Cause | None
    strength: float
    value: float | None
    threshold: float | None
    message: str


Check = Callable[[Features, "Regularization | None", Mapping[str, float]], "Vote | None"]


@dataclass(frozen=True)
class Rule:
    """A small pure rule. `thresholds` holds the values in force (defaults
    unless overridden); `specs` holds their defaults and descriptions."""

    code: str
    name: str
    description: str
    specs: tuple[Threshold, ...]
    check: Check = field(repr=False, compare=False)
    thresholds: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        values = {spec.name: float(spec.default) for spec in self.specs}
        values.update(self.thresholds)
        object.__setattr__(self, "thresholds", MappingProxyType(values))

    def evaluate(self, features: Features, reg: Regularization | None = None) -> Finding | None:
        """The rule's finding for these features (and the run's regularization, or None)."""
        vote = self.check(features, reg, self.thresholds)
        if vote is None:
            return None
        return Finding(
            rule_id=self.code,
            name=self.name,
            verdict=vote.verdict,
            cause=vote.cause,
            strength=min(1.0, max(0.0, float(vote.strength))),
            value=vote.value,
            threshold=vote.threshold,
            message=vote.message,
        )

    def with_thresholds(self, overrides: Mapping[str, float]) -> Rule:
        """A copy with some thresholds changed (names must be known)."""
        unknown = set(overrides) - set(self.thresholds)
        if unknown:
            raise KeyError(sorted(unknown)[0])
        return replace(self, thresholds={**self.thresholds, **overrides})


def strength(value: float, threshold: float, full: float) -> float:
    """0.5 at the threshold, rising linearly to 1.0 at `full` (either direction).

    A finding just past its threshold is weak evidence; one far past it is strong.
    """
    if full == threshold:
        return 1.0
    return min(1.0, max(0.5, 0.5 + 0.5 * (value - threshold) / (full - threshold)))
