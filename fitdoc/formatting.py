"""How values read in every output, defined once: verdicts, config values,
metric values, config edits, strict JSON values. Text, Markdown, JSON, plots,
`tune`, run.json and the suggestion wording all format through here, so they
agree."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from fitdoc.verdict import Cause, Change, Diagnosis, Finding

METRIC_DIGITS = 3  # significant digits of every metric value shown to people


def jsonable(value: Any) -> Any:
    """Strict JSON values: non-finite floats become null, numpy scalars Python
    numbers, tuples lists, keys strings; anything else its `str`."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def verdict_text(verdict: str | Enum | None, cause: str | Enum | None = None, *, none: str = "-") -> str:
    """`underfit (over-regularized)`, `balanced`; `none` when there is no verdict."""
    if verdict is None:
        return none
    text = _plain(verdict)
    return text if cause is None else f"{text} ({_plain(cause)})"


def stated_cause(diagnosis: Diagnosis) -> Cause | None:
    """The cause words may name: the diagnosis' cause when a finding gives it, else None.

    A verdict the curves lean to with no rule voting for it keeps its likely cause in
    the data (the suggestion follows it), but the words do not claim a cause no rule
    found, as its summary does not."""
    cause = diagnosis.cause
    found = any(f.verdict is diagnosis.verdict and f.cause is cause for f in diagnosis.findings)
    return cause if found else None


def verdict_label(diagnosis: Diagnosis) -> str:
    """A diagnosis' verdict and the cause a finding gives (`stated_cause`), as `verdict_text` writes them."""
    return verdict_text(diagnosis.verdict, stated_cause(diagnosis))


def vote_text(finding: Finding) -> str:
    """What a finding votes for: `overfit (gap)`, `balanced`, `-` for none."""
    return verdict_text(finding.verdict, finding.cause)


def value_text(value: Any, *, none: str = "null") -> str:
    """A config value as people write it in YAML: `0.0001`, `1e-05`, `0`, `true`,
    `{patience: 50}`; `none` for a missing value."""
    if value is None:
        return none
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        # 0.0001 as people write it in a config; tiny values in e-notation.
        return f"{value:.10f}".rstrip("0").rstrip(".") if abs(value) >= 1e-4 else f"{value:g}"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {value_text(v, none=none)}" for k, v in value.items()) + "}"
    return str(value)


def change_line(change: Change) -> str:
    """`model.l2: 0.001 -> 0.0001`, or the generic wording when the config is unknown."""
    if change.from_ is None and change.to is None:
        return change.text
    return f"{change.key}: {value_text(change.from_)} -> {value_text(change.to)}"


def has_edit(change: Change) -> bool:
    return change.to is not None


def metric_text(value: float | None) -> str:
    """A metric value with METRIC_DIGITS significant digits, trailing zeros kept
    so a column of them lines up (`0.0190`, `0.000472`); `-` when unknown."""
    if value is None:
        return "-"
    text = f"{value:#.{METRIC_DIGITS}g}"
    return text.rstrip(".") if "e" not in text else text


def ratio_text(value: float | None) -> str:
    """A ratio such as val/train, two decimals."""
    return "-" if value is None else f"{value:.2f}"


def short_source(source: str) -> str:
    """The last two path parts: enough to tell runs apart in a title or legend."""
    parts = Path(source).parts
    return str(Path(*parts[-2:])) if len(parts) > 2 else source


def common_affixes(names: Sequence[str], separators: str = "-_./ ") -> tuple[str, str]:
    """The prefix and suffix every name shares, cut at separators, leaving
    every name at least one character: `("founding-", "-seed0")`."""
    if len(names) < 2:
        return "", ""
    prefix = _cut(_shared(names), separators, at_end=True)
    rest = [n[len(prefix) :] for n in names]
    suffix = _cut(_shared([r[::-1] for r in rest])[::-1], separators, at_end=False)
    if any(len(r) <= len(suffix) for r in rest):
        suffix = ""
    if any(len(n) <= len(prefix) for n in names):
        prefix = ""
    return prefix, suffix


def _shared(names: Sequence[str]) -> str:
    first, last = min(names), max(names)
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[:size]


def _cut(affix: str, separators: str, *, at_end: bool) -> str:
    """Trim an affix back to its last (or first) separator, so no word is split."""
    if not affix:
        return ""
    if at_end:
        index = max(affix.rfind(s) for s in separators)
        return affix[: index + 1] if index >= 0 else ""
    positions = [affix.find(s) for s in separators if affix.find(s) >= 0]
    return affix[min(positions) :] if positions else ""


def _plain(value: str | Enum) -> str:
    return str(value.value) if isinstance(value, Enum) else str(value)
