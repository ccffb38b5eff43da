"""Renderers of diagnoses: rich text, JSON (golden), Markdown (golden), GitHub annotations, rules."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pytest
from _report_values import BALANCED, DIAGNOSES, INCONCLUSIVE, OVERFIT, UNDERFIT
from rich.console import Console

from fitdoc.errors import HistoryError
from fitdoc.report.github import annotation, diagnoses_to_annotations
from fitdoc.report.jsonout import diagnoses_to_json
from fitdoc.report.markdown import cell, diagnoses_to_markdown
from fitdoc.report.text import render_diagnosis, render_rules, rules_to_json, rules_to_markdown
from fitdoc.verdict import SCHEMA_VERSION, Verdict

GOLDEN = Path(__file__).parent / "golden"
READ_ERROR = HistoryError(
    "no column looks like a validation series; available: epoch, loss",
    path="logs/broken.csv",
    field="val_col",
)


def check_golden(name: str, text: str) -> None:
    """Compare with tests/golden/NAME; FITDOC_UPDATE_GOLDEN=1 rewrites it (review the diff)."""
    path = GOLDEN / name
    if os.environ.get("FITDOC_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"golden file {path} missing; run with FITDOC_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def render(diagnosis) -> str:
    console = Console(file=io.StringIO(), width=100, force_terminal=False, color_system=None)
    render_diagnosis(diagnosis, console)
    return console.file.getvalue()


# ---------------------------------------------------------------- text


def test_text_shows_verdict_evidence_and_change_as_diff() -> None:
    out = render(UNDERFIT)
    lines = out.splitlines()
    assert lines[0].startswith("runs/founding-l2-0.001/history.csv ")
    assert lines[1].startswith("underfit (over-regularized)  confidence 0.78 · mae over 300 epochs")
    assert "FD201" in out and "regularization is 62% of the final loss > 30%" in out
    assert "  - model.l2: 0.001" in lines and "  + model.l2: 0.0001" in lines
    assert "note: the history holds 2 runs appended; diagnosed the last" in out


def test_text_lists_alternatives_and_non_voting_findings() -> None:
    out = render(OVERFIT)
    assert "  - model.l2: 0" in out.splitlines() and "  + model.l2: 0.0001" in out.splitlines()
    assert "or: model.dropout: 0 -> 0.2" in out
    row = next(line for line in out.splitlines() if "FD004" in line)
    assert " - " in row and "val noise 0.02 <= 0.15" in row


def test_report_fixtures_and_docs_cite_rules_that_exist() -> None:
    """The golden files and docs quote real rules (code, name and default threshold)."""
    from fitdoc.diagnosis.rules.registry import all_rules

    registered = {r.code: r for r in all_rules()}
    for diagnosis in (OVERFIT, UNDERFIT, BALANCED):
        for finding in diagnosis.findings:
            assert registered[finding.rule_id].name == finding.name, finding
    thresholds = {t.default for t in registered["FD101"].specs}
    assert {f.threshold for f in OVERFIT.findings if f.rule_id == "FD101"} <= thresholds
    names = {r.name for r in registered.values()}
    schema_doc = (Path(__file__).parents[1] / "docs" / "json-schema.md").read_text()
    cited = set(re.findall(r"e\.g\. `([a-z_]+\.[a-z_]+)`", schema_doc))
    assert cited and cited <= names


def test_text_without_findings_or_edit() -> None:
    out = render(INCONCLUSIVE)
    assert "inconclusive" in out and "rule" not in out  # no empty evidence table
    assert "log a validation series (validation_split=0.2)" in out and "  - " not in out
    balanced = render(BALANCED)
    assert "Suggested change" not in balanced


def test_text_is_deterministic_and_fits_the_width() -> None:
    out = "".join(render(d) for d in DIAGNOSES)
    assert out == "".join(render(d) for d in DIAGNOSES)
    assert max(len(line) for line in out.splitlines()) <= 100
    check_golden("diagnoses.txt", out)


# ---------------------------------------------------------------- JSON


def test_json_wraps_every_result_and_error() -> None:
    text = diagnoses_to_json(DIAGNOSES, errors=[READ_ERROR])
    document = json.loads(text)
    assert list(document) == ["schema_version", "kind", "results", "errors"]
    assert document["schema_version"] == SCHEMA_VERSION and document["kind"] == "diagnosis"
    assert document["results"] == [json.loads(json.dumps(d.to_dict())) for d in DIAGNOSES]
    assert document["errors"] == [
        {
            "path": "logs/broken.csv",
            "field": "val_col",
            "message": "no column looks like a validation series; available: epoch, loss",
            "exit_code": 2,
        }
    ]
    check_golden("diagnoses.json", text)


def test_json_of_nothing_is_valid_and_has_no_nan() -> None:
    assert json.loads(diagnoses_to_json([])) == {
        "schema_version": SCHEMA_VERSION,
        "kind": "diagnosis",
        "results": [],
        "errors": [],
    }
    text = diagnoses_to_json(DIAGNOSES)
    assert "NaN" not in text and text.endswith("}\n")


# ---------------------------------------------------------------- Markdown


def test_markdown_summary_details_and_plot_link() -> None:
    text = diagnoses_to_markdown(DIAGNOSES, plot_path="curves.png")
    assert text.startswith("## fitdoc diagnosis\n")
    assert "| `runs/founding-l2-0/history.csv` | 🔴 overfit (gap) | 0.86 | `model.l2: 0 -> 0.0001` |" in text
    assert "![learning curves](curves.png)" in text
    assert "```diff\n- model.l2: 0.001\n+ model.l2: 0.0001\n```" in text
    assert "dominates the loss | a pipe. (mae, 300 epochs" in text  # a paragraph, not a cell
    assert "> the history holds 2 runs appended; diagnosed the last" in text
    check_golden("diagnoses.md", text)


def test_markdown_cells_cannot_break_the_table() -> None:
    assert cell("a|b\n c") == "a\\|b c"


def test_markdown_without_plot_or_diagnoses() -> None:
    assert "![" not in diagnoses_to_markdown(DIAGNOSES)
    assert "No histories were diagnosed." in diagnoses_to_markdown([])


# ---------------------------------------------------------------- GitHub


def test_annotations_one_line_per_verdict_and_error() -> None:
    text = diagnoses_to_annotations([OVERFIT, UNDERFIT, BALANCED, INCONCLUSIVE], errors=[READ_ERROR])
    lines = text.splitlines()
    assert len(lines) == 5
    assert lines[0] == (
        "::warning file=runs/founding-l2-0/history.csv,title=fitdoc%3A overfit (gap)::"
        "Validation MAE stays 7.5x train MAE: the net memorizes the training set."
        "%0ASuggested change: model.l2: 0 -> 0.0001"
    )
    assert lines[1].startswith("::warning file=runs/founding-l2-0.001/history.csv,")
    assert lines[2].startswith("::notice ") and lines[3].startswith("::notice ")
    assert lines[4].startswith("::error file=logs/broken.csv,title=fitdoc%3A cannot read::logs/broken.csv")


def test_annotations_fail_on_becomes_error() -> None:
    text = diagnoses_to_annotations([OVERFIT, UNDERFIT], fail_on=[Verdict.OVERFIT])
    assert [line.split(" ")[0] for line in text.splitlines()] == ["::error", "::warning"]


def test_annotation_escapes_properties_and_data() -> None:
    line = annotation("warning", "50% done\nnext", file="a,b:c.csv", title="t")
    assert line == "::warning file=a%2Cb%3Ac.csv,title=t::50%25 done%0Anext"
    assert "\n" not in diagnoses_to_annotations([INCONCLUSIVE]).rstrip("\n")


# ---------------------------------------------------------------- rules


@pytest.fixture
def rules():
    from fitdoc.diagnosis.rules import base

    gap = base.Rule(
        code="FD101",
        name="overfit.gap",
        description="Final val/train MAE ratio above the threshold.",
        specs=(base.Threshold("max_ratio", 3.0, "val/train above this votes overfit"),),
        check=lambda *_: None,
    )
    short = base.Rule(
        code="FD001",
        name="data.too_short",
        description="Too few epochs to judge.",
        specs=(base.Threshold("min_epochs", 10, "fewer epochs than this is inconclusive"),),
        check=lambda *_: None,
    )
    return [gap.with_thresholds({"max_ratio": 3.5}), short]


def test_rules_table_shows_codes_and_thresholds(rules) -> None:
    console = Console(file=io.StringIO(), width=100, force_terminal=False, color_system=None)
    render_rules(rules, console)
    out = console.file.getvalue()
    assert "FD101" in out and "overfit.gap" in out and "Final val/train MAE ratio" in out
    assert "max_ratio = 3.5 (default 3)" in out
    assert "min_epochs = 10" in out and "min_epochs = 10 (default" not in out


def test_rules_json_and_markdown(rules) -> None:
    document = json.loads(rules_to_json(rules))
    assert document["kind"] == "rules"
    assert document["rules"][0]["thresholds"] == [
        {
            "name": "max_ratio",
            "value": 3.5,
            "default": 3.0,
            "description": "val/train above this votes overfit",
            "unit": "fraction",
        }
    ]
    text = rules_to_markdown(rules)
    assert "| FD001 | `data.too_short` | Too few epochs to judge. | `min_epochs = 10` |" in text
