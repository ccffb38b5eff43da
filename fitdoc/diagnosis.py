"""Runs every rule over a history's features and combines the findings into
one verdict, with a confidence, a one-sentence summary and the next change.

Which verdict wins is the `PRECEDENCE` table below, not the order of an
if/elif chain; with no finding at all the verdict is `inconclusive`, never
`balanced`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fitdoc.curves import Curves
from fitdoc.features import Features, compute_features
from fitdoc.rules.base import Rule
from fitdoc.rules.registry import all_rules
from fitdoc.suggest import suggest
from fitdoc.verdict import Cause, Diagnosis, Finding, Verdict

# First row with a finding wins. Inconclusive gates (no validation, too short,
# diverged, noisy) come first: a history that cannot be judged gets no label.
# A wide gap outranks the rest (the founding case); over-regularization is
# checked before "not converged" because a regularizer that holds train at val
# also slows convergence, and easing it is the change that helps.
PRECEDENCE: tuple[tuple[Verdict, Cause | None], ...] = (
    (Verdict.INCONCLUSIVE, None),
    (Verdict.OVERFIT, Cause.GAP),
    (Verdict.UNDERFIT, Cause.OVER_REGULARIZED),
    (Verdict.OVERFIT, Cause.REBOUND),
    (Verdict.UNDERFIT, Cause.NOT_CONVERGED),
    (Verdict.UNDERFIT, Cause.CAPACITY),
    (Verdict.BALANCED, None),
)

# How much a strong finding for another verdict lowers the winner's confidence.
CONFLICT_PENALTY = 0.3


def diagnose_curves(
    curves: Curves,
    config: Any = None,
    thresholds: Mapping[str, Mapping[str, Any]] | None = None,
) -> Diagnosis:
    """Diagnose one run. `config` (Config, ModelOnlyConfig or None) makes the
    suggestion concrete and lets rules use the run's regularization;
    `thresholds` overrides rule thresholds (`{"FD101": {"max_ratio": 3}}`)."""
    rules = all_rules(thresholds) if thresholds else all_rules()
    features = compute_features(curves)
    findings = run_rules(rules, features, config)
    verdict, cause, confidence = combine(findings)
    suggestion = suggest(verdict, cause, config, features)
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
        notes=tuple(curves.notes),
    )


def run_rules(rules: Sequence[Rule], features: Features, config: Any = None) -> tuple[Finding, ...]:
    found = (rule.evaluate(features, config) for rule in rules)
    return tuple(f for f in found if f is not None)


def combine(findings: Sequence[Finding]) -> tuple[Verdict, Cause | None, float]:
    """(verdict, cause, confidence) by the precedence table."""
    for verdict, cause in PRECEDENCE:
        winners = [f for f in findings if f.verdict is verdict and (cause is None or f.cause is cause)]
        if not winners:
            continue
        if verdict is Verdict.INCONCLUSIVE:
            return verdict, None, max(f.strength for f in winners)
        best = max(f.strength for f in winners)
        against = [f.strength for f in findings if f.verdict not in (verdict, Verdict.INCONCLUSIVE, None)]
        penalty = 1.0 - CONFLICT_PENALTY * max(against, default=0.0)
        return verdict, cause, round(best * penalty, 3)
    return Verdict.INCONCLUSIVE, None, 0.0


def summarize(verdict: Verdict, cause: Cause | None, findings: Sequence[Finding], features: Features) -> str:
    """One sentence with numbers: the verdict and the evidence that decided it."""
    label = verdict.value if cause is None else f"{verdict.value} ({cause.value})"
    deciding = [f for f in findings if f.verdict is verdict and (cause is None or f.cause is cause)]
    span = f"over {features.n_epochs} epochs"
    if deciding:
        best = max(deciding, key=lambda f: f.strength)
        return f"{label}: {best.message}, {span}."
    if not features.has_validation:
        return f"{label}: no validation series to judge generalization, {span}."
    if not features.positive:
        return f"{label}: the series have non-positive values, so no ratio rule applies, {span}."
    return (
        f"{label}: no rule found clear evidence {span} "
        f"(val/train {features.metric} {features.gap_ratio_end:.2f}, "
        f"val {features.val_half_drop:+.0%} since mid-run)."
    )
