"""Train the founding sample configs and print their final train/val/test MAE.

Usage:
    TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/founding_story.py [CONFIG.yaml ...] [--set KEY=VALUE ...]

Without configs it trains the four quick founding configs in sample_configs/.
Final values are the mean of the last 5 epochs, so one noisy epoch does not
decide. Runs go to a temporary directory.
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
from fitdoc.train import run_training

SAMPLES = Path(__file__).resolve().parents[1] / "sample_configs"
QUICK = ["founding-noreg", "founding-l2-1e-3", "founding-l2-1e-4", "founding-dropout-0.2"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", type=Path)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    paths = args.configs or [SAMPLES / f"{name}.yaml" for name in QUICK]
    print("| config | epochs | seconds | train MAE | val MAE | val/train | test MAE | best val MAE (epoch) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as out:
        for path in paths:
            config = load_config(path, [*args.overrides, f"output.dir={out}"])
            started = time.perf_counter()
            result = run_training(config, console=Console(file=io.StringIO()), progress=False)
            seconds = time.perf_counter() - started
            history = pd.read_csv(result.history_path)
            last = history.tail(5).mean()
            best = int(history["val_mae"].idxmin())
            print(
                f"| {path.stem} | {len(history)} | {seconds:.1f} | {last['mae']:.4f} | {last['val_mae']:.4f} "
                f"| {last['val_mae'] / last['mae']:.2f} | {last['test_mae']:.4f} "
                f"| {history['val_mae'][best]:.4f} ({best}) |",
                flush=True,
            )


if __name__ == "__main__":
    main()
