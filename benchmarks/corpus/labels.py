"""Label a run by what would have helped it: the rule of
`shared/corpus/labeled/README.md`, applied to the factory's trajectories.

A run at epoch E is scored by its held-out test error at E (the mean over
epochs E-4..E). It is compared with its one-step neighbours on the
regularization path at the same E, with stopping at E/2, and with training on
to 2E:

- `overfit`: a step toward more regularization, or stopping at E/2, lowers the
  test error by at least 10 %, and more than any step the other way;
- `underfit`: a step toward less regularization (over-regularized) or training
  to 2E (not converged) lowers it by at least 10 %, and more than any step the
  other way;
- `balanced`: no such change lowers it by 5 % or more;
- otherwise `ambiguous` (left out of scores).

A neighbour is one sensible step away: the penalty up to two decades more or
less (none counts as 1e-6, so 0 -> 1e-4 is one step), one dropout step
(0 / 0.2 / 0.5), or both in the same direction.

Width steps (DESIGN.md, "Predicting what a change gains"): where the path also
trained the net with twice and half the units at the same regularization,
twice the units is a step toward less constraint (`underfit`, cause
`capacity`, when it wins by 10 % and more than any step the other way) and
half the units a step toward more (`overfit`). On such a path, a net whose own
setting was not trained at other widths cannot be called `balanced` (twice the
units, unseen, might have helped): it is `ambiguous`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DROPOUT_STEPS = (0.0, 0.2, 0.5)
NO_PENALTY = 1e-6
MEAN_SPAN = 5


@dataclass(frozen=True)
class Member:
    """One net of a path: its regularization and its per-epoch test error."""

    penalty: float  # L2 or L1 factor, whichever the path varies
    dropout: float
    test_error: np.ndarray
    units: int = 0  # 0: the path's own width (every member of a path without width steps)


@dataclass(frozen=True)
class Label:
    label: str
    cause: str
    best_change: str
    test: float
    gain_more: float
    gain_less: float
    # Every change that could be followed, with its relative gain (1 - new/old).
    gains: dict[str, float]


def mean_at(test: np.ndarray, epochs: int) -> float:
    """Mean test error over epochs E-4..E (1-based): one spike does not decide."""
    if epochs < 1 or epochs > test.size:
        return math.nan
    return float(np.mean(test[max(0, epochs - MEAN_SPAN) : epochs]))


def step_direction(a: Member, b: Member) -> int:
    """+1 if b is one step more regularized than a, -1 one step less, 0 if not a neighbour.

    Members of other widths are never regularization neighbours (see `width_step`)."""
    if a.units != b.units:
        return 0
    dl = math.log10(max(b.penalty, NO_PENALTY)) - math.log10(max(a.penalty, NO_PENALTY))
    dd = DROPOUT_STEPS.index(b.dropout) - DROPOUT_STEPS.index(a.dropout)
    if abs(dl) > 2 + 1e-9 or abs(dd) > 1 or (abs(dl) < 1e-9 and dd == 0):
        return 0
    if dl >= -1e-9 and dd >= 0:
        return 1
    if dl <= 1e-9 and dd <= 0:
        return -1
    return 0


def width_step(a: Member, b: Member) -> int:
    """+1 if b has twice a's units at the same regularization, -1 half, 0 otherwise."""
    if not (a.units and b.units) or a.penalty != b.penalty or a.dropout != b.dropout:
        return 0
    return 1 if b.units == 2 * a.units else -1 if 2 * b.units == a.units else 0


def change_name(member: Member, kind: str) -> str:
    return f"{kind}={member.penalty:g},dropout={member.dropout:g}"


def label_run(path: list[Member], index: int, epochs: int, kind: str = "l2") -> Label | None:
    """The label of path[index] cut at `epochs`, or None when 2E was not trained."""
    me = path[index]
    if 2 * epochs > me.test_error.size or epochs < 2 * MEAN_SPAN:
        return None
    base = mean_at(me.test_error, epochs)
    if not (math.isfinite(base) and base > 0):
        return None

    def gain(value: float) -> float:
        return 1.0 - value / base if math.isfinite(value) else -math.inf

    more: dict[str, float] = {"stop at E/2": gain(mean_at(me.test_error, epochs // 2))}
    less: dict[str, float] = {"train to 2E": gain(mean_at(me.test_error, 2 * epochs))}
    for other in path:
        direction = step_direction(me, other)
        if direction:
            side = more if direction > 0 else less
            side[change_name(other, kind)] = gain(mean_at(other.test_error, epochs))
        wider = width_step(me, other)
        if wider:
            # Twice the units is less constraint (capacity); half the units is more.
            (less if wider > 0 else more)[f"units={other.units}"] = gain(mean_at(other.test_error, epochs))
    best_more = max(more, key=lambda k: more[k])
    best_less = max(less, key=lambda k: less[k])
    g_more, g_less = more[best_more], less[best_less]
    if g_more >= 0.10 and g_more > g_less:
        cause = "early stop" if best_more == "stop at E/2" else "more regularization"
        label, change = "overfit", best_more
    elif g_less >= 0.10 and g_less > g_more:
        cause = (
            "not converged"
            if best_less == "train to 2E"
            else "capacity"
            if best_less.startswith("units=")
            else "over-regularized"
        )
        label, change = "underfit", best_less
    elif max(g_more, g_less) < 0.05 and not _width_unseen(path, me):
        label, cause, change = "balanced", "", "no neighbouring change helps by 5%"
    else:
        label, cause, change = "ambiguous", "", best_more if g_more >= g_less else best_less
    return Label(label, cause, change, base, g_more, g_less, {**more, **less})


def _width_unseen(path: list[Member], me: Member) -> bool:
    """The path trained other widths, but not at this member's setting."""
    widths = any(other.units != me.units for other in path)
    return widths and not any(width_step(me, other) for other in path)
