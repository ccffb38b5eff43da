"""The comparison model (fitdoc.report.comparison) and its renderers (fitdoc.report.compare)."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest
from _report_values import founding_config, founding_curves, founding_views
from rich.console import Console
from test_report import check_golden

from fitdoc.config import ModelOnlyConfig
from fitdoc.diagnosis.features import compute_features
from fitdoc.formatting import metric_text
from fitdoc.history.curves import Curves
from fitdoc.history.rundir import Run
from fitdoc.report.compare import comparison_to_json, comparison_to_markdown, render_comparison
from fitdoc.report.comparison import compare_runs, differing_keys, flatten_config, run_labels
from fitdoc.report.figures import run_figures


def curves(train, val, source="x.csv", metric="mae") -> Curves:
    return Curves(
        epochs=np.arange(len(train), dtype=float),
        train=None if train is None else np.asarray(train, dtype=float),
        val=None if val is None else np.asarray(val, dtype=float),
        metric=metric,
        source=source,
    )


def test_founding_case_says_intermediate_l2_is_the_better_point() -> None:
    comparison = compare_runs(founding_views())
    assert comparison.differing_keys == ("model.l2",)
    assert [r.label for r in comparison.runs] == ["l2=0", "l2=0.0001", "l2=0.001"]
    assert comparison.runs[comparison.best].name == "founding-l2-1e-4"
    assert comparison.direction == "intermediate"
    text = comparison.direction_text
    assert text.startswith("Raising model.l2 from 0 to 0.001 closed the train/val gap")
    assert "but raised final train MAE" in text
    assert text.endswith("is at model.l2=0.0001: an intermediate setting is the better point.")


def test_summary_numbers_follow_the_one_definition() -> None:
    """final = mean of the last tenth of the epochs (what diagnose's rules read), best = minimum."""
    run = compare_runs(founding_views()).runs[0]
    c = founding_curves(0.0)
    window = run.window
    assert window == min(50, max(3, round(len(c) / 10)))
    assert run.final_train == pytest.approx(c.train[-window:].mean())
    assert run.final_val == pytest.approx(c.val[-window:].mean())
    assert run.best_val == c.val.min() and run.best_epoch == int(np.argmin(c.val))
    assert run.gap_ratio == pytest.approx(run.final_val / run.final_train)
    # The same val/train diagnose's summary and FD101 quote.
    features = compute_features(c)
    assert run.gap_ratio == pytest.approx(features.gap_ratio_end)
    assert run_figures(c).final_val == run.final_val
    assert run.settings == {"model.l2": 0.0}
    assert (run.verdict, run.cause) == ("overfit", "gap")


def test_direction_more_and_less() -> None:
    views = founding_views()
    more = compare_runs([views[0], views[1]])
    assert more.direction == "more" and "more regularization helped" in more.direction_text
    less = compare_runs([views[1], views[2]])
    assert less.direction == "less" and "less regularization helped" in less.direction_text
    assert "Raising model.l2 from 0.0001 to 0.001" in less.direction_text


def test_no_direction_when_something_else_differs() -> None:
    a, b = founding_views()[:2]
    b = dataclasses.replace(b, config=b.config.with_changes({"training.epochs": 50}))
    comparison = compare_runs([a, b])
    assert comparison.differing_keys == ("model.l2", "training.epochs")
    assert comparison.direction is None and comparison.direction_text is None


def test_two_regularization_keys_name_the_best_setting() -> None:
    a, b = founding_views()[:2]
    b = dataclasses.replace(b, config=b.config.with_changes({"model.dropout": 0.2}))
    comparison = compare_runs([a, b])
    assert comparison.differing_keys == ("model.dropout", "model.l2")
    assert comparison.direction is None
    assert "is at model.dropout=0.2, model.l2=0.0001" in comparison.direction_text
    assert [r.label for r in comparison.runs] == ["dropout=0, l2=0", "dropout=0.2, l2=0.0001"]


def test_without_configs_names_label_the_runs() -> None:
    runs = [Run("a", curves([3, 2, 1], [4, 3, 2.5])), Run("b", curves([3, 2, 1.5], [4, 3, 2]))]
    comparison = compare_runs(runs)
    assert comparison.differing_keys == () and [r.label for r in comparison.runs] == ["a", "b"]
    assert comparison.best == 1 and comparison.direction is None


def test_same_setting_twice_keeps_labels_apart() -> None:
    config = founding_config(0.0, "x")
    runs = [
        Run("seed1", founding_curves(0.0), None, config.with_changes({"model.l2": 0.001})),
        Run("seed2", founding_curves(0.0), None, config.with_changes({"model.l2": 0.001, "seed": 1})),
        Run("base", founding_curves(0.0), None, config),
    ]
    assert run_labels(runs) == ["l2=0.001, seed=42", "l2=0.001, seed=1", "l2=0, seed=42"]
    same = [
        Run("s1", founding_curves(0.0), None, config),
        Run("s2", founding_curves(0.0), None, config),
    ]
    assert run_labels(same) == ["s1", "s2"]


def test_missing_and_nan_values() -> None:
    runs = [
        Run("train-only", curves([3, 2, np.nan], None)),
        Run("sparse", curves([3, 2, 1, 0.5], [np.nan, 2.5, np.nan, np.nan])),
    ]
    comparison = compare_runs(runs)
    first, second = comparison.runs
    # final: the mean of the finite values among the last 3 epochs (a tenth, at least 3)
    assert first.final_train == 2.5 and first.final_val is None and first.gap_ratio is None
    assert first.best_epoch == 1  # the train minimum when there is no validation series
    assert second.final_val == 2.5 and second.best_epoch == 1
    assert second.final_train == pytest.approx(7 / 6) and second.gap_ratio == pytest.approx(2.5 / (7 / 6))
    assert comparison.best == 1
    assert compare_runs([runs[0]]).best is None


def test_flatten_and_zero_equals_zero_point_zero() -> None:
    config = founding_config(0.0, "x")
    flat = flatten_config(config)
    assert flat["model.l2"] == 0.0 and flat["training.epochs"] == 1000 and "data.synthetic" in flat
    model_only = ModelOnlyConfig.model_validate({"model": {"l2": 0.001}})
    keys = differing_keys([config, model_only])
    assert "model.l2" in keys and "name" not in keys and not any(k.startswith("output.") for k in keys)
    assert differing_keys([config, config.with_changes({"model.l2": 0})]) == ()
    assert differing_keys([config, None]) == ()


# ---------------------------------------------------------------- renderers


def test_table_marks_the_best_run() -> None:
    console = Console(file=io.StringIO(), width=80, force_terminal=False, color_system=None)
    render_comparison(compare_runs(founding_views()), console)
    out = console.file.getvalue()
    best_row = next(line for line in out.splitlines() if "1e-4" in line)
    assert best_row.lstrip().startswith("★")
    assert "balanced" in best_row and "0.0001" in best_row
    lines = out.splitlines()
    # Room enough at 80 columns: each verdict with its cause on one line.
    assert any(line.rstrip().endswith(" overfit (gap)") for line in lines)
    assert any(line.rstrip().endswith(" underfit (over-regularized)") for line in lines)
    assert "closed the train/val gap" in out
    assert "every run is named founding-l2-<run>" in out  # the common prefix, said once, in words
    assert "final = mean of the last 30 epochs; best =" in out and "minimum over all epochs" in out
    assert max(len(line) for line in out.splitlines()) <= 100
    check_golden("comparison.txt", out)


def test_the_cause_goes_under_its_verdict_only_when_the_console_is_narrow() -> None:
    console = Console(file=io.StringIO(), width=66, force_terminal=False, color_system=None)
    render_comparison(compare_runs(founding_views()), console)
    lines = console.file.getvalue().splitlines()
    overfit = next(i for i, line in enumerate(lines) if line.rstrip().endswith(" overfit"))
    assert lines[overfit + 1].strip() == "gap"
    assert max(len(line) for line in lines[: overfit + 2]) <= 66


def test_long_names_fit_80_columns_with_a_legend_and_even_digits() -> None:
    """Issue 13.2: no verdict cut to `bal…`, no name wrapped over lines, one number format."""
    views = [
        dataclasses.replace(v, name=f"experiments/2026-11-29/{v.name}-with-a-long-tail-{i}/history.csv")
        for i, v in enumerate(founding_views())
    ]
    console = Console(file=io.StringIO(), width=80, force_terminal=False, color_system=None)
    render_comparison(compare_runs(views), console)
    out = console.file.getvalue()
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80, out
    assert "…" not in out, out
    ends = {line.rstrip().rsplit(" ", 1)[-1] for line in lines}
    assert {"overfit", "balanced", "underfit", "over-regularized"} <= ends  # whole, never `bal…`
    rows = [line for line in lines if line.lstrip("★ ").startswith("#") and "experiments/" not in line]
    assert [r.split()[0 if not r.startswith("★") else 1] for r in rows[:3]] == ["#1", "#2", "#3"]
    legend = [line for line in lines if line.startswith("#") and "experiments/" in line]
    assert len(legend) == 3 and views[0].name in legend[0]
    # Every metric shown with the same 3 significant digits (trailing zeros kept).
    for row, run in zip(rows, compare_runs(views).runs, strict=True):
        for value in (run.final_train, run.final_val, run.best_val):
            assert f" {metric_text(value)} " in f" {row} ", (row, value)
    assert [metric_text(v) for v in (0.019, 0.0004721, 8.66, 250.0)] == ["0.0190", "0.000472", "8.66", "250"]
    document = json.loads(comparison_to_json(compare_runs(views)))
    assert [r["name"] for r in document["runs"]] == [v.name for v in views]  # JSON keeps full names
    assert views[0].name in comparison_to_markdown(compare_runs(views))


def test_json_is_stable_and_complete() -> None:
    text = comparison_to_json(compare_runs(founding_views()))
    document = json.loads(text)
    assert document["schema_version"] == 1 and document["kind"] == "comparison"
    assert document["best"] == "founding-l2-1e-4" and document["direction"] == "intermediate"
    assert [r["best"] for r in document["runs"]] == [False, True, False]
    assert set(document["runs"][0]) >= {
        "final_train",
        "final_val",
        "best_train",
        "best_val",
        "best_epoch",
        "gap_ratio",
        "final_window",
        "verdict",
        "settings",
        "label",
    }
    assert document["errors"] == []
    check_golden("comparison.json", text)


def test_markdown() -> None:
    text = comparison_to_markdown(compare_runs(founding_views()))
    assert text.startswith("## fitdoc comparison\n")
    assert "| ★ | **`founding-l2-1e-4`** | 0.0001 |" in text
    check_golden("comparison.md", text)


def test_compare_names_a_cause_only_with_the_finding_that_gives_it() -> None:
    from fitdoc.report.comparison import _stated
    from fitdoc.verdict import Cause, Diagnosis, Finding, Verdict

    leaning = Diagnosis("x", Verdict.UNDERFIT, Cause.NOT_CONVERGED, 0.6, (), None, "mae", 40, "underfit: ...")
    assert _stated(leaning) is None
    fd202 = Finding(
        "FD202", "underfit.not_converged", Verdict.UNDERFIT, Cause.NOT_CONVERGED, 0.7, 0.2, 0.1, "m"
    )
    found = Diagnosis(
        "x",
        Verdict.UNDERFIT,
        Cause.NOT_CONVERGED,
        0.7,
        (fd202,),
        None,
        "mae",
        40,
        "underfit (not converged): m",
    )
    assert _stated(found) == "not converged"
