"""The gain model (fitdoc/diagnosis/gains.py): flat trees evaluated with numpy, the decision
read off predicted gains, the committed weights, and the ranker inside `diagnose_curves`."""

from __future__ import annotations

import numpy as np
import pytest

from fitdoc.diagnosis.gains import CHANGES, KINDS, GainModel, Trees, default_gain_model
from fitdoc.diagnosis.rules.combiner import EVIDENCE_NAMES
from fitdoc.diagnosis.suggest import Knobs, RunPoint, step
from fitdoc.verdict import Cause, Verdict


def stump(feature: int, threshold: float, low: float, high: float, base: float = 0.0) -> Trees:
    """One tree: x[feature] <= threshold -> low, else high."""
    return Trees(
        base=base,
        roots=np.array([0]),
        feature=np.array([feature, -1, -1]),
        threshold=np.array([threshold, 0.0, 0.0]),
        left=np.array([1, -1, -1]),
        right=np.array([2, -1, -1]),
        value=np.array([0.0, low, high]),
    )


def two_trees() -> Trees:
    a, b = stump(0, 0.5, -0.1, 0.2), stump(1, 0.0, 0.05, -0.05)
    shift = 3
    return Trees(
        base=0.01,
        roots=np.array([0, shift]),
        feature=np.concatenate([a.feature, b.feature]),
        threshold=np.concatenate([a.threshold, b.threshold]),
        left=np.concatenate([a.left, np.where(b.left >= 0, b.left + shift, -1)]),
        right=np.concatenate([a.right, np.where(b.right >= 0, b.right + shift, -1)]),
        value=np.concatenate([a.value, b.value]),
    )


def test_trees_sum_the_leaves_each_tree_reaches() -> None:
    trees = two_trees()
    assert trees.predict(np.array([0.9, -1.0])) == pytest.approx(0.01 + 0.2 + 0.05)
    assert trees.predict(np.array([0.1, 1.0])) == pytest.approx(0.01 - 0.1 - 0.05)
    assert Trees.from_dict(trees.to_dict()).predict(np.array([0.9, 1.0])) == pytest.approx(0.16)


def model(**trees: Trees) -> GainModel:
    return GainModel(EVIDENCE_NAMES, trees, 0.05, {"directed": ((0.0, 0.2), (0.5, 0.9))})


def test_the_best_predicted_change_decides_and_names_its_cause() -> None:
    m = model()
    assert m.decide({"penalty_up": 0.2, "epochs_x2": 0.1})[:3] == (Verdict.OVERFIT, Cause.GAP, "penalty_up")
    assert m.decide({"stop_at_min": 0.12})[:3] == (Verdict.OVERFIT, Cause.REBOUND, "stop_at_min")
    assert m.decide({"epochs_x2": 0.3, "penalty_up": 0.0})[:3] == (
        Verdict.UNDERFIT,
        Cause.NOT_CONVERGED,
        "epochs_x2",
    )
    verdict, _, change, confidence = m.decide({"penalty_up": 0.25})
    assert verdict is Verdict.OVERFIT and change == "penalty_up" and confidence == pytest.approx(0.9)


def test_no_clear_gain_is_balanced() -> None:
    assert model().decide({"penalty_up": 0.04, "epochs_x2": -0.1})[:3] == (Verdict.BALANCED, None, None)
    assert model().decide({})[0] is Verdict.BALANCED


def test_rank_keeps_the_verdicts_direction_best_first() -> None:
    gains = {"penalty_up": 0.02, "dropout_up": 0.08, "epochs_x2": 0.3, "stop_at_min": 0.05}
    assert model().rank(gains, Verdict.OVERFIT) == ["dropout_up", "stop_at_min", "penalty_up"]


def test_the_ladders_step_is_passed_by_its_kinds_margin_else_min_gain() -> None:
    m = GainModel(EVIDENCE_NAMES, {}, 0.08, {}, rank_margins={"dropout_down": 0.0})
    assert (m.rank_margin("dropout_down"), m.rank_margin("penalty_down"), m.rank_margin("ladder")) == (
        0.0,
        0.08,
        0.08,
    )
    # Lowering dropout (margin 0): twice the epochs predicted 2 points ahead goes first...
    assert (
        m.rank({"dropout_down": 0.06, "epochs_x2": 0.08}, Verdict.UNDERFIT, "dropout_down")[0] == "epochs_x2"
    )
    # ...lowering the penalty (min_gain, 0.08) is kept at the same edge, and passed beyond it.
    assert (
        m.rank({"penalty_down": 0.06, "epochs_x2": 0.08}, Verdict.UNDERFIT, "penalty_down")[0]
        == "penalty_down"
    )
    assert (
        m.rank({"penalty_down": 0.06, "epochs_x2": 0.15}, Verdict.UNDERFIT, "penalty_down")[0] == "epochs_x2"
    )
    again = GainModel.from_dict({**m.to_dict(), "evidence": list(EVIDENCE_NAMES)})
    assert again.rank_margins == {"dropout_down": 0.0}
    # A model written before the margins were chosen: min_gain for every step.
    raw = {k: v for k, v in m.to_dict().items() if k != "rank_margins"}
    assert GainModel.from_dict({**raw, "evidence": list(EVIDENCE_NAMES)}).rank_margin("dropout_down") == 0.08


def test_every_change_kind_is_a_ladder_step() -> None:
    knobs = Knobs(l2=1e-4, dropout=0.2, epochs=100, units=32, hidden_layers=2)
    run = RunPoint(best_epoch=40, n_epochs=100, best_position=0.41)
    changes = {kind.name: step(kind.name, knobs, run) for kind in CHANGES}
    assert {name: (c.key, c.to) for name, c in changes.items() if c is not None} == {
        "penalty_up": ("model.l2", 0.001),
        "dropout_up": ("model.dropout", 0.5),
        "stop_at_min": ("training.early_stopping", {"patience": 10}),
        "penalty_down": ("model.l2", 1e-05),
        "dropout_down": ("model.dropout", 0.0),
        "epochs_x2": ("training.epochs", 200),
        "units_x2": ("model.units", 64),
    }
    assert step("penalty_down", Knobs(), run) is None  # no L2 to lower
    assert step("dropout_up", Knobs(dropout=0.5), run) is None
    assert step("penalty_up", Knobs(l1=1e-3), run).key == "model.l1"  # type: ignore[union-attr]
    assert all(step(kind.name, None, run) is not None for kind in CHANGES)  # generic wording


def test_the_committed_model_loads_and_predicts_a_number_per_change() -> None:
    m = default_gain_model()
    assert m is not None and m.use in ("ranker", "decision", "off")
    assert set(m.trees) <= set(KINDS)
    gains = m.predict(np.zeros(len(EVIDENCE_NAMES)))
    assert set(gains) == set(m.trees) and all(np.isfinite(list(gains.values())))
    assert GainModel.from_dict(m.to_dict()).predict(np.ones(len(EVIDENCE_NAMES))) == pytest.approx(
        m.predict(np.ones(len(EVIDENCE_NAMES)))
    )
    assert all(m.importance().values())


def test_a_model_for_other_evidence_is_refused() -> None:
    m = default_gain_model()
    assert m is not None
    raw = {**m.to_dict(), "evidence": ["something_else"]}
    with pytest.raises(ValueError, match="evidence"):
        GainModel.from_dict(raw)


def constant(value: float) -> Trees:
    return Trees(
        value, np.array([0]), np.array([-1]), np.zeros(1), np.array([-1]), np.array([-1]), np.zeros(1)
    )


def test_the_ranker_keeps_the_ladders_step_unless_another_gains_clearly_more() -> None:
    from pathlib import Path

    from fitdoc.config import validate_config
    from fitdoc.diagnosis.decide import rank_by_gain, run_rules
    from fitdoc.diagnosis.features import compute_features
    from fitdoc.diagnosis.rules._config import regularization
    from fitdoc.diagnosis.rules.registry import all_rules
    from fitdoc.diagnosis.suggest import suggest
    from fitdoc.history.load import read_history

    run = Path(__file__).parent / "fixtures" / "verdicts" / "founding-l2-0.001"
    features = compute_features(read_history(run / "history.csv"))
    config = validate_config({"model": {"l2": 0.001}, "training": {"epochs": 1000}}, model_only=True)
    reg = regularization(config)
    findings = run_rules(all_rules(), features, reg)
    ladder = suggest(Verdict.UNDERFIT, Cause.OVER_REGULARIZED, config, features)
    assert ladder is not None and ladder.primary.key == "model.l2"

    def ranked(epochs_gain: float) -> tuple[Cause | None, str, str]:
        m = GainModel(
            EVIDENCE_NAMES,
            {"penalty_down": constant(0.04), "epochs_x2": constant(epochs_gain), "penalty_up": constant(0.5)},
            0.09,
            {},
            skill={"penalty_down": 0.4, "epochs_x2": 0.05},
        )
        out = rank_by_gain(
            Verdict.UNDERFIT, config, features, findings, reg, ladder, Cause.OVER_REGULARIZED, model=m
        )
        assert out is not None
        cause, suggestion, note = out
        return cause, suggestion.primary.key, note

    cause, key, note = ranked(0.08)  # a 4-point edge does not overturn the ladder
    assert (cause, key) == (Cause.OVER_REGULARIZED, "model.l2")
    assert "training.epochs -> 2000 +8%" in note and "model.l2" in note
    assert "+50%" not in note  # the other direction's steps are not ranked
    # The ladder's step is listed first though predicted lower: the note does not say "best first".
    assert "in the order suggested: model.l2" in note and "best first" not in note
    assert "predicted to gain 9% more" in note
    # A prediction with little held-out skill says so; one with skill is quoted bare.
    assert "+8% (weak: held-out skill 0.05)" in note and "+4% (weak" not in note
    cause, key, note = ranked(0.2)  # a 16-point edge does
    assert (cause, key) == (Cause.NOT_CONVERGED, "training.epochs")
    assert "best first: training.epochs" in note


def test_fitdoc_rules_shows_what_the_gain_model_weighs() -> None:
    import json

    from typer.testing import CliRunner

    from fitdoc.cli import app

    result = CliRunner().invoke(app, ["rules", "--format", "json"])
    assert result.exit_code == 0, result.output
    gain_model = json.loads(result.stdout)["gain_model"]
    assert gain_model["use"] in ("ranker", "decision", "off")
    changes = {row["change"]: row for row in gain_model["changes"]}
    assert "epochs_x2" in changes and changes["epochs_x2"]["direction"] == "underfit (not converged)"
    assert all(set(row["weighs"]) <= set(EVIDENCE_NAMES) for row in changes.values())
    text = CliRunner().invoke(app, ["rules"]).stdout
    assert "The gain model" in text and "epochs_x2" in text


def test_each_changes_held_out_skill_is_kept_and_shown_by_rules() -> None:
    from rich.console import Console

    from fitdoc.report.rules import gain_model_summary, render_gain_model, rules_to_markdown

    m = GainModel(EVIDENCE_NAMES, {"epochs_x2": two_trees()}, 0.08, {}, skill={"epochs_x2": 0.71})
    again = GainModel.from_dict(m.to_dict())
    assert again.skill == {"epochs_x2": 0.71}
    assert again.predict(np.ones(len(EVIDENCE_NAMES))) == {"epochs_x2": pytest.approx(0.16)}
    assert gain_model_summary(m)["changes"][0]["skill"] == 0.71
    assert (
        gain_model_summary(GainModel(EVIDENCE_NAMES, {"epochs_x2": two_trees()}, 0.08, {}))["changes"][0][
            "skill"
        ]
        is None
    )  # a model written before skill was recorded
    console = Console(record=True, width=200)
    render_gain_model(m, console)
    text = console.export_text()
    assert "skill" in text and "0.71" in text
    assert "| `epochs_x2` | underfit (not converged) | 0.71 | +8% |" in rules_to_markdown([], gain_model=m)
    assert "passed from" in text and gain_model_summary(m)["changes"][0]["passed_from"] == 0.08


def test_the_committed_model_records_the_held_out_skill_of_every_change_it_predicts() -> None:
    m = default_gain_model()
    assert m is not None
    assert set(m.trees) <= set(m.skill), "benchmarks/fit_gains.py --write records each change's skill"
    assert all(-1.0 <= v <= 1.0 for v in m.skill.values())
    assert m.skill["epochs_x2"] > 0.5  # its best-predicted change, held out


def test_twice_the_units_is_predicted_only_for_a_known_narrow_net() -> None:
    from fitdoc.diagnosis.gains import UNITS_X2_BELOW, predictable

    assert predictable("units_x2", 2) and predictable("units_x2", UNITS_X2_BELOW - 1)
    assert not predictable("units_x2", UNITS_X2_BELOW) and not predictable("units_x2", None)
    assert predictable("penalty_up", None) and predictable("epochs_x2", 512)


def test_overturn_needs_the_best_predicted_gain_at_the_threshold() -> None:
    m = GainModel(EVIDENCE_NAMES, {}, 0.05, {}, override_gain=0.15)
    assert m.overturn({"units_x2": 0.2, "epochs_x2": 0.16}) == "units_x2"
    assert m.overturn({"units_x2": 0.14, "penalty_up": 0.1}) is None
    assert GainModel(EVIDENCE_NAMES, {}, 0.05, {}).overturn({"units_x2": 0.9}) is None  # never
    assert GainModel.from_dict({**m.to_dict(), "trees": {}}).override_gain == 0.15


def tiny_run() -> tuple[object, object]:
    """A 1-layer net of 2 units that stalled level with train (the issue's too-small net)."""
    from fitdoc.config import validate_config
    from fitdoc.history.load import curves_from_mapping

    epochs = np.arange(200)
    train = 1.22 + 2.0 * np.exp(-epochs / 25.0)
    history = {"epoch": list(epochs), "mae": list(train), "val_mae": list(train * 1.03)}
    curves = curves_from_mapping(history, source="tiny")
    config = validate_config(
        {"model": {"hidden_layers": 1, "units": 2}, "training": {"epochs": 200}}, model_only=True
    )
    return curves, config


def test_a_balanced_verdict_is_overturned_by_a_clear_predicted_gain_and_says_why() -> None:
    from fitdoc.diagnosis.decide import diagnose_curves, overturn_balanced, run_rules
    from fitdoc.diagnosis.features import compute_features
    from fitdoc.diagnosis.rules._config import regularization
    from fitdoc.diagnosis.rules.registry import all_rules

    curves, config = tiny_run()
    features = compute_features(curves)  # type: ignore[arg-type]
    reg = regularization(config)  # type: ignore[arg-type]
    findings = run_rules(all_rules(), features, reg)
    calibration = {"directed": ((0.0, 0.3), (0.6, 0.9))}
    wide_gain = GainModel(EVIDENCE_NAMES, {"units_x2": constant(0.3)}, 0.05, calibration, override_gain=0.2)
    out = overturn_balanced(config, features, findings, reg, model=wide_gain)
    assert out is not None
    finding, change, confidence = out
    assert (finding.rule_id, finding.verdict, finding.cause) == ("FD601", Verdict.UNDERFIT, Cause.CAPACITY)
    assert "30%" in finding.message and ">= 20%" in finding.message
    assert (change.key, change.to) == ("model.units", 4)
    assert confidence == pytest.approx(0.85)
    # Below the threshold, or for a wide net (twice the units is not predicted there): nothing.
    small = GainModel(EVIDENCE_NAMES, {"units_x2": constant(0.1)}, 0.05, calibration, override_gain=0.2)
    assert overturn_balanced(config, features, findings, reg, model=small) is None
    from fitdoc.config import validate_config

    wide = validate_config({"model": {"hidden_layers": 1, "units": 64}}, model_only=True)
    assert overturn_balanced(wide, features, findings, regularization(wide), model=wide_gain) is None
    # The committed model, end to end: whatever it says, a verdict it overturned names FD601.
    d = diagnose_curves(curves, config)  # type: ignore[arg-type]
    if any(f.rule_id == "FD601" for f in d.findings):
        assert d.verdict is not Verdict.BALANCED and d.suggestion is not None


def test_a_balanced_narrow_net_on_a_flat_plateau_gets_a_note_naming_twice_the_units() -> None:
    from fitdoc.config import validate_config
    from fitdoc.diagnosis.decide import capacity_note, diagnose_curves, run_rules
    from fitdoc.diagnosis.features import compute_features
    from fitdoc.diagnosis.rules._config import regularization
    from fitdoc.diagnosis.rules.registry import all_rules

    curves, config = tiny_run()
    features = compute_features(curves)  # type: ignore[arg-type]
    reg = regularization(config)  # type: ignore[arg-type]
    findings = run_rules(all_rules(), features, reg)
    assert any(f.rule_id == "FD203" for f in findings)
    (note,) = capacity_note(findings, reg)
    assert "2 units per hidden layer" in note and "model.units: 2 -> 4" in note
    wide = validate_config({"model": {"units": 64}}, model_only=True)
    assert capacity_note(findings, regularization(wide)) == ()
    assert capacity_note(findings, None) == ()
    d = diagnose_curves(curves, config)  # type: ignore[arg-type]
    assert d.verdict is not Verdict.BALANCED or note in d.notes
