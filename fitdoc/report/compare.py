"""Rendering a `Comparison` (fitdoc.compare) as a rich table, JSON or Markdown."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fitdoc.compare import Comparison, RunSummary, format_metric, format_value
from fitdoc.errors import FitdocError
from fitdoc.report.jsonout import dumps, error_to_dict
from fitdoc.report.markdown import cell
from fitdoc.verdict import SCHEMA_VERSION

BEST_MARK = "★"


def render_comparison(comparison: Comparison, console: Console) -> None:
    """One row per run; the best run (lowest final validation metric) marked with a star."""
    metrics = sorted({r.metric for r in comparison.runs})
    table = Table(
        box=box.SIMPLE_HEAD,
        title=f"{len(comparison.runs)} runs · metric: {', '.join(metrics) or '-'}",
        title_justify="left",
        pad_edge=False,
        padding=0,  # the box already puts one space between columns
        show_edge=False,
    )
    table.add_column("", no_wrap=True, width=1)
    table.add_column("run", overflow="fold", min_width=12)
    for key in comparison.differing_keys:
        table.add_column(key, justify="right", no_wrap=True)
    for header in ("train\nfinal", "train\nbest", "val\nfinal", "val\nbest", "best\nepoch", "val/\ntrain"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("verdict")
    for index, run in enumerate(comparison.runs):
        best = index == comparison.best
        table.add_row(
            BEST_MARK if best else "",
            run.name,
            *(format_value(run.settings.get(k)) if run.settings else "-" for k in comparison.differing_keys),
            format_metric(run.final_train),
            format_metric(run.best_train),
            format_metric(run.final_val),
            format_metric(run.best_val),
            format_value(run.best_epoch),
            _ratio(run.gap_ratio),
            _verdict(run),
            style="bold" if best else None,
        )
    console.print(table)
    if comparison.best is not None:
        console.print(Text(f"{BEST_MARK} best: lowest final validation metric", style="dim"))
    if comparison.direction_text:
        console.print(Text(comparison.direction_text))


def comparison_to_dict(comparison: Comparison) -> dict[str, Any]:
    best = None if comparison.best is None else comparison.runs[comparison.best].name
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "comparison",
        "differing_keys": list(comparison.differing_keys),
        "best": best,
        "direction": comparison.direction,
        "direction_text": comparison.direction_text,
        "runs": [_run_dict(r, i == comparison.best) for i, r in enumerate(comparison.runs)],
    }


def comparison_to_json(comparison: Comparison, errors: Iterable[FitdocError] = ()) -> str:
    document = comparison_to_dict(comparison)
    document["errors"] = [error_to_dict(e) for e in errors]
    return dumps(document)


def comparison_to_markdown(comparison: Comparison) -> str:
    keys = list(comparison.differing_keys)
    header = ["", "run", *keys, "train final", "train best", "val final", "val best", "best epoch"]
    header += ["val/train", "verdict"]
    lines = ["## fitdoc comparison", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("| " + " | ".join(["---", "---"] + ["---:"] * (len(header) - 3) + ["---"]) + " |")
    for index, run in enumerate(comparison.runs):
        best = index == comparison.best
        name = f"**`{cell(run.name)}`**" if best else f"`{cell(run.name)}`"
        row = [
            BEST_MARK if best else "",
            name,
            *(format_value(run.settings.get(k)) if run.settings else "-" for k in keys),
            format_metric(run.final_train),
            format_metric(run.best_train),
            format_metric(run.final_val),
            format_metric(run.best_val),
            format_value(run.best_epoch),
            _ratio(run.gap_ratio),
            cell(_verdict(run)),
        ]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    if comparison.best is not None:
        lines += [f"{BEST_MARK} best: lowest final validation metric.", ""]
    if comparison.direction_text:
        lines += [comparison.direction_text, ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _run_dict(run: RunSummary, best: bool) -> dict[str, Any]:
    return {
        "name": run.name,
        "source": run.source,
        "label": run.label,
        "best": best,
        "metric": run.metric,
        "settings": run.settings,
        "epochs": run.epochs,
        "final_train": _round(run.final_train),
        "final_val": _round(run.final_val),
        "best_train": _round(run.best_train),
        "best_val": _round(run.best_val),
        "best_epoch": run.best_epoch,
        "gap_ratio": _round(run.gap_ratio),
        "verdict": run.verdict,
        "cause": run.cause,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.6g}")


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _verdict(run: RunSummary) -> str:
    if run.verdict is None:
        return "-"
    return run.verdict if run.cause is None else f"{run.verdict} ({run.cause})"
