"""Train the founding sample configs; print their final train/val/test MAE and fitdoc's verdict.

Usage:
    TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/founding_story.py [CONFIG.yaml ...] [--set KEY=VALUE ...]

Without configs it trains the four quick founding configs in sample_configs/.
Final and best values follow `fitdoc.report.figures`, as every fitdoc output does:
final = the mean of the last tenth of the epochs (3 to 50), best = the minimum. Each run is diagnosed the way `fitdoc diagnose RUN_DIR` does it (its
history plus its config), so the README's table comes from this one script.
With `--probe` each run is trained with its ladder neighbours beside it
(`fitdoc train --probe`) and the verdict is the measured one
(`fitdoc.diagnosis.measured`), its suggestion worded with the measured gain.
Runs go to a temporary directory (`--keep DIR` keeps them there instead, e.g.
for `scripts/make_readme_plot.py`).
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import pandas as pd
from rich.console import Console

from fitdoc.config import load_config
from fitdoc.diagnosis.measured import diagnose_run
from fitdoc.history.load import discover, read_history
from fitdoc.history.rundir import load_run
from fitdoc.report.figures import run_figures
from fitdoc.training.data import SYNTHETIC_HELDOUT_ROWS
from fitdoc.training.run import run_training
from fitdoc.verdict import Diagnosis

SAMPLES = Path(__file__).resolve().parents[1] / "sample_configs"
QUICK = ["founding-noreg", "founding-l2-1e-3", "founding-l2-1e-4", "founding-dropout-0.2"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", type=Path)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--keep", type=Path, default=None, help="write the runs here and keep them")
    parser.add_argument(
        "--probe", action="store_true", help="train each with its neighbours; measured verdicts"
    )
    args = parser.parse_args()
    paths = args.configs or [SAMPLES / f"{name}.yaml" for name in QUICK]
    print(
        "| config | epochs | seconds | train MAE | val MAE | val/train | test MAE | best val MAE (epoch) "
        "| verdict | suggestion |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as scratch:
        out = str(args.keep) if args.keep is not None else scratch
        for path in paths:
            # A fresh held-out sample gives the test MAE column (never read by the rules).
            held_out = f"data.heldout_samples={SYNTHETIC_HELDOUT_ROWS}"
            config = load_config(path, [held_out, *args.overrides, f"output.dir={out}"])
            started = time.perf_counter()
            result = run_training(
                config, console=Console(file=io.StringIO()), progress=False, probe=args.probe
            )
            seconds = time.perf_counter() - started
            history = pd.read_csv(result.history_path)
            curves = read_history(result.run_dir)
            fig = run_figures(curves)
            test = history["test_mae"].tail(fig.window).mean()
            run = load_run(discover([result.run_dir])[0], config=config)
            diagnosis = diagnose_run(run.curves, config, run.probes)
            print(
                f"| {path.stem} | {len(history)} | {seconds:.1f} | {fig.final_train:.4f} | {fig.final_val:.4f} "
                f"| {fig.gap_ratio:.2f} | {test:.4f} | {fig.best_val:.4f} ({fig.best_epoch}) "
                f"| {_verdict(diagnosis)} | {_suggestion(diagnosis)} |",
                flush=True,
            )


def _verdict(diagnosis: Diagnosis) -> str:
    cause = f" ({diagnosis.cause.value})" if diagnosis.cause is not None else ""
    return f"**{diagnosis.verdict.value}**{cause}"


def _suggestion(diagnosis: Diagnosis) -> str:
    if diagnosis.suggestion is None:
        return "-"
    change = diagnosis.suggestion.primary
    if diagnosis.basis == "measured" and change.text.endswith("measured"):
        return f"`{change.text}`"
    if change.from_ is None:
        return change.text
    return f"`{change.key}: {change.from_:g} -> {change.to:g}`"


if __name__ == "__main__":
    main()
