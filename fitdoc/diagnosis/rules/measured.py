"""Measured: the thresholds of the probe's decision (`fitdoc.diagnosis.measured`).

These rules never vote on a history's curves alone: they are decided from the
validation curves of a probed run's neighbours, trained beside it
(`fitdoc train --probe`). They are registered here so that `fitdoc rules`
shows their thresholds and `--thresholds` overrides them like any other.
The defaults were chosen on the corpus factory's regression families and are
scored leave-one-family-out by `benchmarks/probe_quality.py`.
"""

from __future__ import annotations

from collections.abc import Mapping

from fitdoc.diagnosis.features import Features
from fitdoc.diagnosis.rules._config import Regularization
from fitdoc.diagnosis.rules.base import Vote
from fitdoc.diagnosis.rules.registry import rule


@rule(
    "FD501",
    "measured.neighbour",
    "A probed neighbour (one ladder step of L2/L1 or dropout) ends with a clearly lower validation error.",
    min_gain=(0.07, "fraction", "relative fall of the final val MAE below which a neighbour does not win"),
    noise_z=(
        1.0,
        "noise units",
        "the gain must also exceed this many spreads of the paired per-epoch val ratio over the final window",
    ),
)
def neighbour(f: Features, reg: Regularization | None, t: Mapping[str, float]) -> Vote | None:
    return None  # decided from the neighbours' curves, not from this history's features


@rule(
    "FD502",
    "measured.early_stop",
    "Stopping at the (smoothed) validation minimum gives a clearly lower validation error than the end.",
    min_gain=(0.15, "fraction", "relative fall of val at its smoothed minimum against the final val"),
    max_position=(0.5, "fraction of the run", "the minimum must lie before this point of the run"),
)
def early_stop(f: Features, reg: Regularization | None, t: Mapping[str, float]) -> Vote | None:
    return None  # decided from the run's own curve together with its neighbours


@rule(
    "FD503",
    "measured.still_falling",
    "Validation error still fell clearly over the last doubling of the run (and over its last quarter), by more than a neighbour gains.",
    min_fall=(0.05, "fraction", "fall of the final val against its level half-way (smoothed)"),
    weight=(
        1.0,
        "ratio",
        "share of the last doubling's fall expected from the next one; training longer wins over a "
        "measured neighbour that gains less than that",
    ),
)
def still_falling(f: Features, reg: Regularization | None, t: Mapping[str, float]) -> Vote | None:
    return None  # read only when no probed neighbour wins
