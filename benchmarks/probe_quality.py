"""How good the probe's measured decision is, simulated on the corpus factory's stored paths.

Every stored path trained eight regularization settings of one net on one split
with the same initial weights and batch order, and kept each net's val and
test curves: exactly what `fitdoc train --probe` trains. For each regression
run (a net of a path cut at one epoch count E), the probe's neighbours are the
nets of the path that the ladder proposes from its config (L2 or L1 one rung
up and down, dropout one step up and down, where the path has them), cut at
E. On a path with width steps, a net narrower than the probe's `WIDE_UNITS`
gets the wider neighbour the probe plans (`fitdoc.training.probe`: twice the
units, at least `WIDE_UNITS`) where the path trained that width at its
setting. The product's own rule (`fitdoc.diagnosis.measured.decide`,
thresholds FD501-FD503 from the registry) decides from their val curves; the
label comes from the test curves (`benchmarks/corpus/labels.py`, the shared
corpus' rule with the width step: a run can be `underfit (capacity)`).

Printed:
- agreement with the labels and macro-F1 (ambiguous runs left out), per family
  and overall, with the product's default thresholds;
- the advice: share of the best one-step gain in test error captured by
  following the measured change (runs where some change gains >= 10 %), and
  how often it makes test error >= 5 % worse (the same measures as
  `benchmarks/calibrate.py`);
- the same with the thresholds re-chosen leave-one-family-out (chosen on the
  other families, scored on the held-out one): how much the defaults owe to
  having seen the family;
- capacity: on the runs labelled `underfit (capacity)`, how often the probe
  measures it, with the planned width neighbour, with twice the units (what
  the corpus trained for every narrow net; the probe trains at least
  `WIDE_UNITS`) and with no width neighbour (the probe before it had one).

Classification paths are left out: the probe trains fitdoc's regression nets
and compares val MAE.

usage: python benchmarks/probe_quality.py [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.corpus.labels import label_run, mean_at
from benchmarks.corpus.store import members_of, read_paths
from fitdoc.diagnosis.measured import Neighbour, decide
from fitdoc.diagnosis.rules.registry import all_rules
from fitdoc.diagnosis.suggest import dropout_down, dropout_up, l2_down, l2_up
from fitdoc.training.probe import WIDE_UNITS
from fitdoc.verdict import Cause, Change, Verdict

CODES = ("FD501", "FD502", "FD503")
GRID = {
    ("FD501", "min_gain"): (0.05, 0.07, 0.10),
    ("FD501", "noise_z"): (0.5, 1.0),
    ("FD502", "min_gain"): (0.10, 0.15, 0.20),
    ("FD502", "max_position"): (0.5, 0.75),
    ("FD503", "min_fall"): (0.05, 0.07),
    ("FD503", "weight"): (0.0, 1.0),
}


@dataclass(frozen=True)
class Case:
    family: str
    label: str
    cause: str  # the label's cause ('' for balanced and ambiguous)
    gains: dict[str, float]  # every labelled change's test gain
    val: np.ndarray
    neighbours: tuple[Neighbour, ...]
    test_gain: dict[str, float]  # test gain of each probe change (`key=to`) and of training twice as long
    epochs: int
    test: np.ndarray  # the run's own test error per epoch (to score early stopping)


def default_thresholds() -> dict[str, dict[str, float]]:
    rules = {r.code: r for r in all_rules()}
    return {code: dict(rules[code].thresholds) for code in CODES}


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)


def _wider(path: dict, penalty: float, dropout: float, width: str) -> tuple[Change, int] | None:
    """The width neighbour (its change, its index among the path's members), if the path has it."""
    units = int(path["units"])
    if width == "none" or units >= WIDE_UNITS:
        return None
    target = max(2 * units, WIDE_UNITS) if width == "planned" else 2 * units
    kind = path["path_kind"]
    for w, net in enumerate(path.get("width_nets", ())):
        if (
            net["units"] == target
            and _close(float(net[kind]), penalty)
            and _close(float(net["dropout"]), dropout)
        ):
            return Change("model.units", units, target, ""), len(path["nets"]) + w
    return None


def cases(quick: bool = False, width: str = "planned") -> list[Case]:
    """`width`: the width neighbour as the probe plans it (`planned`), at twice the units
    (`x2`), or none (`none`)."""
    out: list[Case] = []
    for n_path, path in enumerate(read_paths()):
        if path["task"] != "regression":
            continue
        if quick and n_path % 4:
            continue
        kind = path["path_kind"]
        nets = path["nets"]
        every = [*nets, *path.get("width_nets", ())]
        members = members_of(path)
        for index, net in enumerate(nets):
            penalty, dropout = float(net[kind]), float(net["dropout"])
            steps = [
                (f"model.{kind}", penalty, l2_up(penalty), dropout),
                (f"model.{kind}", penalty, l2_down(penalty), dropout),
                ("model.dropout", dropout, dropout_up(dropout), penalty),
                ("model.dropout", dropout, dropout_down(dropout), penalty),
            ]
            found: list[tuple[Change, int]] = []
            for key, old, new, other in steps:
                if new is None:
                    continue
                want = (new, other) if key != "model.dropout" else (other, new)
                j = next(
                    (
                        j
                        for j, m in enumerate(nets)
                        if _close(float(m[kind]), want[0]) and _close(float(m["dropout"]), want[1])
                    ),
                    None,
                )
                if j is not None:
                    found.append((Change(key, old, new, ""), j))
            wider = _wider(path, penalty, dropout, width)
            if wider is not None:
                found.append(wider)
            if not found:
                continue
            for epochs in path["cuts"]:
                label = label_run(members, index, epochs, kind)
                if label is None:
                    continue
                base = mean_at(members[index].test_error, epochs)
                val = np.asarray(net["val_metric"][:epochs], float)
                neighbours = tuple(
                    Neighbour(c, np.asarray(every[j]["val_metric"][:epochs], float)) for c, j in found
                )
                test_gain = {
                    f"{c.key}={c.to:g}": 1.0 - mean_at(members[j].test_error, epochs) / base for c, j in found
                }
                test_gain["longer"] = 1.0 - mean_at(members[index].test_error, 2 * epochs) / base
                out.append(
                    Case(
                        path["family"],
                        label.label,
                        label.cause,
                        label.gains,
                        val,
                        neighbours,
                        test_gain,
                        epochs,
                        members[index].test_error,
                    )
                )
    return out


def outcome(case: Case, thresholds: Mapping[str, Mapping[str, float]]) -> tuple[str, float]:
    """(verdict, test gain of following the measured advice)."""
    d = decide(case.val, case.neighbours, thresholds, epochs=case.epochs)
    if d.winner is not None:
        c = d.winner.change
        if d.winner.at_epoch is not None:
            # Early stopping restores the weights at the smoothed val minimum.
            stopped = mean_at(case.test, d.winner.at_epoch)
            return d.verdict.value, 1.0 - stopped / mean_at(case.test, case.epochs)
        return d.verdict.value, case.test_gain[f"{c.key}={c.to:g}"]
    if d.verdict is Verdict.UNDERFIT:
        return d.verdict.value, case.test_gain["longer"]
    return d.verdict.value, 0.0


def score(rows: list[tuple[Case, str, float]]) -> dict[str, float]:
    labelled = [(c, v, g) for c, v, g in rows if c.label != "ambiguous"]
    agree = np.mean([c.label == v for c, v, _ in labelled]) if labelled else math.nan
    f1s = []
    for cls in ("overfit", "underfit", "balanced"):
        tp = sum(1 for c, v, _ in labelled if c.label == cls and v == cls)
        fp = sum(1 for c, v, _ in labelled if c.label != cls and v == cls)
        fn = sum(1 for c, v, _ in labelled if c.label == cls and v != cls)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    captured, harmful, scored = [], 0, 0
    for c, _, gain in rows:
        if not math.isfinite(gain):
            continue
        scored += 1
        harmful += gain <= -0.05
        best = max(c.gains.values())
        if best >= 0.10:
            captured.append(max(-1.0, gain / best))
    return {
        "runs": len(labelled),
        "agreement": float(agree),
        "macro_f1": float(np.mean(f1s)),
        "captured": float(np.mean(captured)) if captured else math.nan,
        "harmful": harmful / scored if scored else math.nan,
    }


def print_capacity(planned: list[Case], quick: bool) -> None:
    """The capacity-labelled runs, measured with each kind of width neighbour."""
    defaults = default_thresholds()
    print(
        "\n## Capacity: the runs labelled underfit (capacity), by the width neighbour the probe trains\n"
        "| width neighbour | capacity runs | with that neighbour | measured capacity (of those) | "
        "measured underfit (of all) | runs measured capacity | of those labelled underfit | "
        "agreement, all runs | macro-F1 | advice captured | harmful |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    for width, text in (
        ("planned", f"as planned (x2, at least {WIDE_UNITS} units)"),
        ("x2", "twice the units"),
        ("none", "none (regularization only)"),
    ):
        cs = planned if width == "planned" else cases(quick, width)
        cap = [c for c in cs if c.cause == "capacity"]
        near = [c for c in cap if any(n.change.key == "model.units" for n in c.neighbours)]
        decided = {id(c): decide(c.val, c.neighbours, defaults, epochs=c.epochs) for c in cap}
        hit = sum(1 for c in near if decided[id(c)].cause is Cause.CAPACITY)
        under = sum(1 for c in cap if decided[id(c)].verdict is Verdict.UNDERFIT)
        s = score([(c, *outcome(c, defaults)) for c in cs])
        # Precision: of the runs the probe measures too small, how many are labelled underfit
        # (the confidence a measured capacity verdict earns).
        said = [
            c
            for c in cs
            if c.label != "ambiguous"
            and any(n.change.key == "model.units" for n in c.neighbours)
            and decide(c.val, c.neighbours, defaults, epochs=c.epochs).cause is Cause.CAPACITY
        ]
        right = sum(1 for c in said if c.label == "underfit")
        print(
            f"| {text} | {len(cap)} | {len(near)} | {hit / len(near) if near else math.nan:.0%} | "
            f"{under / len(cap) if cap else math.nan:.0%} | {len(said)} | "
            f"{right / len(said) if said else math.nan:.0%} | {s['agreement']:.3f} | {s['macro_f1']:.3f} | "
            f"{s['captured']:.0%} | {s['harmful']:.1%} |"
        )


def with_values(values: Mapping[tuple[str, str], float]) -> dict[str, dict[str, float]]:
    t = default_thresholds()
    for (code, name), v in values.items():
        t[code][name] = v
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a quarter of the paths, no leave-one-family-out"
    )
    args = parser.parse_args()
    all_cases = cases(args.quick)
    defaults = default_thresholds()
    by_family: dict[str, list[Case]] = defaultdict(list)
    for c in all_cases:
        by_family[c.family].append(c)
    families = sorted(by_family)
    print(f"{len(all_cases)} regression runs with at least one probed neighbour, {len(families)} families\n")

    rows = {id(c): (c, *outcome(c, defaults)) for c in all_cases}
    print("## Default thresholds: " + ", ".join(f"{k}.{n}={defaults[k][n]:g}" for k, n in GRID))
    print("| family | runs | agreement | macro-F1 | advice captured | harmful |\n|---|---|---|---|---|---|")
    for fam in [*families, "all"]:
        sel = [rows[id(c)] for c in (all_cases if fam == "all" else by_family[fam])]
        s = score(sel)
        print(
            f"| {fam} | {s['runs']} | {s['agreement']:.3f} | {s['macro_f1']:.3f} | "
            f"{s['captured']:.0%} | {s['harmful']:.1%} |"
        )
    confusion: dict[tuple[str, str], int] = defaultdict(int)
    for c, v, _ in rows.values():
        if c.label != "ambiguous":
            confusion[(c.label, v)] += 1
    print("\nper measured verdict, share agreeing with the label (the confidence it is shown with):")
    for v in ("overfit", "underfit", "balanced"):
        n = sum(confusion[(lab, v)] for lab in ("overfit", "underfit", "balanced"))
        print(f"  {v:<9} {confusion[(v, v)] / n if n else math.nan:.3f}  ({n} runs)")

    print_capacity(all_cases, args.quick)
    if args.quick:
        return
    combos = list(itertools.product(*GRID.values()))
    print(f"\n## Leave-one-family-out: thresholds chosen on the other families ({len(combos)} settings)")
    table: dict[tuple[float, ...], dict[str, list[tuple[Case, str, float]]]] = {}
    for combo in combos:
        t = with_values(dict(zip(GRID, combo, strict=True)))
        per: dict[str, list[tuple[Case, str, float]]] = defaultdict(list)
        for c in all_cases:
            per[c.family].append((c, *outcome(c, t)))
        table[combo] = per
    held: list[tuple[Case, str, float]] = []
    print(
        "| held-out family | chosen | agreement | macro-F1 | advice captured | harmful |\n|---|---|---|---|---|---|"
    )
    for fam in families:

        def train_score(combo: tuple[float, ...], fam: str = fam) -> float:
            rest = [r for f, rs in table[combo].items() if f != fam for r in rs]
            s = score(rest)
            return s["macro_f1"] + s["captured"]

        best = max(combos, key=train_score)
        s = score(table[best][fam])
        held.extend(table[best][fam])
        chosen = ", ".join(f"{v:g}" for v in best)
        print(
            f"| {fam} | {chosen} | {s['agreement']:.3f} | {s['macro_f1']:.3f} | "
            f"{s['captured']:.0%} | {s['harmful']:.1%} |"
        )
    s = score(held)
    print(
        f"| all (held out) | | {s['agreement']:.3f} | {s['macro_f1']:.3f} | {s['captured']:.0%} | {s['harmful']:.1%} |"
    )


if __name__ == "__main__":
    main()
