"""What rules may read from a run's config: its regularization, nothing else."""

from __future__ import annotations

from typing import Any, NamedTuple


class Regularization(NamedTuple):
    l2: float
    l1: float
    dropout: float

    @property
    def any(self) -> bool:
        return self.l2 > 0 or self.l1 > 0 or self.dropout > 0


def regularization(config: Any) -> Regularization | None:
    """The run's L2/L1/dropout, or None when the config is unknown."""
    model = getattr(config, "model", None)
    if model is None:
        return None
    return Regularization(
        float(getattr(model, "l2", 0.0) or 0.0),
        float(getattr(model, "l1", 0.0) or 0.0),
        float(getattr(model, "dropout", 0.0) or 0.0),
    )
