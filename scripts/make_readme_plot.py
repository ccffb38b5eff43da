"""Draw the README's picture of the founding case: `docs/founding.png`.

Reads the founding runs (run directories with `history.csv` and
`config.yaml`, as `fitdoc train sample_configs/founding*.yaml` writes them),
diagnoses each, and overlays them, ordered by L2, in one figure with
`fitdoc.report.plot.plot_runs`, the same code `fitdoc plot` uses. It also
prints the comparison table, whose direction sentence the README quotes.

Usage (from the repository root):

    python scripts/make_readme_plot.py                    # runs found under sample_configs/
    python scripts/make_readme_plot.py runs/founding-l2-0 runs/founding-l2-0.001 -o docs/founding.png

Only runs whose name contains `--match` (default "founding") are used when a
folder is searched.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from fitdoc.diagnosis.decide import diagnose_curves
from fitdoc.errors import FitdocError
from fitdoc.history.load import discover
from fitdoc.history.rundir import ReadOptions, Run, load_run
from fitdoc.report.compare import render_comparison
from fitdoc.report.comparison import compare_runs
from fitdoc.report.plot import plot_runs

REPO = Path(__file__).resolve().parents[1]


def founding_views(paths: list[Path], match: str) -> list[Run]:
    views = []
    for source in discover(paths):
        if match not in str(source.history_path) and match not in source.name:
            continue
        run = load_run(source, ReadOptions())
        views.append(Run(run.name, run.curves, diagnose_curves(run.curves, run.config), run.config))
    # Order by regularization so the legend reads as a path: l2=0, 0.0001, 0.001.
    return sorted(views, key=lambda v: _l2(v))


def _l2(view: Run) -> tuple[float, float, str]:
    if view.config is None:
        return (float("inf"), 0.0, view.name)
    return (float(view.config.model.l2), float(view.config.model.dropout), view.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[REPO / "sample_configs"])
    parser.add_argument("-o", "--output", type=Path, default=REPO / "docs" / "founding.png")
    parser.add_argument("--match", default="founding", help="keep runs whose path contains this")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    try:
        views = founding_views(args.paths, args.match)
        if len(views) < 2:
            raise FitdocError(
                f"found {len(views)} founding run(s) under {', '.join(map(str, args.paths))}; "
                "train the founding configs first (fitdoc train sample_configs/founding*.yaml)"
            )
        render_comparison(compare_runs(views), console)
        written = plot_runs(views, args.output)
    except FitdocError as exc:
        console.print(f"error: {exc.one_line()}", highlight=False)
        return 2
    console.print(f"wrote {written}", highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
