"""Runs every rule over a history's features and combines the findings into
one verdict, with a confidence, a one-sentence summary and the next change.

Three steps decide. First the gates: a history with no validation series, too
few evaluations, a divergence or val too noisy to read gets `inconclusive`,
whatever else fired. Then the overrides (`OVERRIDES`, and below the combiner's
fitted domain `SHORT_RUN_OVERRIDES`) decide alone. Otherwise the fitted combiner (`fitdoc.diagnosis.rules.combiner`)
weighs every finding's strength together with the curve features and the
run's regularization, and the most probable of overfit / underfit / balanced
wins, with its calibrated probability as the confidence. There is no default
verdict: with no validation series it is `inconclusive`, never `balanced`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fitdoc.diagnosis.features import Features, compute_features
from fitdoc.diagnosis.gains import (
    CHANGES,
    KINDS,
    UNITS_X2_BELOW,
    WEAK_SKILL,
    GainModel,
    default_gain_model,
    predictable,
)
from fitdoc.diagnosis.rules._config import Regularization, regularization
from fitdoc.diagnosis.rules.base import Rule
from fitdoc.diagnosis.rules.combiner import Combiner, default_combiner, evidence
from fitdoc.diagnosis.rules.decision import DECISION, DecisionThresholds
from fitdoc.diagnosis.rules.registry import all_rules, decision_thresholds
from fitdoc.diagnosis.suggest import Knobs, LadderNumbers, RunPoint, step, suggest
from fitdoc.formatting import value_text
from fitdoc.history.curves import Curves
from fitdoc.verdict import Cause, Change, Diagnosis, Finding, Suggestion, Verdict

if TYPE_CHECKING:
    from fitdoc.config import AnyConfig

# Findings that decide by themselves once the gates pass. A model that never learned is
# underfit whatever its ratios say (the corpus' grid labels such runs balanced: no
# regularization step rescues them, only a change outside the grid does).
# A known narrow net on FD203's plateau with a regression error is too small (FD207: on
# the corpus such runs were mostly labelled underfit, capacity; the combiner, fitted on
# thousands of wider nets, outvotes them). A classification log whose val accuracy never
# moved gave the same answers all run (FD209): underfit, its cause left to `_cause`.
OVERRIDES = ("FD206", "FD207", "FD209")
# Findings that name the cause whenever the verdict is theirs, over a stronger finding of
# another cause: a known narrow net with no or light regularization is first too small
# (FD208), even while val still falls (on the corpus twice the units beat twice the epochs there).
CAUSE_FIRST = ("FD208",)
# Below the shortest runs the combiner was fitted on, it would extrapolate; there val
# rising at each of the last evaluations, 10 % above its minimum while train falls
# (83 % of such corpus runs are labelled overfit), decides alone.
SHORT_RUN_OVERRIDES = ("FD103",)
# The finding of a balanced verdict overturned by a predicted gain (`overturn_balanced`).
OVERTURN_ID = "FD601"
# The gain ranker's note starts so (a measured diagnosis drops it: measured gains replace it).
PREDICTED_NOTE = "predicted fall in held-out error (negative: worse)"
# The ladder's own first step, when it is not one of the gain model's change kinds.
LADDER_STEP = "ladder"
PLATEAU_NOTE = (
    "val is level with train on a flat plateau and the config is unknown: a noise floor (balanced) "
    "and a stalled fit (underfit) look alike here; the run's config (--config) or its data's noise "
    "level would decide"
)


def diagnose_curves(
    curves: Curves,
    config: AnyConfig | None = None,
    thresholds: Mapping[str, Mapping[str, Any]] | None = None,
    combiner: Combiner | None = None,
) -> Diagnosis:
    """Diagnose one run. `config` (Config, ModelOnlyConfig or None) makes the
    suggestion concrete and lets rules use the run's regularization;
    `thresholds` overrides rule thresholds (`{"FD101": {"max_ratio": 3}}`) and the
    decision's own (`{"decision": {"min_still_falling": 0.1}}`)."""
    rules = all_rules(thresholds) if thresholds else all_rules()
    t = DecisionNumbers.of(rules, decision_thresholds(thresholds) if thresholds else DECISION)
    features = compute_features(curves)
    reg = regularization(config)
    findings = run_rules(rules, features, reg)
    combiner = combiner or default_combiner()
    verdict, cause, confidence, notes = combine(findings, features, reg, combiner, t)
    suggestion = suggest(verdict, cause, config, features, t.ladder)
    overturned = None
    if verdict is Verdict.BALANCED and decided_alone(findings, features, combiner.min_evaluations) is None:
        overturned = overturn_balanced(config, features, findings, reg)
    if overturned is not None:
        finding, change, confidence = overturned
        verdict, cause, findings = finding.verdict or verdict, finding.cause, (*findings, finding)
        ladder = suggest(verdict, cause, config, features, t.ladder)
        rest = (
            () if ladder is None else tuple(c for c in (ladder.primary, *ladder.alternatives) if c != change)
        )
        suggestion = Suggestion(change, rest)
        notes = tuple(n for n in notes if n != PLATEAU_NOTE)
    if verdict is Verdict.BALANCED:
        notes = (*notes, *capacity_note(findings, reg))
    ranked = None if overturned else rank_by_gain(verdict, config, features, findings, reg, suggestion, cause)
    if ranked is not None:
        cause, suggestion, note = ranked
        notes = (*notes, note)
    return Diagnosis(
        source=curves.source,
        verdict=verdict,
        cause=cause,
        confidence=confidence,
        findings=findings,
        suggestion=suggestion,
        metric=curves.metric,
        epochs=len(curves),
        summary=summarize(verdict, cause, findings, features),
        notes=(*curves.notes, *notes),
    )


@dataclass(frozen=True)
class DecisionNumbers:
    """The thresholds in force that the decision reads: its own (`decision:`) and the
    rules' where it asks their question (FD202's late minimum, FD201's strong L2)."""

    min_still_falling: float = DECISION.thresholds["min_still_falling"]
    level_band: float = DECISION.thresholds["level_band"]
    max_flat_drop: float = DECISION.thresholds["max_flat_drop"]
    ladder: LadderNumbers = field(default_factory=LadderNumbers)

    @classmethod
    def of(cls, rules: Sequence[Rule], own: DecisionThresholds) -> DecisionNumbers:
        return cls(
            min_still_falling=own.thresholds["min_still_falling"],
            level_band=own.thresholds["level_band"],
            max_flat_drop=own.thresholds["max_flat_drop"],
            ladder=LadderNumbers.of(rules),
        )


def capacity_note(findings: Sequence[Finding], reg: Regularization | None) -> tuple[str, ...]:
    """For a balanced verdict on a known narrow net with FD203's plateau (no regularization,
    train flat, val level with it): a note that only twice the units can tell a noise floor
    from too small a net (the corpus' narrow nets on such plateaus were both)."""
    if reg is None or not 0 < reg.units < UNITS_X2_BELOW or not any(f.rule_id == "FD203" for f in findings):
        return ()
    return (
        f"{reg.units} units per hidden layer, level with train on a flat plateau: a noise floor "
        f"(balanced) and too small a net look alike here; twice the units (model.units: {reg.units} -> "
        f"{2 * reg.units}) would tell",
    )


def available_steps(config: Any, features: Features) -> dict[str, Change]:
    """Every ladder step of the gain model's change kinds this run allows (concrete with the
    config, generic without), where the gain model predicts it (`gains.predictable`)."""
    knobs = Knobs.of_config(config)
    point = RunPoint.of_features(features)
    units = None if knobs is None else knobs.units
    steps = {kind.name: step(kind.name, knobs, point) for kind in CHANGES if predictable(kind.name, units)}
    return {name: change for name, change in steps.items() if change is not None}


def overturn_balanced(
    config: Any,
    features: Features,
    findings: Sequence[Finding],
    reg: Regularization | None,
    model: GainModel | None = None,
) -> tuple[Finding, Change, float] | None:
    """When the gain model predicts some change to gain at least its `override_gain`, the
    combiner's balanced verdict is overturned: (the finding that says so, the change, its
    calibrated confidence). None when nothing is predicted to gain that much."""
    model = model or default_gain_model()
    if model is None or model.override_gain is None:
        return None
    available = available_steps(config, features)
    gains = model.predict(evidence(features, findings, reg), tuple(available))
    best = model.overturn(gains)
    if best is None:
        return None
    kind, gain = KINDS[best], gains[best]
    finding = Finding(
        rule_id=OVERTURN_ID,
        name=f"gains.{best}",
        verdict=kind.verdict,
        cause=kind.cause,
        strength=1.0,
        value=gain,
        threshold=model.override_gain,
        message=(
            f"the gain model predicts {kind.text} to lower held-out error {gain:.0%} "
            f"(>= {model.override_gain:.0%} overturns balanced)"
        ),
    )
    return finding, available[best], round(model.confidence("directed", gain - model.min_gain), 3)


def rank_by_gain(
    verdict: Verdict,
    config: Any,
    features: Features,
    findings: Sequence[Finding],
    reg: Regularization | None,
    ladder_suggestion: Suggestion | None,
    ladder_cause: Cause | None = None,
    model: GainModel | None = None,
) -> tuple[Cause | None, Suggestion, str] | None:
    """With the config known, the ladder's steps in the verdict's direction ordered by the gain
    model's predicted gain (`fitdoc.diagnosis.gains`): (cause of the best step, the suggestion,
    a note quoting the predicted gains). None when there is nothing to rank."""
    knobs = Knobs.of_config(config)
    if knobs is None or ladder_suggestion is None or verdict not in (Verdict.OVERFIT, Verdict.UNDERFIT):
        return None
    model = model or default_gain_model()  # loaded only when there is something to rank
    if model is None or model.use != "ranker":
        return None
    steps = available_steps(config, features)
    available = {name: change for name, change in steps.items() if KINDS[name].verdict is verdict}
    gains = model.predict(evidence(features, findings, reg), tuple(available))
    ladder = ladder_suggestion.primary
    incumbent = next((n for n, c in available.items() if c == ladder), LADDER_STEP)
    order = model.rank(gains, verdict, incumbent)
    if not order:
        return None
    chosen = [ladder if name == LADDER_STEP else available[name] for name in order]
    rest = [c for c in (ladder, *ladder_suggestion.alternatives) if c not in chosen]
    note = _predicted_note(order, gains, available, model)
    cause = ladder_cause if order[0] in (LADDER_STEP, incumbent) else KINDS[order[0]].cause
    return cause, Suggestion(chosen[0], (*chosen[1:], *rest)), note


def _predicted_note(
    order: Sequence[str], gains: Mapping[str, float], available: Mapping[str, Change], model: GainModel
) -> str:
    """The ranker's note: each ranked change's predicted gain, in the order suggested. Where the
    ladder's step stays first over a higher prediction, the note says why (its margin), and a
    prediction with little held-out skill says so: a number alone would read as a measurement."""
    ranked = [n for n in order if n in gains]

    def quoted(n: str) -> str:
        skill = model.skill.get(n)
        weak = f" (weak: held-out skill {skill:.2f})" if skill is not None and skill < WEAK_SKILL else ""
        return f"{available[n].key} {_to_text(available[n])} {gains[n]:+.0%}{weak}"

    predicted = ", ".join(quoted(n) for n in ranked)
    top = max(ranked, key=lambda n: gains[n], default=None)
    if top is None or top == order[0]:
        return f"{PREDICTED_NOTE}, best first: {predicted}"
    return (
        f"{PREDICTED_NOTE}, in the order suggested: {predicted}; the ladder's step stays first "
        f"unless another is predicted to gain {model.rank_margin(order[0]):.0%} more"
    )


def _to_text(change: Change) -> str:
    return f"-> {value_text(change.to, none='none')}"


def run_rules(
    rules: Sequence[Rule], features: Features, reg: Regularization | None = None
) -> tuple[Finding, ...]:
    found = (rule.evaluate(features, reg) for rule in rules)
    return tuple(f for f in found if f is not None)


def combine(
    findings: Sequence[Finding],
    features: Features,
    reg: Regularization | None,
    combiner: Combiner,
    numbers: DecisionNumbers | None = None,
) -> tuple[Verdict, Cause | None, float, tuple[str, ...]]:
    """(verdict, cause, confidence, notes): the gates, then the overrides, then the fitted combiner."""
    t = numbers or DecisionNumbers()
    alone = decided_alone(findings, features, combiner.min_evaluations)
    if alone is not None:
        verdict, cause, confidence = alone
        # A narrow net's cause comes first here too: of the corpus' narrow nets that barely
        # learned (FD206) and were labelled underfit where twice the units was trained, 68 of
        # 86 were best served by twice the units, not by training longer.
        first = _first_cause(verdict, findings)
        if first is not None:
            cause = first
        elif cause is None and verdict is Verdict.UNDERFIT:
            cause = _cause(verdict, findings, features, reg, t)
        return verdict, cause, confidence, ()
    verdict, confidence, _ = combiner.decide(evidence(features, findings, reg))
    notes: tuple[str, ...] = ()
    if verdict is Verdict.BALANCED and reg is None and _flat_and_level(features, t):
        notes = (PLATEAU_NOTE,)
    return verdict, _cause(verdict, findings, features, reg, t), round(confidence, 3), notes


def decided_alone(
    findings: Sequence[Finding], features: Features, min_evaluations: int
) -> tuple[Verdict, Cause | None, float] | None:
    """(verdict, cause, confidence) when a gate or an override decides alone, else None.

    Gates (an inconclusive finding) first; then `OVERRIDES`; below `min_evaluations`
    (the shortest runs the combiner was fitted on) also `SHORT_RUN_OVERRIDES`."""
    gates = [f for f in findings if f.verdict is Verdict.INCONCLUSIVE]
    if gates:
        return Verdict.INCONCLUSIVE, None, round(max(f.strength for f in gates), 3)
    deciding = OVERRIDES + (SHORT_RUN_OVERRIDES if features.n_epochs < min_evaluations else ())
    overrides = [f for f in findings if f.rule_id in deciding]
    if overrides:
        best = max(overrides, key=lambda f: f.strength)
        return best.verdict or Verdict.INCONCLUSIVE, best.cause, round(best.strength, 3)
    return None


def _cause(
    verdict: Verdict,
    findings: Sequence[Finding],
    features: Features,
    reg: Regularization | None,
    numbers: DecisionNumbers | None = None,
) -> Cause | None:
    """A `CAUSE_FIRST` finding's cause, else the strongest own finding's; without one, the
    cause the verdict most likely has.

    Overfit: a val minimum before the run's last part (FD202's `min_best_position`) is a
    missed early stop, else a gap. Underfit: a known regularizer is the first thing to
    ease, unless val is still falling (`min_still_falling`), else train longer.
    """
    t = numbers or DecisionNumbers()
    first = _first_cause(verdict, findings)
    if first is not None:
        return first
    own = [f for f in findings if f.verdict is verdict and f.cause is not None]
    # Without a config, "over-regularized" is read off the curves alone (train above val,
    # which a running mean over an epoch also gives early on): a val still falling says more.
    if reg is None and any(f.cause is Cause.NOT_CONVERGED for f in own):
        return Cause.NOT_CONVERGED
    if own:
        return max(own, key=lambda f: f.strength).cause
    if verdict is Verdict.OVERFIT:
        position = features.best_position
        early = math.isfinite(position) and position < t.ladder.late_minimum
        return Cause.REBOUND if early and features.val_stop_gain > 0 else Cause.GAP
    if verdict is Verdict.UNDERFIT:
        falling = t.min_still_falling
        still_falling = features.val_gain_2x >= falling or features.val_last_fall >= falling
        if reg is not None and reg.any and not still_falling:
            return Cause.OVER_REGULARIZED
        return Cause.NOT_CONVERGED
    return None


def _first_cause(verdict: Verdict, findings: Sequence[Finding]) -> Cause | None:
    """The cause of a `CAUSE_FIRST` finding of this verdict, else None."""
    return next(
        (
            f.cause
            for f in findings
            if f.rule_id in CAUSE_FIRST and f.verdict is verdict and f.cause is not None
        ),
        None,
    )


def _flat_and_level(f: Features, t: DecisionNumbers) -> bool:
    """Val level with train (within `level_band`) and train flat over the second half."""
    return (
        math.isfinite(f.gap_ratio_end)
        and 1.0 - t.level_band <= f.gap_ratio_end <= 1.0 + t.level_band
        and math.isfinite(f.train_half_drop)
        and abs(f.train_half_drop) < t.max_flat_drop
    )


def summarize(verdict: Verdict, cause: Cause | None, findings: Sequence[Finding], features: Features) -> str:
    """One sentence with numbers: the verdict and the finding that decided it.

    A cause is named only with the finding that gives it; when no rule voted for the
    verdict, the sentence says the curves as a whole lean that way, and names no cause.
    """
    span = features.span or f"over {features.n_epochs} epochs"
    deciding = [f for f in findings if f.verdict is verdict and (cause is None or f.cause is cause)]
    deciding = deciding or [f for f in findings if f.verdict is verdict]
    if deciding:
        # A finding that decided alone (an override) is the one that explains the verdict.
        best = max(deciding, key=lambda f: (f.rule_id in OVERRIDES, f.strength))
        return f"{_label(verdict, best.cause)}: {best.message}, {span}."
    label = verdict.value
    if not features.has_validation:
        return f"{label}: no validation series to judge generalization, {span}."
    if not features.has_train:
        return f"{label}: no train series, so val is judged alone and no ratio rule applies, {span}."
    if not features.positive:
        return f"{label}: the series have non-positive values, so no ratio rule applies, {span}."
    shape = _curve_shape(features)
    return f"{label}: no rule voted {label}; the curves as a whole lean that way{shape}, {span}."


def _label(verdict: Verdict, cause: Cause | None) -> str:
    return verdict.value if cause is None else f"{verdict.value} ({cause.value})"


def _curve_shape(f: Features) -> str:
    """ " (val/train MAE 1.42, val fell 24 % since mid-run, lowest at epoch 5)": the numbers
    a reader checks the lean against; each left out when it cannot be measured."""
    parts = []
    if math.isfinite(f.gap_ratio_end):
        parts.append(f"val/train {f.metric} {f.gap_ratio_end:.2f}")
    if math.isfinite(f.val_half_drop) and f.val_half_drop > -1.0:
        # val_half_drop is mid-run / end - 1; people read the change from mid-run to the end.
        change = 1.0 / (1.0 + f.val_half_drop) - 1.0
        moved = "fell" if change < 0 else "rose"
        parts.append(f"val {moved} {abs(change):.0%} since mid-run")
    if f.best_epoch >= 0:
        parts.append(f"lowest at {f.best_at}")
    return f" ({', '.join(parts)})" if parts else ""
