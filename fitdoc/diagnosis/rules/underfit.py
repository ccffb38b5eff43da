"""Underfitting, with its cause: over-regularized, not converged, too little
capacity, or a model that has barely learned at all."""

from __future__ import annotations

import math
from collections.abc import Mapping

from fitdoc.diagnosis.features import Features
from fitdoc.diagnosis.rules._config import Regularization
from fitdoc.diagnosis.rules.base import Vote, strength
from fitdoc.diagnosis.rules.registry import rule
from fitdoc.verdict import Cause, Verdict


def _what(reg: Regularization | None, f: Features, logged_strong: bool) -> str:
    if reg is not None:
        return (
            f"L2 {reg.l2:g}, L1 {reg.l1:g}, dropout {reg.dropout:g}"
            if reg.l1
            else f"L2 {reg.l2:g}, dropout {reg.dropout:g}"
        )
    return f"regularization {f.reg_share:.0%} of the loss" if logged_strong else "regularization unknown"


@rule(
    "FD201",
    "underfit.over_regularized",
    "Train and val close together and train flat under strong regularization.",
    max_gap=(1.10, "ratio", "val/train ratio at or below which the regularizer has closed the gap"),
    max_train_drop=(0.20, "fraction", "fall of train over the second half below which train is flat"),
    min_l2=(1e-3, "L2 factor", "L2 (or L1) factor from which the config counts as strongly regularized"),
    min_dropout=(0.2, "dropout rate", "dropout rate from which the config counts as strongly regularized"),
    min_reg_share=(
        0.5,
        "fraction",
        "regularization share of the train loss (when logged) that counts as strong",
    ),
    full_train_drop=(
        0.0,
        "fraction",
        "fall of train over the second half at which the finding is at full strength",
    ),
)
def over_regularized(f: Features, reg: Regularization | None, t: Mapping[str, float]) -> Vote | None:
    ratio, drop = f.gap_ratio_end, f.train_half_drop
    if not (math.isfinite(ratio) and math.isfinite(drop)):
        return None
    logged_strong = math.isfinite(f.reg_share) and f.reg_share >= t["min_reg_share"]
    strong = logged_strong or (
        reg is not None and (max(reg.l2, reg.l1) >= t["min_l2"] or reg.dropout >= t["min_dropout"])
    )
    if not strong or ratio > t["max_gap"] or drop >= t["max_train_drop"]:
        return None
    return Vote(
        Verdict.UNDERFIT,
        Cause.OVER_REGULARIZED,
        strength(drop, t["max_train_drop"], t["full_train_drop"]),
        ratio,
        t["max_gap"],
        f"val/train {f.metric} {ratio:.2f} <= {t['max_gap']:.2f} and train fell only "
        f"{drop:.0%} over the second half < {t['max_train_drop']:.0%} ({_what(reg, f, logged_strong)})",
    )


@rule(
    "FD204",
    "underfit.train_above_val",
    "Train error (measured with dropout on) above val: the regularizer, not the data, limits the fit.",
    train_above=(
        1.0,
        "ratio",
        "val/train ratio below which train-mode regularization dominates, config known",
    ),
    train_above_unknown=(
        0.98,
        "ratio",
        "the same when the config is unknown (a clear margin, not train level with val)",
    ),
    full_margin=(0.15, "ratio", "how far below that ratio the finding is at full strength"),
)
def train_above_val(f: Features, reg: Regularization | None, t: Mapping[str, float]) -> Vote | None:
    ratio = f.gap_ratio_end
    if not math.isfinite(ratio):
        return None
    # Only dropout (or an unknown regularizer) runs train in a different mode than val.
    if reg is not None and reg.dropout <= 0:
        return None
    above = t["train_above"] if reg is not None else t["train_above_unknown"]
    if ratio >= above:
        return None
    return Vote(
        Verdict.UNDERFIT,
        Cause.OVER_REGULARIZED,
        strength(ratio, above, above - t["full_margin"]),
        ratio,
        above,
        f"train {f.metric} above val: val/train {ratio:.2f} < {above:.2f} ({_what(reg, f, False)})",
    )


@rule(
    "FD205",
    "underfit.dropout_noise",
    "Under dropout, val rising off an early minimum while it stays near train is dropout's noise, not memorization.",
    max_ratio=(2.5, "ratio", "val/train ratio below which a val rise under dropout is not memorization"),
    min_rebound=(0.10, "fraction", "rise of val above its minimum, under dropout, read as dropout's noise"),
    full_rebound=(0.30, "fraction", "that rise at which the finding is at full strength"),
)
def dropout_noise(f: Features, reg: Regularization | None, t: Mapping[str, float]) -> Vote | None:
    if reg is None or reg.dropout <= 0:
        return None
    ratio, rise = f.gap_ratio_end, f.val_rebound
    # The rise must be a trend, not the spread of a noisy curve around its lowest epoch:
    # val at the end is no lower than half-way through (5-epoch means).
    falling = math.isfinite(f.val_stop_gain) and f.val_stop_gain < 0
    if not (math.isfinite(ratio) and math.isfinite(rise)) or falling:
        return None
    if ratio >= t["max_ratio"] or rise < t["min_rebound"]:
        return None
    return Vote(
        Verdict.UNDERFIT,
        Cause.OVER_REGULARIZED,
        strength(rise, t["min_rebound"], t["full_rebound"]),
        rise,
        t["min_rebound"],
        f"under dropout {reg.dropout:g}, val {f.metric} rose {rise:.0%} above its minimum "
        f">= {t['min_rebound']:.0%} while val/train stayed {ratio:.2f} < {t['max_ratio']:.2f}",
    )


@rule(
    "FD202",
    "underfit.not_converged",
    "Validation error still falling at the end: twice the epochs would lower it measurably.",
    min_gain=(
        0.10,
        "fraction",
        "predicted fall of val at twice the epochs (log-epoch trend of the last quarter) from which "
        "training longer helps",
    ),
    full_gain=(0.40, "fraction", "that predicted fall at which the finding is at full strength"),
    min_last_fall=(
        0.15,
        "fraction",
        "realized fall of val over the last doubling of the run (E/2 to E, 5-epoch means) from which "
        "training longer helps",
    ),
    full_last_fall=(0.30, "fraction", "that realized fall at which the finding is at full strength"),
    min_best_position=(
        0.75,
        "fraction of the run",
        "the val minimum must lie at or after this point of the run (0.75: its last quarter)",
    ),
)
def not_converged(f: Features, reg: Regularization | None, t: Mapping[str, float]) -> Vote | None:
    gain, fall = f.val_gain_2x, f.val_last_fall
    if not math.isfinite(f.best_position) or not (math.isfinite(gain) or math.isfinite(fall)):
        return None
    # A val that falls again after an early minimum is recovering, not converging.
    if f.best_position < t["min_best_position"]:
        return None
    if math.isfinite(gain) and gain >= t["min_gain"]:
        return Vote(
            Verdict.UNDERFIT,
            Cause.NOT_CONVERGED,
            strength(gain, t["min_gain"], t["full_gain"]),
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
            strength(fall, t["min_last_fall"], t["full_last_fall"]),
            fall,
            t["min_last_fall"],
            f"val {f.metric} still falling: it fell {fall:.0%} over the last doubling of the run "
            f">= {t['min_last_fall']:.0%}, with its minimum at the end",
        )
    return None


# FD203's and FD207's plateau: the same two thresholds, declared once (each rule still
# carries its own values, overridable per rule).
PLATEAU = {
    "max_gap": (1.05, "ratio", "val/train ratio at or below which there is no overfitting at all"),
    "max_train_drop": (0.05, "fraction", "fall of train over the second half below which train is flat"),
}


def _plateau(f: Features, t: Mapping[str, float]) -> bool:
    """Train flat over the second half (< `max_train_drop`) and val level with it (<= `max_gap`)."""
    ratio, drop = f.gap_ratio_end, f.train_half_drop
    finite = math.isfinite(ratio) and math.isfinite(drop)
    return finite and ratio <= t["max_gap"] and drop < t["max_train_drop"]


@rule(
    "FD203",
    "underfit.capacity",
    "No regularization left, train flat and val as low as train: the network is too small.",
    **PLATEAU,
    full_train_drop=(
        0.0,
        "fraction",
        "fall of train over the second half at which the finding is at full strength",
    ),
)
def capacity(f: Features, reg: Regularization | None, t: Mapping[str, float]) -> Vote | None:
    if reg is None or reg.any or not _plateau(f, t):
        return None
    ratio, drop = f.gap_ratio_end, f.train_half_drop
    return Vote(
        Verdict.UNDERFIT,
        Cause.CAPACITY,
        strength(drop, t["max_train_drop"], t["full_train_drop"]),
        drop,
        t["max_train_drop"],
        f"no regularization, train {f.metric} flat ({drop:.1%} over the second half < "
        f"{t['max_train_drop']:.0%}) and val/train {ratio:.2f} <= {t['max_gap']:.2f}",
    )


# FD207's and FD208's narrow net, declared once (each rule still carries its own value).
NARROW = {
    "max_units": (
        8,
        "units per layer",
        "units per hidden layer at or below which the net counts as narrow (the corpus' narrow widths)",
    ),
}


def _narrow(reg: Regularization | None, t: Mapping[str, float]) -> bool:
    """A known net of at most `max_units` units per hidden layer, with no regularization."""
    return reg is not None and not reg.any and 0 < reg.units <= t["max_units"]


# Regression errors: where a narrow net on a plateau was measured too small (FD207).
REGRESSION_METRICS = frozenset({"mae", "mse", "rmse", "mape", "msle"})


@rule(
    "FD207",
    "underfit.too_narrow",
    "A known narrow net, no regularization, train flat and val level with it on a regression "
    "error: too small for its data; decides alone.",
    **NARROW,
    **PLATEAU,
    confidence=(
        0.67,
        "fraction",
        "its confidence: the share of such corpus runs labelled underfit (benchmarks/calibrate.py prints it)",
    ),
)
def too_narrow(f: Features, reg: Regularization | None, t: Mapping[str, float]) -> Vote | None:
    # On the corpus' regression runs of nets of 2-8 units, FD203's plateau was mostly a net
    # too small (twice the units gained >= 10 %); on classification runs mostly balanced, and
    # on wider nets the width steps were too few to say: so only here does it decide alone.
    if reg is None or not _narrow(reg, t) or f.metric not in REGRESSION_METRICS or not _plateau(f, t):
        return None
    ratio, drop = f.gap_ratio_end, f.train_half_drop
    return _narrow_vote(
        reg,
        t,
        f"no regularization, train {f.metric} flat ({drop:.1%} over the second half < "
        f"{t['max_train_drop']:.0%}) and val/train {ratio:.2f} <= {t['max_gap']:.2f}: the net is too "
        "small for its data",
    )


def _narrow_vote(reg: Regularization, t: Mapping[str, float], why: str) -> Vote:
    """FD207's and FD208's finding: underfit (capacity) at the rule's declared confidence."""
    return Vote(
        Verdict.UNDERFIT,
        Cause.CAPACITY,
        t["confidence"],
        float(reg.units),
        t["max_units"],
        f"{reg.units} units per hidden layer (<= {t['max_units']:g}) and {why}",
    )


@rule(
    "FD208",
    "underfit.narrow_net",
    "A known narrow net with no or light regularization: if it underfits, too little capacity "
    "is the cause to try first; names the cause, never the verdict.",
    **NARROW,
    max_penalty=(
        1e-4,
        "L2 factor",
        "L2/L1 factor at or below which, with no dropout, the regularization counts as light "
        "(the corpus' width steps were trained at 0 and 1e-4)",
    ),
    confidence=(
        0.63,
        "fraction",
        "its strength: the share of such underfit corpus nets whose best change was twice the units "
        "(benchmarks/calibrate.py prints it)",
    ),
)
def narrow_net(f: Features, reg: Regularization | None, t: Mapping[str, float]) -> Vote | None:
    # Of the corpus' underfit nets of 2-8 units with no or light regularization where twice
    # the units was trained, it was the best change for 389 of 618 (twice the epochs for the
    # rest; `benchmarks/calibrate.py` prints it), whether val was still falling or not, on
    # regression and classification alike.
    # It is not evidence for the verdict (not in the combiner's EVIDENCE_RULES): it only names
    # the cause once the verdict is underfit.
    if reg is None or not 0 < reg.units <= t["max_units"]:
        return None
    if reg.dropout > 0 or max(reg.l2, reg.l1) > t["max_penalty"]:
        return None
    what = "no regularization" if not reg.any else f"light regularization (L2/L1 <= {t['max_penalty']:g})"
    return _narrow_vote(
        reg,
        t,
        f"{what}: too narrow a net is the first suspect (twice the units beat twice the epochs on "
        f"{t['confidence']:.0%} of such underfit corpus runs)",
    )


@rule(
    "FD206",
    "underfit.not_learning",
    "Neither train nor val ever got clearly below its first value: the model has barely learned.",
    min_progress=(0.10, "fraction", "fall of the best value below the first one that counts as learning"),
    full_progress=(
        0.0,
        "fraction",
        "that fall at which the finding is at full strength (no learning at all)",
    ),
)
def not_learning(f: Features, reg: Regularization | None, t: Mapping[str, float]) -> Vote | None:
    train, val = f.train_progress, f.val_progress
    if not (math.isfinite(train) and math.isfinite(val)):
        return None
    if max(train, val) >= t["min_progress"]:
        return None
    return Vote(
        Verdict.UNDERFIT,
        Cause.NOT_CONVERGED,
        strength(max(train, val), t["min_progress"], t["full_progress"]),
        max(train, val),
        t["min_progress"],
        f"the model has barely learned: train {f.metric} never fell more than {train:.1%} below its first "
        f"value and val {val:.1%} (< {t['min_progress']:.0%}) {f.span}; check the learning rate and inputs",
    )


@rule(
    "FD209",
    "underfit.frozen_accuracy",
    "A classification log's validation accuracy never moved (the same value at every "
    "evaluation, above 0 and below 1): the model's answers did not change; decides alone.",
    min_points=(5.0, "epochs", "fewest logged val accuracies (evaluations) that can show a frozen model"),
    max_spread=(
        0.0,
        "fraction",
        "largest range (max - min) of the val accuracy that counts as never moved",
    ),
    confidence=(
        0.95,
        "fraction",
        "its confidence: the share of such corpus runs, not already decided by FD206, labelled "
        "underfit (benchmarks/calibrate.py prints it)",
    ),
)
def frozen_accuracy(f: Features, reg: Regularization | None, t: Mapping[str, float]) -> Vote | None:
    # A model that gives one class for every row (the majority, or chance) keeps its val
    # accuracy to the last digit while its loss still drifts, so the loss-based rules read it
    # as a level, balanced run; real logs (Quora spam at 0.9375 for 88 epochs, a 5-class model
    # at exactly 0.2) and 139 corpus runs show it. The cause is left to the decision (a known
    # regularizer first), the verdict is this rule's.
    if f.val_accuracy_points < t["min_points"] or not f.val_accuracy_spread <= t["max_spread"]:
        return None
    # At 1 the model is right on every val row; at 0 wrong on every one, which says the
    # labels do not match (a log with val accuracy 0 throughout overfit clearly), not a stall.
    if not 0.0 < f.val_accuracy_end < 1.0:
        return None
    return Vote(
        Verdict.UNDERFIT,
        None,
        t["confidence"],
        f.val_accuracy_spread,
        t["max_spread"],
        f"val accuracy was {f.val_accuracy_end:.4g} at every one of {f.val_accuracy_points} evaluations: "
        "the model's answers never changed (one class for every row?); check the learning rate, the "
        "inputs' scale and the labels",
    )
