"""Can this history be judged at all? No validation, too short, diverged, noisy.

These rules vote `inconclusive`; the combiner lets them override every other
vote, so a short or broken history never gets a confident label.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from fitdoc.diagnosis.features import Features
from fitdoc.diagnosis.rules._config import Regularization
from fitdoc.diagnosis.rules.base import Vote, strength
from fitdoc.diagnosis.rules.registry import rule
from fitdoc.verdict import Verdict

INCONCLUSIVE = Verdict.INCONCLUSIVE


@rule("FD001", "history.no_validation", "The history has no validation series, so generalization is unknown.")
def no_validation(f: Features, reg: Regularization | None, t: Mapping[str, float]) -> Vote | None:
    if f.has_validation:
        return None
    return Vote(INCONCLUSIVE, None, 1.0, None, None, "no validation series (val_mae / val_loss)")


@rule(
    "FD002",
    "history.too_short",
    "Too few evaluations to tell a trend from noise.",
    min_epochs=(5.0, "epochs", "fewest evaluations a history needs to be judged"),
)
def too_short(f: Features, reg: Regularization | None, t: Mapping[str, float]) -> Vote | None:
    if f.n_epochs >= t["min_epochs"]:
        return None
    return Vote(
        INCONCLUSIVE,
        None,
        1.0,
        f.n_epochs,
        t["min_epochs"],
        f"{f.n_epochs} evaluations < {t['min_epochs']:g}",
    )


@rule(
    "FD003",
    "history.diverged",
    "Training diverged: NaN/inf values, or the train metric blew up far above its minimum and its start.",
    max_blowup=(10.0, "ratio", "end/minimum ratio of the train metric that counts as blowing up"),
)
def diverged(f: Features, reg: Regularization | None, t: Mapping[str, float]) -> Vote | None:
    bad = f.nonfinite_train + f.nonfinite_val
    if bad:
        return Vote(INCONCLUSIVE, None, 1.0, float(bad), 0.0, f"{bad} NaN/inf values in the train/val series")
    # A spiky tail on a tiny minimum (Adam near MAE 0.003) is not divergence: the run
    # must also have lost all the progress it made since its first epoch.
    lost_progress = f.train_end >= f.train_start
    if math.isfinite(f.blowup) and f.blowup > t["max_blowup"] and lost_progress:
        return Vote(
            INCONCLUSIVE,
            None,
            1.0,
            f.blowup,
            t["max_blowup"],
            f"train {f.metric} at the end is {f.blowup:.3g}x its minimum > {t['max_blowup']:g}x, "
            "and above its first epoch",
        )
    return None


@rule(
    "FD004",
    "history.noisy",
    "Validation curve jitters so much from epoch to epoch that its trend cannot be read.",
    max_noise=(
        0.15,
        "fraction",
        "typical relative jitter of val around its running median (second half) above which it is noise",
    ),
    full_noise=(0.30, "fraction", "jitter at which the finding is at full strength"),
    min_clear_gap=(
        6.0,
        "ratio",
        "lowest val over the final train at which val stands clearly above train, however it jitters",
    ),
)
def noisy(f: Features, reg: Regularization | None, t: Mapping[str, float]) -> Vote | None:
    if not math.isfinite(f.val_noise) or f.val_noise <= t["max_noise"]:
        return None
    # Jitter cannot hide a val whose every value lies far above where train ended.
    if f.positive and f.train_end > 0 and f.val_min / f.train_end >= t["min_clear_gap"]:
        return None
    return Vote(
        INCONCLUSIVE,
        None,
        strength(f.val_noise, t["max_noise"], t["full_noise"]),
        f.val_noise,
        t["max_noise"],
        f"val {f.metric} jitters {f.val_noise:.0%} per epoch around its trend > {t['max_noise']:.0%}",
    )
