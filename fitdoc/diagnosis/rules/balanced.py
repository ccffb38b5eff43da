"""Balanced: positive evidence that the run settled with a moderate gap.

The combiner never says `balanced` by default; only this rule votes for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from fitdoc.diagnosis.features import Features
from fitdoc.diagnosis.rules._config import Regularization
from fitdoc.diagnosis.rules.base import Vote, strength
from fitdoc.diagnosis.rules.registry import rule
from fitdoc.verdict import Verdict


@rule(
    "FD301",
    "balanced.converged",
    "Validation error settled (twice the epochs would barely help, no rebound) with a moderate val/train gap.",
    min_gain=(0.10, "fraction", "predicted fall of val at twice the epochs below which val has settled"),
    max_ratio=(3.0, "ratio", "val/train ratio at the end above which the gap is too wide"),
    max_rebound=(
        0.10,
        "fraction",
        "rise of the final val above its level half-way (5-epoch means) that is still fine",
    ),
    max_last_fall=(
        0.15,
        "fraction",
        "fall of val over the last doubling of the run (E/2 to E) below which it has settled",
    ),
    max_rise_2x=(
        0.05,
        "fraction",
        "predicted rise of val at twice the epochs (its trend over the last quarter) below which it has settled",
    ),
    full_gain=(0.0, "fraction", "predicted fall of val at twice the epochs at which val is fully settled"),
    full_ratio=(1.0, "ratio", "val/train ratio at which the gap is no gap at all (full strength)"),
)
def converged(f: Features, reg: Regularization | None, t: Mapping[str, float]) -> Vote | None:
    gain, ratio = f.val_gain_2x, f.gap_ratio_end
    # The change of the end against half-way (5-epoch means, as FD102 reads it): the spread
    # of a noisy curve around its single lowest epoch is not a rebound. It is minus the
    # fall over the last doubling, read as measured (not recomputed from val_stop_gain).
    change = -f.val_last_fall
    if not all(math.isfinite(v) for v in (gain, ratio, change)):
        return None
    if gain >= t["min_gain"] or ratio > t["max_ratio"] or change > t["max_rebound"]:
        return None
    # A val whose recent trend points up is getting worse, not settling (short runs above all).
    if gain <= -t["max_rise_2x"]:
        return None
    # A val that fell this much from E/2 to E has not settled, whatever a short tail's trend says.
    if f.val_last_fall >= t["max_last_fall"]:
        return None
    # Evidence is strongest when val is flat and the gap is small.
    settled = strength(max(gain, 0.0), t["min_gain"], t["full_gain"])
    close = strength(ratio, t["max_ratio"], t["full_ratio"])
    moved = "rose" if change >= 0 else "fell"
    return Vote(
        Verdict.BALANCED,
        None,
        min(settled, close),
        ratio,
        t["max_ratio"],
        f"val {f.metric} levelling off: its trend gains {max(gain, 0.0):.0%} at twice the epochs "
        f"< {t['min_gain']:.0%}, and it {moved} {abs(change):.0%} from half-way to the end "
        f"(settled: rise <= {t['max_rebound']:.0%}, fall < {t['max_last_fall']:.0%}); "
        f"val/train {ratio:.2f} <= {t['max_ratio']:.2f}",
    )
