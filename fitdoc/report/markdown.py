"""Markdown for a CI step summary (`$GITHUB_STEP_SUMMARY`) or a report artifact."""

from __future__ import annotations

from collections.abc import Sequence

from fitdoc.formatting import change_line, has_edit, value_text, verdict_label, vote_text
from fitdoc.verdict import Diagnosis, Verdict

VERDICT_ICONS = {
    Verdict.OVERFIT: "🔴",
    Verdict.UNDERFIT: "🟡",
    Verdict.BALANCED: "🟢",
    Verdict.INCONCLUSIVE: "⚪",
}


def diagnoses_to_markdown(diagnoses: Sequence[Diagnosis], plot_path: str | None = None) -> str:
    """A summary table (one row per path), then each diagnosis's evidence and change.

    `plot_path` is linked as written (relative to the Markdown file), so the
    picture written beside the report shows in an artifact or a step summary.
    """
    lines = ["## fitdoc diagnosis", ""]
    if not diagnoses:
        lines += ["No histories were diagnosed.", ""]
    else:
        lines += ["| run | verdict | confidence | suggested change |", "| --- | --- | ---: | --- |"]
        for d in diagnoses:
            change = "-" if d.suggestion is None else f"`{change_line(d.suggestion.primary)}`"
            if d.suggestion is not None and not has_edit(d.suggestion.primary):
                change = cell(d.suggestion.primary.text)
            lines.append(
                f"| `{cell(d.source)}` | {VERDICT_ICONS.get(d.verdict, '')} {verdict_label(d)} "
                f"| {_confidence(d)} | {change} |"
            )
        lines.append("")
    if plot_path:
        lines += [f"![learning curves]({plot_path})", ""]
    for d in diagnoses:
        lines += _details(d)
    return "\n".join(lines).rstrip("\n") + "\n"


def _confidence(d: Diagnosis) -> str:
    """An inconclusive verdict claims nothing: no confidence to show."""
    return "-" if d.verdict is Verdict.INCONCLUSIVE else f"{d.confidence:.2f}"


def cell(text: str) -> str:
    """Text safe inside a table cell: no pipes, no line breaks."""
    return " ".join(str(text).replace("|", "\\|").split())


def _details(d: Diagnosis) -> list[str]:
    lines = [f"### `{d.source}`: {verdict_label(d)}", ""]
    certainty = "" if d.verdict is Verdict.INCONCLUSIVE else f", confidence {d.confidence:.2f}"
    lines.append(f"{d.summary} ({d.metric}, {d.epochs} epochs{certainty})")
    lines.append("")
    if d.findings:
        lines += ["| rule | votes | evidence |", "| --- | --- | --- |"]
        for f in d.findings:
            lines.append(f"| {f.rule_id} {cell(f.name)} | {vote_text(f)} | {cell(f.message)} |")
        lines.append("")
    if d.suggestion is not None:
        primary = d.suggestion.primary
        lines += ["**Suggested change**", ""]
        if has_edit(primary):
            lines += [
                "```diff",
                f"- {primary.key}: {value_text(primary.from_)}",
                f"+ {primary.key}: {value_text(primary.to)}",
                "```",
                "",
            ]
        if primary.text:
            lines += [primary.text, ""]
        if d.suggestion.alternatives:
            lines += [
                f"- or `{change_line(a)}`: {a.text}" if has_edit(a) else f"- or {a.text}"
                for a in d.suggestion.alternatives
            ]
            lines.append("")
    for note in d.notes:
        lines += [f"> {note}", ""]
    return lines
