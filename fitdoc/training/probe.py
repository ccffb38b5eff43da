"""The probe: which neighbours of a run `fitdoc train --probe` trains beside it, and where they go.

A neighbour is one step of the suggestion ladder (`fitdoc.diagnosis.suggest`)
in either direction from the run's config, where that step exists: the
penalty the run uses (L1 when it chose L1 alone, else L2) one rung up and
down (0 -> 1e-4, x10 / 10, 1e-5 -> 0), dropout one step up and down
(0 / 0.2 / 0.5; only with two or more hidden layers, as dropout sits between
them), and, for a net narrower than `WIDE_UNITS`, a wider net at the same
regularization (twice the units, and at least `WIDE_UNITS`): the one way to
measure a net too small for its data (`underfit (capacity)`). At most five. Each becomes a run directory of its
own under `RUN/probes/<slug>/`, named by its change (`l2-0.0001`,
`dropout-0.2`, `units-32`).

No TensorFlow here: planning is config arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fitdoc.config import Config
from fitdoc.diagnosis.rules.combiner import NARROW_FROM
from fitdoc.diagnosis.suggest import dropout_down, dropout_up, l2_down, l2_up
from fitdoc.formatting import value_text
from fitdoc.history.load import PROBES_DIR
from fitdoc.verdict import Change

# Nets narrower than this are probed with a net this wide (or twice as wide, if more).
# Why not always twice: a 1-layer relu net of 2, 4 or 8 units on a wavy target gains a few
# per cent per doubling and then a lot (tests/test_capacity.py's sine: val MAE 1.26, 1.21,
# 1.13, then 0.56 at 16 units), so one doubling would call a net far too small balanced.
# Why not for every net: the stacked engine pads all K nets to the widest, so a wide net's
# width neighbour would cost the probe about four times its arithmetic. The width is the
# one from which the combiner stops counting a net as narrow.
WIDE_UNITS = NARROW_FROM


@dataclass(frozen=True)
class ProbePlan:
    """One neighbour to train: the change that defines it, its directory name, its full config."""

    slug: str
    change: Change
    config: Config

    def directory(self, run_dir: Path) -> Path:
        return run_dir / PROBES_DIR / self.slug


def plan_probes(config: Config) -> list[ProbePlan]:
    """The run's ladder neighbours in both directions (0 to 5 of them)."""
    model = config.model
    key, penalty = ("model.l1", model.l1) if model.l1 > 0 and model.l2 == 0 else ("model.l2", model.l2)
    name = key.split(".")[-1].upper()
    steps: list[tuple[str, float, float | None, str]] = [
        (key, penalty, l2_up(penalty), f"raise {name}" if penalty else f"add {name}"),
        (key, penalty, l2_down(penalty), f"lower {name}" if penalty else ""),
    ]
    if model.hidden_layers >= 2:
        steps += [
            (
                "model.dropout",
                model.dropout,
                dropout_up(model.dropout),
                "raise dropout" if model.dropout else "add dropout",
            ),
            ("model.dropout", model.dropout, dropout_down(model.dropout), "lower dropout"),
        ]
    if model.units < WIDE_UNITS:
        wider = max(2 * model.units, WIDE_UNITS)
        steps.append(("model.units", model.units, wider, "more units per hidden layer"))
    plans: list[ProbePlan] = []
    for dotted, old, new, verb in steps:
        if new is None:
            continue
        slug = f"{dotted.split('.')[-1]}-{value_text(new)}"
        change = Change(dotted, old, new, f"{verb}: {dotted} {value_text(old)} -> {value_text(new)}")
        neighbour = config.with_changes({dotted: new, "name": f"{config.name}-{slug}"})
        plans.append(ProbePlan(slug, change, neighbour))
    return plans
