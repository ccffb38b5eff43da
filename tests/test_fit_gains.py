"""benchmarks/fit_gains.py's choices from held-out differences: what the product switches on."""

from __future__ import annotations

from benchmarks.fit_gains import choose_override, choose_use, margins_by_kind


def diffs(overturn_captured: float, overturn_f1: float = 0.0) -> dict[str, tuple[float, float]]:
    """Held-out differences against the ladder, each (difference, noise), as print_comparison gives them."""
    return {
        "macro-F1 with config": (-0.046, 0.009),
        "macro-F1 curves only": (-0.054, 0.009),
        "macro-F1 with config (ranker + overturn)": (overturn_f1, 0.001),
        "macro-F1 curves only (ranker + overturn)": (0.001, 0.001),
        "advice captured (combiner + gain ranker)": (0.078, 0.006),
        "advice captured (gain model)": (0.110, 0.009),
        "advice captured (ranker + overturn)": (overturn_captured, 0.006),
        "advice harmful (combiner + gain ranker)": (-0.003, 0.001),
        "advice harmful (gain model)": (-0.005, 0.003),
        "advice harmful (ranker + overturn)": (-0.003, 0.001),
    }


def test_the_ranker_is_used_when_its_advice_is_better_beyond_noise() -> None:
    assert choose_use(diffs(0.083)) == "ranker"
    worse = diffs(0.083) | {"advice captured (combiner + gain ranker)": (0.004, 0.006)}
    assert choose_use(worse) == "off"


def test_overturning_balanced_verdicts_must_beat_the_ranker_beyond_noise() -> None:
    # 0.5 points above the ranker, noise 0.6: a tie keeps it off (the 2026-12-03 refit).
    assert choose_override(diffs(0.083), 0.2) is None
    assert choose_override(diffs(0.090), 0.2) == 0.2
    # ... and it must not cost label agreement beyond noise.
    assert choose_override(diffs(0.090, overturn_f1=-0.005), 0.2) is None
    assert choose_override(diffs(0.090), None) is None


def test_each_kind_of_ladder_step_gets_the_margin_that_serves_its_runs_best() -> None:
    incumbent = {"a": "dropout_down", "b": "dropout_down", "c": "penalty_up", "d": "penalty_down"}

    def value(run: str, margin: float | None) -> float:
        if run in ("a", "b"):  # passing lowered dropout helps, the more freely the better
            return 0.0 if margin is None else 0.1 - margin
        if run == "d":  # would gain from a small margin, but lowering the penalty is kept
            return 0.0 if margin is None else 1.0
        return 0.0  # a tie everywhere: min_gain stays

    assert margins_by_kind(incumbent, value) == {"dropout_down": 0.0}
    # A tie between margins keeps the larger one.
    assert margins_by_kind({"a": "stop_at_min"}, lambda _run, m: 0.0 if m is None else 1.0) == {
        "stop_at_min": 0.2
    }
