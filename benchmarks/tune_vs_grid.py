"""`fitdoc tune` against a grid search over the same space.

For each dataset and seed:

- grid: every L2 on the ladder x every dropout on the ladder (5 x 3 = 15
  trainings), as Keras Tuner's GridSearch would enumerate them, each scored
  by its best validation MAE (Keras Tuner's default for an objective);
- tune: `fitdoc tune` from the unregularized config with a budget of
  `--max-runs` trainings.

It prints the best validation MAE each found and how many trainings `tune`
needed to come within 5 % of the grid's best (the goal: at most 3, median over
seeds; the grid needs all of its trials).

    TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/tune_vs_grid.py --epochs 300 --seeds 0 1 2

Trainings run in this process, one at a time; `--out` keeps every run
directory and a `results.json`.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from fitdoc.config import Config
from fitdoc.history.load import read_history
from fitdoc.training.run import run_training
from fitdoc.tune import run_tune
from fitdoc.tune.plan import DROPOUT, L2

WITHIN = 0.05


def base_config(dataset: str, seed: int, epochs: int, n_samples: int, out: Path) -> Config:
    """The founding network (5 x 64 relu, Adam 1e-3, batch 500, validation 0.2), unregularized."""
    return Config.model_validate(
        {
            "name": f"{dataset}-s{seed}",
            "seed": seed,
            "data": {"synthetic": dataset, "n_samples": n_samples},
            "model": {"hidden_layers": 5, "units": 64},
            "training": {"epochs": epochs, "batch_size": 500},
            "output": {"dir": str(out)},
        }
    )


def best_val_mae(run_dir: Path) -> float:
    curves = read_history(run_dir)
    values = [float(v) for v in curves.val if math.isfinite(v)] if curves.val is not None else []
    return min(values) if values else math.inf


def grid_search(base: Config, out: Path) -> list[dict]:
    quiet = Console(file=io.StringIO())
    results = []
    for l2, dropout in itertools.product(L2.ladder, DROPOUT.ladder):
        config = base.with_changes({"model.l2": l2, "model.dropout": dropout, "output.dir": str(out)})
        run = run_training(config, console=quiet, progress=False)
        mae = best_val_mae(run.run_dir) if run.status == "completed" else math.inf
        results.append({"l2": l2, "dropout": dropout, "val_mae": mae, "status": run.status})
    return results


def trainings_to_reach(maes: list[float | None], target: float) -> int | None:
    best = math.inf
    for count, mae in enumerate(maes, start=1):
        if mae is not None:
            best = min(best, mae)
        if best <= target:
            return count
    return None


def run_case(dataset: str, seed: int, args: argparse.Namespace, out: Path) -> dict:
    base = base_config(dataset, seed, args.epochs, args.n_samples, out / f"{dataset}-s{seed}" / "runs")
    started = time.perf_counter()
    grid = grid_search(base, out / f"{dataset}-s{seed}" / "grid")
    grid_seconds = time.perf_counter() - started
    grid_best = min(grid, key=lambda r: r["val_mae"])

    started = time.perf_counter()
    result = run_tune(
        base,
        tune_dir=out / f"{dataset}-s{seed}" / "tune",
        max_runs=args.max_runs,
        console=Console(file=io.StringIO()),
    )
    tune_seconds = time.perf_counter() - started
    maes = [t.val_mae for t in result.trials]
    tune_best = result.best
    return {
        "dataset": dataset,
        "seed": seed,
        "grid_best": grid_best,
        "grid_trainings": len(grid),
        "grid_seconds": round(grid_seconds, 1),
        "grid": grid,
        "tune_best": None
        if tune_best is None
        else {
            "l2": tune_best.settings["model.l2"],
            "dropout": tune_best.settings["model.dropout"],
            "epochs": tune_best.settings["training.epochs"],
            "val_mae": tune_best.val_mae,
            "verdict": tune_best.verdict,
        },
        "tune_trainings": len(result.trials),
        "tune_seconds": round(tune_seconds, 1),
        "tune_path": [
            {"change": t.change, "verdict": t.verdict, "cause": t.cause, "val_mae": t.val_mae}
            for t in result.trials
        ],
        "tune_stop": result.stop_reason,
        "trainings_to_within_5pct": trainings_to_reach(maes, grid_best["val_mae"] * (1 + WITHIN)),
    }


def _cfg(l2: float, dropout: float) -> str:
    return f"l2={l2:g} dropout={dropout:g}"


def _step(p: dict) -> str:
    verdict = f"{p['verdict']} ({p['cause']})" if p["cause"] else str(p["verdict"])
    mae = "" if p["val_mae"] is None else f", {p['val_mae']:.5f}"
    return f"[{p['change']}: {verdict}{mae}]"


def report(cases: list[dict], args: argparse.Namespace) -> str:
    lines = [
        f"tune vs grid: epochs {args.epochs}, n_samples {args.n_samples}, tune budget {args.max_runs}",
        "",
        "| dataset | seed | grid best val MAE (config) | tune best val MAE (config, verdict) "
        "| tune trainings to within 5% | tune trainings | grid trainings |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in cases:
        g, t = c["grid_best"], c["tune_best"]
        reach = c["trainings_to_within_5pct"]
        reach_text = str(reach) if reach is not None else ">" + str(c["tune_trainings"])
        tune_text = (
            "-" if t is None else f"{t['val_mae']:.5f} ({_cfg(t['l2'], t['dropout'])}, {t['verdict']})"
        )
        lines.append(
            f"| {c['dataset']} | {c['seed']} | {g['val_mae']:.5f} ({_cfg(g['l2'], g['dropout'])}) "
            f"| {tune_text} | {reach_text} "
            f"| {c['tune_trainings']} | {c['grid_trainings']} |"
        )
    lines.append("")
    for dataset in dict.fromkeys(c["dataset"] for c in cases):
        reach = [
            c["trainings_to_within_5pct"] if c["trainings_to_within_5pct"] is not None else math.inf
            for c in cases
            if c["dataset"] == dataset
        ]
        median = statistics.median(reach)
        verdict = "met" if median <= 3 else "NOT met"
        lines.append(
            f"{dataset}: median trainings to within 5% of the grid's best = {median:g} "
            f"(goal <= 3: {verdict}); grid: 15"
        )
    for c in cases:
        path = " -> ".join(_step(p) for p in c["tune_path"])
        lines.append(f"{c['dataset']} s{c['seed']} tune path: {path}; stop: {c['tune_stop']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=["founding", "friedman1"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--n-samples", type=int, default=5000)
    parser.add_argument("--max-runs", type=int, default=6, help="tune's budget of trainings")
    parser.add_argument("--out", type=Path, default=None, help="keep run directories and results.json here")
    args = parser.parse_args(argv)

    out = args.out or Path(tempfile.mkdtemp(prefix="fitdoc-tune-vs-grid-"))
    out.mkdir(parents=True, exist_ok=True)
    cases = []
    for dataset in args.datasets:
        for seed in args.seeds:
            case = run_case(dataset, seed, args, out)
            cases.append(case)
            print(
                f"{dataset} seed {seed}: grid best {case['grid_best']['val_mae']:.5f}, "
                f"tune within 5% after {case['trainings_to_within_5pct']} trainings "
                f"(grid {case['grid_seconds']}s, tune {case['tune_seconds']}s)",
                file=sys.stderr,
                flush=True,
            )
    (out / "results.json").write_text(json.dumps(cases, indent=2, default=str) + "\n")
    print(report(cases, args))
    print(f"\nrun directories and results.json: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
