"""Fit fitdoc's combiner on the corpus factory's runs and score it honestly.

What it does, in order:

1. Reads every stored path (`benchmarks/corpus/data`), cuts and labels its
   runs (the rule of `shared/corpus/labeled/README.md`), and measures each
   run's evidence twice: with its config known and from curves alone. The
   shared labelled corpus joins as one more family (`shared-labeled`) unless
   `--without-shared`.
2. Leave-one-family-out: for each data family, fits the combiner on all the
   other families and predicts the one left out. Quality (per-class
   precision and recall, macro-F1, with configs and from curves alone, per
   family and per row order) is reported on those held-out predictions only.
3. Confidence: a calibration map (winning probability -> chance of being
   right) fitted on held-out predictions, itself checked leave-one-family-out
   in a reliability table.
4. Advice: each held-out verdict's suggestion is followed on the trained grid
   (another penalty or dropout value on the path, stopping at the val
   minimum, training to 2E) and its held-out error compared with the run's
   own and with the best one-step change.
5. With `--write`, fits on every family and hands the refit to the regression
   guard (`benchmarks/guard.py`), which writes
   `fitdoc/diagnosis/rules/combiner.json` (the weights `fitdoc rules` shows,
   and `min_evaluations`, the fewest evaluations of a run it was fitted on)
   only when no held-out family, the shared corpus, the real logs or the
   advice got worse beyond noise.

Every decision here is the package's own (`fitdoc.diagnosis.decide`: its
gates, its overrides, its combiner), given the weights being fitted.

    python benchmarks/calibrate.py [--write] [--markdown]
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.corpus.labels import Label, Member, mean_at  # noqa: E402
from benchmarks.corpus.store import DATA_DIR, Run, members_of, read_paths, runs_of  # noqa: E402

LABELS = ("overfit", "underfit", "balanced")
# Inverse regularization strength of the logistic fit: weights stay small and readable.
C = 0.5
# 1 weighs the classes to equal total weight (best for macro-F1 when the classes are very
# unequal); 0 keeps the corpus' own mix. Half-way keeps the rarer classes heard without
# letting them take the borderline runs the common class mostly owns.
# (Compared with 0 and 1 on an earlier, smaller corpus: 0.5 scored as well as 1 leave-one-
# family-out, and unlike 1 it kept the founding L2 1e-3 run over-regularized.)
CLASS_WEIGHT_POWER = 0.5


@dataclass
class Sample:
    run: Run
    x_config: np.ndarray | None  # None when a gate fired (inconclusive)
    x_curves: np.ndarray | None
    features: Any
    findings_config: tuple[Any, ...]
    findings_curves: tuple[Any, ...]
    config: Any


def load_samples(data_dir: Path) -> tuple[list[Sample], dict[str, list[Member]]]:
    from fitdoc.config import validate_config
    from fitdoc.diagnosis.decide import run_rules
    from fitdoc.diagnosis.features import compute_features
    from fitdoc.diagnosis.rules._config import regularization
    from fitdoc.diagnosis.rules.registry import all_rules
    from fitdoc.history.load import curves_from_mapping

    rules = all_rules()
    samples, members = [], {}
    for path in read_paths(data_dir):
        members[path["key"]] = members_of(path)
        for run in runs_of(path):
            if run.label.label not in LABELS:
                continue
            curves = curves_from_mapping(run.history, source=run.name)
            config = validate_config({"model": run.model, "training": run.training}, model_only=True)
            features = compute_features(curves)
            reg = regularization(config)
            with_cfg = run_rules(rules, features, reg)
            without = run_rules(rules, features, None)

            samples.append(
                Sample(
                    run,
                    _vector(features, with_cfg, reg),
                    _vector(features, without, None),
                    features,
                    with_cfg,
                    without,
                    config,
                )
            )
    return samples, members


def _vector(features: Any, findings: Sequence[Any], reg: Any) -> np.ndarray | None:
    """The evidence vector, or None when the package's gates or overrides decide alone.

    The short-run overrides are left to `leave_one_family_out` (they depend on the
    shortest run a fit saw, `min_evaluations`); here only what holds for every fit."""
    from fitdoc.diagnosis.decide import decided_alone
    from fitdoc.diagnosis.rules.combiner import evidence

    if decided_alone(findings, features, 0) is not None:
        return None
    return evidence(features, findings, reg)


def min_evaluations(samples: Iterable[Sample]) -> int:
    """The fewest evaluations of a run the combiner is fitted on: its domain's lower edge."""
    return min(s.features.n_epochs for s in samples if s.x_config is not None or s.x_curves is not None)


# Short classification runs (the factory's `--short-classification`, 10-40 epochs) are
# scored apart: the fine-tuning-like runs real classification logs mostly are.
SHORT_EPOCHS = 40
RUN_KINDS: dict[str, Callable[[Run], bool]] = {
    "regression": lambda r: r.task == "regression",
    "classification": lambda r: r.task == "classification",
    "  <= 40 epochs": lambda r: r.task == "classification" and r.epochs <= SHORT_EPOCHS,
    "  > 40 epochs": lambda r: r.task == "classification" and r.epochs > SHORT_EPOCHS,
}

SHARED_CORPUS = REPO.parent / "shared" / "corpus" / "labeled"
SHARED_FAMILY = "shared-labeled"


def load_shared_samples(corpus: Path) -> list[Sample]:
    """The shared labelled corpus as one more family (real Keras runs of friedman1 and wave,
    labelled by the same rule with two seeds averaged). Its advice is not scored here:
    its grid lives in its raw files, not in the factory's store."""
    from benchmarks.diagnosis_quality import load_cases
    from fitdoc.diagnosis.decide import run_rules
    from fitdoc.diagnosis.features import compute_features
    from fitdoc.diagnosis.rules._config import regularization
    from fitdoc.diagnosis.rules.registry import all_rules

    if not (corpus / "labels.tsv").is_file():
        return []
    rules = all_rules()
    samples = []
    for case in load_cases(corpus):
        features = compute_features(case.curves)
        reg = regularization(case.config)
        with_cfg, without = run_rules(rules, features, reg), run_rules(rules, features, None)
        label = Label(case.label, case.cause, "", math.nan, math.nan, math.nan, {})
        run = Run(
            name=case.name,
            family=SHARED_FAMILY,
            task="regression",
            order="reshuffle",
            early_stopping=False,
            epochs=len(case.curves),
            history={},
            model=case.config.model.model_dump(),
            training={},
            label=label,
            path_key=SHARED_FAMILY,
        )
        x_cfg, x_raw = _vector(features, with_cfg, reg), _vector(features, without, None)
        samples.append(Sample(run, x_cfg, x_raw, features, with_cfg, without, case.config))
    return samples


# ---------------------------------------------------------------- fitting


def fit(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression; each class weighted by (runs / its runs) ** CLASS_WEIGHT_POWER."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, max_iter=2000)
    model.fit(xs, ys, sample_weight=_class_weights(ys)[ys])
    # sklearn orders classes by label; map back to LABELS order.
    order = [list(model.classes_).index(k) for k in range(len(LABELS))]
    return model.coef_[order], model.intercept_[order]


def _class_weights(ys: np.ndarray) -> np.ndarray:
    counts = np.bincount(ys, minlength=len(LABELS)).astype(float)
    return (len(ys) / np.maximum(counts, 1.0)) ** CLASS_WEIGHT_POWER


def training_rows(samples: Iterable[Sample]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for s in samples:
        y = LABELS.index(s.run.label.label)
        for x in (s.x_config, s.x_curves):
            if x is not None:
                xs.append(x)
                ys.append(y)
    return np.asarray(xs), np.asarray(ys)


def probabilities(weights: np.ndarray, bias: np.ndarray, x: np.ndarray) -> np.ndarray:
    z = weights @ x + bias
    p = np.exp(z - z.max())
    return p / p.sum()


def calibration_map(probs: Sequence[float], right: Sequence[bool]) -> tuple[list[float], list[float]]:
    """Monotone map p -> P(right): pool-adjacent-violators over probability bins."""
    bins = np.linspace(1 / 3, 1.0, 9)
    p, r = np.asarray(probs), np.asarray(right, dtype=float)
    centers, rates, counts = [], [], []
    for lo, hi in itertools.pairwise(bins):
        inside = (p >= lo) & (p < hi) if hi < 1.0 else (p >= lo)
        if inside.sum() >= 10:
            centers.append(float(p[inside].mean()))
            rates.append(float(r[inside].mean()))
            counts.append(int(inside.sum()))
    # Pool adjacent violators so confidence never falls as probability rises.
    blocks = [[c, v, n] for c, v, n in zip(centers, rates, counts, strict=True)]
    return pool_adjacent_violators(blocks)


# ---------------------------------------------------------------- scoring


@dataclass
class Prediction:
    sample: Sample
    with_config: bool
    verdict: str
    cause: str
    p: float
    confidence: float = math.nan
    decided_alone: bool = False


def leave_one_family_out(samples: list[Sample]) -> list[Prediction]:
    """Each family judged by a combiner fitted on the others, through the package's own
    decision (`fitdoc.diagnosis.decide.combine`: gates, overrides, then the combiner).
    The combiner is given no calibration map, so its confidence is the raw probability
    (the map is fitted on these held-out predictions, in `reliability`)."""
    from fitdoc.diagnosis.rules.combiner import Combiner

    families = sorted({s.run.family for s in samples})
    predictions = []
    for family in families:
        train = [s for s in samples if s.run.family != family]
        weights, bias = fit(*training_rows(train))
        combiner = Combiner(weights, bias, (), (), min_evaluations=min_evaluations(train))
        for s in (s for s in samples if s.run.family == family):
            for with_config in (True, False):
                predictions.append(decide_with(combiner, s, with_config))
    return predictions


def decide_with(combiner: Any, s: Sample, with_config: bool) -> Prediction:
    """The package's decision for one run, with its config or from curves alone."""
    from fitdoc.diagnosis.decide import combine, decided_alone
    from fitdoc.diagnosis.rules._config import regularization

    findings = s.findings_config if with_config else s.findings_curves
    reg = regularization(s.config) if with_config else None
    alone = decided_alone(findings, s.features, combiner.min_evaluations) is not None
    verdict, cause, p, _ = combine(findings, s.features, reg, combiner)
    cause_text = "" if cause is None else cause.value
    if alone:
        return Prediction(s, with_config, verdict.value, cause_text, p, p, True)
    return Prediction(s, with_config, verdict.value, cause_text, p)


def _decided_alone(s: Sample, with_config: bool) -> Prediction:
    """The verdict of a gate (inconclusive) or an override (FD206), as diagnose gives it."""
    from fitdoc.diagnosis.decide import decided_alone

    findings = s.findings_config if with_config else s.findings_curves
    alone = decided_alone(findings, s.features, 0)
    if alone is None:
        raise ValueError(f"{s.run.name}: no gate or override decides it")
    verdict, cause, strength = alone
    if verdict.value == "inconclusive":
        return Prediction(s, with_config, "inconclusive", "", 0.0)
    return Prediction(
        s, with_config, verdict.value, "" if cause is None else cause.value, strength, strength, True
    )


def scores(preds: Sequence[Prediction]) -> dict[str, Any]:
    return pair_scores([(p.verdict, p.sample.run.label.label) for p in preds])


def pair_scores(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Per label (precision, recall, count) and macro-F1 of (said, labelled) pairs."""
    out: dict[str, Any] = {"n": len(pairs)}
    f1s = []
    for label in LABELS:
        tp = sum(v == label and t == label for v, t in pairs)
        said = sum(v == label for v, _ in pairs)
        real = sum(t == label for _, t in pairs)
        precision = tp / said if said else 0.0
        recall = tp / real if real else math.nan
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        out[label] = (precision, recall, real)
        if real:
            f1s.append(f1)
    out["macro_f1"] = float(np.mean(f1s)) if f1s else math.nan
    return out


def reliability(preds: Sequence[Prediction]) -> list[tuple[str, int, float, float]]:
    """Rows (confidence bin, count, mean confidence, share right) on held-out families."""
    families = sorted({p.sample.run.family for p in preds})
    for family in families:
        others = [
            p
            for p in preds
            if p.sample.run.family != family and p.verdict != "inconclusive" and not p.decided_alone
        ]
        xs, ys = calibration_map(
            [p.p for p in others], [p.verdict == p.sample.run.label.label for p in others]
        )
        for p in preds:
            if p.sample.run.family == family and p.verdict != "inconclusive" and math.isnan(p.confidence):
                p.confidence = float(np.interp(p.p, xs, ys)) if xs else p.p
    rows = []
    edges = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01)
    # Runs an override decided are left out: the grid labels them balanced by construction.
    judged = [p for p in preds if p.verdict != "inconclusive" and not p.decided_alone]
    for lo, hi in itertools.pairwise(edges):
        inside = [p for p in judged if lo <= p.confidence < hi]
        if inside:
            right = np.mean([p.verdict == p.sample.run.label.label for p in inside])
            conf = np.mean([p.confidence for p in inside])
            rows.append((f"{lo:.1f}-{min(hi, 1.0):.1f}", len(inside), float(conf), float(right)))
    return rows


# ---------------------------------------------------------------- advice


def advice_outcome(pred: Prediction, members: dict[str, list[Member]]) -> float | None:
    """Relative gain in held-out error from following the suggestion (None: not on the grid)."""
    from fitdoc.diagnosis.suggest import suggest
    from fitdoc.verdict import Cause, Verdict

    verdict = Verdict(pred.verdict)
    if verdict is Verdict.BALANCED:
        return 0.0
    cause = Cause(pred.cause) if pred.cause else None
    suggestion = suggest(verdict, cause, pred.sample.config, pred.sample.features)
    if suggestion is None:
        return 0.0
    return change_outcome(pred.sample.run, suggestion.primary, members)


def change_outcome(run: Run, change: Any, members: dict[str, list[Member]]) -> float | None:
    """Relative gain in held-out error from one concrete change, read off the trained grid
    (None: the change is not on the grid)."""
    path = members[run.path_key]
    me = _me(run, path)
    base = mean_at(me.test_error, run.epochs)
    target: float | None = None
    if change.key == "model.units":
        wide = next(
            (m for m in path if m.units == change.to and m.penalty == me.penalty and m.dropout == me.dropout),
            None,
        )
        target = None if wide is None else mean_at(wide.test_error, run.epochs)
    elif change.key in ("model.l2", "model.l1", "model.dropout"):
        penalty, dropout = _penalty(run), run.model["dropout"]
        if change.key == "model.dropout":
            dropout = float(change.to)
        elif change.key == f"model.{_kind(run)}":
            penalty = float(change.to)
        else:
            return None
        other = next(
            (
                m
                for m in path
                if m.units == me.units
                and math.isclose(m.penalty, penalty)
                and math.isclose(m.dropout, dropout)
            ),
            None,
        )
        target = None if other is None else mean_at(other.test_error, run.epochs)
    elif change.key == "training.epochs" and change.to and int(change.to) > run.epochs:
        target = mean_at(me.test_error, int(change.to)) if int(change.to) <= me.test_error.size else None
    elif change.key in ("training.early_stopping", "training.epochs"):
        # Early stopping restores the weights at the val minimum: read the test error there.
        val = np.asarray(run.history["val_loss"])
        best = int(np.nanargmin(val)) + 1
        target = mean_at(me.test_error, best)
    if target is None or not math.isfinite(target):
        return None
    return 1.0 - target / base


def _me(run: Run, path: list[Member]) -> Member:
    """The run's own net among its path's members (its width, its regularization)."""
    return next(
        m
        for m in path
        if m.units == run.model["units"] and m.penalty == _penalty(run) and m.dropout == run.model["dropout"]
    )


def _kind(run: Run) -> str:
    return "l1" if run.model["l1"] and not run.model["l2"] else "l2"


def _penalty(run: Run) -> float:
    return float(run.model["l1"] or run.model["l2"])


def advice_table(preds: Sequence[Prediction], members: dict[str, list[Member]]) -> dict[str, float]:
    captured, harmful, unscored, scored = [], 0, 0, 0
    for pred in preds:
        if not pred.with_config or pred.verdict == "inconclusive" or pred.sample.run.path_key not in members:
            continue
        gain = advice_outcome(pred, members)
        if gain is None:
            unscored += 1
            continue
        scored += 1
        if gain <= -0.05:
            harmful += 1
        best = max(pred.sample.run.label.gains.values())
        if best >= 0.10:
            captured.append(max(-1.0, gain / best))
    return {
        "captured": float(np.mean(captured)) if captured else math.nan,
        "harmful": harmful / scored if scored else math.nan,
        "scored": scored,
        "unscored": unscored,
        "runs_with_gain": len(captured),
    }


def baseline_advice(
    samples: Sequence[Sample], members: dict[str, list[Member]]
) -> dict[str, dict[str, float]]:
    """Always 'train twice as long' and always 'ten times more penalty', for scale."""
    out = {}
    samples = [s for s in samples if s.run.path_key in members]
    for name in ("epochs x2", "penalty x10"):
        captured, harmful = [], 0
        for s in samples:
            run = s.run
            path = members[run.path_key]
            me = _me(run, path)
            base = mean_at(me.test_error, run.epochs)
            if name == "epochs x2":
                target = mean_at(me.test_error, 2 * run.epochs)
            else:
                up = 1e-4 if _penalty(run) == 0 else _penalty(run) * 10
                other = next(
                    (
                        m
                        for m in path
                        if m.units == me.units and math.isclose(m.penalty, up) and m.dropout == me.dropout
                    ),
                    None,
                )
                target = mean_at(other.test_error, run.epochs) if other else me.test_error[run.epochs - 1]
            gain = 1 - target / base
            harmful += gain <= -0.05
            best = max(run.label.gains.values())
            if best >= 0.10:
                captured.append(max(-1.0, gain / best))
        out[name] = {"captured": float(np.mean(captured)), "harmful": harmful / len(samples)}
    return out


# ---------------------------------------------------------------- report


def print_report(samples: list[Sample], preds: list[Prediction], members: dict[str, list[Member]]) -> None:
    counts = Counter(s.run.label.label for s in samples)
    fams = Counter(s.run.family for s in samples)
    print(
        f"{len(samples)} labelled runs from {len({s.run.path_key for s in samples})} paths, {len(fams)} families"
    )
    print("labels: " + ", ".join(f"{k} {counts[k]}" for k in LABELS))
    print()
    print("Leave-one-family-out (fitted without the family it scores)")
    print(f"{'':<14}{'macro-F1':>9}  " + "  ".join(f"{k + ' P/R':>16}" for k in LABELS))
    for with_config in (True, False):
        s = scores([p for p in preds if p.with_config is with_config])
        print(
            f"{'with config' if with_config else 'curves only':<14}{s['macro_f1']:>9.3f}  "
            + "  ".join(f"{s[k][0]:>7.2f}/{s[k][1]:.2f}".rjust(16) for k in LABELS)
        )
    print()
    print(f"{'family (held out)':<18}{'runs':>5}{'cfg F1':>8}{'curves F1':>10}   labels o/u/b")
    for fam in sorted(fams):
        a = scores([p for p in preds if p.with_config and p.sample.run.family == fam])
        b = scores([p for p in preds if not p.with_config and p.sample.run.family == fam])
        c = Counter(s.run.label.label for s in samples if s.run.family == fam)
        print(
            f"{fam:<18}{fams[fam]:>5}{a['macro_f1']:>8.3f}{b['macro_f1']:>10.3f}   {c['overfit']}/{c['underfit']}/{c['balanced']}"
        )
    print()
    print(f"{'row order':<18}{'runs':>5}{'cfg F1':>8}{'curves F1':>10}")
    for order in ("reshuffle", "fixed"):
        a = scores([p for p in preds if p.with_config and p.sample.run.order == order])
        b = scores([p for p in preds if not p.with_config and p.sample.run.order == order])
        print(f"{order:<18}{a['n']:>5}{a['macro_f1']:>8.3f}{b['macro_f1']:>10.3f}")
    print()
    print(f"{'task, length':<18}{'runs':>5}{'cfg F1':>8}{'curves F1':>10}")
    for name, keep in RUN_KINDS.items():
        a = scores([p for p in preds if p.with_config and keep(p.sample.run)])
        b = scores([p for p in preds if not p.with_config and keep(p.sample.run)])
        if a["n"]:
            print(f"{name:<18}{a['n']:>5}{a['macro_f1']:>8.3f}{b['macro_f1']:>10.3f}")
    print_decided_by(preds)
    capacity = [p for p in preds if p.sample.run.label.cause == "capacity"]
    if capacity:
        cfg = [p for p in capacity if p.with_config]
        raw = [p for p in capacity if not p.with_config]
        print()
        print(
            f"runs labelled underfit (capacity): {len(cfg)}; with config called underfit (capacity) "
            f"{sum(p.verdict == 'underfit' and p.cause == 'capacity' for p in cfg) / len(cfg):.0%}, "
            f"underfit {sum(p.verdict == 'underfit' for p in cfg) / len(cfg):.0%}; "
            f"curves only underfit {sum(p.verdict == 'underfit' for p in raw) / len(raw):.0%}"
        )
    # FD207 decides alone: its declared confidence should match how often it is right here.
    narrow = [
        p for p in preds if p.with_config and any(f.rule_id == "FD207" for f in p.sample.findings_config)
    ]
    if narrow:
        labels = Counter(f"{p.sample.run.label.label} ({p.sample.run.label.cause})" for p in narrow)
        right = sum(p.sample.run.label.label == "underfit" for p in narrow)
        print(
            f"FD207 (a narrow net too small) fired on {len(narrow)} runs: labelled underfit "
            f"{right}/{len(narrow)} = {right / len(narrow):.0%}; labels "
            + ", ".join(f"{k} {n}" for k, n in labels.most_common())
        )
    # FD209 decides alone where FD206 (which outranks it when stronger) does not: its declared
    # confidence should match how often those runs are labelled underfit.
    frozen = [
        p
        for p in preds
        if not p.with_config
        and any(f.rule_id == "FD209" for f in p.sample.findings_curves)
        and not any(f.rule_id == "FD206" for f in p.sample.findings_curves)
    ]
    if frozen:
        right = sum(p.sample.run.label.label == "underfit" for p in frozen)
        called = sum(p.verdict == "underfit" for p in frozen)
        print(
            f"FD209 (val accuracy never moved) decided {len(frozen)} runs FD206 did not: labelled underfit "
            f"{right}/{len(frozen)} = {right / len(frozen):.0%}; called underfit {called}"
        )
    # FD208 names the cause of an underfit narrow net: its declared strength is the share of
    # such underfit runs labelled capacity.
    suspects = [
        p for p in preds if p.with_config and any(f.rule_id == "FD208" for f in p.sample.findings_config)
    ]
    # Only where twice the units was trained at the run's own setting can the label say capacity.
    suspects = [p for p in suspects if any(k.startswith("units=") for k in p.sample.run.label.gains)]
    under = [p for p in suspects if p.sample.run.label.label == "underfit"]
    if under:
        cap = sum(p.sample.run.label.cause == "capacity" for p in under)
        called = [p for p in suspects if p.verdict == "underfit"]
        right = sum(
            p.sample.run.label.label == "underfit" and p.sample.run.label.cause == "capacity" for p in called
        )
        print(
            f"FD208 (a narrow net, no or light regularization) fired on {len(suspects)} runs with "
            f"twice the units trained: of the {len(under)} "
            f"labelled underfit, {cap} = {cap / len(under):.0%} capacity; of the {len(called)} called underfit "
            f"(capacity), {right} = {right / max(1, len(called)):.0%} labelled so"
        )
    # FD208 also names the cause when FD206 decides the verdict alone (a narrow net that barely
    # learned): what twice the units and twice the epochs did there, read off the grid.
    stalled = [p for p in suspects if any(f.rule_id == "FD206" for f in p.sample.findings_config)]
    stalled_under = [p for p in stalled if p.sample.run.label.label == "underfit"]
    if stalled_under:
        cap = sum(p.sample.run.label.cause == "capacity" for p in stalled_under)
        steps = [
            (gains[f"units={2 * p.sample.config.model.units}"], gains["train to 2E"])
            for p in stalled
            for gains in [p.sample.run.label.gains]
            if f"units={2 * p.sample.config.model.units}" in gains and "train to 2E" in gains
        ]
        units, longer = np.array(steps).T if steps else (np.zeros(0), np.zeros(0))
        print(
            f"  of them barely learned (FD206 decides): {len(stalled)}; of the {len(stalled_under)} labelled "
            f"underfit, {cap} = {cap / len(stalled_under):.0%} capacity; mean gain of twice the units "
            f"{units.mean():+.1%} (harmful {np.mean(units <= -0.05):.0%}), of twice the epochs "
            f"{longer.mean():+.1%} (harmful {np.mean(longer <= -0.05):.0%})"
        )
    # Where FD208 does not fire (wider or more regularized nets), how often capacity was the label.
    others = [
        p
        for p in preds
        if p.with_config
        and p.sample.run.label.label == "underfit"
        and any(k.startswith("units=") for k in p.sample.run.label.gains)
        and not any(f.rule_id == "FD208" for f in p.sample.findings_config)
    ]
    if others:
        cap = sum(p.sample.run.label.cause == "capacity" for p in others)
        print(
            f"  elsewhere (wider or more regularized nets, twice the units trained): {cap} of "
            f"{len(others)} underfit runs labelled capacity"
        )
    print()
    print("Reliability (held-out families; calibration map fitted without the family it maps)")
    print(f"{'confidence':<12}{'verdicts':>9}{'mean conf':>11}{'right':>8}")
    for name, n, conf, right in reliability(preds):
        print(f"{name:<12}{n:>9}{conf:>11.2f}{right:>8.2f}")
    print()
    adv = advice_table(preds, members)
    print("Advice followed on the grid (held-out verdicts, with config)")
    print(
        f"captures {adv['captured']:.0%} of the best one-step gain (over {adv['runs_with_gain']} runs where "
        f"some change gains >= 10 %); harmful (>= 5 % worse) {adv['harmful']:.1%} of {adv['scored']} scored; "
        f"{adv['unscored']} suggestions not on the grid"
    )
    for name, row in baseline_advice(samples, members).items():
        print(f"  always {name:<12}: captures {row['captured']:.0%}, harmful {row['harmful']:.1%}")


def print_decided_by(preds: Sequence[Prediction]) -> None:
    """Macro-F1 where a gate or an override decides alone and where the combiner does. Most
    runs decided alone are nets that barely learned (FD206): the grid labels many of them
    balanced (no regularization step rescues them), fitdoc calls them underfit on purpose."""
    print()
    print(f"{'decided by':<18}{'runs':>5}{'cfg F1':>8}{'curves F1':>10}  balanced recall cfg/curves")
    for name, alone in (("gates, overrides", True), ("the combiner", False)):
        a = scores([p for p in preds if p.with_config and p.decided_alone is alone])
        b = scores([p for p in preds if not p.with_config and p.decided_alone is alone])
        print(
            f"{name:<18}{a['n']:>5}{a['macro_f1']:>8.3f}{b['macro_f1']:>10.3f}"
            f"  {a['balanced'][1]:.2f} / {b['balanced'][1]:.2f}"
        )
    balanced = [p for p in preds if p.with_config and p.sample.run.label.label == "balanced"]
    stuck = [p for p in balanced if any(f.rule_id == "FD206" for f in p.sample.findings_config)]
    if balanced:
        print(
            f"labelled balanced, barely learned (FD206 calls them underfit on purpose): "
            f"{len(stuck)} of {len(balanced)} = {len(stuck) / len(balanced):.0%}"
        )


def markdown_report(samples: list[Sample], preds: list[Prediction], members: dict[str, list[Member]]) -> str:
    """The README's tables: LOFO quality per class, per family, per row order; reliability; advice."""
    counts = Counter(s.run.label.label for s in samples)
    head = " | ".join(f"{k} P / R (n={counts[k]})" for k in LABELS)
    lines = [f"| evidence | {head} | macro-F1 |", "| --- |" + " --- |" * (len(LABELS) + 1)]
    for with_config in (True, False):
        s = scores([p for p in preds if p.with_config is with_config])
        cells = " | ".join(f"{s[k][0]:.2f} / {s[k][1]:.2f}" for k in LABELS)
        lines.append(
            f"| {'curves and config' if with_config else 'curves only'} | {cells} | {s['macro_f1']:.3f} |"
        )
    lines += [
        "",
        "| family left out | runs (o / u / b) | macro-F1 with config | curves only |",
        "| --- | --- | --- | --- |",
    ]
    for fam in sorted({s.run.family for s in samples}):
        a = scores([p for p in preds if p.with_config and p.sample.run.family == fam])
        b = scores([p for p in preds if not p.with_config and p.sample.run.family == fam])
        c = Counter(s.run.label.label for s in samples if s.run.family == fam)
        lines.append(
            f"| {fam} | {sum(c.values())} ({c['overfit']} / {c['underfit']} / {c['balanced']}) "
            f"| {a['macro_f1']:.3f} | {b['macro_f1']:.3f} |"
        )
    for order in ("reshuffle", "fixed"):
        a = scores([p for p in preds if p.with_config and p.sample.run.order == order])
        b = scores([p for p in preds if not p.with_config and p.sample.run.order == order])
        lines.append(
            f"| row order `{order}` (all families) | {a['n'] // 1} | {a['macro_f1']:.3f} | {b['macro_f1']:.3f} |"
        )
    lines += ["", "| confidence | verdicts | mean confidence | share right |", "| --- | --- | --- | --- |"]
    for name, n, conf, right in reliability(preds):
        lines.append(f"| {name} | {n} | {conf:.2f} | {right:.2f} |")
    adv = advice_table(preds, members)
    lines += [
        "",
        "| advice | share of the best one-step gain captured | harmful (>= 5 % worse) |",
        "| --- | --- | --- |",
        f"| fitdoc's suggestion | {adv['captured']:.0%} | {adv['harmful']:.1%} |",
    ]
    for name, row in baseline_advice(samples, members).items():
        lines.append(f"| always {name} | {row['captured']:.0%} | {row['harmful']:.1%} |")
    return "\n".join(lines)


def boosting_ceiling(samples: list[Sample], preds: list[Prediction]) -> dict[bool, float]:
    """LOFO macro-F1 (with config: True, curves only: False) with gradient-boosted trees over
    the same evidence in the combiner's place, through the same decision (the gates and the
    overrides still decide alone): is the linear combiner the limit, or what the curves show?"""
    by_run = {(id(p.sample), p.with_config): p for p in preds}
    boosted: list[Prediction] = []
    for family in sorted({s.run.family for s in samples}):
        predict = fit_boosted(*training_rows(s for s in samples if s.run.family != family))
        for s in (s for s in samples if s.run.family == family):
            for with_config in (True, False):
                linear = by_run[(id(s), with_config)]
                x = s.x_config if with_config else s.x_curves
                if linear.decided_alone or x is None or linear.verdict == "inconclusive":
                    boosted.append(linear)
                    continue
                p = predict(x[None])[0]
                boosted.append(
                    Prediction(s, with_config, LABELS[int(np.argmax(p))], linear.cause, float(p.max()))
                )
    return {wc: scores([p for p in boosted if p.with_config is wc])["macro_f1"] for wc in (True, False)}


def fit_boosted(xs: np.ndarray, ys: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Gradient-boosted trees (the yardstick for the linear combiner), class-weighted as
    `fit` is; returns rows -> class probabilities in LABELS order."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_depth=3, max_iter=200, learning_rate=0.05, random_state=0)
    model.fit(xs, ys, sample_weight=_class_weights(ys)[ys])
    order = [list(model.classes_).index(k) for k in range(len(LABELS))]
    return lambda x: np.asarray(model.predict_proba(x))[:, order]


def corpus_counts(data_dir: Path) -> str:
    """The stored paths: how many, how many with width steps, how many short classification
    paths (`p<seed>c-` keys) and how many labelled from two seeds."""
    paths = list(read_paths(data_dir))
    width = sum("width_nets" in p for p in paths)
    short = sum(p["key"].split("-")[0].endswith("c") for p in paths)
    seeds = sum(p.get("label_seeds", 1) == 2 for p in paths)
    return (
        f"{len(paths)} stored paths: {width} with width steps, {short} short classification, "
        f"{seeds} labelled from two seeds\n{seed_agreement(paths)}"
    )


def seed_agreement(paths: Iterable[dict[str, Any]]) -> str:
    """How far one seed's labels agree with the other seed's, on the paths that kept both
    seeds' test errors and the runs both label clearly: the noise a one-seed label carries,
    a ceiling for any verdict scored against one-seed labels."""
    from benchmarks.corpus.store import seed_labels

    pairs = [(a, b) for p in paths for a, b in seed_labels(p) if a in LABELS and b in LABELS]
    if not pairs:
        return "one seed's labels against the other's: no path keeps both seeds' test errors"
    agree = sum(a == b for a, b in pairs) / len(pairs)
    return (
        f"one seed's labels against the other's ({len(pairs)} runs both label clearly): "
        f"agreement {agree:.2f}, macro-F1 {pair_scores(pairs)['macro_f1']:.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument(
        "--write", action="store_true", help="fit on every family and write combiner.json if the guard passes"
    )
    parser.add_argument("--markdown", action="store_true", help="also print the README's tables")
    parser.add_argument(
        "--without-shared", action="store_true", help="leave ../shared/corpus/labeled out (factory runs only)"
    )
    parser.add_argument(
        "--boosting", action="store_true", help="also score gradient-boosted trees on the same evidence"
    )
    args = parser.parse_args(argv)

    start = time.perf_counter()
    samples, members = load_samples(args.data_dir)
    if not args.without_shared:
        samples += load_shared_samples(SHARED_CORPUS)
    print(f"read and measured in {time.perf_counter() - start:.1f} s")
    print(corpus_counts(args.data_dir))
    preds = leave_one_family_out(samples)
    print_report(samples, preds, members)
    if args.boosting:
        trees = boosting_ceiling(samples, preds)
        linear = {wc: scores([p for p in preds if p.with_config is wc])["macro_f1"] for wc in (True, False)}
        print(
            "\nLOFO macro-F1 with config / curves only, through the same gates and overrides: "
            f"linear combiner {linear[True]:.3f} / {linear[False]:.3f}, "
            f"gradient-boosted trees {trees[True]:.3f} / {trees[False]:.3f}"
        )
    if args.markdown:
        print()
        print(markdown_report(samples, preds, members))
    if args.write:
        from benchmarks.guard import check_and_write

        return check_and_write(samples, preds, members, write=True)
    return 0


def refit_combiner(samples: list[Sample], preds: list[Prediction]) -> Any:
    """The combiner fitted on every family, with the calibration map of the held-out
    predictions and the fewest evaluations it saw (`min_evaluations`)."""
    from fitdoc.diagnosis.rules.combiner import Combiner

    weights, bias = fit(*training_rows(samples))
    judged = [p for p in preds if p.verdict != "inconclusive" and not p.decided_alone]
    xs, ys = calibration_map([p.p for p in judged], [p.verdict == p.sample.run.label.label for p in judged])
    paths = len({s.run.path_key for s in samples})
    families = len({s.run.family for s in samples})
    return Combiner(
        weights,
        bias,
        tuple(xs),
        tuple(ys),
        f"{len(samples)} labelled runs, {paths} paths, {families} families",
        min_evaluations=min_evaluations(samples),
    )


def pool_adjacent_violators(blocks: list[list[float]]) -> tuple[list[float], list[float]]:
    """Blocks [center, rate, count] merged until rates never fall: an isotonic calibration map."""
    merged: list[list[float]] = []
    for block in blocks:
        merged.append(block)
        while len(merged) > 1 and merged[-2][1] > merged[-1][1]:
            b, a = merged.pop(), merged.pop()
            n = a[2] + b[2]
            merged.append([(a[0] * a[2] + b[0] * b[2]) / n, (a[1] * a[2] + b[1] * b[2]) / n, n])
    return [round(m[0], 4) for m in merged], [round(m[1], 4) for m in merged]


if __name__ == "__main__":
    raise SystemExit(main())
