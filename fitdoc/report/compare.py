"""Rendering a `Comparison` (fitdoc.report.comparison) as a rich table, JSON or Markdown."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fitdoc.errors import FitdocError
from fitdoc.formatting import common_affixes, metric_text, ratio_text, value_text, verdict_text
from fitdoc.report.comparison import Comparison, RunSummary, short_key_names
from fitdoc.report.figures import BEST_TEXT, FINAL_TEXT, FINAL_TEXT_VARIED
from fitdoc.report.jsonout import dumps, error_to_dict
from fitdoc.report.markdown import cell
from fitdoc.verdict import SCHEMA_VERSION

BEST_MARK = "★"


VERDICT_WIDTH = 16  # `over-regularized`, the longest cause, on its own line (the narrowest column)
METRIC_HEADERS = ("train\nfinal", "val\nfinal", "val\nbest", "best\nepoch", "val/\ntrain")


def render_comparison(comparison: Comparison, console: Console) -> None:
    """One row per run, fitting the console (80 columns): names without a run
    directory's timestamp where that leaves them apart, shortened by their
    common prefix and suffix (said in the title), numbered with a legend when
    they still do not fit; settings by their last key part; metric values to
    the same significant digits; the verdict with its cause on one line where
    the console has room, else the cause under it. The best run (lowest final
    validation metric) is starred. JSON and Markdown keep every column and full names."""
    one_line = [_cells(comparison, run, one_line=True) for run in comparison.runs]
    two_lines = [_cells(comparison, run, one_line=False) for run in comparison.runs]
    names = plain_run_names([r.name for r in comparison.runs])
    room_one = console.width - _fixed_width(comparison, one_line, _verdict_width(one_line))
    cells = one_line if room_one >= _needed_name_width(names) else two_lines
    room = console.width - _fixed_width(comparison, cells, _verdict_width(cells))
    shown, legend, common = _display_names(names, room)
    metrics = sorted({r.metric for r in comparison.runs})
    title = f"{len(comparison.runs)} runs · metric: {', '.join(metrics) or '-'}"
    table = Table(
        box=box.SIMPLE_HEAD,
        title=title + (f" · {common}" if common else ""),
        title_justify="left",
        pad_edge=False,
        padding=0,  # the box already puts one space between columns
        show_edge=False,
    )
    table.add_column("", no_wrap=True, width=1)
    table.add_column("run", overflow="fold")
    short = short_key_names(comparison.differing_keys)
    for header in [short[k] for k in comparison.differing_keys] + list(METRIC_HEADERS):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("verdict", min_width=_verdict_width(cells), overflow="fold")
    for index, (row, name) in enumerate(zip(cells, shown, strict=True)):
        best = index == comparison.best
        table.add_row(BEST_MARK if best else "", name, *row, style="bold" if best else None)
    console.print(table)
    for line in legend:
        console.print(Text(line), soft_wrap=True)  # full names, never cut
    console.print(Text(_definitions(comparison), style="dim"), soft_wrap=False)
    if comparison.direction_text:
        console.print(Text(comparison.direction_text), soft_wrap=False)


# A run directory's name is its config's name and when it started (`founding-noreg-20261201-195910`).
_STAMP = re.compile(r"-\d{8}-\d{6}(-\d+)?$")


def plain_run_names(names: Sequence[str]) -> list[str]:
    """Names without a run directory's `-YYYYMMDD-HHMMSS` stamp, where that leaves every
    name distinct (two runs of one config keep theirs)."""
    bare = [_STAMP.sub("", name) or name for name in names]
    clashing = {name for name in bare if bare.count(name) > 1}
    return [b if b not in clashing else n for b, n in zip(bare, names, strict=True)]


def _cells(comparison: Comparison, run: RunSummary, *, one_line: bool) -> list[str]:
    """A run's cells after its name: settings, figures, verdict (with its cause, on one
    line or two)."""
    if one_line:
        verdict = verdict_text(run.verdict, run.cause)
    else:
        verdict = verdict_text(run.verdict) + ("" if run.cause is None else f"\n{run.cause}")
    return [
        *(_setting(run, k) for k in comparison.differing_keys),
        metric_text(run.final_train),
        metric_text(run.final_val),
        metric_text(run.best_val),
        _epoch_cell(run.best_epoch),
        ratio_text(run.gap_ratio),
        verdict,
    ]


def _verdict_width(cells: Sequence[Sequence[str]]) -> int:
    longest = max((len(part) for row in cells for part in row[-1].split("\n")), default=0)
    return max(VERDICT_WIDTH, longest)


def _fixed_width(comparison: Comparison, cells: Sequence[Sequence[str]], verdict_width: int) -> int:
    """Columns other than the run name: the mark, settings, figures, verdict, separators."""
    short = short_key_names(comparison.differing_keys)
    headers = [short[k] for k in comparison.differing_keys] + [h.split("\n")[0] for h in METRIC_HEADERS]
    widths = [max([len(header), *(len(row[i]) for row in cells)]) for i, header in enumerate(headers)]
    columns = len(widths) + 3  # the mark, the name and the verdict
    return 1 + sum(widths) + verdict_width + (columns - 1)


def _needed_name_width(names: Sequence[str]) -> int:
    prefix, suffix = common_affixes(names)
    return max(3, *(len(n) - len(prefix) - len(suffix) for n in names))


def _display_names(names: Sequence[str], room: int) -> tuple[list[str], list[str], str]:
    """Names without their common affixes; numbered with a legend when they still
    need more than `room` columns. Returns (names to show, legend lines, what the
    title says of the part left out)."""
    prefix, suffix = common_affixes(names)
    trimmed = [n[len(prefix) : len(n) - len(suffix)] for n in names]
    if max(len(n) for n in trimmed) <= max(room, 3):
        return trimmed, [], _left_out(prefix, suffix)
    shown = [f"#{i + 1}" for i in range(len(names))]
    return shown, [f"#{i + 1}  {name}" for i, name in enumerate(names)], ""


def _left_out(prefix: str, suffix: str) -> str:
    """`runs named founding-<run>`: the common part said once, in words."""
    if not prefix and not suffix:
        return ""
    return f"every run is named {prefix}<run>{suffix}"


def _definitions(comparison: Comparison) -> str:
    windows = sorted({r.window for r in comparison.runs if r.window})
    final = FINAL_TEXT.format(window=windows[0]) if len(windows) == 1 else FINAL_TEXT_VARIED
    text = f"{final}; {BEST_TEXT}; val/train = final val / final train"
    if comparison.best is not None:
        text = f"{BEST_MARK} lowest final validation metric. " + text
    return text


def _setting(run: RunSummary, key: str) -> str:
    return value_text(run.settings.get(key), none="-") if run.settings else "-"


def comparison_to_dict(comparison: Comparison) -> dict[str, Any]:
    best = None if comparison.best is None else comparison.runs[comparison.best].name
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "comparison",
        "differing_keys": list(comparison.differing_keys),
        "best": best,
        "direction": comparison.direction,
        "direction_text": comparison.direction_text,
        "definitions": {"final": FINAL_TEXT.format(window="N") + " (final_window)", "best": BEST_TEXT},
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
            *(_setting(run, k) for k in keys),
            metric_text(run.final_train),
            metric_text(run.best_train),
            metric_text(run.final_val),
            metric_text(run.best_val),
            _epoch_cell(run.best_epoch),
            ratio_text(run.gap_ratio),
            cell(verdict_text(run.verdict, run.cause)),
        ]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines += [_definitions(comparison) + ".", ""]
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
        "final_window": run.window,
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


def _epoch_cell(epoch: int | None) -> str:
    """An epoch as people count it (1-based, as progress bars do); JSON keeps the 0-based label."""
    return "-" if epoch is None else str(epoch + 1)
