"""Rich terminal output: a diagnosis (verdict, evidence, the change as a diff).

The rule list renderers live in `fitdoc.report.rules` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fitdoc.formatting import change_line, has_edit, value_text, verdict_label, vote_text
from fitdoc.report.rules import render_rules, rules_to_json, rules_to_markdown
from fitdoc.verdict import Change, Diagnosis, Verdict

__all__ = [
    "render_diagnoses",
    "render_diagnosis",
    "render_rules",
    "rules_to_json",
    "rules_to_markdown",
]

VERDICT_STYLES = {
    Verdict.OVERFIT: "bold red",
    Verdict.UNDERFIT: "bold yellow",
    Verdict.BALANCED: "bold green",
    Verdict.INCONCLUSIVE: "bold blue",
}


def render_diagnosis(diagnosis: Diagnosis, console: Console) -> None:
    """Print one diagnosis: source, verdict line, summary, evidence table, suggested change."""
    console.rule(Text(diagnosis.source, style="bold"), align="left")
    head = Text()
    head.append(verdict_label(diagnosis), style=VERDICT_STYLES.get(diagnosis.verdict, "bold"))
    # An inconclusive verdict is no claim, so it has no confidence to show (JSON keeps the number).
    certainty = (
        "no verdict on this evidence"
        if diagnosis.verdict is Verdict.INCONCLUSIVE
        else f"confidence {diagnosis.confidence:.2f}"
    )
    head.append(f"  {certainty} · {diagnosis.metric} over {diagnosis.epochs} epochs", style="dim")
    console.print(head)
    if diagnosis.summary:
        console.print(Text(diagnosis.summary))
    if diagnosis.findings:
        console.print()
        console.print(_evidence_table(diagnosis))
    if diagnosis.suggestion is not None:
        _render_suggestion(diagnosis, console)
    for note in diagnosis.notes:
        console.print(Text(f"note: {note}", style="dim"))
    console.print()


def render_diagnoses(diagnoses: Iterable[Diagnosis], console: Console) -> None:
    for diagnosis in diagnoses:
        render_diagnosis(diagnosis, console)


def _evidence_table(diagnosis: Diagnosis) -> Table:
    table = Table(box=box.SIMPLE_HEAD, expand=False, pad_edge=False, show_edge=False)
    table.add_column("rule", no_wrap=True, style="bold")
    table.add_column("votes", no_wrap=True)
    table.add_column("evidence")
    for finding in diagnosis.findings:
        vote = vote_text(finding)
        style = VERDICT_STYLES.get(finding.verdict, "") if finding.verdict is not None else "dim"
        table.add_row(finding.rule_id, Text(vote, style=style.replace("bold ", "")), finding.message)
    return table


def _render_suggestion(diagnosis: Diagnosis, console: Console) -> None:
    assert diagnosis.suggestion is not None
    primary = diagnosis.suggestion.primary
    console.print()
    console.print(Text("Suggested change", style="bold"))
    if has_edit(primary):
        # The edit as a diff of the config line: what to change, nothing to interpret.
        console.print(Text(f"  - {primary.key}: {value_text(primary.from_)}", style="red"))
        console.print(Text(f"  + {primary.key}: {value_text(primary.to)}", style="green"))
        if primary.text:
            console.print(Text(f"  {primary.text}"))
    else:
        console.print(Text(f"  {primary.text}"))
    for alternative in diagnosis.suggestion.alternatives:
        console.print(Text(f"  or: {_alternative_line(alternative)}", style="dim"))


def _alternative_line(change: Change) -> str:
    """The edit and its reason (early stopping: at which epoch), as the Markdown report
    gives them; wording that already spells the edit out stands alone."""
    if not has_edit(change) or not change.text:
        return change_line(change)
    if change.key in change.text:
        return change.text
    return f"{change_line(change)}: {change.text}"
