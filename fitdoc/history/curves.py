"""The one value every history reader returns and every rule reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Curves:
    """Aligned learning curves of one training run.

    `train` and `val` are the chosen metric (MAE where present, else the loss),
    one value per point, NaN where a point has no value (never filled in).
    `val` is None when the history has no validation series at all.

    A point is an epoch (`point == "epoch"`, `epochs` 0-based) or, in
    step-based logs evaluated mid-epoch, an evaluation (`point ==
    "evaluation"`, `epochs` then numbers the evaluations). `epoch_at` holds the
    epochs of training done at each point as logged (4.5 = half-way through
    the fifth) and `steps` the global step, when the file says; `span` words
    the x-axis honestly ("7 evaluations over 13.5 epochs"). `settings`: the
    config knobs the run's logged params name (`{"model.l2": 0.0}`), empty
    when it logged none. `val_accuracy`: the validation accuracy of a
    classification log, beside the diagnosed loss (None when none is logged):
    an accuracy that never moves says the model gives the same answers all run.
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
    epoch_at: np.ndarray | None = None
    steps: np.ndarray | None = None
    point: str = "epoch"
    settings: Mapping[str, float | int] = field(default_factory=dict)
    val_accuracy: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.epochs)

    @property
    def epochs_done(self) -> np.ndarray:
        """Epochs of training done at each point: `epoch_at` where logged, else `epochs + 1`."""
        if self.epoch_at is not None:
            return np.asarray(self.epoch_at, dtype=float)
        return np.asarray(self.epochs, dtype=float) + 1.0

    @property
    def span(self) -> str:
        """The x-axis in words: "200 epochs", "7 evaluations over 13.5 epochs", "5 evaluations over 5000 steps"."""
        n = len(self)
        if self.point == "epoch":
            return _count(n, "epoch")
        counted = _count(n, self.point)
        done = self.epochs_done if self.epoch_at is not None else np.array([])
        done = done[np.isfinite(done)]
        if done.size:
            return f"{counted} over {_count(float(done.max()), 'epoch')}"
        steps = np.array([]) if self.steps is None else np.asarray(self.steps, dtype=float)
        steps = steps[np.isfinite(steps)]
        if steps.size:
            return f"{counted} over {_count(float(steps.max()), 'step')}"
        return counted

    @property
    def has_validation(self) -> bool:
        return self.val is not None and bool(np.isfinite(self.val).any())


def _count(value: float, unit: str) -> str:
    text = f"{value:g}" if value < 1e6 else f"{value:,.0f}"
    return f"{text} {unit}" + ("" if value == 1 else "s")
