"""Wording shared by every renderer, so text, Markdown and annotations agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fitdoc.verdict import Change, Diagnosis


def verdict_label(diagnosis: Diagnosis) -> str:
    """`underfit (over-regularized)`, `balanced`."""
    if diagnosis.cause is None:
        return diagnosis.verdict.value
    return f"{diagnosis.verdict.value} ({diagnosis.cause.value})"


def change_line(change: Change) -> str:
    """`model.l2: 0.001 -> 0.0001`, or the generic wording when the config is unknown."""
    if change.from_ is None and change.to is None:
        return change.text
    return f"{change.key}: {value_text(change.from_)} -> {value_text(change.to)}"


def has_edit(change: Change) -> bool:
    return change.to is not None


def value_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dict):
        # Written as it would be in the YAML config: `{patience: 50}`.
        return "{" + ", ".join(f"{k}: {value_text(v)}" for k, v in value.items()) + "}"
    return str(value)


def number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"


def short_source(source: str) -> str:
    """The last two path parts: enough to tell runs apart in a title or legend."""
    parts = Path(source).parts
    return str(Path(*parts[-2:])) if len(parts) > 2 else source
