"""What `--probe` costs: one probed run (the run + K neighbours stacked) against K+1 plain runs.

Usage:
    TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/probe_speed.py [--config FILE] [--epochs N] [--repeats R]

For each config (by default the founding configs without regularization and
with L2 1e-3, i.e. K = 2 and K = 3 neighbours), alternating, R times: a plain
`fitdoc train` of the config, a `fitdoc train --probe` of it, and the K plain
runs of its neighbours. Times are the wall time of `run_training` (data,
TensorFlow tracing and compiling, the run directory included). Prints a
Markdown table with the medians: the probed run against one plain run (goal:
at most K+1 times) and against the K+1 plain runs a user would otherwise
train (goal: below their total), and the run's final val MAE with and
without probing (the probed run must train the same net).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from rich.console import Console

from fitdoc.config import Config, load_config
from fitdoc.training.probe import plan_probes
from fitdoc.training.run import run_training

SAMPLES = Path(__file__).resolve().parents[1] / "sample_configs"
CONFIGS = (SAMPLES / "founding-noreg.yaml", SAMPLES / "founding-l2-1e-3.yaml")


def timed(config: Config, probe: bool) -> tuple[float, float]:
    """(seconds, final val MAE of the run)."""
    started = time.perf_counter()
    result = run_training(config, console=Console(file=io.StringIO()), progress=False, probe=probe)
    seconds = time.perf_counter() - started
    last = result.history_path.read_text().splitlines()[-1].split(",")
    return seconds, float(last[4])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", type=Path, action="append", help="config(s) to probe (default: two founding ones)"
    )
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(
        "| config | K | plain run (s) | probed run (s) | K+1 plain runs (s) | probed / plain | "
        "probed / (K+1 plain) | val MAE plain | val MAE probed |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as out:
        # Warm-up: the process's first training pays TensorFlow's one-time start; no row pays it.
        warm = load_config(CONFIGS[0]).with_changes({"training.epochs": 2, "output.dir": out})
        assert isinstance(warm, Config)
        timed(warm, probe=True)
        for path in args.config or CONFIGS:
            config = load_config(path).with_changes({"training.epochs": args.epochs, "output.dir": out})
            assert isinstance(config, Config)
            plans = plan_probes(config)
            plain, probed, neighbours = [], [], []
            plain_val = probed_val = float("nan")
            for _ in range(args.repeats):
                seconds, plain_val = timed(config, probe=False)
                plain.append(seconds)
                seconds, probed_val = timed(config, probe=True)
                probed.append(seconds)
                neighbours.append(sum(timed(p.config, probe=False)[0] for p in plans))
            one, many = statistics.median(plain), statistics.median(probed)
            alone = one + statistics.median(neighbours)
            print(
                f"| {path.name} ({args.epochs} epochs) | {len(plans)} | {one:.1f} | {many:.1f} | {alone:.1f} | "
                f"{many / one:.2f} (goal <= {len(plans) + 1}) | {many / alone:.2f} (goal < 1) | "
                f"{plain_val:.5f} | {probed_val:.5f} |"
            )


if __name__ == "__main__":
    main()
