"""`fitdoc rules`: every rule with its code, name, description and thresholds,
the decision's own thresholds, and the fitted combiner's weights.

Takes the registry's rule objects (`fitdoc.diagnosis.rules.base.Rule`) and the
decision's thresholds (`fitdoc.diagnosis.rules.decision.DecisionThresholds`): both
have a `code`, `name`, `description`, `specs` (threshold name, default, unit,
description) and `thresholds` (the values in force, defaults unless overridden).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table

from fitdoc.formatting import value_text
from fitdoc.report.jsonout import dumps
from fitdoc.report.markdown import cell
from fitdoc.verdict import SCHEMA_VERSION

if TYPE_CHECKING:
    from fitdoc.diagnosis.rules.base import Rule
    from fitdoc.diagnosis.rules.combiner import Combiner
    from fitdoc.diagnosis.rules.decision import DecisionThresholds

    Declared = Rule | DecisionThresholds

# fitdoc.diagnosis.rules.combiner.CLASSES, as strings (the combiner is imported only when shown).
_CLASSES = ("overfit", "underfit", "balanced")


def rule_thresholds(rule: Declared) -> list[dict[str, Any]]:
    """`[{"name", "value", "default", "description", "unit"}]`: the value in force beside its default."""
    return [
        {
            "name": spec.name,
            "value": rule.thresholds.get(spec.name, spec.default),
            "default": spec.default,
            "description": spec.description,
            "unit": spec.unit,
        }
        for spec in rule.specs
    ]


def combiner_rows(combiner: Combiner) -> list[dict[str, Any]]:
    """`[{"evidence", "description", "overfit", "underfit", "balanced"}]`, the bias last."""
    from fitdoc.diagnosis.rules.combiner import CLASSES, EVIDENCE

    rows = []
    for i, (name, description) in enumerate(EVIDENCE):
        row: dict[str, Any] = {"evidence": name, "description": description}
        row.update({c.value: round(float(combiner.weights[k][i]), 3) for k, c in enumerate(CLASSES)})
        rows.append(row)
    bias = {c.value: round(float(combiner.bias[k]), 3) for k, c in enumerate(CLASSES)}
    rows.append({"evidence": "bias", "description": "constant term", **bias})
    return rows


def render_combiner(combiner: Combiner, console: Console) -> None:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, show_edge=False)
    for name in ("evidence", *_CLASSES, "description"):
        table.add_column(name, no_wrap=name != "description", justify="right" if name in _CLASSES else "left")
    for row in combiner_rows(combiner):
        table.add_row(row["evidence"], *(f"{row[c]:+.2f}" for c in _CLASSES), row["description"])
    console.print(
        "\nThe combiner (a verdict is the class with the largest weighted sum of the evidence; "
        f"fitted by benchmarks/calibrate.py on {combiner.fitted_on}):"
    )
    console.print(table)
    pairs = ", ".join(
        f"{x:.2f}->{y:.2f}" for x, y in zip(combiner.calibration_x, combiner.calibration_y, strict=True)
    )
    console.print(f"confidence = calibration map of the winning probability: {pairs}")


def gain_model_rows(model: Any, top: int = 5) -> list[dict[str, Any]]:
    """`[{"change", "direction", "description", "skill", "passed_from", "weighs"}]`: per change,
    its held-out skill (None when not measured), the predicted edge another needs to go before it
    when it is the ladder's step, and the evidence terms its trees split on most (share of
    splits), what the gain model weighs."""
    from fitdoc.diagnosis.gains import KINDS

    rows = []
    for name, shares in model.importance().items():
        kind = KINDS[name]
        best = sorted(shares.items(), key=lambda kv: -kv[1])[:top]
        rows.append(
            {
                "change": name,
                "direction": f"{kind.verdict.value} ({kind.cause.value})",
                "description": kind.text,
                "skill": model.skill.get(name),
                "passed_from": model.rank_margin(name),
                "weighs": {k: round(v, 3) for k, v in best},
            }
        )
    return rows


def gain_model_summary(model: Any) -> dict[str, Any]:
    return {
        "use": model.use,
        "min_gain": model.min_gain,
        "override_gain": model.override_gain,
        "fitted_on": model.fitted_on,
        "changes": gain_model_rows(model),
    }


def _overturn_text(model: Any) -> str:
    if model.override_gain is None:
        return "it never overturns a balanced verdict (FD601 off: held out, it cost label agreement)"
    return (
        f"a change predicted to gain {model.override_gain:+.0%} or more overturns a balanced verdict (FD601)"
    )


def render_gain_model(model: Any, console: Console) -> None:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, show_edge=False)
    for name in ("change", "direction", "skill", "passed from", "weighs most (share of splits)"):
        table.add_column(name, no_wrap=name != "weighs most (share of splits)")
    for row in gain_model_rows(model):
        weighs = ", ".join(f"{k} {v:.0%}" for k, v in row["weighs"].items())
        table.add_row(
            row["change"], row["direction"], _skill_text(row["skill"]), f"{row['passed_from']:+.0%}", weighs
        )
    use = {
        "ranker": "orders the ladder's steps in the verdict's direction (config known)",
        "decision": "decides the verdict and the step",
        "off": "is not used",
    }.get(model.use, model.use)
    console.print(
        "\nThe gain model (per change, boosted trees predicting the relative change in held-out error; "
        f"fitted by benchmarks/fit_gains.py on {model.fitted_on}; it {use}; a gain counts as clear "
        f"from {model.min_gain:+.0%}; where a change is the ladder's own step, another goes first when "
        f"predicted to gain more by its 'passed from'; {_overturn_text(model)}):"
    )
    console.print(table)


def _skill_text(skill: float | None) -> str:
    return "-" if skill is None else f"{skill:.2f}"


_CLASSES = (
    "overfit",
    "underfit",
    "balanced",
)  # fitdoc.diagnosis.rules.combiner.CLASSES, as strings (no import at load)


def render_rules(
    rules: Sequence[Declared], console: Console, decision: DecisionThresholds | None = None
) -> None:
    """One table: a row per rule, then (when given) the decision's own thresholds."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, show_edge=False)
    table.add_column("id", style="bold", no_wrap=True)
    table.add_column("name", no_wrap=True)
    table.add_column("description", ratio=1)
    table.add_column("thresholds", no_wrap=True)
    for rule in (*rules, *(() if decision is None else (decision,))):
        table.add_row(
            rule.code,
            rule.name,
            rule.description,
            "\n".join(_threshold_text(t) for t in rule_thresholds(rule)) or "-",
        )
    console.print(table)


def rules_to_json(
    rules: Sequence[Declared],
    combiner: Combiner | None = None,
    decision: DecisionThresholds | None = None,
    gain_model: Any = None,
) -> str:
    extra: dict[str, Any] = {}
    if combiner is not None:
        extra["combiner"] = {**combiner.to_dict(), "rows": combiner_rows(combiner)}
    if decision is not None:
        extra["decision"] = {"description": decision.description, "thresholds": rule_thresholds(decision)}
    if gain_model is not None:
        extra["gain_model"] = gain_model_summary(gain_model)
    return dumps(
        {
            "schema_version": SCHEMA_VERSION,
            "kind": "rules",
            **extra,
            "rules": [
                {
                    "code": rule.code,
                    "name": rule.name,
                    "description": rule.description,
                    "thresholds": rule_thresholds(rule),
                }
                for rule in rules
            ],
        }
    )


def rules_to_markdown(
    rules: Sequence[Declared],
    combiner: Combiner | None = None,
    decision: DecisionThresholds | None = None,
    gain_model: Any = None,
) -> str:
    lines = ["## fitdoc rules", "", "| id | name | description | thresholds |", "| --- | --- | --- | --- |"]
    for rule in (*rules, *(() if decision is None else (decision,))):
        thresholds = "<br>".join(f"`{_threshold_text(t)}`" for t in rule_thresholds(rule)) or "-"
        lines.append(f"| {rule.code} | `{cell(rule.name)}` | {cell(rule.description)} | {thresholds} |")
    if combiner is not None:
        lines += ["", f"### Combiner weights (fitted on {combiner.fitted_on})", ""]
        lines += [
            "| evidence | overfit | underfit | balanced | what it measures |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        for row in combiner_rows(combiner):
            weights = " | ".join(f"{row[c]:+.2f}" for c in _CLASSES)
            lines.append(f"| `{row['evidence']}` | {weights} | {cell(row['description'])} |")
    if gain_model is not None:
        lines += ["", f"### Gain model (use: {gain_model.use}; fitted on {gain_model.fitted_on})", ""]
        lines += [
            "| change | direction | held-out skill | passed from | weighs most (share of splits) |",
            "| --- | --- | ---: | ---: | --- |",
        ]
        for row in gain_model_rows(gain_model):
            weighs = ", ".join(f"`{k}` {v:.0%}" for k, v in row["weighs"].items())
            lines.append(
                f"| `{row['change']}` | {row['direction']} | {_skill_text(row['skill'])} "
                f"| {row['passed_from']:+.0%} | {weighs} |"
            )
    return "\n".join(lines) + "\n"


def _threshold_text(row: dict[str, Any]) -> str:
    text = f"{row['name']} = {value_text(row['value'])}"
    if row["value"] != row["default"]:
        text += f" (default {value_text(row['default'])})"
    return text
