"""Hand-built curves, diagnoses and configs for the report tests.

Built here rather than by the rule engine, so report tests fail only when a
renderer changes. The numbers follow the founding case: L2 0 overfits (train
MAE 0.0028, validation much higher), L2 0.001 closes the gap but raises train
MAE tenfold, L2 0.0001 sits between.
"""

from __future__ import annotations

import numpy as np

from fitdoc.config import Config, validate_config
from fitdoc.history.curves import Curves
from fitdoc.history.rundir import Run
from fitdoc.verdict import Cause, Change, Diagnosis, Finding, Suggestion, Verdict

EPOCHS = 300


def founding_config(l2: float, name: str) -> Config:
    config = validate_config({"name": name, "data": {"synthetic": "founding"}, "model": {"l2": l2}})
    assert isinstance(config, Config)
    return config


def founding_curves(l2: float, *, epochs: int = EPOCHS, source: str | None = None) -> Curves:
    """Smooth, seeded curves shaped like the founding runs at this L2."""
    train_end, val_end = {0.0: (0.0028, 0.021), 0.0001: (0.0061, 0.0089), 0.001: (0.030, 0.031)}[l2]
    e = np.arange(epochs, dtype=float)
    rng = np.random.default_rng(int(l2 * 1e5) + 7)
    decay = np.exp(-e / (epochs / 8))
    train = train_end + 0.25 * decay
    val = val_end + 0.25 * decay * 1.05
    if l2 == 0.0:  # overfitting: validation turns up after its minimum
        val = val + 0.006 * np.clip(e - epochs * 0.35, 0, None) / epochs
    noise = 1 + 0.02 * rng.standard_normal(epochs)
    val = val * noise
    reg = None if l2 == 0.0 else np.full(epochs, 2.0 * train_end**2 * 0.6)
    return Curves(
        epochs=e,
        train=train,
        val=val,
        metric="mae",
        train_name="mae",
        val_name="val_mae",
        train_loss=2 * train**2,
        val_loss=2 * val**2,
        reg_loss=reg,
        source=source or f"runs/founding-l2-{l2:g}/history.csv",
        format="fitdoc",
    )


OVERFIT = Diagnosis(
    source="runs/founding-l2-0/history.csv",
    verdict=Verdict.OVERFIT,
    cause=Cause.GAP,
    confidence=0.86,
    findings=(
        Finding(
            "FD101",
            "overfit.gap",
            Verdict.OVERFIT,
            Cause.GAP,
            0.9,
            7.5,
            3.0,
            "val/train MAE 7.50 > 3.00 at the end",
        ),
        Finding(
            "FD102",
            "overfit.rebound",
            Verdict.OVERFIT,
            Cause.REBOUND,
            0.6,
            0.19,
            0.1,
            "val MAE minimum at epoch 104 of 300, 19% below the final value > 10%",
        ),
        Finding("FD004", "history.noisy", None, None, 0.0, 0.02, 0.15, "val noise 0.02 <= 0.15"),
    ),
    suggestion=Suggestion(
        Change("model.l2", 0.0, 0.0001, "add L2 0.0001 on every hidden layer"),
        (Change("model.dropout", 0.0, 0.2, "add dropout 0.2 between hidden layers"),),
    ),
    metric="mae",
    epochs=300,
    summary="Validation MAE stays 7.5x train MAE: the net memorizes the training set.",
)

UNDERFIT = Diagnosis(
    source="runs/founding-l2-0.001/history.csv",
    verdict=Verdict.UNDERFIT,
    cause=Cause.OVER_REGULARIZED,
    confidence=0.78,
    findings=(
        Finding(
            "FD201",
            "underfit.over_regularized",
            Verdict.UNDERFIT,
            Cause.OVER_REGULARIZED,
            0.8,
            0.62,
            0.3,
            "regularization is 62% of the final loss > 30%",
        ),
    ),
    suggestion=Suggestion(Change("model.l2", 0.001, 0.0001, "lower L2 tenfold")),
    metric="mae",
    epochs=300,
    summary="Train MAE stalls at 0.030 while the L2 penalty dominates the loss | a pipe.",
    notes=("the history holds 2 runs appended; diagnosed the last",),
)

INCONCLUSIVE = Diagnosis(
    source="logs/train only, no val.csv",
    verdict=Verdict.INCONCLUSIVE,
    cause=None,
    confidence=0.0,
    findings=(),
    suggestion=Suggestion(Change("validation", None, None, "log a validation series (validation_split=0.2)")),
    metric="loss",
    epochs=12,
    summary="No validation series: nothing to compare the training curve with.",
)

BALANCED = Diagnosis(
    source="runs/founding-l2-0.0001/history.csv",
    verdict=Verdict.BALANCED,
    cause=None,
    confidence=0.7,
    findings=(Finding("FD101", "overfit.gap", None, None, 0.0, 1.46, 3.0, "val/train MAE 1.46 <= 3.00"),),
    suggestion=None,
    metric="mae",
    epochs=300,
    summary="Train and validation MAE end close together and both have flattened.",
)

DIAGNOSES = (OVERFIT, UNDERFIT, INCONCLUSIVE)
DIAGNOSIS_BY_L2 = {0.0: OVERFIT, 0.0001: BALANCED, 0.001: UNDERFIT}


def founding_views(with_diagnosis: bool = True) -> list[Run]:
    views = []
    for l2, name in ((0.0, "founding-l2-0"), (0.0001, "founding-l2-1e-4"), (0.001, "founding-l2-1e-3")):
        diagnosis = DIAGNOSIS_BY_L2.get(l2) if with_diagnosis else None
        views.append(Run(name, founding_curves(l2), diagnosis, founding_config(l2, name)))
    return views
