"""What rules may read from a run's config: its regularization and how wide its hidden
layers are (a net too narrow for its data looks, on its curves alone, like one at the
noise floor), nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from fitdoc.config import AnyConfig


class Regularization(NamedTuple):
    l2: float
    l1: float
    dropout: float
    units: int = 0  # units per hidden layer; 0 when the config does not say

    @property
    def any(self) -> bool:
        return self.l2 > 0 or self.l1 > 0 or self.dropout > 0


def regularization(config: AnyConfig | None) -> Regularization | None:
    """The run's L2/L1/dropout, or None when the config is unknown."""
    if config is None:
        return None
    model = config.model
    return Regularization(float(model.l2), float(model.l1), float(model.dropout), int(model.units))
