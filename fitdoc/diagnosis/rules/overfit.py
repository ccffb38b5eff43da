"""Overfitting: validation error held well above train, or a validation
minimum long before the end while training kept improving (missed early stop)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from fitdoc.diagnosis.features import POINT_SPAN, Features
from fitdoc.diagnosis.rules._config import Regularization
from fitdoc.diagnosis.rules.base import Vote, strength
from fitdoc.diagnosis.rules.registry import rule
from fitdoc.verdict import Cause, Verdict


@rule(
    "FD101",
    "overfit.gap",
    "Validation error stays several times the train error at the end of training.",
    max_ratio=(3.0, "ratio", "val/train ratio (mean of the last tenth) above which the run overfits"),
    full_ratio=(6.0, "ratio", "val/train ratio at which the finding is at full strength"),
)
def gap(f: Features, reg: Regularization | None, t: Mapping[str, float]) -> Vote | None:
    ratio = f.gap_ratio_end
    if not math.isfinite(ratio) or ratio <= t["max_ratio"]:
        return None
    return Vote(
        Verdict.OVERFIT,
        Cause.GAP,
        strength(ratio, t["max_ratio"], t["full_ratio"]),
        ratio,
        t["max_ratio"],
        f"val/train {f.metric} {ratio:.2f} > {t['max_ratio']:.2f} at the end",
    )


@rule(
    "FD102",
    "overfit.rebound",
    "Stopping at half the epochs would have ended with a clearly lower validation error (missed early stop).",
    min_gain=(
        0.10,
        "fraction",
        "fall of the final val had the run stopped at half its epochs (5-epoch means)",
    ),
    full_gain=(0.30, "fraction", "that fall at which the finding is at full strength"),
    min_z=(2.0, "noise units", "that fall in units of val's epoch-to-epoch jitter needed to trust it"),
)
def rebound(f: Features, reg: Regularization | None, t: Mapping[str, float]) -> Vote | None:
    # The same comparison the question "would stopping earlier have helped?"
    # asks: val over the epochs ending at E/2 against val over the last epochs.
    gain = f.val_stop_gain
    if not math.isfinite(gain) or gain < t["min_gain"]:
        return None
    # Noisy small-data runs: a rise no larger than the jitter of two 5-epoch means is no rebound.
    if _z(gain, f.val_step_noise) < t["min_z"]:
        return None
    if not _train_kept_learning(f):
        return None
    return Vote(
        Verdict.OVERFIT,
        Cause.REBOUND,
        strength(gain, t["min_gain"], t["full_gain"]),
        gain,
        t["min_gain"],
        f"stopping at evaluation {f.n_epochs // 2} of {f.n_epochs} would end val {f.metric} {gain:.0%} lower "
        f">= {t['min_gain']:.0%} (minimum at {f.best_at})",
    )


@rule(
    "FD103",
    "overfit.rising_tail",
    "Validation error rose at every one of the last evaluations while train kept falling (short runs too).",
    min_rises=(3.0, "epochs", "consecutive rises of val at the end that make a trend, not jitter"),
    full_rises=(6.0, "epochs", "consecutive rises at which the finding is at full strength"),
    min_rise=(0.10, "fraction", "rise of the last val above the run's minimum needed to matter"),
)
def rising_tail(f: Features, reg: Regularization | None, t: Mapping[str, float]) -> Vote | None:
    rises, rise = f.val_rise_run, f.val_last_rise
    if rises < t["min_rises"] or not math.isfinite(rise) or rise < t["min_rise"]:
        return None
    if not _train_kept_learning(f):
        return None
    return Vote(
        Verdict.OVERFIT,
        Cause.REBOUND,
        strength(rises, t["min_rises"], t["full_rises"]),
        float(rises),
        t["min_rises"],
        f"val {f.metric} rose at each of the last {rises} evaluations (>= {t['min_rises']:g}), "
        f"ending {rise:.0%} above its minimum at {f.best_at}, while train kept falling",
    )


def _train_kept_learning(f: Features) -> bool:
    """A val rise is a missed early stop only if train kept falling meanwhile (second half)."""
    return math.isfinite(f.train_half_drop) and f.train_half_drop > 0


def _z(change: float, noise: float) -> float:
    """A change between two 5-epoch means in units of its standard error."""
    if not math.isfinite(noise) or noise <= 0:
        return math.inf
    return abs(change) / (noise * math.sqrt(2.0 / POINT_SPAN))
