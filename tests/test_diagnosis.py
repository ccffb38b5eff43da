"""Verdicts on the committed fixture histories (tests/fixtures/verdicts, made by
tests/fixtures/make_verdict_fixtures.py), the gates and the fitted combiner.

Quality and speed are measured by benchmarks (benchmarks/calibrate.py,
benchmarks/diagnosis_quality.py, benchmarks/diagnose_speed.py), not asserted here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fitdoc.config import load_config
from fitdoc.diagnosis.decide import combine, diagnose_curves, run_rules, summarize
from fitdoc.diagnosis.features import Features, compute_features
from fitdoc.diagnosis.rules._config import regularization
from fitdoc.diagnosis.rules.combiner import CLASSES, EVIDENCE_NAMES, Combiner, default_combiner, evidence
from fitdoc.diagnosis.rules.registry import all_rules
from fitdoc.history.curves import Curves
from fitdoc.history.load import read_history
from fitdoc.verdict import Cause, Finding, Verdict

FIXTURES = Path(__file__).parent / "fixtures" / "verdicts"


def diagnose_fixture(name: str, with_config: bool = True):
    run = FIXTURES / name
    config = load_config(run / "config.yaml") if with_config else None
    return diagnose_curves(read_history(run / "history.csv"), config)


@pytest.mark.parametrize(
    ("name", "verdict", "cause"),
    [
        ("founding-noreg", "overfit", "gap"),
        ("founding-l2-0.001", "underfit", "over-regularized"),
        ("founding-l2-0.0001", "balanced", None),
        ("founding-dropout-0.2", "balanced", None),
        ("not-converged", "underfit", "not converged"),
        ("missed-early-stop", "overfit", "rebound"),
        # No regularization, train flat, val level with it: the corpus labels such runs
        # balanced (no step on the ladder helps them); FD203 stays a finding.
        ("capacity", "balanced", None),
        ("diverged", "inconclusive", None),
        ("too-short", "inconclusive", None),
        ("no-validation", "inconclusive", None),
        ("noisy", "inconclusive", None),
    ],
)
def test_fixture_verdicts(name: str, verdict: str, cause: str | None) -> None:
    d = diagnose_fixture(name)
    assert d.verdict.value == verdict
    assert (d.cause.value if d.cause else None) == cause
    assert 0.0 <= d.confidence <= 1.0
    if verdict != "inconclusive":
        assert d.confidence >= 0.5
    assert d.summary.endswith(".") and d.summary.count(". ") == 0
    assert any(ch.isdigit() for ch in d.summary)
    assert d.to_dict()["verdict"] == verdict


def test_founding_case_suggestions() -> None:
    noreg = diagnose_fixture("founding-noreg").suggestion
    assert noreg is not None
    assert (noreg.primary.key, noreg.primary.from_, noreg.primary.to) == ("model.l2", 0.0, 0.0001)
    assert ("model.dropout", 0.0, 0.2) in [(c.key, c.from_, c.to) for c in noreg.alternatives]
    over = diagnose_fixture("founding-l2-0.001").suggestion
    assert over is not None
    assert (over.primary.key, over.primary.from_, over.primary.to) == ("model.l2", 0.001, 0.0001)
    assert "model.l2 0.001 -> 0.0001" in over.primary.text
    assert diagnose_fixture("founding-l2-0.0001").suggestion is None


def test_founding_case_without_config_is_judged_from_curves() -> None:
    d = diagnose_fixture("founding-noreg", with_config=False)
    assert d.verdict is Verdict.OVERFIT
    assert d.suggestion is not None and d.suggestion.primary.to is None
    assert "L2" in d.suggestion.primary.text


def test_the_gap_message_states_value_against_threshold() -> None:
    d = diagnose_fixture("founding-noreg")
    gap = next(f for f in d.findings if f.rule_id == "FD101")
    assert f"{gap.value:.2f} > {gap.threshold:.2f}" in gap.message


def _finding(code: str, verdict: Verdict, cause: Cause | None, strength: float = 0.8) -> Finding:
    return Finding(code, "x.y", verdict, cause, strength, 1.0, 1.0, "m")


def _features(n: int = 100) -> Features:
    epochs = np.arange(n)
    return compute_features(Curves(epochs, 0.1 + np.exp(-epochs / 10), 0.12 + np.exp(-epochs / 10), "mae"))


def test_no_validation_means_inconclusive_never_balanced() -> None:
    n = 50
    d = diagnose_curves(Curves(np.arange(n), np.linspace(1, 0.1, n), None, "mae"))
    assert d.verdict is Verdict.INCONCLUSIVE
    assert [f.rule_id for f in d.findings] == ["FD001"]


def test_a_gate_outranks_every_other_finding() -> None:
    gate = _finding("FD002", Verdict.INCONCLUSIVE, None, 1.0)
    gap = _finding("FD101", Verdict.OVERFIT, Cause.GAP, 1.0)
    verdict, cause, confidence, _ = combine([gap, gate], _features(), None, default_combiner())
    assert (verdict, cause, confidence) == (Verdict.INCONCLUSIVE, None, 1.0)


def test_a_model_that_never_learned_is_underfit_whatever_the_combiner_says() -> None:
    stuck = _finding("FD206", Verdict.UNDERFIT, Cause.NOT_CONVERGED, 0.9)
    balanced = _finding("FD301", Verdict.BALANCED, None, 1.0)
    verdict, cause, _, _ = combine([balanced, stuck], _features(), None, default_combiner())
    assert (verdict, cause) == (Verdict.UNDERFIT, Cause.NOT_CONVERGED)


def test_the_combiner_weighs_findings_and_reports_calibrated_confidence() -> None:
    combiner = default_combiner()
    assert combiner.weights.shape == (len(CLASSES), len(EVIDENCE_NAMES))
    assert list(combiner.calibration_y) == sorted(combiner.calibration_y)
    assert all(0.0 <= y <= 1.0 for y in combiner.calibration_y)
    run = FIXTURES / "founding-noreg"
    features = compute_features(read_history(run / "history.csv"))
    findings = run_rules(all_rules(), features, None)
    x = evidence(features, findings, None)
    assert x.shape == (len(EVIDENCE_NAMES),)
    verdict, confidence, p = combiner.decide(x)
    assert verdict is Verdict.OVERFIT and verdict is CLASSES[int(np.argmax(p))]
    assert p.sum() == pytest.approx(1.0)
    assert confidence == pytest.approx(combiner.calibrate(float(p.max())))


def test_a_toy_combiner_decides_by_its_weights() -> None:
    weights = np.zeros((3, len(EVIDENCE_NAMES)))
    weights[2, EVIDENCE_NAMES.index("FD301")] = 5.0
    toy = Combiner(weights, np.zeros(3), (), ())
    balanced = _finding("FD301", Verdict.BALANCED, None, 1.0)
    verdict, cause, confidence, _ = combine([balanced], _features(), None, toy)
    assert (verdict, cause) == (Verdict.BALANCED, None)
    assert confidence == pytest.approx(np.exp(5) / (np.exp(5) + 2), abs=1e-3)


def test_a_flat_plateau_without_config_says_what_would_decide() -> None:
    n = 200
    epochs = np.arange(n)
    train = 0.3 + 0.2 * np.exp(-epochs / 5)
    features = compute_features(Curves(epochs, train, train * 1.01, "mae"))
    balanced = _finding("FD301", Verdict.BALANCED, None, 1.0)
    weights = np.zeros((3, len(EVIDENCE_NAMES)))
    weights[2, EVIDENCE_NAMES.index("FD301")] = 5.0
    _, _, _, notes = combine([balanced], features, None, Combiner(weights, np.zeros(3), (), ()))
    assert notes and "--config" in notes[0]


def test_threshold_overrides_change_the_verdict() -> None:
    run = FIXTURES / "founding-noreg"
    curves = read_history(run / "history.csv")
    default = diagnose_curves(curves, None)
    d = diagnose_curves(curves, None, {"FD101": {"max_ratio": 20}})
    assert "FD101" in {f.rule_id for f in default.findings}
    assert "FD101" not in {f.rule_id for f in d.findings}
    # The gap itself is still evidence the combiner reads, but no longer a finding.
    assert d.findings != default.findings


def test_nan_in_memory_is_diverged() -> None:
    n = 100
    train = np.linspace(1, 0.1, n)
    val = train * 1.2
    train[70:] = np.nan
    d = diagnose_curves(Curves(np.arange(n), train, val, "mae"))
    assert d.verdict is Verdict.INCONCLUSIVE
    assert "FD003" in {f.rule_id for f in d.findings}


def test_dropout_fixture_is_shaped_like_a_real_dropout_run() -> None:
    # Train MAE is logged with dropout on: in a real dropout-0.2 run it sits
    # above val early and crosses below it late. The balanced verdict must hold
    # for that shape, not only for a smooth curve with train below val throughout.
    curves = read_history(FIXTURES / "founding-dropout-0.2" / "history.csv")
    quarter = len(curves) // 4
    assert np.mean(curves.train[:quarter]) > np.mean(curves.val[:quarter])
    assert np.mean(curves.train[-quarter:]) < np.mean(curves.val[-quarter:])
    d = diagnose_fixture("founding-dropout-0.2")
    assert d.verdict is Verdict.BALANCED and d.suggestion is None


def test_a_short_run_whose_val_rises_at_each_evaluation_is_overfit() -> None:
    # Failure class 3 of issue 11: 7 evaluations over 13.5 epochs, val rising at the last
    # four while train fell 32 %: below the runs the combiner was fitted on, FD103 decides.
    train = np.array([0.95, 0.80, 0.74, 0.70, 0.68, 0.66, 0.645])
    val = np.array([0.90, 0.78, 0.76, 0.77, 0.79, 0.82, 0.86])
    epoch_at = np.array([2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 13.5])
    curves = Curves(np.arange(7), train, val, "loss", epoch_at=epoch_at, point="evaluation")
    d = diagnose_curves(curves)
    assert (d.verdict, d.cause) == (Verdict.OVERFIT, Cause.REBOUND)
    assert "7 evaluations over 13.5 epochs" in d.summary


def test_a_model_that_never_learned_is_not_called_balanced() -> None:
    # Failure class 1 of issue 11: the loss moves a few percent in 35 epochs.
    epochs = np.arange(35)
    train = 0.69 - 0.012 * (1 - np.exp(-epochs / 10))
    d = diagnose_curves(Curves(epochs, train, train + 0.002, "loss"))
    assert (d.verdict, d.cause) == (Verdict.UNDERFIT, Cause.NOT_CONVERGED)
    assert "barely learned" in d.summary


# ---------------------------------------------------------------- summaries (every branch)


def _summary_features(**changes: object) -> Features:
    from dataclasses import replace

    return replace(_features(), **changes)  # type: ignore[arg-type]


def test_summary_quotes_the_deciding_finding_and_its_cause() -> None:
    gap = Finding(
        "FD101", "overfit.gap", Verdict.OVERFIT, Cause.GAP, 0.9, 4.0, 3.0, "val/train mae 4.00 > 3.00"
    )
    text = summarize(Verdict.OVERFIT, Cause.GAP, [gap], _features())
    assert text == "overfit (gap): val/train mae 4.00 > 3.00, over 100 epochs."


def test_summary_without_a_finding_names_no_cause_and_says_fell_for_a_val_that_fell() -> None:
    # val_half_drop = mid-run / end - 1 = 0.32: val ended 24 % below its mid-run value.
    f = _summary_features(gap_ratio_end=1.42, val_half_drop=0.32, best_epoch=4)
    text = summarize(Verdict.OVERFIT, Cause.REBOUND, [], f)
    assert text.startswith("overfit: no rule voted overfit; the curves as a whole lean that way")
    assert "rebound" not in text and "(gap)" not in text
    assert "val fell 24% since mid-run" in text and "+" not in text
    assert "lowest at epoch 5" in text  # the 0-based label 4, counted as people count
    assert "val/train mae 1.42" in text


def test_summary_without_a_finding_says_rose_for_a_val_that_rose() -> None:
    f = _summary_features(val_half_drop=-0.2)
    text = summarize(Verdict.UNDERFIT, Cause.NOT_CONVERGED, [], f)
    assert text.startswith("underfit: no rule voted underfit")
    assert "val rose 25% since mid-run" in text and "not converged" not in text


def test_summary_without_a_finding_leaves_out_what_cannot_be_measured() -> None:
    f = _summary_features(gap_ratio_end=float("nan"), val_half_drop=float("nan"), best_epoch=-1)
    text = summarize(Verdict.BALANCED, None, [], f)
    assert text == "balanced: no rule voted balanced; the curves as a whole lean that way, over 100 epochs."


def test_summary_with_a_finding_of_another_cause_shows_that_finding_and_its_cause() -> None:
    fd202 = Finding(
        "FD202", "underfit.not_converged", Verdict.UNDERFIT, Cause.NOT_CONVERGED, 0.7, 0.2, 0.1, "still"
    )
    text = summarize(Verdict.UNDERFIT, Cause.OVER_REGULARIZED, [fd202], _features())
    assert text.startswith("underfit (not converged): still")


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"has_validation": False}, "no validation series to judge generalization"),
        ({"has_train": False}, "no train series, so val is judged alone and no ratio rule applies"),
        ({"positive": False}, "the series have non-positive values, so no ratio rule applies"),
    ],
)
def test_summary_branches_without_ratios(changes: dict[str, object], words: str) -> None:
    text = summarize(Verdict.INCONCLUSIVE, None, [], _summary_features(**changes))
    assert text == f"inconclusive: {words}, over 100 epochs."


def test_summary_and_rule_messages_count_epochs_from_one() -> None:
    d = diagnose_fixture("missed-early-stop")
    frame = read_history(FIXTURES / "missed-early-stop" / "history.csv")
    assert int(frame.epochs[0]) == 0  # the CSV's epoch column stays 0-based
    best = int(frame.epochs[int(np.nanargmin(frame.val))])
    quoted = [f.message for f in d.findings if "minimum at epoch" in f.message]
    assert quoted and all(f"minimum at epoch {best + 1}" in m for m in quoted)
    assert d.suggestion is not None
    stop = [
        c for c in (d.suggestion.primary, *d.suggestion.alternatives) if c.key == "training.early_stopping"
    ]
    assert stop and f"(epoch {best + 1})" in stop[0].text


def test_a_verdict_no_rule_voted_for_is_labelled_without_a_cause() -> None:
    from fitdoc.formatting import verdict_label
    from fitdoc.verdict import Diagnosis

    leaning = Diagnosis("x", Verdict.OVERFIT, Cause.REBOUND, 0.6, (), None, "mae", 20, "overfit: ...")
    assert verdict_label(leaning) == "overfit"
    gap = Finding("FD101", "overfit.gap", Verdict.OVERFIT, Cause.GAP, 0.9, 4.0, 3.0, "m")
    found = Diagnosis("x", Verdict.OVERFIT, Cause.GAP, 0.9, (gap,), None, "mae", 20, "overfit (gap): m")
    assert verdict_label(found) == "overfit (gap)"


# ---------------------------------------------------------------- declared numbers


def test_the_decision_thresholds_are_declared_and_overridable() -> None:
    from fitdoc.diagnosis.decide import DecisionNumbers, _cause
    from fitdoc.diagnosis.rules.registry import decision_thresholds

    assert decision_thresholds().thresholds["min_still_falling"] == 0.05
    # An underfit run with L2 and no finding of its cause: val still falling 8 % reads
    # "not converged" at the default, "over-regularized" once 10 % is needed.
    f = _summary_features(val_gain_2x=0.08, val_last_fall=0.0)
    reg = regularization(load_config(FIXTURES / "founding-l2-0.001" / "config.yaml"))
    assert _cause(Verdict.UNDERFIT, [], f, reg) is Cause.NOT_CONVERGED
    own = decision_thresholds({"decision": {"min_still_falling": 0.1}})
    numbers = DecisionNumbers.of(all_rules(), own)
    assert _cause(Verdict.UNDERFIT, [], f, reg, numbers) is Cause.OVER_REGULARIZED


def test_an_unknown_decision_threshold_is_a_config_error() -> None:
    from fitdoc.diagnosis.rules.registry import decision_thresholds
    from fitdoc.errors import ConfigError

    with pytest.raises(ConfigError, match="min_still_falling"):
        decision_thresholds({"decision": {"min_still_fallin": 0.1}})


def test_the_ladder_reads_the_rules_thresholds_in_force() -> None:
    from fitdoc.diagnosis.suggest import LadderNumbers, suggest

    config = load_config(FIXTURES / "founding-l2-0.001" / "config.yaml").with_changes({"model.dropout": 0.2})
    # L2 0.001 is FD201's strong L2 (min_l2): ease L2 first; with min_l2 0.01 dropout goes first.
    assert LadderNumbers().strong_l2 == 1e-3
    default = suggest(Verdict.UNDERFIT, Cause.OVER_REGULARIZED, config)
    assert default is not None and default.primary.key == "model.l2"
    numbers = LadderNumbers.of(all_rules({"FD201": {"min_l2": 0.01}}))
    eased = suggest(Verdict.UNDERFIT, Cause.OVER_REGULARIZED, config, None, numbers)
    assert eased is not None and eased.primary.key == "model.dropout"


def test_every_evidence_term_is_declared_once_with_its_function() -> None:
    from fitdoc.diagnosis.rules.combiner import CONFIG_TERMS, CURVE_TERMS, EVIDENCE

    names = [t.name for t in (*CURVE_TERMS, *CONFIG_TERMS)]
    assert len(set(EVIDENCE_NAMES)) == len(EVIDENCE_NAMES) == len(EVIDENCE)
    assert list(EVIDENCE_NAMES[: len(names)]) == names
    f = _features()
    x = evidence(f, [], None)
    for i, term in enumerate(CURVE_TERMS):
        assert x[i] == pytest.approx(term.value(f)), term.name
    assert x[len(CURVE_TERMS) : len(names)].tolist() == [0.0] * len(CONFIG_TERMS)  # config unknown


def test_the_nets_width_is_config_evidence_narrow_below_32_units() -> None:
    from fitdoc.diagnosis.rules._config import Regularization
    from fitdoc.diagnosis.rules.combiner import CONFIG_TERMS

    (narrow,) = (t for t in CONFIG_TERMS if t.name == "net_narrow")
    assert narrow.value(Regularization(0.0, 0.0, 0.0, 2)) == pytest.approx(1.0)
    assert narrow.value(Regularization(0.0, 0.0, 0.0, 8)) == pytest.approx(0.5)
    assert narrow.value(Regularization(0.0, 0.0, 0.0, 32)) == 0.0
    assert narrow.value(Regularization(0.0, 0.0, 0.0, 512)) == 0.0
    assert narrow.value(Regularization(0.0, 0.0, 0.0)) == 0.0  # width not said


def test_fd301_reads_the_measured_fall_of_val() -> None:
    from fitdoc.diagnosis.rules.registry import get_rule

    # A val that rose 1e16-fold: 1 - val_stop_gain underflows to 0, the measured fall does not.
    f = _summary_features(val_stop_gain=1.0 - 1e-17, val_last_fall=-1e16, val_gain_2x=0.0, gap_ratio_end=1.0)
    assert get_rule("FD301").evaluate(f) is None
