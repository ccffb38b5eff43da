"""The figures every output quotes for a run, defined once.

- **final**: the mean over the last tenth of the epochs (3 to 50 epochs),
  what the rules call "the end of training"; one noisy last epoch does not
  move it. `window` says how many epochs it averages.
- **best**: the minimum over all epochs; `best_epoch` is the epoch of the
  validation minimum (of the train minimum when there is no validation).
- **val/train**: final validation over final train (only when both are
  positive, as ratio rules require).

`diagnose` (its rules and summary), `compare`, `tune` and the Keras callback
all read these values, and every output labels them with `FINAL_TEXT` /
`BEST_TEXT`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fitdoc.diagnosis.features import compute_features
from fitdoc.history.curves import Curves

FINAL_TEXT = "final = mean of the last {window} epochs"
FINAL_TEXT_VARIED = "final = mean of the last tenth of the epochs (3 to 50)"
BEST_TEXT = "best = minimum over all epochs"


@dataclass(frozen=True)
class Figures:
    """A run's final and best train/validation values (None: no such series)."""

    window: int
    final_train: float | None
    final_val: float | None
    best_train: float | None
    best_val: float | None
    best_epoch: int | None
    gap_ratio: float | None

    @property
    def definitions(self) -> str:
        """`final = mean of the last 30 epochs; best = minimum over all epochs`."""
        return f"{FINAL_TEXT.format(window=self.window)}; {BEST_TEXT}"


def run_figures(curves: Curves) -> Figures:
    """The figures of one run, from the same features the rules read."""
    f = compute_features(curves)
    val_known = curves.val is not None and curves.has_validation
    best_epoch = f.best_epoch if val_known and f.best_epoch >= 0 else _train_best_epoch(curves)
    return Figures(
        window=f.window,
        final_train=_known(f.train_end),
        final_val=_known(f.val_end) if val_known else None,
        best_train=_known(f.train_min),
        best_val=_known(f.val_min) if val_known else None,
        best_epoch=best_epoch,
        gap_ratio=_known(f.gap_ratio_end),
    )


def _train_best_epoch(curves: Curves) -> int | None:
    train = curves.train
    if train is None or not np.isfinite(train).any():
        return None
    return int(curves.epochs[int(np.nanargmin(np.where(np.isfinite(train), train, np.nan)))])


def _known(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
