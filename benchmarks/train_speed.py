"""fitdoc's training call against a plain Keras script doing the same work.

Usage:
    TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/train_speed.py [--seeds 1 2 3] [--large] [--epochs N]

For each seed, alternating: fitdoc's `run_training` on the founding
1000-epoch config (fast engine) and a plain
`model.fit(X, Y, epochs, batch_size, validation_split=0.2, shuffle=True)` on
the same rows and the same network. The time is the wall time of the
training call (tracing and compiling included; fitdoc's also includes writing
its run directory). Prints a Markdown table per seed, the medians and their
ratio, and the final train/val MAE of both, to show the curves agree.
`--large` runs the larger-data variant (10x the rows, 200 epochs).
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

import numpy as np
import pandas as pd
from rich.console import Console

from fitdoc.config import Config, load_config
from fitdoc.training.data import load_data
from fitdoc.training.run import run_training

CONFIG = Path(__file__).resolve().parents[1] / "sample_configs" / "founding-noreg-1000ep.yaml"


def plain_keras(config: Config) -> tuple[float, float, float]:
    """The user's script: same rows (train then validation), same net, `model.fit`."""
    import keras

    from fitdoc.training.model import build_model, compile_model

    data = load_data(config.data, seed=config.seed, validation_split=config.training.validation_split)
    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    keras.utils.set_random_seed(config.seed)
    net = compile_model(build_model(config.model, data.n_features, data.n_targets), config.training)
    started = time.perf_counter()
    history = net.fit(
        x,
        y,
        epochs=config.training.epochs,
        batch_size=config.training.batch_size,
        validation_split=config.training.validation_split,
        shuffle=True,
        verbose=0,
    )
    seconds = time.perf_counter() - started
    return seconds, float(history.history["mae"][-1]), float(history.history["val_mae"][-1])


def fitdoc_run(config: Config, out: str) -> tuple[float, float, float]:
    config = config.with_changes({"output.dir": out, "training.engine": "fast"})
    started = time.perf_counter()
    result = run_training(config, console=Console(file=io.StringIO()), progress=False)
    seconds = time.perf_counter() - started
    last = pd.read_csv(result.history_path).iloc[-1]
    return seconds, float(last["mae"]), float(last["val_mae"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--large", action="store_true", help="10x the rows, 200 epochs")
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    config = load_config(args.config)
    assert isinstance(config, Config)
    if args.large:
        config = config.with_changes({"data.n_samples": config.data.n_samples * 10, "training.epochs": 200})
    if args.epochs:
        config = config.with_changes({"training.epochs": args.epochs})
    print(
        f"config {args.config.name}: n_samples {config.data.n_samples}, epochs {config.training.epochs}, "
        f"batch {config.training.batch_size}, {config.model.hidden_layers}x{config.model.units}"
    )
    print("| seed | fitdoc s | keras s | fitdoc train/val MAE | keras train/val MAE |")
    print("| --- | --- | --- | --- | --- |")
    fit_times, keras_times, fit_mae, keras_mae = [], [], [], []
    with tempfile.TemporaryDirectory() as out:
        for i, seed in enumerate(args.seeds):
            seeded = config.with_changes({"seed": seed})
            # Alternate which goes first, so warm caches and machine load favour neither.
            order = ("fitdoc", "keras") if i % 2 == 0 else ("keras", "fitdoc")
            results = {}
            for who in order:
                results[who] = fitdoc_run(seeded, out) if who == "fitdoc" else plain_keras(seeded)
            f, k = results["fitdoc"], results["keras"]
            fit_times.append(f[0])
            keras_times.append(k[0])
            fit_mae.append(f[1:])
            keras_mae.append(k[1:])
            print(
                f"| {seed} | {f[0]:.1f} | {k[0]:.1f} | {f[1]:.4f} / {f[2]:.4f} | {k[1]:.4f} / {k[2]:.4f} |",
                flush=True,
            )
    fm, km = statistics.median(fit_times), statistics.median(keras_times)
    print(f"median fitdoc {fm:.2f} s, plain keras {km:.2f} s, ratio {fm / km:.3f}")
    for name, values in (("fitdoc", fit_mae), ("keras", keras_mae)):
        train = [v[0] for v in values]
        val = [v[1] for v in values]
        print(
            f"{name}: final train MAE {statistics.mean(train):.4f} (range {min(train):.4f}-{max(train):.4f}), "
            f"val MAE {statistics.mean(val):.4f} (range {min(val):.4f}-{max(val):.4f})"
        )


if __name__ == "__main__":
    main()
