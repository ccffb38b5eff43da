"""Fit the gain model (what each ladder change would gain) and score it against the combiner.

For every labelled corpus run, each change the ladder could propose from its
config (one rung more or less L2/L1, one dropout step more or less, stopping
at the val minimum, training twice as long) is looked up on the trained grid,
where its held-out error is known: the target is `1 - new / old`. One small
gradient-boosted tree ensemble per change predicts it from the run's evidence
(the combiner's vector, with the config and from curves alone). The decision
it gives: the change with the best predicted gain; its direction is the
verdict; balanced when no change is predicted to gain at least `min_gain`
(chosen on the training families only, for macro-F1).

Scored leave-one-family-out against the fitted combiner (both use the
package's own gates and overrides), three ways:

- `combiner + ladder`: today's product (the combiner's verdict, the ladder's
  first step);
- `combiner + gain ranker`: the combiner's verdict, and among the ladder's
  steps in that direction the one with the best predicted gain (the ladder's
  own step stays first unless another is predicted to gain more by a
  margin, chosen per kind of step on the other families' advice);
- `gain model`: verdict and change both from the predicted gains.

Label agreement (macro-F1 with configs and from curves alone, per-class
recall), advice (share of the best one-step gain captured where some change
gains >= 10 %, share of suggestions >= 5 % harmful), and the noise of each
difference (a bootstrap over paths, paired).

    python benchmarks/fit_gains.py [--write]
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.calibrate import (  # noqa: E402
    SHARED_CORPUS,
    Prediction,
    Sample,
    advice_outcome,
    change_outcome,
    leave_one_family_out,
    load_samples,
    load_shared_samples,
    pool_adjacent_violators,
    scores,
)
from benchmarks.corpus.labels import Member  # noqa: E402
from benchmarks.corpus.store import DATA_DIR  # noqa: E402

# The trees: shallow and few, so that the JSON stays small and inference stays cheap.
TREES = {"max_depth": 3, "max_iter": 150, "learning_rate": 0.06, "min_samples_leaf": 40}
GAIN_CLIP = (-1.0, 1.0)
MIN_GAIN_GRID = tuple(round(v, 3) for v in np.arange(0.0, 0.121, 0.01))
RANK_MARGIN_GRID = (0.0, 0.02, 0.04, 0.06, 0.08, 0.10, 0.14, 0.2)


def kinds() -> tuple[str, ...]:
    from fitdoc.diagnosis.gains import CHANGES

    return tuple(c.name for c in CHANGES)


def candidate_changes(sample: Sample, with_config: bool) -> dict[str, Any]:
    """Every ladder step the run allows, by kind (concrete with the config, generic without),
    as the package offers them to the gain model (`fitdoc.diagnosis.decide.available_steps`)."""
    from fitdoc.diagnosis.decide import available_steps

    return available_steps(sample.config if with_config else None, sample.features)


def targets(sample: Sample, members: dict[str, list[Member]]) -> dict[str, float]:
    """Each concrete step's measured gain on the grid (steps off the grid are absent)."""
    if sample.run.path_key not in members:
        return {}
    out = {}
    for kind, change in candidate_changes(sample, True).items():
        gain = change_outcome(sample.run, change, members)
        if gain is not None and math.isfinite(gain):
            out[kind] = float(np.clip(gain, *GAIN_CLIP))
    return out


# ---------------------------------------------------------------- fitting


def fit_trees(xs: np.ndarray, ys: np.ndarray) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(**TREES, random_state=0)
    model.fit(xs, ys)
    return export_trees(model)


def export_trees(model: Any) -> Any:
    """A fitted HistGradientBoostingRegressor as the package's flat `Trees` arrays."""
    from fitdoc.diagnosis.gains import Trees

    roots, feature, threshold, left, right, value = [], [], [], [], [], []
    for (predictor,) in model._predictors:
        nodes = predictor.nodes
        offset = len(feature)
        roots.append(offset)
        for node in nodes:
            leaf = bool(node["is_leaf"])
            feature.append(-1 if leaf else int(node["feature_idx"]))
            threshold.append(0.0 if leaf else float(node["num_threshold"]))
            left.append(-1 if leaf else offset + int(node["left"]))
            right.append(-1 if leaf else offset + int(node["right"]))
            value.append(float(node["value"]) if leaf else 0.0)
    return Trees(
        base=float(np.ravel(model._baseline_prediction)[0]),
        roots=np.asarray(roots, dtype=np.int64),
        feature=np.asarray(feature, dtype=np.int64),
        threshold=np.asarray(threshold),
        left=np.asarray(left, dtype=np.int64),
        right=np.asarray(right, dtype=np.int64),
        value=np.asarray(value),
    )


def fit_model(samples: Sequence[Sample], goals: dict[str, dict[str, float]], label: str = "") -> Any:
    """Per change, trees on every run (with config and curves alone) whose step is on the grid;
    then `min_gain`, the clear-gain margin that maximizes macro-F1 on these same runs."""
    from fitdoc.diagnosis.gains import GainModel
    from fitdoc.diagnosis.rules.combiner import EVIDENCE_NAMES

    trees = {}
    for kind in kinds():
        xs, ys = [], []
        for s in samples:
            gain = goals.get(s.run.name, {}).get(kind)
            if gain is None:
                continue
            for x in (s.x_config, s.x_curves):
                if x is not None:
                    xs.append(x)
                    ys.append(gain)
        if len(ys) >= 200:
            trees[kind] = fit_trees(np.asarray(xs), np.asarray(ys))
    model = GainModel(EVIDENCE_NAMES, trees, 0.05, {}, label)
    predicted = [predict_all(model, s) for s in samples]
    best, best_f1 = 0.05, -1.0
    for min_gain in MIN_GAIN_GRID:
        trial = GainModel(EVIDENCE_NAMES, trees, min_gain, {}, label)
        preds = [p for s, g in zip(samples, predicted, strict=True) for p in gain_predictions(trial, s, g)]
        f1 = scores(preds)["macro_f1"]
        if f1 > best_f1:
            best, best_f1 = min_gain, f1
    return GainModel(EVIDENCE_NAMES, trees, best, {}, label)


def predict_all(model: Any, s: Sample) -> dict[bool, dict[str, float]]:
    """Predicted gains of the run's available steps, with config and from curves alone."""
    out = {}
    for with_config, x in ((True, s.x_config), (False, s.x_curves)):
        if x is not None:
            out[with_config] = model.predict(x, tuple(candidate_changes(s, with_config)))
    return out


@dataclass
class GainPrediction(Prediction):
    change: str | None = None
    margin: float = math.nan


def gain_predictions(model: Any, s: Sample, predicted: dict[bool, dict[str, float]]) -> list[Prediction]:
    from benchmarks.calibrate import _decided_alone

    out: list[Prediction] = []
    for with_config in (True, False):
        if with_config not in predicted:
            out.append(_decided_alone(s, with_config))
            continue
        gains = predicted[with_config]
        verdict, cause, change, _ = model.decide(gains)
        best = max(gains.values()) if gains else -math.inf
        margin = best - model.min_gain
        out.append(
            GainPrediction(
                s,
                with_config,
                verdict.value,
                "" if cause is None else cause.value,
                abs(margin),
                change=change,
                margin=margin,
            )
        )
    return out


# ---------------------------------------------------------------- scoring


def lofo(
    samples: list[Sample], goals: dict[str, dict[str, float]]
) -> tuple[list[Prediction], dict[str, Any]]:
    """Held-out gain-model predictions per family, and each held-out run's predicted gains."""
    preds: list[Prediction] = []
    predicted_gains: dict[str, Any] = {}
    for family in sorted({s.run.family for s in samples}):
        start = time.perf_counter()
        model = fit_model([s for s in samples if s.run.family != family], goals)
        for s in (s for s in samples if s.run.family == family):
            g = predict_all(model, s)
            predicted_gains[s.run.name] = g
            preds += gain_predictions(model, s, g)
        predicted_gains[f"min_gain:{family}"] = model.min_gain
        print(
            f"  {family:<16} min_gain {model.min_gain:.2f}  ({time.perf_counter() - start:.0f} s)", flush=True
        )
    return preds, predicted_gains


def outcome(
    pred: Prediction, members: dict[str, list[Member]], ranked: dict[str, Any] | None
) -> float | None:
    """Held-out gain from following this prediction's suggestion.

    `ranked` (predicted gains per run) makes the combiner's verdict choose, among the
    ladder's steps in its direction, the one with the best predicted gain."""

    if isinstance(pred, GainPrediction):
        if pred.change is None:
            return 0.0
        change = candidate_changes(pred.sample, True)[pred.change]
        return change_outcome(pred.sample.run, change, members)
    if ranked is None or pred.verdict == "balanced":
        return advice_outcome(pred, members)
    from fitdoc.diagnosis.decide import LADDER_STEP

    first = ranked_first(pred, ranked)
    if first is None:
        return 0.0
    if first == LADDER_STEP:
        return advice_outcome(pred, members)
    return change_outcome(pred.sample.run, candidate_changes(pred.sample, True)[first], members)


# Ladder steps whose margin stays `min_gain` whatever the held-out advice says: lowering the
# penalty is the founding answer for the over-regularized run (L2 0.001 -> 0.0001; trained, val MAE
# -31 %, where twice the epochs, which a smaller margin would put first, gives -14 %); and twice
# the units' predictions have no held-out skill (0.01), so an edge over them is no evidence.
KEPT_AT_MIN_GAIN = ("penalty_down", "units_x2")


def ranker_inputs(pred: Prediction, ranked: dict[str, Any]) -> tuple[Any, str, dict[str, float]] | None:
    """(verdict, the ladder's own first step as a change kind or LADDER_STEP, the predicted
    gains in the verdict's direction) for this (combiner) prediction; None: no ladder step."""
    from fitdoc.diagnosis.decide import LADDER_STEP
    from fitdoc.diagnosis.gains import KINDS
    from fitdoc.diagnosis.suggest import suggest
    from fitdoc.verdict import Cause, Verdict

    verdict = Verdict(pred.verdict)
    ladder = suggest(
        verdict, Cause(pred.cause) if pred.cause else None, pred.sample.config, pred.sample.features
    )
    if ladder is None:
        return None
    gains = ranked.get(pred.sample.run.name, {}).get(True, {})
    candidates = candidate_changes(pred.sample, True)
    gains = {k: v for k, v in gains.items() if KINDS[k].verdict is verdict}
    incumbent = next((k for k, c in candidates.items() if c == ladder.primary), LADDER_STEP)
    return verdict, incumbent, gains


def ranked_first(pred: Prediction, ranked: dict[str, Any]) -> str | None:
    """The change kind the gain ranker puts first for this (combiner) prediction, as
    `fitdoc.diagnosis.decide.rank_by_gain` does (LADDER_STEP: the ladder's own; None: no step).
    The margins are the family's held-out ones (`rank_margins:<family>`, from
    `rank_margins_lofo`), or one margin for every step (`rank_margin`, in its trials)."""
    from fitdoc.diagnosis.decide import LADDER_STEP
    from fitdoc.diagnosis.gains import GainModel
    from fitdoc.diagnosis.rules.combiner import EVIDENCE_NAMES

    inputs = ranker_inputs(pred, ranked)
    if inputs is None:
        return None
    verdict, incumbent, gains = inputs
    family = pred.sample.run.family
    if "rank_margin" in ranked:
        model = GainModel(EVIDENCE_NAMES, {}, ranked["rank_margin"], {})
    else:
        margins = ranked.get(f"rank_margins:{family}", {})
        model = GainModel(EVIDENCE_NAMES, {}, ranked[f"min_gain:{family}"], {}, rank_margins=margins)
    order = model.rank(gains, verdict, incumbent)
    return order[0] if order else LADDER_STEP


def margins_by_kind(
    incumbent: dict[str, str], value: Callable[[str, float | None], float]
) -> dict[str, float]:
    """Per kind of the ladder's step (`incumbent`: run -> kind), the margin in RANK_MARGIN_GRID
    whose runs' total `value(run, margin)` is the largest; a tie keeps `min_gain` (`value(run,
    None)`; then not written), then the larger margin. `KEPT_AT_MIN_GAIN` is not chosen."""
    candidates = (None, *sorted(RANK_MARGIN_GRID, reverse=True))
    margins = {}
    for kind in sorted(set(incumbent.values()) - set(KEPT_AT_MIN_GAIN)):
        runs = [n for n, k in incumbent.items() if k == kind]
        best = max(candidates, key=lambda m: sum(value(n, m) for n in runs))
        if best is not None:
            margins[kind] = best
    return margins


def print_swaps(
    rows_at: dict[float | None, dict[str, Any]],
    trials: dict[float | None, dict[str, Any]],
    ranked_runs: dict[str, Prediction],
    n_runs: int,
    n_finite: int,
) -> None:
    """Which first steps the smallest margin but one puts in place of the product's, on these
    runs (with a ladder step), and what each swap does to the share captured and harmful."""
    small = RANK_MARGIN_GRID[1]
    swaps: dict[tuple[str, str], list[tuple[Any, Any]]] = {}
    for name, pred in ranked_runs.items():
        pair = (ranked_first(pred, trials[None]), ranked_first(pred, trials[small]))
        if pair[0] != pair[1]:
            swaps.setdefault((str(pair[0]), str(pair[1])), []).append(
                (rows_at[None][name], rows_at[small][name])
            )
    print(
        f"  first steps margin {small:.2f} swaps (points of the {n_finite} runs' captured / {n_runs} runs' harmful):"
    )
    for (was, now), pairs in sorted(swaps.items(), key=lambda kv: -len(kv[1]))[:6]:
        d_captured = sum(b[1] - a[1] for a, b in pairs if math.isfinite(a[1])) / n_finite
        d_harmful = sum(float(b[2]) - float(a[2]) for a, b in pairs) / n_runs
        print(
            f"    {was:>13} -> {now:<13}{len(pairs):>5} runs  captured {d_captured:+.2%}  harmful {d_harmful:+.2%}"
        )


def rank_margins_lofo(
    base: Sequence[Prediction], members: dict[str, list[Member]], ranked: dict[str, Any]
) -> dict[str, float]:
    """Per kind of the ladder's own step, the margin another step's predicted gain must clear to
    go first (`GainModel.rank_margins`), chosen for each family on the other families' held-out
    advice (the most of the best gain captured less the share harmful; a tie keeps `min_gain`,
    then the larger margin) and written into `ranked`, so that every ranker row after this is
    held out; returns the margins chosen on all families (the product's). `KEPT_AT_MIN_GAIN`
    is not chosen. Also prints what one margin for every step would do, and which first steps
    the smallest but one swaps.

    Scored on the runs whose suggestion is on the grid at every margin: a margin must not win
    by moving runs to steps that were never trained (and so are not scored)."""
    scored = [
        p for p in base if p.with_config and p.verdict != "inconclusive" and p.sample.run.path_key in members
    ]
    trials: dict[float | None, dict[str, Any]] = {None: ranked}
    trials |= {margin: {**ranked, "rank_margin": margin} for margin in RANK_MARGIN_GRID}
    rows_at = {
        margin: {
            p.sample.run.name: advice_row(p, gain)
            for p in scored
            if (gain := outcome(p, members, trial)) is not None
        }
        for margin, trial in trials.items()
    }
    common = sorted(set.intersection(*(set(rows) for rows in rows_at.values())))
    by_name = {p.sample.run.name: p for p in scored}
    finite = sum(math.isfinite(rows_at[None][name][1]) for name in common)
    print("one margin over the ladder's step for every step (min_gain: the label's), held out:")
    print(
        f"  {'margin':<8}{'captured':>10}{'harmful':>9}   (on the {len(common)} runs scored at every margin)"
    )
    for margin in RANK_MARGIN_GRID:
        captured, harmful = advice_summary([rows_at[margin][name] for name in common])
        print(f"  {margin:<8.2f}{captured:>10.1%}{harmful:>9.1%}")
    incumbent = {
        name: inputs[1]
        for name in common
        if by_name[name].verdict != "balanced"
        and (inputs := ranker_inputs(by_name[name], ranked)) is not None
    }
    print_swaps(rows_at, trials, {n: by_name[n] for n in incumbent}, len(common), finite)

    # Each run's score at each margin, as its share of the total: the total is additive, so the
    # margin of each kind of ladder step can be chosen on its own runs.
    def value(name: str, margin: float | None) -> float:
        _, captured, harmful = rows_at[margin][name]
        return (captured / finite if math.isfinite(captured) else 0.0) - float(harmful) / len(common)

    def choose(keep: set[str]) -> dict[str, float]:
        kept = {n: k for n, k in incumbent.items() if by_name[n].sample.run.family in keep}
        return margins_by_kind(kept, value)

    families = sorted({p.sample.run.family for p in scored})
    print("margins over each kind of the ladder's step, chosen on the other families (else min_gain):")
    for family in families:
        ranked[f"rank_margins:{family}"] = chosen = choose(set(families) - {family})
        print(f"  {family:<16}" + ", ".join(f"{k} {v:+.0%}" for k, v in chosen.items()))
    product = choose(set(families))
    print(f"  {'all families':<16}" + ", ".join(f"{k} {v:+.0%}" for k, v in product.items()))
    return product


def advice(
    preds: Sequence[Prediction], members: dict[str, list[Member]], ranked: dict[str, Any] | None = None
) -> dict[str, Any]:
    rows = []  # (path key, captured or nan, harmful, scored)
    unscored = 0
    for pred in preds:
        if not pred.with_config or pred.verdict == "inconclusive" or pred.sample.run.path_key not in members:
            continue
        gain = outcome(pred, members, ranked)
        if gain is None:
            unscored += 1
            continue
        rows.append(advice_row(pred, gain))
    return {"rows": rows, "unscored": unscored}


def advice_row(pred: Prediction, gain: float) -> tuple[str, float, bool]:
    """(path key, share of the best one-step gain captured or NaN where no change gains
    >= 10 %, harmful: >= 5 % worse) for following a suggestion that gains `gain`."""
    best = max(pred.sample.run.label.gains.values())
    return pred.sample.run.path_key, max(-1.0, gain / best) if best >= 0.10 else math.nan, gain <= -0.05


def advice_summary(rows: Sequence[tuple[str, float, bool]]) -> tuple[float, float]:
    captured = [c for _, c, _ in rows if math.isfinite(c)]
    return float(np.mean(captured)), float(np.mean([h for _, _, h in rows]))


def bootstrap_noise(a: Sequence[Prediction], b: Sequence[Prediction], metric: Any, draws: int = 100) -> float:
    """Std of metric(b) - metric(a) over resamples of paths (both sets resampled alike)."""
    rng = np.random.default_rng(0)
    keys = sorted({p.sample.run.path_key for p in a})
    by_a: dict[str, list[Prediction]] = {k: [] for k in keys}
    by_b: dict[str, list[Prediction]] = {k: [] for k in keys}
    for p in a:
        by_a[p.sample.run.path_key].append(p)
    for p in b:
        by_b.setdefault(p.sample.run.path_key, []).append(p)
    diffs = []
    for _ in range(draws):
        pick = rng.choice(len(keys), size=len(keys))
        sa = [p for i in pick for p in by_a[keys[i]]]
        sb = [p for i in pick for p in by_b[keys[i]]]
        diffs.append(metric(sb) - metric(sa))
    return float(np.std(diffs))


def bootstrap_rows_noise(ra: Sequence[Any], rb: Sequence[Any], index: int, draws: int = 100) -> float:
    rng = np.random.default_rng(1)
    keys = sorted({r[0] for r in ra} | {r[0] for r in rb})
    ga: dict[str, list[Any]] = {k: [] for k in keys}
    gb: dict[str, list[Any]] = {k: [] for k in keys}
    for r in ra:
        ga[r[0]].append(r)
    for r in rb:
        gb[r[0]].append(r)
    diffs = []
    for _ in range(draws):
        pick = rng.choice(len(keys), size=len(keys))
        sa = [r for i in pick for r in ga[keys[i]]]
        sb = [r for i in pick for r in gb[keys[i]]]
        diffs.append(advice_summary(sb)[index] - advice_summary(sa)[index])
    return float(np.std(diffs))


def held_out_calibration(preds: Sequence[Prediction]) -> None:
    """Each family's confidences from a margin -> share-right map fitted on the other families."""
    judged = [p for p in preds if isinstance(p, GainPrediction)]
    for family in sorted({p.sample.run.family for p in judged}):
        others = [p for p in judged if p.sample.run.family != family]
        maps = {which: margin_map(others, which) for which in ("directed", "balanced")}
        for p in judged:
            if p.sample.run.family == family:
                which = "balanced" if p.verdict == "balanced" else "directed"
                xs, ys = maps[which]
                p.confidence = float(np.interp(abs(p.margin), xs, ys)) if xs else 0.5


def margin_map(preds: Sequence[Any], which: str) -> tuple[list[float], list[float]]:
    """Monotone map |margin| -> share right, for directed or balanced verdicts (PAV over deciles)."""
    chosen = [p for p in preds if (p.verdict == "balanced") == (which == "balanced")]
    if len(chosen) < 50:
        return [], []
    margins = np.array([abs(p.margin) for p in chosen])
    right = np.array([p.verdict == p.sample.run.label.label for p in chosen], dtype=float)
    edges = np.quantile(margins, np.linspace(0, 1, 11))
    blocks = []
    for lo, hi in itertools.pairwise(edges):
        inside = (margins >= lo) & (margins <= hi)
        if inside.sum():
            blocks.append([float(margins[inside].mean()), float(right[inside].mean()), int(inside.sum())])
    return pool_adjacent_violators(blocks)


def reliability_rows(preds: Sequence[Prediction]) -> list[tuple[str, int, float, float]]:
    judged = [p for p in preds if isinstance(p, GainPrediction) and math.isfinite(p.confidence)]
    rows = []
    edges = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01)
    for lo, hi in itertools.pairwise(edges):
        inside = [p for p in judged if lo <= p.confidence < hi]
        if inside:
            right = float(np.mean([p.verdict == p.sample.run.label.label for p in inside]))
            rows.append(
                (
                    f"{lo:.1f}-{min(hi, 1.0):.1f}",
                    len(inside),
                    float(np.mean([p.confidence for p in inside])),
                    right,
                )
            )
    return rows


# ---------------------------------------------------------------- overturning balanced

# Predicted gains at which a balanced verdict of the combiner is overturned (None: never).
OVERRIDE_GRID: tuple[float | None, ...] = (None, 0.10, 0.12, 0.15, 0.18, 0.2, 0.25, 0.3, 0.4)


def overturned(base: Sequence[Prediction], ranked: dict[str, Any], theta: float | None) -> list[Prediction]:
    """The combiner's held-out predictions, each balanced one (not decided by a gate or an
    override) overturned when its best held-out predicted gain is at least `theta`
    (the package's `GainModel.overturn`)."""
    from fitdoc.diagnosis.gains import KINDS, GainModel
    from fitdoc.diagnosis.rules.combiner import EVIDENCE_NAMES

    model = GainModel(EVIDENCE_NAMES, {}, 0.0, {}, override_gain=theta)
    out: list[Prediction] = []
    for p in base:
        gains = ranked.get(p.sample.run.name, {}).get(p.with_config, {})
        best = model.overturn(gains) if p.verdict == "balanced" and not p.decided_alone else None
        if best is None:
            out.append(p)
            continue
        kind = KINDS[best]
        out.append(
            GainPrediction(
                p.sample,
                p.with_config,
                kind.verdict.value,
                kind.cause.value,
                p.p,
                change=best,
                margin=gains[best],
            )
        )
    return out


def mean_f1(preds: Sequence[Prediction]) -> float:
    """Macro-F1 with configs and from curves alone, averaged: what `theta` is chosen for."""
    return float(
        np.mean([scores([p for p in preds if p.with_config is wc])["macro_f1"] for wc in (True, False)])
    )


def choose_theta(preds_by_theta: dict[float | None, list[Prediction]], families: set[str]) -> float | None:
    """The threshold with the best mean macro-F1 on these families' held-out predictions."""

    def score(theta: float | None) -> float:
        return mean_f1([p for p in preds_by_theta[theta] if p.sample.run.family in families])

    return max(OVERRIDE_GRID, key=lambda t: (score(t), t is None))


def override_lofo(
    base: Sequence[Prediction], ranked: dict[str, Any]
) -> tuple[list[Prediction], float | None]:
    """Each family overturned at the threshold chosen on the other families' held-out
    predictions; and the threshold chosen on all of them (the product's)."""
    by_theta = {theta: overturned(base, ranked, theta) for theta in OVERRIDE_GRID}
    families = {p.sample.run.family for p in base}
    out: list[Prediction] = []
    for family in sorted(families):
        theta = choose_theta(by_theta, families - {family})
        out += [p for p in by_theta[theta] if p.sample.run.family == family]
        print(f"  {family:<16} overturn balanced from {'never' if theta is None else f'{theta:+.0%}'}")
    return out, choose_theta(by_theta, families)


def capacity_recall(
    preds: Sequence[Prediction], with_config: bool, ranked: dict[str, Any] | None = None
) -> tuple[float, float, int]:
    """Of the runs labelled underfit (capacity): the share called underfit (capacity), and underfit."""
    from fitdoc.diagnosis.gains import KINDS

    mine = [p for p in preds if p.with_config is with_config and p.sample.run.label.cause == "capacity"]
    if not mine:
        return math.nan, math.nan, 0

    def cause(p: Prediction) -> str:
        if isinstance(p, GainPrediction) or p.verdict != "underfit" or not with_config or ranked is None:
            return p.cause
        first = ranked_first(p, ranked)
        return KINDS[first].cause.value if first in KINDS else p.cause

    cap = float(np.mean([p.verdict == "underfit" and cause(p) == "capacity" for p in mine]))
    under = float(np.mean([p.verdict == "underfit" for p in mine]))
    return cap, under, len(mine)


# ---------------------------------------------------------------- report


def print_comparison(
    base: list[Prediction],
    gain: list[Prediction],
    over: list[Prediction],
    members: dict[str, list[Member]],
    ranked: dict[str, Any],
) -> dict[str, Any]:
    def f1(with_config: bool) -> Any:
        return lambda ps: scores([p for p in ps if p.with_config is with_config])["macro_f1"]

    print()
    print("Leave-one-family-out, every family held out in turn")
    print(
        f"{'decision':<26}{'F1 config':>10}{'F1 curves':>10}{'R over':>8}{'R under':>8}{'R bal':>7}{'captured':>10}{'harmful':>9}"
    )
    adv = {
        "combiner + ladder": advice(base, members),
        "combiner + gain ranker": advice(base, members, ranked),
        "gain model": advice(gain, members),
        "ranker + overturn": advice(over, members, ranked),
    }
    rows = (
        ("combiner + ladder", base),
        ("combiner + gain ranker", base),
        ("gain model", gain),
        ("ranker + overturn", over),
    )
    for name, preds in rows:
        sc, sr = scores([p for p in preds if p.with_config]), scores([p for p in preds if not p.with_config])
        cap, harm = advice_summary(adv[name]["rows"])
        print(
            f"{name:<26}{sc['macro_f1']:>10.3f}{sr['macro_f1']:>10.3f}"
            f"{sc['overfit'][1]:>8.2f}{sc['underfit'][1]:>8.2f}{sc['balanced'][1]:>7.2f}{cap:>10.0%}{harm:>9.1%}"
        )
    print(
        f"(advice over {len(adv['gain model']['rows'])} scored runs; "
        + ", ".join(f"{k}: {v['unscored']} off the grid" for k, v in adv.items())
        + ")"
    )
    print()
    print("Runs labelled underfit (capacity): called underfit (capacity) / underfit")
    for name, preds in rows[1:]:
        parts = []
        for wc in (True, False):
            cap, under, n = capacity_recall(preds, wc, ranked if name != "gain model" else None)
            parts.append(f"{'config' if wc else 'curves'} {cap:.0%} / {under:.0%}")
        print(f"  {name:<26}" + "   ".join(parts) + f"   (of {n})")
    print()
    print("Differences (vs combiner + ladder) and their noise (bootstrap over paths, 1 sd)")
    out = {}
    for label, metric in (("macro-F1 with config", f1(True)), ("macro-F1 curves only", f1(False))):
        for name, preds in (("gain model", gain), ("ranker + overturn", over)):
            d = metric(preds) - metric(base)
            noise = bootstrap_noise(base, preds, metric)
            key = label if name == "gain model" else f"{label} ({name})"
            out[key] = (d, noise)
            print(f"  {label + ' (' + name + ')':<48}{d:+.3f}  (noise {noise:.3f})")
    for index, label in ((0, "advice captured"), (1, "advice harmful")):
        for name in ("combiner + gain ranker", "gain model", "ranker + overturn"):
            d = (
                advice_summary(adv[name]["rows"])[index]
                - advice_summary(adv["combiner + ladder"]["rows"])[index]
            )
            noise = bootstrap_rows_noise(adv["combiner + ladder"]["rows"], adv[name]["rows"], index)
            out[f"{label} ({name})"] = (d, noise)
            print(f"  {label + ' (' + name + ')':<48}{d:+.3f}  (noise {noise:.3f})")
    print()
    print(
        f"{'family (held out)':<18}{'combiner cfg':>13}{'gain cfg':>10}{'overturn cfg':>13}"
        f"{'combiner curves':>16}{'gain curves':>12}{'overturn curves':>16}"
    )
    for fam in sorted({p.sample.run.family for p in base}):
        row = []
        for preds in (base, gain, over):
            for wc in (True, False):
                row.append(
                    scores([p for p in preds if p.with_config is wc and p.sample.run.family == fam])[
                        "macro_f1"
                    ]
                )
        print(
            f"{fam:<18}{row[0]:>13.3f}{row[2]:>10.3f}{row[4]:>13.3f}{row[1]:>16.3f}{row[3]:>12.3f}{row[5]:>16.3f}"
        )
    print()
    print("Gain model confidence (held out twice: the margin map is fitted without the family it maps)")
    print(f"{'confidence':<12}{'verdicts':>9}{'mean conf':>11}{'right':>8}")
    for name, n, conf, right in reliability_rows(gain):
        print(f"{name:<12}{n:>9}{conf:>11.2f}{right:>8.2f}")
    return out


def prediction_quality(
    samples: list[Sample], goals: dict[str, dict[str, float]], ranked: dict[str, Any]
) -> dict[str, float]:
    """Per change, held-out: correlation of predicted with measured gain (returned: the
    change's skill), and MAE."""
    print()
    print("Held-out gain predictions per change (with config)")
    print(f"{'change':<14}{'runs':>6}{'corr':>7}{'MAE':>7}{'mean gain':>10}")
    skill = {}
    for kind in kinds():
        pairs = [
            (ranked[s.run.name][True][kind], goals[s.run.name][kind])
            for s in samples
            if s.run.name in ranked
            and True in ranked[s.run.name]
            and kind in ranked[s.run.name][True]
            and kind in goals.get(s.run.name, {})
        ]
        if len(pairs) < 10:
            continue
        p, t = np.array(pairs).T
        corr = float(np.corrcoef(p, t)[0, 1])
        skill[kind] = corr if math.isfinite(corr) else 0.0
        print(f"{kind:<14}{len(pairs):>6}{corr:>7.2f}{np.mean(np.abs(p - t)):>7.3f}{np.mean(t):>+10.3f}")
    return skill


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--write", action="store_true", help="fit on every family and write gains.json")
    parser.add_argument(
        "--bounds",
        action="store_true",
        help="also print the advice with the labels' verdicts or the best step",
    )
    args = parser.parse_args(argv)

    start = time.perf_counter()
    samples, members = load_samples(args.data_dir)
    samples += load_shared_samples(SHARED_CORPUS)
    goals = {s.run.name: targets(s, members) for s in samples}
    print(f"read, measured and looked up in {time.perf_counter() - start:.1f} s: {len(samples)} runs")
    base = leave_one_family_out(samples)
    print("fitting the gain model, one family held out at a time:")
    gain, ranked = lofo(samples, goals)
    held_out_calibration(gain)
    skill = prediction_quality(samples, goals, ranked)
    rank_margins = rank_margins_lofo(base, members, ranked)
    print("overturning the combiner's balanced verdicts, threshold chosen on the other families:")
    over, theta = override_lofo(base, ranked)
    diffs = print_comparison(base, gain, over, members, ranked)
    if args.bounds:
        advice_bounds(base, members, ranked, goals)
    use = choose_use(diffs)
    override = choose_override(diffs, theta) if use == "ranker" else None
    print(
        f"\nuse in the product: {use}; overturn balanced from: {'never' if override is None else f'{override:+.0%}'}"
    )
    if args.write:
        write_model(samples, goals, gain, use, override, skill, rank_margins)
    return 0


def advice_bounds(
    base: list[Prediction],
    members: dict[str, list[Member]],
    ranked: dict[str, Any],
    goals: dict[str, dict[str, float]],
) -> None:
    """Where the advice loses: the share captured with the held-out verdicts or the labels'
    (the gates and overrides keep theirs), each with the ranker's step or the best measured
    step in the verdict's direction (an oracle, a bound, not a method)."""
    import dataclasses

    from fitdoc.diagnosis.gains import KINDS

    def labelled(p: Prediction) -> Prediction:
        return p if p.decided_alone else dataclasses.replace(p, verdict=p.sample.run.label.label, cause="")

    def best_step(preds: Sequence[Prediction]) -> tuple[float, float]:
        rows = []
        for p in preds:
            if not p.with_config or p.verdict == "inconclusive" or p.sample.run.path_key not in members:
                continue
            measured = goals.get(p.sample.run.name, {})
            same_way = [g for k, g in measured.items() if KINDS[k].verdict.value == p.verdict]
            gain = 0.0 if p.verdict == "balanced" else max(same_way, default=None)
            if gain is not None:
                rows.append(advice_row(p, gain))
        return advice_summary(rows)

    with_labels = [labelled(p) for p in base]
    print()
    print("Advice bounds (with config): the step chosen by the ranker, or the best measured one")
    print(f"{'verdict':<22}{'ranker captured':>16}{'harmful':>9}{'best step captured':>20}{'harmful':>9}")
    for name, preds in (("held out (product)", base), ("the label's", with_labels)):
        cap, harm = advice_summary(advice(preds, members, ranked)["rows"])
        best_cap, best_harm = best_step(preds)
        print(f"{name:<22}{cap:>16.0%}{harm:>9.1%}{best_cap:>20.0%}{best_harm:>9.1%}")


def choose_use(diffs: dict[str, tuple[float, float]]) -> str:
    """'ranker' when ranking the combiner's direction by predicted gain gives better advice
    beyond noise without more harm; else 'off'.

    The gain model's own verdicts ('decision') are scored beside it for comparison; the
    product would take them only if they gave better advice beyond noise and lost no label
    agreement beyond noise (with configs and from curves alone), and the product does not
    implement that mode until they do."""

    def better(name: str) -> bool:
        captured, c_noise = diffs[f"advice captured ({name})"]
        harmful, h_noise = diffs[f"advice harmful ({name})"]
        return captured > c_noise and harmful <= h_noise

    labels_kept = all(
        d > -noise for d, noise in (diffs["macro-F1 with config"], diffs["macro-F1 curves only"])
    )
    if better("gain model") and labels_kept:
        print("the gain model's own verdicts would qualify as the decision: not implemented in the product")
    return "ranker" if better("combiner + gain ranker") else "off"


def choose_override(diffs: dict[str, tuple[float, float]], theta: float | None) -> float | None:
    """`theta` when overturning balanced verdicts (on top of the ranker) loses no label
    agreement beyond noise, with configs or from curves alone, and captures more of the best
    gain than the ranker alone beyond noise without more harm beyond noise; else None (never
    overturn)."""
    if theta is None:
        return None
    name = "ranker + overturn"
    kept = all(
        diffs[f"{m} ({name})"][0] > -diffs[f"{m} ({name})"][1]
        for m in ("macro-F1 with config", "macro-F1 curves only")
    )
    captured, c_noise = diffs[f"advice captured ({name})"]
    ranker_captured = diffs["advice captured (combiner + gain ranker)"][0]
    harmful, h_noise = diffs[f"advice harmful ({name})"]
    ranker_harmful = diffs["advice harmful (combiner + gain ranker)"][0]
    # Like the ranker (`choose_use`), overturning must earn its place: better advice than the
    # ranker alone beyond noise, not only none worse (a tie keeps FD601 off).
    advice_better = captured - ranker_captured > c_noise and harmful - ranker_harmful <= h_noise
    return theta if kept and advice_better else None


def write_model(
    samples: list[Sample],
    goals: dict[str, dict[str, float]],
    held_out: list[Prediction],
    use: str,
    override: float | None = None,
    skill: dict[str, float] | None = None,
    rank_margins: dict[str, float] | None = None,
) -> None:
    import json

    from fitdoc.diagnosis.gains import WEIGHTS_FILE, GainModel

    paths = len({s.run.path_key for s in samples})
    model = fit_model(samples, goals, f"{len(samples)} labelled runs, {paths} paths")
    judged = [p for p in held_out if isinstance(p, GainPrediction)]
    calibration = {which: tuple(map(tuple, margin_map(judged, which))) for which in ("directed", "balanced")}
    model = GainModel(
        model.evidence,
        model.trees,
        model.min_gain,
        calibration,  # type: ignore[arg-type]
        model.fitted_on,
        use,
        override,
        skill or {},
        rank_margins or {},
    )
    WEIGHTS_FILE.write_text(json.dumps(model.to_dict(), separators=(",", ":")) + "\n")
    print(f"wrote {WEIGHTS_FILE.relative_to(REPO)} (min_gain {model.min_gain:.2f})")


if __name__ == "__main__":
    raise SystemExit(main())
