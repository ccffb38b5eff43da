"""Underfitting, with its cause: over-regularized, not converged, too little capacity."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fitdoc.features import Features
from fitdoc.rules._config import regularization
from fitdoc.rules.base import Vote, strength
from fitdoc.rules.registry import rule
from fitdoc.verdict import Cause, Verdict


@rule(
    "FD201",
    "underfit.over_regularized",
    "Train and val close together and flat (or train above val) under strong regularization.",
    max_gap=(1.10, "val/train ratio at or below which the regularizer has closed the gap"),
    max_train_drop=(0.20, "relative fall of train over the second half below which train is flat"),
    train_above=(1.0, "val/train ratio below which train-mode regularization dominates the train error"),
    train_above_unknown=(
        0.98,
        "the same, when the config is unknown (a clear margin, not train level with val)",
    ),
    min_l2=(1e-3, "L2 factor from which the config counts as strongly regularized"),
    min_dropout=(0.2, "dropout rate from which the config counts as strongly regularized"),
    min_reg_share=(0.5, "regularization share of the train loss (when logged) that counts as strong"),
    max_ratio=(2.5, "val/train ratio below which a val rise under dropout is not memorization"),
    dropout_rebound=(0.10, "rise of val above its minimum, under dropout, read as dropout's noise"),
)
def over_regularized(f: Features, config: Any, t: Mapping[str, float]) -> Vote | None:
    if not (math.isfinite(f.gap_ratio_end) and math.isfinite(f.train_half_drop)):
        return None
    reg = regularization(config)
    logged_strong = math.isfinite(f.reg_share) and f.reg_share >= t["min_reg_share"]
    if reg is not None:
        strong = reg.l2 >= t["min_l2"] or reg.l1 >= t["min_l2"] or reg.dropout >= t["min_dropout"]
        what = f"L2 {reg.l2:g}, dropout {reg.dropout:g}"
        train_mode = reg.dropout > 0
    else:
        strong = logged_strong
        what = f"regularization {f.reg_share:.0%} of the loss" if logged_strong else "regularization unknown"
        train_mode = True
    strong = strong or logged_strong
    ratio = f.gap_ratio_end
    # Train (measured with dropout on) above val: the regularizer, not the data, limits the fit.
    # Without a config nothing says a train-mode regularizer is there at all, so the
    # train error must stand clearly above val, not level with it.
    above = t["train_above"] if reg is not None else t["train_above_unknown"]
    if train_mode and (reg is None or reg.any) and ratio < above:
        return Vote(
            Verdict.UNDERFIT,
            Cause.OVER_REGULARIZED,
            strength(ratio, above, above - 0.15),
            ratio,
            above,
            f"train {f.metric} above val: val/train {ratio:.2f} < {above:.2f} ({what})",
        )
    # Under dropout, val rising off an early minimum while it stays near train is
    # dropout's train/inference mismatch (its noise), not memorization.
    rise = f.val_rebound
    # The rise must be a trend, not the spread of a noisy curve around its lowest epoch:
    # val at the end is no lower than half-way through (5-epoch means).
    rising = not (math.isfinite(f.val_stop_gain) and f.val_stop_gain < 0)
    if (
        reg is not None
        and reg.dropout > 0
        and ratio < t["max_ratio"]
        and rise >= t["dropout_rebound"]
        and rising
    ):
        return Vote(
            Verdict.UNDERFIT,
            Cause.OVER_REGULARIZED,
            strength(rise, t["dropout_rebound"], 3 * t["dropout_rebound"]),
            rise,
            t["dropout_rebound"],
            f"under dropout {reg.dropout:g}, val {f.metric} rose {rise:.0%} above its minimum "
            f">= {t['dropout_rebound']:.0%} while val/train stayed {ratio:.2f} < {t['max_ratio']:.2f}",
        )
    if strong and ratio <= t["max_gap"] and f.train_half_drop < t["max_train_drop"]:
        return Vote(
            Verdict.UNDERFIT,
            Cause.OVER_REGULARIZED,
            strength(f.train_half_drop, t["max_train_drop"], 0.0),
            ratio,
            t["max_gap"],
            f"val/train {f.metric} {ratio:.2f} <= {t['max_gap']:.2f} and train fell only "
            f"{f.train_half_drop:.0%} over the second half < {t['max_train_drop']:.0%} ({what})",
        )
    return None


@rule(
    "FD202",
    "underfit.not_converged",
    "Validation error still falling at the end: twice the epochs would lower it measurably.",
    min_gain=(
        0.10,
        "predicted fall of val at twice the epochs (log-epoch trend of the last quarter) from which "
        "training longer helps",
    ),
    min_last_fall=(
        0.15,
        "realized fall of val over the last doubling of the run (E/2 to E, 5-epoch means) from which "
        "training longer helps",
    ),
    start_from_epoch=(0.75, "the val minimum must lie in this last part of the run (fraction)"),
)
def not_converged(f: Features, config: Any, t: Mapping[str, float]) -> Vote | None:
    gain, fall = f.val_gain_2x, f.val_last_fall
    if not math.isfinite(f.best_position) or not (math.isfinite(gain) or math.isfinite(fall)):
        return None
    # A val that falls again after an early minimum is recovering, not converging.
    if f.best_position < t["start_from_epoch"]:
        return None
    if math.isfinite(gain) and gain >= t["min_gain"]:
        return Vote(
            Verdict.UNDERFIT,
            Cause.NOT_CONVERGED,
            strength(gain, t["min_gain"], 4 * t["min_gain"]),
            gain,
            t["min_gain"],
            f"val {f.metric} still falling: its trend over the last quarter predicts {gain:.0%} lower "
            f"at twice the epochs >= {t['min_gain']:.0%}",
        )
    # A short run's last quarter is a handful of noisy epochs whose fitted trend can even
    # point up; what val actually did over the last doubling is the sturdier evidence there.
    if math.isfinite(fall) and fall >= t["min_last_fall"]:
        return Vote(
            Verdict.UNDERFIT,
            Cause.NOT_CONVERGED,
            strength(fall, t["min_last_fall"], 2 * t["min_last_fall"]),
            fall,
            t["min_last_fall"],
            f"val {f.metric} still falling: it fell {fall:.0%} over the last doubling of the run "
            f">= {t['min_last_fall']:.0%}, with its minimum at the end",
        )
    return None


@rule(
    "FD203",
    "underfit.capacity",
    "No regularization left, train flat and val as low as train: the network is too small.",
    max_gap=(1.05, "val/train ratio at or below which there is no overfitting at all"),
    max_train_drop=(0.05, "relative fall of train over the second half below which train is flat"),
)
def capacity(f: Features, config: Any, t: Mapping[str, float]) -> Vote | None:
    reg = regularization(config)
    if reg is None or reg.any:
        return None
    ratio, drop = f.gap_ratio_end, f.train_half_drop
    if not (math.isfinite(ratio) and math.isfinite(drop)):
        return None
    if ratio > t["max_gap"] or drop >= t["max_train_drop"]:
        return None
    return Vote(
        Verdict.UNDERFIT,
        Cause.CAPACITY,
        strength(drop, t["max_train_drop"], 0.0),
        drop,
        t["max_train_drop"],
        f"no regularization, train {f.metric} flat ({drop:.1%} over the second half < "
        f"{t['max_train_drop']:.0%}) and val/train {ratio:.2f} <= {t['max_gap']:.2f}",
    )
