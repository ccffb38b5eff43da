"""The value every tabular reader produces: named numeric columns and their epochs.

It sits below `tabular` and `steps`, which both build it, so neither imports the other's module for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Table:
    """Named numeric columns of equal length with their 0-based epochs.

    Step-based logs add what one point is (`point`: epoch or evaluation), the
    epochs of training done at each point (`epoch_at`, float) and the global
    step of each (`steps`); None when the file does not say. `settings`: the
    knobs the run's logged params name (`readers.params`), dotted keys.
    """

    columns: dict[str, np.ndarray]
    epochs: np.ndarray
    format: str
    notes: tuple[str, ...]
    epoch_at: np.ndarray | None = None
    steps: np.ndarray | None = None
    point: str = "epoch"
    settings: Mapping[str, float | int] = field(default_factory=dict)
