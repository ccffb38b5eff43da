"""Balanced: positive evidence that the run settled with a moderate gap.

The combiner never says `balanced` by default; only this rule can vote for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fitdoc.features import Features
from fitdoc.rules.base import Vote, strength
from fitdoc.rules.registry import rule
from fitdoc.verdict import Verdict


@rule(
    "FD301",
    "balanced.converged",
    "Validation error settled (no longer falling, no rebound) with a moderate val/train gap.",
    min_half_drop=(0.15, "val fall from mid-run to the end below which val has settled"),
    min_delta=(0.05, "val fall over the last quarter below which val has settled"),
    max_ratio=(2.5, "val/train ratio at the end above which the gap is too wide"),
    max_rebound=(0.10, "rise of the final val above its minimum that is still fine"),
)
def converged(f: Features, config: Any, t: Mapping[str, float]) -> Vote | None:
    half, tail, ratio, rise = f.val_half_drop, f.val_tail_drop, f.gap_ratio_end, f.val_rebound
    if not all(math.isfinite(v) for v in (half, tail, ratio, rise)):
        return None
    if (
        half >= t["min_half_drop"]
        or tail >= t["min_delta"]
        or ratio > t["max_ratio"]
        or rise > t["max_rebound"]
    ):
        return None
    # Evidence is strongest when val is flat and the gap is small.
    settled = strength(max(half, tail * 3, 0.0), t["min_half_drop"], 0.0)
    close = strength(ratio, t["max_ratio"], 1.0)
    return Vote(
        Verdict.BALANCED,
        None,
        min(settled, close),
        ratio,
        t["max_ratio"],
        f"val {f.metric} settled ({half:+.0%} since mid-run < {t['min_half_drop']:.0%}), "
        f"val/train {ratio:.2f} <= {t['max_ratio']:.2f}, {rise:.0%} above its minimum",
    )
