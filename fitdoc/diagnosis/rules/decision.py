"""The decision's own thresholds: the numbers the decision (`fitdoc.diagnosis.decide`)
reads beside the rules' findings, declared like a rule's so `fitdoc rules` shows them
and `--thresholds` overrides them (`decision: {min_still_falling: 0.1}`).

Where the decision asks a question a rule already asks, it reads that rule's threshold
instead of declaring its own: "is the val minimum in the run's last part?" is FD202's
`min_best_position`; "is this L2 strong?" is FD201's `min_l2`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from fitdoc.diagnosis.rules.base import Threshold

CODE = "decision"


@dataclass(frozen=True)
class DecisionThresholds:
    """Named thresholds that belong to no single rule (same shape as a `Rule`'s)."""

    code: str
    name: str
    description: str
    specs: tuple[Threshold, ...]
    thresholds: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        values = {spec.name: float(spec.default) for spec in self.specs}
        values.update(self.thresholds)
        object.__setattr__(self, "thresholds", MappingProxyType(values))

    def with_thresholds(self, overrides: Mapping[str, float]) -> DecisionThresholds:
        unknown = set(overrides) - set(self.thresholds)
        if unknown:
            raise KeyError(sorted(unknown)[0])
        return replace(self, thresholds={**self.thresholds, **overrides})


DECISION = DecisionThresholds(
    code=CODE,
    name="decision",
    description="The decision's own numbers: the cause when no finding gives one, and the plateau note.",
    specs=(
        Threshold(
            "min_still_falling",
            0.05,
            "predicted fall of val at twice the epochs, or its fall over the last doubling, from which "
            "an underfit run with no finding of its cause counts as not converged (not over-regularized)",
        ),
        Threshold(
            "level_band",
            0.10,
            "how far val/train may lie from 1 for val to count as level with train (the plateau note)",
            "ratio",
        ),
        Threshold(
            "max_flat_drop",
            0.05,
            "change of train over the second half below which train counts as flat (the plateau note)",
        ),
    ),
)
