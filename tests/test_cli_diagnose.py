"""`fitdoc diagnose`, `plot`, `compare` and `rules` end to end: typer's runner and real processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fitdoc.cli import app

runner = CliRunner()
VERDICTS = Path(__file__).parent / "fixtures" / "verdicts"
NOREG = VERDICTS / "founding-noreg"
OVERREG = VERDICTS / "founding-l2-0.001"
ADVICE = VERDICTS / "founding-l2-0.0001"


def run_fitdoc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fitdoc", *args], capture_output=True, text=True, timeout=120
    )


def diagnose_json(*args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["diagnose", *args, "--format", "json"])
    return result.exit_code, json.loads(result.stdout)


def test_founding_runs_through_the_cli() -> None:
    code, report = diagnose_json(str(NOREG), str(OVERREG), str(ADVICE))
    assert code == 0
    by_name = {Path(r["source"]).parent.name: r for r in report["results"]}
    noreg, overreg, advice = (
        by_name["founding-noreg"],
        by_name["founding-l2-0.001"],
        by_name["founding-l2-0.0001"],
    )
    assert noreg["verdict"] == "overfit"
    assert (noreg["suggestion"]["key"], noreg["suggestion"]["from"], noreg["suggestion"]["to"]) == (
        "model.l2",
        0.0,
        0.0001,
    )
    assert any(
        alt["key"] == "model.dropout" and alt["to"] == 0.2 for alt in noreg["suggestion"]["alternatives"]
    )
    assert (overreg["verdict"], overreg["cause"]) == ("underfit", "over-regularized")
    assert (overreg["suggestion"]["from"], overreg["suggestion"]["to"]) == (0.001, 0.0001)
    assert advice["verdict"] == "balanced"
    for result in report["results"]:
        assert result["schema_version"] == 1
        assert 0.0 <= result["confidence"] <= 1.0
        assert result["findings"], "every verdict carries its evidence"


@pytest.mark.parametrize(
    ("fail_on", "expected"),
    [("overfit", 1), ("underfit", 0), ("overfit,underfit", 1), ("balanced", 0), (None, 0)],
)
def test_fail_on_sets_exit_code(fail_on: str | None, expected: int) -> None:
    args = ["diagnose", str(NOREG), "--format", "json"]
    if fail_on:
        args += ["--fail-on", fail_on]
    assert runner.invoke(app, args).exit_code == expected


def test_inconclusive_is_exit_0_unless_asked() -> None:
    target = VERDICTS / "no-validation"
    assert runner.invoke(app, ["diagnose", str(target)]).exit_code == 0
    assert runner.invoke(app, ["diagnose", str(target), "--fail-on", "inconclusive"]).exit_code == 1


def test_highest_exit_code_wins_over_several_paths(tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"\x00\x01garbage\xff")
    proc = run_fitdoc("diagnose", str(NOREG), str(broken), "--fail-on", "overfit", "--format", "json")
    assert proc.returncode == 2
    report = json.loads(proc.stdout)
    assert [r["verdict"] for r in report["results"]] == ["overfit"]
    assert len(report["errors"]) == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(broken) in lines[0] and "Traceback" not in proc.stderr


def test_missing_path_is_one_line(tmp_path: Path) -> None:
    proc = run_fitdoc("diagnose", str(tmp_path / "nope.csv"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope.csv'}: no such file or directory"]


def test_directory_of_runs_is_searched() -> None:
    code, report = diagnose_json(str(VERDICTS))
    names = sorted(Path(r["source"]).parent.name for r in report["results"])
    assert names == sorted(p.name for p in VERDICTS.iterdir() if (p / "history.csv").exists())
    assert code == 0


def test_explicit_config_overrides_and_emit_config(tmp_path: Path) -> None:
    config = tmp_path / "mine.yaml"
    config.write_text("data:\n  path: /does/not/exist.csv\n  target: y\nmodel:\n  l2: 1e-3\n")
    out = tmp_path / "next.yaml"
    result = runner.invoke(
        app, ["diagnose", str(OVERREG / "history.csv"), "--config", str(config), "--emit-config", str(out)]
    )
    assert result.exit_code == 0, result.output
    emitted = yaml.safe_load(out.read_text())
    assert emitted["model"]["l2"] == pytest.approx(1e-4)


def test_emit_config_without_a_config_is_a_usage_error(tmp_path: Path) -> None:
    lone = tmp_path / "keras_log.csv"
    lone.write_text((NOREG / "history.csv").read_text())
    proc = run_fitdoc("diagnose", str(lone), "--emit-config", str(tmp_path / "n.yaml"))
    assert proc.returncode == 2
    assert "--emit-config" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_markdown_with_plot_links_the_picture(tmp_path: Path) -> None:
    picture = tmp_path / "curves.png"
    result = runner.invoke(app, ["diagnose", str(NOREG), "--format", "markdown", "--plot", str(picture)])
    assert result.exit_code == 0
    assert picture.stat().st_size > 10_000
    assert "![learning curves](curves.png)" in result.stdout


def test_github_annotations() -> None:
    result = runner.invoke(app, ["diagnose", str(NOREG), "--format", "github", "--fail-on", "overfit"])
    assert result.exit_code == 1
    assert result.stdout.startswith("::error file=")
    assert "model.l2" in result.stdout


def test_text_output_names_verdict_and_change() -> None:
    result = runner.invoke(app, ["diagnose", str(OVERREG)])
    assert result.exit_code == 0
    assert "underfit" in result.stdout and "over-regularized" in result.stdout
    assert "model.l2" in result.stdout


def test_plot_and_compare(tmp_path: Path) -> None:
    out = tmp_path / "three.svg"
    result = runner.invoke(app, ["plot", str(NOREG), str(OVERREG), str(ADVICE), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().lstrip().startswith("<?xml")
    result = runner.invoke(app, ["compare", str(NOREG), str(OVERREG), str(ADVICE), "--format", "json"])
    assert result.exit_code == 0
    table = json.loads(result.stdout)
    assert len(table["runs"]) == 3


def test_rules_lists_every_rule_and_applies_overrides(tmp_path: Path) -> None:
    result = runner.invoke(app, ["rules", "--format", "json"])
    assert result.exit_code == 0
    rules = json.loads(result.stdout)
    codes = [r["code"] for r in (rules["rules"] if isinstance(rules, dict) else rules)]
    assert "FD101" in codes and len(codes) == len(set(codes))
    overrides = tmp_path / "t.yaml"
    overrides.write_text("FD101:\n  nonsense: 3\n")
    proc = run_fitdoc("rules", "--thresholds", str(overrides))
    assert proc.returncode == 2 and str(overrides) in proc.stderr


def test_rules_shows_the_combiners_weights() -> None:
    from fitdoc.diagnosis.rules.combiner import EVIDENCE_NAMES, default_combiner

    document = json.loads(runner.invoke(app, ["rules", "--format", "json"]).stdout)
    combiner = document["combiner"]
    assert combiner["evidence"] == list(EVIDENCE_NAMES)
    assert [row["evidence"] for row in combiner["rows"]] == [*EVIDENCE_NAMES, "bias"]
    row = combiner["rows"][EVIDENCE_NAMES.index("FD101")]
    assert row["overfit"] == round(float(default_combiner().weights[0][EVIDENCE_NAMES.index("FD101")]), 3)
    text = runner.invoke(app, ["rules"]).stdout
    assert "The combiner" in text and "log_gap_end" in text and "calibration map" in text
    markdown = runner.invoke(app, ["rules", "--format", "markdown"]).stdout
    assert "### Combiner weights" in markdown and "| `FD101` |" in markdown


def test_rules_shows_the_decisions_own_thresholds_and_overrides_them(tmp_path: Path) -> None:
    overrides = tmp_path / "t.yaml"
    overrides.write_text("decision:\n  min_still_falling: 0.1\n")
    document = json.loads(
        runner.invoke(app, ["rules", "--format", "json", "--thresholds", str(overrides)]).stdout
    )
    rows = {row["name"]: row for row in document["decision"]["thresholds"]}
    assert set(rows) == {"min_still_falling", "level_band", "max_flat_drop"}
    assert rows["min_still_falling"]["value"] == 0.1 and rows["min_still_falling"]["default"] == 0.05
    text = runner.invoke(app, ["rules", "--thresholds", str(overrides)]).stdout
    assert "decision" in text and "min_still_falling = 0.1 (default 0.05)" in text
    # Full-strength points are thresholds too.
    fd201 = next(r for r in document["rules"] if r["code"] == "FD201")
    assert "full_train_drop" in [t["name"] for t in fd201["thresholds"]]
    # And a diagnosis takes the same file.
    assert runner.invoke(app, ["diagnose", str(NOREG), "--thresholds", str(overrides)]).exit_code == 0


def test_frozen_val_accuracy_is_underfit_not_balanced(tmp_path: Path) -> None:
    # A classifier that answers the majority class for every row: the loss drifts a little,
    # the accuracy never moves. The loss alone reads level and balanced; FD209 decides.
    rows = ["epoch,loss,accuracy,val_loss,val_accuracy"]
    for e in range(40):
        rows.append(f"{e},{0.142 - 0.0005 * e:.5f},0.9383,{0.151 - 0.0003 * e + 0.01 * (e % 3):.5f},0.9375")
    log = tmp_path / "majority.csv"
    log.write_text("\n".join(rows) + "\n")
    code, out = diagnose_json(str(log), "--fail-on", "underfit")
    result = out["results"][0]
    assert code == 1
    assert result["verdict"] == "underfit"
    assert "FD209" in {f["rule_id"] for f in result["findings"]}
    assert "0.9375 at every one of 40 evaluations" in result["summary"]
