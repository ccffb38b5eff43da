"""The best epoch so far of a monitored series (lower is better), kept as epochs end.

One home for what a training loop and `FitdocCallback` both track: the lowest
finite value and the 0-based epoch label it came at, with Keras EarlyStopping's
`min_delta` (the improvement that counts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class BestSoFar:
    """The lowest finite value seen so far and its epoch (None before the first)."""

    min_delta: float = 0.0
    value: float = math.inf
    epoch: int | None = None

    def update(self, epoch: int, value: float | None) -> bool:
        """Take epoch `epoch`'s value; True when it is a new best (finite, and lower than
        the best so far by more than `min_delta`)."""
        if value is None or not math.isfinite(value):
            return False
        if self.epoch is not None and value >= self.value - self.min_delta:
            return False
        self.value, self.epoch = value, epoch
        return True
