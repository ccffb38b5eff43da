"""Overfitting: validation error held well above train, or a validation
minimum long before the end while training kept improving (missed early stop)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fitdoc.features import Features
from fitdoc.rules.base import Vote, strength
from fitdoc.rules.registry import rule
from fitdoc.verdict import Cause, Verdict


@rule(
    "FD101",
    "overfit.gap",
    "Validation error stays several times the train error at the end of training.",
    max_ratio=(3.0, "val/train ratio (mean of the last tenth) above which the run overfits"),
)
def gap(f: Features, config: Any, t: Mapping[str, float]) -> Vote | None:
    ratio = f.gap_ratio_end
    if not math.isfinite(ratio) or ratio <= t["max_ratio"]:
        return None
    return Vote(
        Verdict.OVERFIT,
        Cause.GAP,
        strength(ratio, t["max_ratio"], 2 * t["max_ratio"]),
        ratio,
        t["max_ratio"],
        f"val/train {f.metric} {ratio:.2f} > {t['max_ratio']:.2f} at the end",
    )


@rule(
    "FD102",
    "overfit.rebound",
    "Validation minimum well before the end, then rising while train still improves (missed early stop).",
    patience=(0.25, "fraction of the run after the validation minimum needed to call it early"),
    min_delta=(0.10, "rise of the final val error above its minimum, relative to the minimum"),
)
def rebound(f: Features, config: Any, t: Mapping[str, float]) -> Vote | None:
    rise, position = f.val_rebound, f.best_position
    if not (math.isfinite(rise) and math.isfinite(position)):
        return None
    if position > 1 - t["patience"] or rise < t["min_delta"]:
        return None
    # Only a missed early stop if training kept learning after the minimum.
    if not (math.isfinite(f.train_half_drop) and f.train_half_drop > 0):
        return None
    return Vote(
        Verdict.OVERFIT,
        Cause.REBOUND,
        strength(rise, t["min_delta"], 3 * t["min_delta"]),
        rise,
        t["min_delta"],
        f"val {f.metric} minimum at epoch {f.best_epoch} of {f.n_epochs}; "
        f"final {rise:.0%} above it > {t['min_delta']:.0%}",
    )
