"""The regression guard (benchmarks/guard.py): a refit that loses more than its noise is refused."""

from __future__ import annotations

import math
from typing import Any

from benchmarks.guard import Measure, print_table


def test_a_drop_within_noise_passes_and_beyond_it_is_refused() -> None:
    assert not Measure("F1", 0.74, 0.73, 0.013).refused(1.0)
    assert Measure("F1", 0.74, 0.70, 0.013).refused(1.0)
    assert not Measure("F1", 0.74, 0.70, 0.013).refused(4.0)


def test_lower_is_better_measures_are_refused_when_they_rise() -> None:
    assert Measure("harmful", 0.047, 0.060, 0.002, higher_is_better=False).refused(1.0)
    assert not Measure("harmful", 0.047, 0.030, 0.002, higher_is_better=False).refused(1.0)


def test_a_measure_with_no_record_yet_is_new_not_refused() -> None:
    fresh = Measure("digits left out, F1 config", math.nan, 0.6, 0.02)
    assert not fresh.refused(1.0)
    assert print_table([fresh, Measure("F1", 0.74, 0.75, 0.01)], 1.0)
    assert not print_table([Measure("F1", 0.74, 0.60, 0.01)], 1.0)


def test_a_committed_model_for_other_evidence_is_stood_in_for_by_its_record() -> None:
    from benchmarks.guard import as_recorded

    baseline = {"as_fitted": {"shared corpus, F1 config": [0.67, 0.02]}}
    names = {"shared corpus, F1 config": (0.7, 0.02), "shared corpus, F1 curves": (0.6, 0.02)}
    old = as_recorded(baseline, names)
    assert old["shared corpus, F1 config"] == (0.67, 0.02)
    assert all(math.isnan(v) for v in old["shared corpus, F1 curves"])  # no record: new


def test_a_grown_corpus_is_guarded_on_the_paths_the_baseline_was_measured_on() -> None:
    from types import SimpleNamespace

    from benchmarks.guard import split_by_baseline

    def pred(key: str) -> Any:
        return SimpleNamespace(sample=SimpleNamespace(run=SimpleNamespace(path_key=key)))

    preds = [pred("p1-00001"), pred("p1c-00002"), pred("shared-labeled")]
    seen, grown = split_by_baseline(preds, {"paths": ["p1-00001", "shared-labeled"]})
    assert [p.sample.run.path_key for p in seen] == ["p1-00001", "shared-labeled"]
    assert [p.sample.run.path_key for p in grown] == ["p1c-00002"]
    # A baseline that recorded no paths was measured on all of them.
    assert split_by_baseline(preds, {}) == (preds, [])
