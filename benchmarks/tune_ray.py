"""`fitdoc tune` on local processes against the same sweep on a local Ray.

One config (by default `wave`, 1000 rows, 3 x 64 units, 60 epochs: a walk
that spends all 8 trainings of the default budget with one worker or two),
one budget, three ways:

- local x1: the default backend, one trial at a time in this process;
- local x2: `--parallel 2`, each trial a `fitdoc train` process;
- ray x2:   `--backend ray --parallel 2`, a local Ray instance with 2 CPUs
  (started inside the timing, as `fitdoc tune` starts it), each trial a Ray
  task whose run directory comes back as bytes.

It prints wall time, trials and the best validation MAE of each, and
the wall-time ratio to local x1. With two workers a round may try two ladder
moves at once, so the x2 sweeps can walk a different path than x1 within the
same budget; local x2 and ray x2 walk the same one.

    TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/tune_ray.py [--max-runs 8] [--out DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from fitdoc.config import Config
from fitdoc.tune import run_tune

WAYS = (("local", 1), ("local", 2), ("ray", 2))


def base_config(args: argparse.Namespace, out: Path) -> Config:
    return Config.model_validate(
        {
            "name": "bench",
            "seed": args.seed,
            "data": {"synthetic": args.dataset, "n_samples": args.n_samples},
            "model": {"hidden_layers": 3, "units": 64},
            "training": {"epochs": args.epochs, "batch_size": 50},
            "output": {"dir": str(out)},
        }
    )


def sweep(config: Config, backend: str, workers: int, tune_dir: Path, max_runs: int) -> dict[str, Any]:
    started = time.perf_counter()
    result = run_tune(
        config,
        tune_dir=tune_dir,
        max_runs=max_runs,
        parallel=workers,
        backend=backend,
        console=Console(file=io.StringIO()),
    )
    wall = time.perf_counter() - started
    return {
        "backend": backend,
        "workers": workers,
        "wall_s": round(wall, 1),
        "trials": len(result.trials),
        "failed": sum(t.status == "failed" for t in result.trials),
        "best_val_mae": None if result.best is None else result.best.val_mae,
        "best_trial": None if result.best is None else result.best.index,
        "walk": [t.change for t in result.trials],
        "stop_reason": result.stop_reason,
    }


def table(rows: list[dict[str, Any]]) -> str:
    base = rows[0]["wall_s"]
    lines = [
        "| backend | workers | wall s | vs local x1 | trials | best val MAE (trial) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        mae = "-" if row["best_val_mae"] is None else f"{row['best_val_mae']:.4f} ({row['best_trial']})"
        lines.append(
            f"| {row['backend']} | {row['workers']} | {row['wall_s']:.1f} | x{row['wall_s'] / base:.2f} "
            f"| {row['trials']} | {mae} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-runs", type=int, default=8)
    parser.add_argument("--dataset", default="wave", help="a synthetic dataset (default: wave)")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="keep the tune directories and results.json here")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="fitdoc-tune-ray-"))
    config = base_config(args, out / "runs")
    rows = []
    for backend, workers in WAYS:
        row = sweep(config, backend, workers, out / f"{backend}-x{workers}", args.max_runs)
        rows.append(row)
        print(f"{backend} x{workers}: {row['wall_s']} s, {row['trials']} trials", file=sys.stderr)
    (out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(table(rows))
    for row in rows:
        print(f"{row['backend']} x{row['workers']} walk: {'; '.join(row['walk'])}")
    print(f"tune directories and results.json: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
