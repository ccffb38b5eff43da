"""The one value every history reader returns and every rule reads."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Curves:
    """Aligned learning curves of one training run.

    `train` and `val` are the chosen metric (MAE where present, else the loss),
    one value per epoch, NaN where an epoch has no value. `val` is None when
    the history has no validation series at all.
    """

    epochs: np.ndarray
    train: np.ndarray | None
    val: np.ndarray | None
    metric: str
    train_name: str | None = None
    val_name: str | None = None
    train_loss: np.ndarray | None = None
    val_loss: np.ndarray | None = None
    reg_loss: np.ndarray | None = None
    source: str = "<memory>"
    format: str = "unknown"
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.epochs)

    @property
    def has_validation(self) -> bool:
        return self.val is not None and bool(np.isfinite(self.val).any())
