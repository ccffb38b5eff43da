"""Learning-curve pictures (PNG or SVG), annotated with the diagnosis.

One run: train and validation metric against epoch, the validation minimum
marked, the gap between them shaded, the verdict in the title and the
suggested change in a caption; the loss in a second panel when the history
has one. Several runs: one panel per metric (then the loss), runs overlaid in
one colour each (validation solid, train dashed), the legend built from what
differs in their configs.

matplotlib is imported inside the functions only, and figures are drawn on a
`Figure` with the Agg canvas, never through pyplot: no window, no global
figure registry, and a notebook user's backend is left alone.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from fitdoc.errors import FitdocError
from fitdoc.formatting import change_line, metric_text, value_text, verdict_label
from fitdoc.history.rundir import Run
from fitdoc.report.comparison import run_labels

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

Scale = Literal["auto", "log", "linear"]

FORMATS = (".png", ".svg")
DPI = 150
# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency.
OKABE_ITO = {
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "green": "#009E73",
    "orange": "#E69F00",
    "purple": "#CC79A7",
    "sky": "#56B4E9",
    "yellow": "#F0E442",
    "black": "#000000",
}
RUN_COLORS = ("blue", "vermillion", "green", "orange", "purple", "sky", "black", "yellow")
RUN_MARKERS = (None, "o", "s", "^")
TRAIN_COLOR = OKABE_ITO["blue"]
VAL_COLOR = OKABE_ITO["vermillion"]
REG_COLOR = OKABE_ITO["green"]
# A probed run's neighbours: thin validation lines, one colour each, labelled by their change.
PROBE_COLORS = ("green", "orange", "purple", "sky")
PROBE_WIDTH = 1.0
# How much wider a run is drawn when a later run retraces it exactly.
HALO_WIDTH = 2.6
# Auto log scale once the plotted values span more than this factor (one decade).
LOG_SPAN = 10.0

_STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.6,
    "svg.hashsalt": "fitdoc",  # stable element ids, so an SVG is byte-identical run to run
    "svg.fonttype": "path",
}


@dataclass(frozen=True)
class _Series:
    x: np.ndarray
    y: np.ndarray

    @property
    def empty(self) -> bool:
        return self.x.size == 0


def plot_runs(runs: Sequence[Run], out: Path, scale: Scale = "auto") -> Path:
    """Draw one run (annotated) or several (overlaid) to `out` (.png or .svg); returns `out`.

    Creates missing parent folders. Raises FitdocError for an unsupported
    extension or when no run has a series to draw.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise FitdocError(
            f"cannot write a plot as {suffix or 'a file without extension'!r}; use one of: "
            + ", ".join(FORMATS),
            path=out,
            field="--output",
        )
    from matplotlib import rc_context

    with rc_context(_STYLE):  # type: ignore[arg-type]  # stubs want literal rc keys
        figure = build_figure(runs, scale)
        out.parent.mkdir(parents=True, exist_ok=True)
        metadata = {"Date": None} if suffix == ".svg" else {"Software": None}
        figure.savefig(out, dpi=DPI, metadata=metadata, facecolor="white")
    return out


def build_figure(runs: Sequence[Run], scale: Scale = "auto") -> Figure:
    """The matplotlib `Figure` `plot_runs` saves (for callers who want to adjust or embed it)."""
    if scale not in ("auto", "log", "linear"):
        raise FitdocError(f"unknown scale {scale!r}; use auto, log or linear", field="--scale")
    if not runs:
        raise FitdocError("no runs to plot")
    if not any(_has_data(run) for run in runs):
        raise FitdocError("no train or validation values to plot", path=runs[0].curves.source)
    from matplotlib import rc_context

    with rc_context(_STYLE):  # type: ignore[arg-type]  # stubs want literal rc keys
        if len(runs) == 1:
            return _single_run_figure(runs[0], scale)
        return _many_runs_figure(runs, scale)


# ---------------------------------------------------------------- one run


def _single_run_figure(run: Run, scale: Scale) -> Figure:
    from matplotlib.figure import Figure

    curves = run.curves
    train, val = _series(curves.epochs, curves.train), _series(curves.epochs, curves.val)
    losses = _loss_series(run)
    panels = 2 if losses else 1
    figure = Figure(figsize=(6.2 * panels if panels == 2 else 7.5, 4.8), layout="constrained")
    axes = figure.subplots(1, panels, squeeze=False)[0]
    metric_label = _metric_label(curves.metric)

    ax = axes[0]
    notes = []
    if not train.empty:
        ax.plot(train.x, train.y, color=TRAIN_COLOR, label=f"train {metric_label}")
    if not val.empty:
        ax.plot(val.x, val.y, color=VAL_COLOR, label=f"validation {metric_label}")
    _shade_gap(ax, curves.epochs, curves.train, curves.val)
    _mark_minimum(ax, val, VAL_COLOR, annotate=True)
    probes = _draw_probes(ax, run)
    notes += _apply_scale(ax, [train, val, *probes], scale)
    metric_log = ax.get_yscale() == "log"
    ax.set_title(metric_label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric_label)
    ax.legend(loc="best", frameon=False)

    if losses:
        ax = axes[1]
        loss_series = []
        for label, color, style, series in losses:
            ax.plot(series.x, series.y, color=color, linestyle=style, label=label)
            loss_series.append(series)
        # Auto: the loss panel reads on the metric panel's scale when its values allow it, so
        # a loss that falls a decade is not a flat line beside a log-scaled MAE.
        loss_scale = scale
        if scale == "auto" and metric_log and choose_log([s.y for s in loss_series], "log")[0]:
            loss_scale = "log"
        notes += _apply_scale(ax, loss_series, loss_scale)
        ax.set_title("loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.legend(loc="best", frameon=False)

    figure.suptitle(_title(run), fontsize=12, fontweight="bold")
    _caption(figure, _caption_lines(run) + sorted(set(notes)))
    return figure


def _draw_probes(ax: Axes, run: Run) -> list[_Series]:
    """The neighbours `--probe` trained beside the run: their validation curves, thin, by change."""
    drawn = []
    for probe, color in zip(run.probes, PROBE_COLORS, strict=False):
        series = _series(probe.curves.epochs, probe.curves.val)
        if series.empty:
            continue
        change = probe.change
        label = (
            f"val, {change.key.removeprefix('model.')} {value_text(change.from_)} -> {value_text(change.to)}"
        )
        if probe.status == "diverged":
            label += " (diverged)"
        ax.plot(series.x, series.y, color=OKABE_ITO[color], linewidth=PROBE_WIDTH, label=label)
        drawn.append(series)
    return drawn


def _loss_series(run: Run) -> list[tuple[str, str, str, _Series]]:
    """(label, colour, dash, series) for the loss panel; empty when the metric already is the loss."""
    curves = run.curves
    if curves.metric.lower().endswith("loss") and curves.reg_loss is None:
        return []
    found = []
    for label, values, color, style in (
        ("train loss", curves.train_loss, TRAIN_COLOR, "-"),
        ("validation loss", curves.val_loss, VAL_COLOR, "-"),
        ("regularization part", curves.reg_loss, REG_COLOR, "--"),
    ):
        series = _series(curves.epochs, values)
        if label == "regularization part" and not (series.y > 0).any():
            continue  # an unregularized run: no line at 0 (which would also forbid a log scale)
        if not series.empty:
            found.append((label, color, style, series))
    return found


def _shade_gap(ax: Axes, epochs: np.ndarray, train: np.ndarray | None, val: np.ndarray | None) -> None:
    if train is None or val is None:
        return
    x = np.asarray(epochs, dtype=float)
    t, v = np.asarray(train, dtype=float), np.asarray(val, dtype=float)
    both = np.isfinite(t) & np.isfinite(v) & np.isfinite(x)
    if both.sum() < 2:
        return
    ax.fill_between(
        x[both], t[both], v[both], color=VAL_COLOR, alpha=0.12, linewidth=0, label="train/val gap"
    )


def _mark_minimum(ax: Axes, series: _Series, color: str, *, annotate: bool) -> None:
    if series.empty:
        return
    i = int(np.argmin(series.y))
    x, y = series.x[i], series.y[i]
    ax.plot(
        [x], [y], marker="o", markersize=6, color=color, markeredgecolor="black", zorder=5, linestyle="none"
    )
    if annotate:
        ax.axvline(x, color="0.4", linewidth=0.8, linestyle=":", zorder=1)
        # Put the label on the side of the minimum with more room.
        right = x <= (series.x.min() + series.x.max()) / 2
        ax.annotate(
            f"val min {metric_text(float(y))}\nepoch {_epoch_text(x)}",
            xy=(x, y),
            xytext=(10 if right else -10, 18),
            textcoords="offset points",
            ha="left" if right else "right",
            va="bottom",
            fontsize=9,
            bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "0.7", "alpha": 0.9},
        )


# ---------------------------------------------------------------- several runs


# (title, attribute of train, attribute of val, indexes of the runs drawn)
_Panel = tuple[str, str, str, list[int]]


def _many_runs_figure(runs: Sequence[Run], scale: Scale) -> Figure:
    """One panel per metric (runs judged on different metrics are not mixed), then the
    loss when every run has one distinct from its metric; one colour per run,
    validation solid and train dashed, so each run's gap reads at a glance."""
    labels = run_labels(runs)
    panels = _panels(runs)
    figure, axes = _grid(runs, labels, len(panels))
    covered = covered_runs(runs)
    run_handles = [
        _draw_run(axes, panels, run, k, label, k in covered)
        for k, (run, label) in enumerate(zip(runs, labels, strict=True))
    ]
    notes = [
        f"{labels[k]} runs exactly under {labels[j]} to epoch {_epoch_text(last)} (drawn wide beneath it)"
        for k, (j, last) in covered.items()
    ]
    for p, (title, train_attr, val_attr, members) in enumerate(panels):
        series = [
            _series(runs[i].curves.epochs, getattr(runs[i].curves, attr))
            for i in members
            for attr in (train_attr, val_attr)
        ]
        notes += _apply_scale(axes[p], series, scale)
        axes[p].set_title(title)
        axes[p].set_xlabel("epoch")
        axes[p].set_ylabel(title)
    # Outside the panels: with many runs a legend inside would hide the curves.
    figure.legend(handles=run_handles, loc="outside right upper", frameon=False, title="run")
    figure.legend(handles=_kind_handles(), loc="outside right lower", frameon=False)
    figure.suptitle(f"Learning curves of {len(runs)} runs", fontsize=12, fontweight="bold")
    _caption(figure, sorted(set(notes)))
    return figure


def _panels(runs: Sequence[Run]) -> list[_Panel]:
    """A panel per metric, then the loss when every run has one distinct from its metric."""
    metrics = list(dict.fromkeys(run.curves.metric for run in runs))
    panels = [
        (_metric_label(m), "train", "val", [i for i, r in enumerate(runs) if r.curves.metric == m])
        for m in metrics
    ]
    if len(metrics) == 1 and all(_loss_series(run) for run in runs):
        panels.append(("loss", "train_loss", "val_loss", list(range(len(runs)))))
    return panels


def _grid(runs: Sequence[Run], labels: Sequence[str], n_panels: int) -> tuple[Figure, np.ndarray]:
    """The figure, wide enough for its legend, and its axes (unused ones hidden)."""
    from matplotlib.figure import Figure

    columns = min(3, n_panels)
    rows = -(-n_panels // columns)
    longest = max(len(label) for label in labels) + 30 * any(r.diagnosis for r in runs)
    legend_width = min(4.5, 0.8 + 0.065 * longest)
    figure = Figure(figsize=(5.6 * columns + legend_width, 4.4 * rows + 0.4), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return figure, axes


def _draw_run(
    axes: np.ndarray, panels: Sequence[_Panel], run: Run, k: int, label: str, covered: bool
) -> Line2D:
    """Draw run `k` on every panel it belongs to; its legend handle."""
    from matplotlib.lines import Line2D

    color = OKABE_ITO[RUN_COLORS[k % len(RUN_COLORS)]]
    # Past eight runs colours repeat; a marker shape keeps them apart.
    marker = RUN_MARKERS[(k // len(RUN_COLORS)) % len(RUN_MARKERS)]
    style: dict[str, Any] = {"color": color, "marker": marker, "markevery": 0.1, "markersize": 5}
    # A run whose curves a later one retraces exactly (same seed, more epochs) would
    # vanish under it: drawn wide and beneath, it shows as a rim around that one.
    widen = HALO_WIDTH if covered else 1.0
    if covered:
        style["zorder"] = 1.5
    if run.diagnosis is not None:
        label = f"{label}: {verdict_label(run.diagnosis)}"
    for p, (_, train_attr, val_attr, members) in enumerate(panels):
        if k not in members:
            continue
        train = _series(run.curves.epochs, getattr(run.curves, train_attr))
        val = _series(run.curves.epochs, getattr(run.curves, val_attr))
        if not train.empty:
            axes[p].plot(train.x, train.y, linestyle="--", linewidth=1.3 * widen, alpha=0.85, **style)
        if not val.empty:
            width = float(_STYLE["lines.linewidth"]) * widen  # type: ignore[arg-type]
            axes[p].plot(val.x, val.y, linestyle="-", linewidth=width, **style)
            if val_attr == "val":
                _mark_minimum(axes[p], val, color, annotate=False)
    return Line2D([], [], linestyle="-", label=label, **style)


def _kind_handles() -> list[Line2D]:
    """The legend of line kinds: validation solid, train dashed, the minimum's dot."""
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], color="0.3", linestyle="-", label="validation"),
        Line2D([], [], color="0.3", linestyle="--", label="train"),
        Line2D(
            [],
            [],
            color="0.3",
            marker="o",
            markeredgecolor="black",
            linestyle="none",
            label="validation minimum",
        ),
    ]


def covered_runs(runs: Sequence[Run]) -> dict[int, tuple[int, float]]:
    """Runs hidden under a later-drawn one: index -> (that run's index, last shared epoch).

    Hidden means every finite point of the run's train and validation series
    has the same value at the same epoch in the later run (a trial retrained
    with the same seed and more epochs retraces its shorter self exactly).
    """
    covered: dict[int, tuple[int, float]] = {}
    for k, run in enumerate(runs):
        for j in range(len(runs) - 1, k, -1):
            last = _retraced(run, runs[j])
            if last is not None:
                covered[k] = (j, last)
                break
    return covered


def _retraced(under: Run, over: Run) -> float | None:
    if under.curves.metric != over.curves.metric:
        return None
    last = None
    for attr in ("train", "val"):
        mine = _series(under.curves.epochs, getattr(under.curves, attr))
        theirs = _series(over.curves.epochs, getattr(over.curves, attr))
        if mine.empty:
            continue
        at = {float(x): float(y) for x, y in zip(theirs.x, theirs.y, strict=True)}
        if any(float(x) not in at for x in mine.x):
            return None
        if not np.allclose(mine.y, [at[float(x)] for x in mine.x], rtol=1e-6, atol=0.0):
            return None
        last = float(mine.x.max()) if last is None else max(last, float(mine.x.max()))
    return last


# ---------------------------------------------------------------- shared


def _series(epochs: np.ndarray, values: np.ndarray | None) -> _Series:
    """Finite points only: sparse logs (validation every N steps) draw as lines, not dots."""
    if values is None:
        return _Series(np.empty(0), np.empty(0))
    x, y = np.asarray(epochs, dtype=float), np.asarray(values, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    return _Series(x[keep], y[keep])


def _has_data(run: Run) -> bool:
    return not (
        _series(run.curves.epochs, run.curves.train).empty
        and _series(run.curves.epochs, run.curves.val).empty
    )


def choose_log(values: Sequence[np.ndarray], scale: Scale) -> tuple[bool, str | None]:
    """(use log, a note when a requested log scale cannot be used)."""
    finite = [v for v in values if v.size]
    if scale == "linear" or not finite:
        return False, None
    joined = np.concatenate(finite)
    if (joined <= 0).any():
        note = "linear scale: the values include zero or negatives" if scale == "log" else None
        return False, note
    if scale == "log":
        return True, None
    return bool(joined.max() / joined.min() > LOG_SPAN), None


def _apply_scale(ax: Axes, series: Sequence[_Series], scale: Scale) -> list[str]:
    log, note = choose_log([s.y for s in series], scale)
    if not log:
        # Whole numbers on the axis (197890.25), not an offset label (+1.9789e5).
        ax.ticklabel_format(axis="y", useOffset=False)
    if log:
        from matplotlib.ticker import FuncFormatter

        ax.set_yscale("log")
        values = np.concatenate([s.y for s in series if s.y.size])
        decades = float(np.log10(values.max() / values.min()))
        # Plain numbers (0.03, not 3x10^-2); label 2x and 5x ticks too when few decades show.
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: _minor_label(v, decades)))
    return [note] if note else []


def _minor_label(value: float, decades: float) -> str:
    if decades > 2.5 or value <= 0:
        return ""
    mantissa = round(value / 10 ** np.floor(np.log10(value)), 6)
    wanted = (2, 5) if decades > 1.2 else (2, 3, 5)
    return f"{value:g}" if mantissa in wanted else ""


def _title(run: Run) -> str:
    if run.diagnosis is None:
        return run.name
    return f"{run.name}: {verdict_label(run.diagnosis)}"


def _caption_lines(run: Run) -> list[str]:
    diagnosis = run.diagnosis
    if diagnosis is None:
        return []
    lines = [diagnosis.summary] if diagnosis.summary else []
    if diagnosis.suggestion is not None:
        primary = diagnosis.suggestion.primary
        edit = change_line(primary)
        # The ladder's wording already states the edit (`add L2: model.l2 0 -> 0.0001`): once.
        if primary.to is not None and primary.text and primary.key in primary.text:
            edit = primary.text
        elif primary.to is not None and primary.text:
            edit += f" ({primary.text})"
        lines.append(f"Suggested change: {edit}")
    return lines


def _caption(figure: Figure, lines: list[str]) -> None:
    wrapped = [
        part for line in lines if line for part in textwrap.wrap(line, width=int(figure.get_figwidth() * 15))
    ]
    if not wrapped:
        return
    height = figure.get_figheight()
    share = min(0.35, (0.2 + 0.17 * len(wrapped)) / height)  # inches of caption as a fraction
    engine = figure.get_layout_engine()
    if engine is not None:
        engine.set(rect=(0, share, 1, 1 - share))  # type: ignore[call-arg]  # constrained layout takes rect
    figure.text(
        0.01, share - 0.02, "\n".join(wrapped), ha="left", va="top", fontsize=9, color="0.2", linespacing=1.4
    )


def _metric_label(metric: str) -> str:
    return metric.upper() if metric.lower() in ("mae", "mse", "rmse") else metric


def _epoch_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"
