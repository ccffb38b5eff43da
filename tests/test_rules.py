"""Rule tests as data: one YAML file of cases per rule (tests/rules/FDxxx.yml),
expanded into one named test per case, plus a meta-test that every registered
rule has a description, a passing case and a failing case.

A case gives `train` and `val` either as a list of numbers or as a generator
`{n, start, end, tau, rise, rise_from, jitter, seed, nan_at}` (an exponential
fall from `start` to `end`, then an optional linear relative `rise` after
`rise_from`); optional `config` (model/training sections), `thresholds`
overrides for this rule, and `expect: fail` (the rule finds something) or
`expect: pass` (it does not), with optional `verdict`, `cause`, `value`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from fitdoc.config import validate_config
from fitdoc.diagnosis.features import compute_features
from fitdoc.diagnosis.rules._config import Regularization, regularization
from fitdoc.diagnosis.rules.base import Rule, Threshold
from fitdoc.diagnosis.rules.registry import (
    all_rules,
    get_rule,
    load_threshold_overrides,
    register,
    validate_overrides,
)
from fitdoc.errors import ConfigError
from fitdoc.history.curves import Curves

CASES_DIR = Path(__file__).parent / "rules"
UNITS = {
    "ratio",
    "fraction",
    "fraction of the run",
    "epochs",
    "noise units",
    "L2 factor",
    "dropout rate",
    "units per layer",
}


def series(spec: Any) -> np.ndarray | None:
    if spec is None:
        return None
    if isinstance(spec, list):
        return np.array([np.nan if v is None else float(v) for v in spec])
    n = int(spec["n"])
    epochs = np.arange(n)
    tau = float(spec.get("tau", n / 5))
    start, end = float(spec.get("start", 1.0)), float(spec["end"])
    values = end + (start - end) * np.exp(-epochs / tau)
    if "rise" in spec:
        at = int(spec.get("rise_from", n // 4))
        values = values * (1 + float(spec["rise"]) * np.clip((epochs - at) / max(1, n - 1 - at), 0, None))
    if "jitter" in spec:
        rng = np.random.default_rng(int(spec.get("seed", 0)))
        values = values * np.exp(float(spec["jitter"]) * rng.standard_normal(n))
    if "nan_at" in spec:
        values[int(spec["nan_at"]) :] = np.nan
    return values


def case_curves(case: dict[str, Any]) -> Curves:
    train, val = series(case["train"]), series(case.get("val"))
    return Curves(
        epochs=np.arange(len(train)),
        train=train,
        val=val,
        metric=case.get("metric", "mae"),
        val_accuracy=series(case.get("val_accuracy")),
    )


def case_config(case: dict[str, Any]) -> Any:
    if "config" not in case:
        return None
    return validate_config(dict(case["config"]), model_only=True)


def case_regularization(case: dict[str, Any]) -> Regularization | None:
    return regularization(case_config(case))


def load_cases() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path in sorted(CASES_DIR.glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        for name, case in doc["cases"].items():
            found.append((doc["rule"], name, case))
    return found


CASES = load_cases()


@pytest.mark.parametrize(("code", "name", "case"), CASES, ids=[f"{c}-{n}" for c, n, _ in CASES])
def test_rule_case(code: str, name: str, case: dict[str, Any]) -> None:  # noqa: ARG001 (name: the test id)
    rule = get_rule(code)
    if "thresholds" in case:
        rule = rule.with_thresholds(validate_overrides({code: case["thresholds"]}, source="case")[code])
    finding = rule.evaluate(compute_features(case_curves(case)), case_regularization(case))
    if case["expect"] == "pass":
        assert finding is None, f"{code} fired on a passing case: {finding and finding.message}"
        return
    assert finding is not None, f"{code} did not fire"
    assert finding.rule_id == code and finding.name == rule.name
    assert 0.0 <= finding.strength <= 1.0
    assert finding.message
    if "verdict" in case:
        assert finding.verdict is not None and finding.verdict.value == case["verdict"]
    if "cause" in case:
        assert finding.cause is not None and finding.cause.value == case["cause"]
    if "value" in case:
        assert finding.value == pytest.approx(case["value"], rel=0.05)


def test_every_rule_is_documented_and_has_a_passing_and_a_failing_case() -> None:
    expected = {code: {"pass": 0, "fail": 0} for code in (r.code for r in all_rules())}
    for code, _, case in CASES:
        assert code in expected, f"cases for unregistered rule {code}"
        expected[code][case["expect"]] += 1
    for rule in all_rules():
        assert rule.description and "\n" not in rule.description, rule.code
        assert rule.name.count(".") == 1, rule.name
        for spec in rule.specs:
            assert spec.description, f"{rule.code}.{spec.name} has no description"
            assert spec.unit in UNITS, f"{rule.code}.{spec.name} has no known unit: {spec.unit!r}"
        if rule.name.startswith("measured."):
            continue  # decided from a probed run's neighbours, not from features: tests/test_probe.py
        counts = expected[rule.code]
        assert counts["pass"] >= 1 and counts["fail"] >= 1, f"{rule.code} needs a passing and a failing case"


def test_codes_and_names_are_unique_and_duplicates_are_refused() -> None:
    rules = all_rules()
    assert len({r.code for r in rules}) == len(rules)
    assert len({r.name for r in rules}) == len(rules)
    first = rules[0]
    with pytest.raises(ValueError, match="already registered"):
        register(Rule(first.code, "other.name", "x", (), first.check))
    with pytest.raises(ValueError, match="already registered"):
        register(Rule("FD999", first.name, "x", (), first.check))


def test_rules_are_scale_free() -> None:
    # The same curve shapes at MAE 0.003 and at MAE 30 give the same findings.
    rng = np.random.default_rng(0)
    n = 200
    base_t = 1 + 9 * np.exp(-np.arange(n) / 20)
    base_v = 3.5 + 7 * np.exp(-np.arange(n) / 15)
    noise = np.exp(0.01 * rng.standard_normal((2, n)))
    results = []
    for scale in (0.0003, 3.0):
        curves = Curves(np.arange(n), base_t * noise[0] * scale, base_v * noise[1] * scale, "mae")
        feats = compute_features(curves)
        results.append([(f.rule_id, round(f.strength, 6)) for r in all_rules() if (f := r.evaluate(feats))])
    assert results[0] == results[1]
    assert "FD101" in {code for code, _ in results[0]}


def test_ratio_rules_skip_non_positive_series() -> None:
    n = 100
    train = np.linspace(-1, -2, n)  # e.g. a log-likelihood: ratios are meaningless
    curves = Curves(np.arange(n), train, train * 3, "loss")
    feats = compute_features(curves)
    assert not feats.positive and math.isnan(feats.gap_ratio_end)
    fired = {r.code for r in all_rules() if r.evaluate(feats) is not None}
    assert not fired & {"FD101", "FD102", "FD201", "FD202", "FD203", "FD301"}


def test_thresholds_have_defaults_and_overrides_apply() -> None:
    rule = get_rule("overfit.gap")
    assert rule.code == "FD101"
    assert rule.thresholds["max_ratio"] == next(s.default for s in rule.specs if s.name == "max_ratio")
    changed = all_rules({"overfit.gap": {"max_ratio": "4"}})
    assert next(r for r in changed if r.code == "FD101").thresholds["max_ratio"] == 4.0
    assert get_rule("FD101").thresholds["max_ratio"] == rule.thresholds["max_ratio"]  # registry unchanged
    assert isinstance(rule.specs[0], Threshold)


def test_load_threshold_overrides_reads_codes_and_names(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("FD101:\n  max_ratio: 3\nunderfit.over_regularized:\n  min_l2: 1e-4\n")
    assert load_threshold_overrides(path) == {"FD101": {"max_ratio": 3.0}, "FD201": {"min_l2": 1e-4}}


@pytest.mark.parametrize(
    ("text", "field", "needle"),
    [
        ("FD999:\n  x: 1\n", "FD999", "unknown rule"),
        ("FD101:\n  max_ration: 3\n", "FD101.max_ration", "did you mean 'max_ratio'"),
        ("FD101:\n  max_ratio: lots\n", "FD101.max_ratio", "expected a number"),
        ("FD101:\n  max_ratio: true\n", "FD101.max_ratio", "expected a number"),
        ("FD101: 3\n", "FD101", "expected a mapping"),
    ],
)
def test_bad_override_files_name_the_file_and_field(
    tmp_path: Path, text: str, field: str, needle: str
) -> None:
    path = tmp_path / "thresholds.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_threshold_overrides(path)
    assert info.value.field == field
    assert info.value.path == str(path)
    assert needle in info.value.message


def test_gain_if_doubled_reads_a_power_law_trend() -> None:
    # val ~ epoch^-0.5 falls by 1 - 2^-0.5 = 29% when the run is doubled; flat gives 0.
    n = 200
    epochs = np.arange(n)
    falling = compute_features(Curves(epochs, 0.5 * (epochs + 1.0) ** -0.5, (epochs + 1.0) ** -0.5, "mae"))
    assert falling.val_gain_2x == pytest.approx(1 - 2**-0.5, rel=1e-6)
    flat = compute_features(Curves(epochs, np.full(n, 0.1), np.full(n, 0.2), "mae"))
    assert flat.val_gain_2x == pytest.approx(0.0, abs=1e-9)


def test_gain_at_twice_the_epochs_survives_an_explosive_curve() -> None:
    # Found by hypothesis: 2**slope overflowed (OverflowError, exit 4) on a curve
    # jumping 600 orders of magnitude within its last quarter.
    from fitdoc.diagnosis.features import _gain_if_doubled

    values = np.array([1.0] * 7 + [1e-300, 1e-150, 1.0, 1e150, 1e300])
    assert _gain_if_doubled(values) < 0
