"""The tuning loop's decisions over scripted verdicts (no training)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fitdoc.config import load_config, validate_config
from fitdoc.diagnosis.decide import diagnose_curves
from fitdoc.diagnosis.features import compute_features
from fitdoc.diagnosis.suggest import suggest
from fitdoc.history.curves import Curves
from fitdoc.history.load import read_history
from fitdoc.tune.plan import (
    DROPOUT,
    L2,
    Move,
    Trial,
    best_trial,
    plan_next,
    settings_key,
)
from fitdoc.tune.trials import settings_of, trial_from_run
from fitdoc.verdict import Cause, Suggestion, Verdict


def next_moves(trials: Any, base: Any, **options: Any) -> list[Move]:
    """The moves `plan_next` proposes (the package keeps one planning entry point)."""
    return list(plan_next(trials, base, **options).moves)


BASE = {
    "model.l2": 0.0,
    "model.dropout": 0.0,
    "training.epochs": 100,
    "training.early_stopping": None,
    "model.units": 64,
}

Oracle = Callable[[Mapping[str, Any]], tuple[str | None, str | None, float | None]]


def l2_oracle(low: float, high: float) -> Oracle:
    """Overfit below `low`, underfit (over-regularized) above `high`, balanced between;
    val MAE smallest at the geometric middle of the balanced band."""
    centre = math.sqrt(low * high)

    def oracle(s: Mapping[str, Any]) -> tuple[str | None, str | None, float | None]:
        l2 = s["model.l2"]
        mae = 0.1 + abs(math.log10(max(l2, 1e-7) / centre)) / 100
        if s["model.dropout"] > 0:
            return ("balanced", None, 0.5)
        if l2 < low:
            return ("overfit", "gap", mae)
        if l2 > high:
            return ("underfit", "over-regularized", mae)
        return ("balanced", None, mae)

    return oracle


def simulate(oracle: Oracle, base=BASE, *, max_runs: int = 10, parallel: int = 1):
    trials: list[Trial] = []
    while True:
        plan = plan_next(trials, base, max_runs=max_runs, max_parallel=parallel)
        if not plan.moves:
            return trials, plan.stop_reason
        start = len(trials)
        for offset, move in enumerate(plan.moves):
            verdict, cause, mae = oracle(move.settings)
            trials.append(
                Trial(
                    index=start + offset,
                    settings=move.settings,
                    verdict=verdict,
                    cause=cause,
                    val_mae=mae,
                    status="completed" if verdict else "diverged",
                    change=move.change,
                    reason=move.reason,
                )
            )


def l2s(trials: list[Trial]) -> list[float]:
    return [t.settings["model.l2"] for t in trials]


# ---------------------------------------------------------------- the ladders


def test_l2_ladder_steps():
    assert L2.up(0.0) == 1e-4
    assert L2.up(1e-4) == pytest.approx(1e-3)
    assert L2.up(1e-2) is None
    assert L2.down(1e-3) == pytest.approx(1e-4)
    assert L2.down(1e-5) == 0.0
    assert L2.down(0.0) is None


def test_l2_bisection_is_geometric():
    assert L2.midpoint(1e-4, 1e-3) == pytest.approx(3.16e-4)
    # Zero counts as one decade below the smallest step: 0 and 1e-4 -> 1e-5.
    assert L2.midpoint(0.0, 1e-4) == pytest.approx(1e-5)
    # Neighbours already: nothing between.
    assert L2.midpoint(1e-4, 3.16e-4) is None
    assert L2.midpoint(0.0, 1e-5) is None


def test_dropout_ladder_and_bisection():
    assert DROPOUT.up(0.0) == 0.2
    assert DROPOUT.up(0.2) == 0.5
    assert DROPOUT.up(0.5) is None
    assert DROPOUT.down(0.5) == 0.2
    assert DROPOUT.down(0.2) == 0.0
    assert DROPOUT.midpoint(0.2, 0.5) == pytest.approx(0.35)
    assert DROPOUT.midpoint(0.2, 0.35) is None


def test_step_prefers_ladder_then_bisects_towards_a_tried_value():
    assert L2.step(1e-4, +1, tried=[0.0]) == pytest.approx(1e-3)
    assert L2.step(1e-4, +1, tried=[1e-3]) == pytest.approx(3.16e-4)
    assert L2.step(1e-4, +1, tried=[1e-3], bisect=False) is None
    assert L2.step(1e-3, -1, tried=[0.0]) == pytest.approx(1e-4)


# ---------------------------------------------------------------- direction


def one(trial_settings: dict, verdict: str, cause: str | None = None, suggestion=None) -> Trial:
    return Trial(0, {**BASE, **trial_settings}, verdict, cause, 0.1, suggestion)


@pytest.mark.parametrize(
    ("start", "verdict", "cause", "key", "expected"),
    [
        ({}, "overfit", "gap", "model.l2", 1e-4),
        ({"model.l2": 1e-3}, "overfit", "gap", "model.l2", 1e-2),
        ({"model.l2": 1e-2}, "underfit", "over-regularized", "model.l2", 1e-3),
        ({"model.dropout": 0.5}, "underfit", "over-regularized", "model.dropout", 0.2),
        ({"model.dropout": 0.2}, "overfit", "gap", "model.dropout", 0.5),
        ({}, "underfit", "not converged", "training.epochs", 200),
        ({}, "underfit", "capacity", "model.units", 128),
        ({}, "inconclusive", None, "training.epochs", 200),
    ],
)
def test_direction_follows_the_verdict(start, verdict, cause, key, expected):
    [move] = next_moves([one(start, verdict, cause)], BASE, max_runs=5)
    assert move.settings[key] == pytest.approx(expected)
    assert move.parent == 0
    assert key in move.change
    assert verdict in move.reason


def test_inconclusive_follows_the_way_its_strongest_rule_leans():
    trial = Trial(0, BASE, "inconclusive", None, 0.04, leaning="overfit", leaning_cause="gap")
    moves = next_moves([trial], BASE, max_runs=5, max_parallel=5)
    assert moves[0].settings["model.l2"] == 1e-4
    assert "inconclusive, leaning overfit (gap) -> add L2" in moves[0].reason
    # A longer history stays the last resort.
    assert moves[-1].settings["training.epochs"] == 200
    restored = Trial.from_dict(json.loads(json.dumps(trial.to_dict())))
    assert restored == trial


def test_overfit_at_the_top_of_the_l2_ladder_adds_dropout():
    [move] = next_moves([one({"model.l2": 1e-2}, "overfit", "gap")], BASE, max_runs=5)
    assert move.settings["model.l2"] == 1e-2
    assert move.settings["model.dropout"] == 0.2
    assert "add dropout" in move.reason


def test_epochs_grow_at_most_to_the_cap():
    trial = one({"training.epochs": 400}, "underfit", "not converged")
    assert next_moves([trial], BASE, max_runs=5) == []
    [move] = next_moves([one({"training.epochs": 300}, "underfit", "not converged")], BASE, max_runs=5)
    assert move.settings["training.epochs"] == 400


def test_first_move_is_the_base_config():
    [move] = next_moves([], BASE, max_runs=3)
    assert move.settings == BASE and move.parent is None


# ---------------------------------------------------------------- whole walks


def test_founding_walk_reaches_l2_1e4_then_checks_both_neighbours():
    trials, reason = simulate(l2_oracle(5e-5, 5e-4))
    assert l2s(trials)[:2] == [0.0, 1e-4]
    assert trials[1].verdict == "balanced"
    assert sorted(l2s(trials)[2:]) == pytest.approx([1e-5, 1e-3])
    assert "trial 1 is balanced" in reason and "neighbouring steps have been checked" in reason
    assert best_trial(trials).index == 1


def test_bisects_between_the_last_overfit_and_the_last_underfit():
    base = {**BASE, "model.l2": 1e-3}
    trials, reason = simulate(l2_oracle(2e-4, 5e-4), base)
    assert l2s(trials) == pytest.approx([1e-3, 1e-4, 3.16e-4])
    assert "geometric mean of 0.0001 (trial 1) and 0.001" in trials[2].reason
    assert trials[2].verdict == "balanced"
    # Its ladder neighbours (3.16e-5, 3.16e-3) lie beyond tried values: checked.
    assert "neighbouring steps have been checked" in reason


def test_when_no_l2_value_is_balanced_dropout_is_added():
    trials, _ = simulate(l2_oracle(2e-4, 1.9e-4), max_runs=8)
    assert l2s(trials)[:4] == pytest.approx([0, 1e-4, 1e-3, 3.16e-4])
    assert [t.settings["model.dropout"] for t in trials[:4]] == [0, 0, 0, 0]
    # The last overfit L2 value keeps its L2 and adds dropout, the ladder's next rung.
    assert (trials[4].settings["model.l2"], trials[4].settings["model.dropout"]) == (1e-4, 0.2)
    assert "add dropout" in trials[4].reason


def test_budget_stops_the_walk():
    trials, reason = simulate(l2_oracle(1e-3, 1e-2), max_runs=2)
    assert len(trials) == 2
    assert reason.startswith("budget spent (2 of 2")


def test_a_diverged_trial_falls_back_to_the_trial_before():
    def oracle(s):
        if s["model.l2"] == 1e-4:
            return (None, None, None)
        return l2_oracle(5e-4, 5e-3)(s)

    trials, _ = simulate(oracle, max_runs=4)
    assert trials[1].status == "diverged"
    # Trial 0 (overfit) still wants more regularization; 1e-4 was tried, so the
    # next untried move from it is taken, never a repeat of 1e-4.
    assert len({settings_key(t.settings) for t in trials}) == len(trials)


# ---------------------------------------------------------------- parallel


def test_parallel_checks_both_neighbours_at_once():
    trials = [
        Trial(0, BASE, "overfit", "gap", 0.2),
        Trial(1, {**BASE, "model.l2": 1e-4}, "balanced", None, 0.1),
    ]
    moves = next_moves(trials, BASE, max_runs=10, max_parallel=2)
    assert sorted(m.settings["model.l2"] for m in moves) == pytest.approx([1e-5, 1e-3])
    # The budget caps the width.
    assert len(next_moves(trials, BASE, max_runs=3, max_parallel=2)) == 1


def test_parallel_overfit_runs_l2_and_dropout_branches_together():
    moves = next_moves([Trial(0, BASE, "overfit", "gap", 0.2)], BASE, max_runs=10, max_parallel=2)
    assert [(m.settings["model.l2"], m.settings["model.dropout"]) for m in moves] == [(1e-4, 0.0), (0.0, 0.2)]


def test_parallel_walk_uses_fewer_rounds_and_no_repeats():
    trials, reason = simulate(l2_oracle(5e-5, 5e-4), parallel=3)
    assert len({settings_key(t.settings) for t in trials}) == len(trials)
    assert "balanced" in reason


# ---------------------------------------------------------------- resume


def test_resume_from_json_gives_the_same_plan():
    trials, _ = simulate(l2_oracle(2e-4, 5e-4), {**BASE, "model.l2": 1e-3}, max_runs=2)
    stored = json.loads(json.dumps([t.to_dict() for t in trials]))
    restored = [Trial.from_dict(d) for d in stored]
    assert restored == trials
    before = plan_next(trials, BASE, max_runs=5)
    after = plan_next(restored, BASE, max_runs=5)
    assert before == after
    assert after.moves[0].settings["model.l2"] == pytest.approx(3.16e-4)


def test_resumed_walk_ends_where_an_unbroken_one_does():
    oracle = l2_oracle(2e-4, 5e-4)
    full, _ = simulate(oracle, max_runs=10)
    head, _ = simulate(oracle, max_runs=2)
    trials = [Trial.from_dict(json.loads(json.dumps(t.to_dict()))) for t in head]
    while plan := plan_next(trials, BASE, max_runs=10):
        if not plan.moves:
            break
        for move in plan.moves:
            verdict, cause, mae = oracle(move.settings)
            trials.append(Trial(len(trials), move.settings, verdict, cause, mae))
    assert [settings_key(t.settings) for t in trials] == [settings_key(t.settings) for t in full]


# ---------------------------------------------------------------- invariants

VERDICT_CHOICES = st.sampled_from(
    [
        ("overfit", "gap"),
        ("overfit", "rebound"),
        ("underfit", "over-regularized"),
        ("underfit", "not converged"),
        ("underfit", "capacity"),
        ("underfit", None),
        ("balanced", None),
        ("inconclusive", None),
        (None, None),
    ]
)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), parallel=st.integers(1, 3))
def test_any_verdicts_never_repeat_a_config_and_always_stop(data, parallel):
    def oracle(_settings):
        verdict, cause = data.draw(VERDICT_CHOICES)
        return verdict, cause, None if verdict is None else data.draw(st.floats(0.01, 1.0))

    trials, reason = simulate(oracle, max_runs=60, parallel=parallel)
    keys = [settings_key(t.settings) for t in trials]
    assert len(set(keys)) == len(keys)
    assert reason
    # Every proposed value stays on (or between steps of) the ladders.
    for t in trials:
        assert 0.0 <= t.settings["model.l2"] <= 1e-2
        assert 0.0 <= t.settings["model.dropout"] <= 0.5
        assert t.settings["training.epochs"] <= 4 * BASE["training.epochs"]


# ---------------------------------------------------------------- one ladder for diagnose and tune

FIXTURES = Path(__file__).parent / "fixtures" / "verdicts"
FIXTURE_NAMES = sorted(p.name for p in FIXTURES.iterdir() if (p / "history.csv").is_file())


def first_move(trial: Trial, base: Mapping[str, Any]) -> Move | None:
    moves = next_moves([trial], base, max_runs=5)
    return moves[0] if moves else None


def assert_tune_follows(suggestion: Suggestion | None, move: Move | None, settings: dict) -> None:
    if suggestion is None:
        return
    change = suggestion.primary
    assert move is not None, f"tune has no move where diagnose suggests {change.text}"
    assert move.settings == {**settings, change.key: change.to}, (change.text, move.change)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_tunes_first_move_is_diagnoses_suggestion_on_every_fixture(name: str) -> None:
    config = load_config(FIXTURES / name / "config.yaml")
    curves = read_history(FIXTURES / name / "history.csv")
    diagnosis = diagnose_curves(curves, config)
    settings = settings_of(config)
    trial = trial_from_run(0, Move(settings, None, "baseline", ""), curves, diagnosis)
    # Through tune.json and back, as `--resume` reads it.
    trial = Trial.from_dict(json.loads(json.dumps(trial.to_dict())))
    move = first_move(trial, settings)
    assert_tune_follows(diagnosis.suggestion, move, settings)
    if diagnosis.verdict in (Verdict.OVERFIT, Verdict.UNDERFIT):
        assert diagnosis.suggestion is not None


RUNGS = [
    (l2, l1, dropout, patience)
    for l2 in (0.0, 1e-5, 1e-4, 1e-3, 1e-2)
    for l1 in (0.0, 1e-4)
    for dropout in (0.0, 0.2, 0.5)
    for patience in (None, 5, 200)
]
VERDICT_CAUSES = [
    (Verdict.OVERFIT, Cause.GAP),
    (Verdict.OVERFIT, Cause.REBOUND),
    (Verdict.UNDERFIT, Cause.OVER_REGULARIZED),
    (Verdict.UNDERFIT, Cause.NOT_CONVERGED),
    (Verdict.UNDERFIT, Cause.CAPACITY),
    (Verdict.UNDERFIT, None),
]


@pytest.mark.parametrize(("verdict", "cause"), VERDICT_CAUSES, ids=lambda v: str(v))
@pytest.mark.parametrize("early", [True, False], ids=["minimum-early", "minimum-late"])
def test_tunes_first_move_is_diagnoses_suggestion_on_every_rung(verdict, cause, early) -> None:
    n = 200
    val = np.linspace(1.0, 0.5, n)
    val[int(0.3 * n) if early else n - 5] = 0.1
    features = compute_features(Curves(np.arange(n), np.linspace(1.0, 0.05, n), val, "mae"))
    for l2, l1, dropout, patience in RUNGS:
        stopping = None if patience is None else {"patience": patience}
        config = validate_config(
            {
                "data": {"synthetic": "founding"},
                "model": {"l2": l2, "dropout": dropout, "l1": l1},
                "training": {"epochs": n, "early_stopping": stopping},
            }
        )
        settings = settings_of(config)
        extra = {
            "best_epoch": features.best_epoch,
            "epochs_run": features.n_epochs,
            "best_position": features.best_position,
        }
        trial = Trial(0, settings, verdict.value, None if cause is None else cause.value, 0.1, extra=extra)
        assert_tune_follows(suggest(verdict, cause, config, features), first_move(trial, settings), settings)


def test_a_trial_holds_enums_and_writes_the_same_strings() -> None:
    from fitdoc.tune.state import trials_to_csv

    trial = Trial(0, dict(BASE), "underfit", "over-regularized", 0.01, leaning="overfit", leaning_cause="gap")
    assert trial.verdict is Verdict.UNDERFIT and trial.cause is Cause.OVER_REGULARIZED
    assert trial.leaning is Verdict.OVERFIT and trial.leaning_cause is Cause.GAP
    record = trial.to_dict()
    assert (record["verdict"], record["cause"], record["leaning"]) == (
        "underfit",
        "over-regularized",
        "overfit",
    )
    assert json.loads(json.dumps(record))["leaning_cause"] == "gap"
    assert Trial.from_dict(record) == trial
    row = trials_to_csv([trial]).splitlines()[1]
    assert ",underfit,over-regularized," in row and "Verdict." not in row and "Cause." not in row
    with pytest.raises(ValueError):
        Trial(1, dict(BASE), "overfitting")


def test_tune_follows_the_suggestion_the_gain_model_put_first():
    """Overfit with no regularization: the ladder says L2 first; a trial whose diagnosis
    (ranked by predicted gain) suggested dropout first takes the dropout step first."""
    ranked = Trial(
        0, BASE, "overfit", "gap", 0.04, suggestion={"key": "model.dropout", "from": 0.0, "to": 0.2}
    )
    moves = next_moves([ranked], BASE, max_runs=5, max_parallel=2)
    assert moves[0].settings["model.dropout"] == 0.2 and moves[0].settings["model.l2"] == 0.0
    assert moves[1].settings["model.l2"] == 1e-4
    [plain] = next_moves([Trial(0, BASE, "overfit", "gap", 0.04)], BASE, max_runs=5)
    assert plain.settings["model.l2"] == 1e-4
