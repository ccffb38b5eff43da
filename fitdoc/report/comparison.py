"""Comparing runs: which config keys differ, how each run ended, which is best.

Pure values only; `fitdoc.report.compare` renders them and
`fitdoc.report.plot` uses the same labels for its legends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fitdoc.config import AnyConfig
from fitdoc.formatting import metric_text, stated_cause, value_text
from fitdoc.history.rundir import Run
from fitdoc.report.figures import Figures, run_figures
from fitdoc.verdict import Diagnosis

NONE = "-"  # a missing config value in a comparison
# Keys that name or place a run rather than shape its training: never a "difference".
_IGNORED_KEYS = ("name", "output.")
# The knobs the suggestion ladder turns; a comparison over only these says which way helped.
REGULARIZATION_KEYS = ("model.l2", "model.l1", "model.dropout")


@dataclass(frozen=True)
class RunSummary(Figures):
    """One row of a comparison: the run's `Figures` (final: mean of the last tenth
    of the epochs; best: minimum; None when the series is absent) and what names it."""

    name: str
    source: str
    label: str
    metric: str
    settings: dict[str, Any]
    epochs: int
    verdict: str | None
    cause: str | None


@dataclass(frozen=True)
class Comparison:
    """Runs side by side. `best` indexes `runs` (lowest final validation metric)."""

    runs: tuple[RunSummary, ...]
    differing_keys: tuple[str, ...]
    best: int | None
    direction: str | None
    direction_text: str | None


def flatten_config(config: AnyConfig | None) -> dict[str, Any]:
    """`{"model.l2": 0.001, ...}` from a config; `{}` when it is unknown."""
    if config is None:
        return {}
    flat: dict[str, Any] = {}
    _flatten(config.model_dump(mode="json"), "", flat)
    return flat


def differing_keys(configs: Sequence[AnyConfig | None]) -> tuple[str, ...]:
    """Dotted keys whose values are not the same in every known config, sorted."""
    flats = [flatten_config(c) for c in configs if c is not None]
    if len(flats) < 2:
        return ()
    keys = sorted(set().union(*flats))
    return tuple(
        key
        for key in keys
        if not key.startswith(_IGNORED_KEYS) and len({_hashable(f.get(key)) for f in flats}) > 1
    )


def run_labels(runs: Sequence[Run]) -> list[str]:
    """Short legend labels built from what differs (`l2=0.001`), else the run names."""
    keys = differing_keys([r.config for r in runs])
    short = short_key_names(keys)
    labels = []
    for run in runs:
        flat = flatten_config(run.config)
        if keys and flat:
            labels.append(", ".join(f"{short[k]}={value_text(flat.get(k), none=NONE)}" for k in keys))
        else:
            labels.append(run.name)
    if len(set(labels)) < len(labels):  # e.g. two seeds of one config: keep them apart
        labels = [
            f"{label} ({run.name})" if label != run.name else label
            for label, run in zip(labels, runs, strict=True)
        ]
    return labels


def compare_runs(runs: Sequence[Run]) -> Comparison:
    """Summarize each run, pick the best by final validation metric, and say which
    direction of regularization helped when the runs differ only in it."""
    keys = differing_keys([r.config for r in runs])
    labels = run_labels(runs)
    summaries = tuple(_summarize(run, label, keys) for run, label in zip(runs, labels, strict=True))
    candidates = [i for i, s in enumerate(summaries) if s.final_val is not None]
    best = min(candidates, key=lambda i: (summaries[i].final_val, i)) if candidates else None
    direction, text = _direction(summaries, keys, best)
    return Comparison(
        runs=summaries, differing_keys=keys, best=best, direction=direction, direction_text=text
    )


# ---------------------------------------------------------------- helpers


def _summarize(run: Run, label: str, keys: tuple[str, ...]) -> RunSummary:
    curves = run.curves
    flat = flatten_config(run.config)
    diagnosis = run.diagnosis
    return RunSummary(
        **vars(run_figures(curves)),
        name=run.name,
        source=curves.source,
        label=label,
        metric=curves.metric,
        settings={k: flat.get(k) for k in keys} if flat else {},
        epochs=len(curves),
        verdict=None if diagnosis is None else diagnosis.verdict.value,
        cause=_stated(diagnosis),
    )


def _stated(diagnosis: Diagnosis | None) -> str | None:
    """The cause as the diagnosis' own words name it (only with a finding that gives it)."""
    cause = None if diagnosis is None else stated_cause(diagnosis)
    return None if cause is None else cause.value


def _direction(
    runs: tuple[RunSummary, ...], keys: tuple[str, ...], best: int | None
) -> tuple[str | None, str | None]:
    """("more" | "less" | "intermediate", a sentence) when runs differ only in regularization."""
    if best is None or len(runs) < 2 or not keys or not set(keys) <= set(REGULARIZATION_KEYS):
        return None, None
    if any(not r.settings for r in runs):
        return None, None
    best_run = runs[best]
    best_setting = ", ".join(f"{k}={value_text(best_run.settings[k], none=NONE)}" for k in keys)
    metric = best_run.metric.upper() if best_run.metric.lower() == "mae" else best_run.metric
    if len(keys) > 1:
        text = (
            f"The runs differ only in regularization ({', '.join(keys)}); the lowest final "
            f"validation {metric} ({metric_text(best_run.final_val)}) is at {best_setting}."
        )
        return None, text
    key = keys[0]
    numeric = [r for r in runs if isinstance(r.settings.get(key), (int, float))]
    if len(numeric) != len(runs):
        return None, None
    ordered = sorted(numeric, key=lambda r: r.settings[key])
    low, high = ordered[0], ordered[-1]
    if low.settings[key] == high.settings[key]:
        return None, None
    gap, train = _gap_effect(low, high), _train_effect(low, high, metric)
    # "closed the gap but raised train MAE": a trade-off reads as one.
    trade_off = (
        gap is not None and train is not None and gap.startswith("closed") == train.startswith("raised")
    )
    said = f" {'but' if trade_off else 'and'} ".join(e for e in (gap, train) if e)
    text = f"Raising {key} from {value_text(low.settings[key], none=NONE)} to {value_text(high.settings[key], none=NONE)}"
    text += f" {said}." if said else " changed little."
    position = best_run.settings[key]
    if position == high.settings[key]:
        direction, verdict = "more", "more regularization helped"
    elif position == low.settings[key]:
        direction, verdict = "less", "less regularization helped"
    else:
        direction, verdict = "intermediate", "an intermediate setting is the better point"
    text += (
        f" The lowest final validation {metric} ({metric_text(best_run.final_val)}) is at "
        f"{key}={value_text(position, none=NONE)}: {verdict}."
    )
    return direction, text


def _gap_effect(low: RunSummary, high: RunSummary) -> str | None:
    if low.gap_ratio is None or high.gap_ratio is None:
        return None
    before, after = low.gap_ratio, high.gap_ratio
    closer = abs(math.log(max(after, 1e-12))) < abs(math.log(max(before, 1e-12)))
    word = "closed" if closer else "widened"
    if abs(before - after) < 0.05 * max(before, after):
        word = "kept"
    return f"{word} the train/val gap (final val/train {before:.2f} -> {after:.2f})"


def _train_effect(low: RunSummary, high: RunSummary, metric: str) -> str | None:
    """How the final train value moved (final: `fitdoc.report.figures`)."""
    before, after = low.final_train, high.final_train
    if before is None or after is None or before <= 0 or after <= 0:
        return None
    factor = after / before
    if factor >= 1.05:
        return f"raised final train {metric} {factor:.1f}x ({metric_text(before)} -> {metric_text(after)})"
    if factor <= 1 / 1.05:
        return (
            f"lowered final train {metric} {1 / factor:.1f}x ({metric_text(before)} -> {metric_text(after)})"
        )
    return f"left final train {metric} about the same ({metric_text(before)} -> {metric_text(after)})"


def short_key_names(keys: tuple[str, ...]) -> dict[str, str]:
    """`model.l2` -> `l2` unless two keys end the same (`model.x`, `data.x`)."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last, strict=True)}


def _flatten(node: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(node, Mapping):
        if not node and prefix:
            out[prefix[:-1]] = {}
        for key, value in node.items():
            _flatten(value, f"{prefix}{key}.", out)
    else:
        out[prefix[:-1]] = node


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 0 and 0.0 are the same setting
    return value
