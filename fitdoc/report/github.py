"""GitHub Actions workflow commands: one annotation per verdict (and per unreadable path).

Format: `::warning file=PATH,title=TITLE::MESSAGE`. Property values and
messages are escaped as the Actions runner expects (`%`, CR, LF; and `:`
and `,` in properties), so a path or message cannot break the command.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from fitdoc.errors import FitdocError
from fitdoc.formatting import change_line, verdict_label
from fitdoc.verdict import Diagnosis, Verdict

# overfit/underfit call for a change; balanced/inconclusive are information only.
_LEVELS = {
    Verdict.OVERFIT: "warning",
    Verdict.UNDERFIT: "warning",
    Verdict.BALANCED: "notice",
    Verdict.INCONCLUSIVE: "notice",
}


def diagnoses_to_annotations(
    diagnoses: Sequence[Diagnosis],
    errors: Iterable[FitdocError] = (),
    fail_on: Collection[Verdict | str] = (),
) -> str:
    """One workflow command per diagnosis; verdicts in `fail_on` become `::error`."""
    failing = {Verdict(v) for v in fail_on}
    lines = []
    for d in diagnoses:
        level = "error" if d.verdict in failing else _LEVELS.get(d.verdict, "notice")
        title = f"fitdoc: {verdict_label(d)}"
        message = d.summary
        if d.suggestion is not None:
            message += f"\nSuggested change: {change_line(d.suggestion.primary)}"
        lines.append(annotation(level, message, file=d.source, title=title))
    for error in errors:
        lines.append(annotation("error", error.one_line(), file=error.path, title="fitdoc: cannot read"))
    return "".join(line + "\n" for line in lines)


def annotation(level: str, message: str, *, file: str | None = None, title: str | None = None) -> str:
    props = []
    if file:
        props.append(f"file={_escape_property(file)}")
    if title:
        props.append(f"title={_escape_property(title)}")
    head = f"::{level}" + (" " + ",".join(props) if props else "")
    return f"{head}::{_escape_data(message)}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
