"""The corpus factory: train and store labelled learning curves, resumably.

Each "path" is one random draw of a data family, a row count, a noise level,
a network (1-6 layers of 16-512 units), an optimizer (Adam / RMSprop / SGD
with momentum) and learning rate (two decades), a batch size, a row order
(`reshuffle` like fitdoc's fast engine, or `fixed` like a seeded Keras 3
`model.fit`), and an L2 or L1 regularization path of eight settings:
penalty 0, 1e-5, 1e-4, 1e-3, 1e-2 without dropout, dropout 0.2 and 0.5
without penalty, and penalty 1e-4 with dropout 0.2. Every net is trained to
twice the longest cut, so every cut can be judged against training longer;
some paths also get an early-stopping variant (cut where Keras'
`EarlyStopping` would have stopped). Labels come from the held-out test error
by the rule in `benchmarks/corpus/labels.py`, at read time.

Path i is drawn from `random.Random(f"{seed}-{i}")` alone, so the same index
always gives the same path; finished keys are skipped, so a killed run
resumes where it stopped and several workers can share the index range
(`--worker 0 --workers 2`).

    python benchmarks/corpus_factory.py --paths 300 [--worker 0 --workers 2]
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.corpus.families import FAMILIES, make_split  # noqa: E402
from benchmarks.corpus.store import DATA_DIR, append_path, read_paths  # noqa: E402

PENALTIES = (0.0, 1e-5, 1e-4, 1e-3, 1e-2)
# Batch steps one net may take over its whole training, and the arithmetic of a
# whole path (8 nets, train steps plus val and test every epoch): about half a
# minute a path on a busy core here.
STEP_BUDGET = 3_000
FLOP_BUDGET = 3.0e11
LR_RANGES = {"adam": (1e-4, 1e-2), "rmsprop": (1e-4, 1e-2), "sgd": (1e-3, 1e-1)}


def draw_path(seed: int, index: int) -> dict[str, Any]:
    """The path at `index`: every choice from one seeded stream."""
    rng = random.Random(f"{seed}-{index}")
    names = sorted(FAMILIES)
    family = FAMILIES[names[index % len(names)]]
    noise = rng.choice(family.noises)
    n = 0 if family.is_real else round(10 ** rng.uniform(math.log10(100), math.log10(20_000)))
    optimizer = rng.choices(["adam", "rmsprop", "sgd"], weights=[2, 1, 1])[0]
    lo, hi = LR_RANGES[optimizer]
    lr = float(f"{10 ** rng.uniform(math.log10(lo), math.log10(hi)):.2g}")
    layers = rng.randint(1, 6)
    units = rng.choice([16, 32, 64, 128, 256, 512])
    e_max = rng.choice([50, 100, 200])
    batch = rng.choice([16, 32, 64, 128, 256, 512])
    return {
        "key": f"p{seed}-{index:05d}",
        "family": family.name,
        "task": family.task,
        "noise": noise,
        "n": n,
        "optimizer": optimizer,
        "lr": lr,
        "layers": layers,
        "units": units,
        "e_max": e_max,
        "batch": batch,
        "order": rng.choices(["reshuffle", "fixed"], weights=[3, 2])[0],
        "path_kind": rng.choices(["l2", "l1"], weights=[3, 1])[0],
        "patience": rng.choice([None, None, 10, 20]),
        "seed": rng.randrange(1, 2**31 - 1),
    }


def fit_budget(path: dict[str, Any], n_train: int, n_eval: int, n_inputs: int) -> dict[str, Any]:
    """Shrink the batch count, then the epochs, then the width until a path fits the budgets."""
    e_max, batch, units = path["e_max"], min(path["batch"], n_train), path["units"]
    while math.ceil(n_train / batch) * 2 * e_max > STEP_BUDGET and batch < 512:
        batch *= 2
    while math.ceil(n_train / batch) * 2 * e_max > STEP_BUDGET and e_max > 50:
        e_max //= 2

    def flops(e: int, u: int) -> float:
        params = n_inputs * u + (path["layers"] - 1) * u * u + u
        return 2 * e * 8 * (3 * n_train + n_eval) * params * 2

    while flops(e_max, units) > FLOP_BUDGET and e_max > 50:
        e_max //= 2
    while flops(e_max, units) > FLOP_BUDGET and units > 16:
        units //= 2
    cuts = sorted({max(10, e_max // 10), (3 * e_max) // 10, e_max})
    return {**path, "batch": min(batch, n_train), "e_max": e_max, "units": units, "cuts": cuts}


def regularization_path(kind: str) -> list[dict[str, float]]:
    settings = [(p, 0.0) for p in PENALTIES] + [(0.0, 0.2), (0.0, 0.5), (1e-4, 0.2)]
    return [
        {"l2": p if kind == "l2" else 0.0, "l1": p if kind == "l1" else 0.0, "dropout": d}
        for p, d in settings
    ]


# Per-epoch outputs stored for each net of a path.
FIELDS = ("loss", "metric", "val_loss", "val_metric", "test_error")


def glorot_weights(sizes: list[int], seed: int) -> list[np.ndarray]:
    """Keras Dense's initialization (Glorot-uniform kernels, zero biases), from one seed."""
    rng = np.random.default_rng(seed)
    weights: list[np.ndarray] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        weights.append(rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32))
        weights.append(np.zeros(fan_out, np.float32))
    return weights


def make_optimizer(name: str, lr: float) -> Any:
    import keras

    if name == "adam":
        return keras.optimizers.Adam(lr)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(lr)
    return keras.optimizers.SGD(lr, momentum=0.9)


def train_path(path: dict[str, Any]) -> dict[str, Any]:
    """Train a path's nets side by side in fitdoc's own stacked engine (`fitdoc.training.engine`)."""
    from fitdoc.training.engine import FIELDS as ENGINE_FIELDS
    from fitdoc.training.engine import Arrays, NetSpec, StackedEngine

    family = FAMILIES[path["family"]]
    split = make_split(family, path["n"], path["noise"], path["seed"])
    path = fit_budget(
        {**path, "n": path["n"] or len(split.x_train) + len(split.x_val)},
        len(split.x_train),
        len(split.x_val) + len(split.x_test),
        split.x_train.shape[1],
    )
    settings = regularization_path(path["path_kind"])
    outputs = family.classes if family.classes > 1 else split.y_train.shape[1]
    sizes = [split.x_train.shape[1], *[path["units"]] * path["layers"], outputs]
    start = time.perf_counter()
    engine = StackedEngine(
        glorot_weights(sizes, path["seed"]),
        [NetSpec(l2=s["l2"], l1=s["l1"], dropout=s["dropout"]) for s in settings],
        Arrays(split.x_train, split.y_train, split.x_val, split.y_val, split.x_test, split.y_test),
        optimizer=make_optimizer(path["optimizer"], path["lr"]),
        batch_size=path["batch"],
        seed=path["seed"],
        order=path["order"],
        classes=family.classes,
    )
    curves = engine.run(2 * path["e_max"])
    # The held-out error: MAE for regression (the metric users watch), cross-entropy for
    # classification (what the val_loss curve shows; an error rate on a few hundred real
    # rows moves in coarse steps and hides what regularizing does).
    held_out = "test_loss" if family.classes > 1 else "test_metric"
    columns = [ENGINE_FIELDS.index(f) for f in ("loss", "metric", "val_loss", "val_metric", held_out)]
    nets = []
    for setting, values in zip(settings, curves, strict=True):
        net = dict(setting)
        for field, j in zip(FIELDS, columns, strict=True):
            net[field] = [_compact(v) for v in values[:, j]]
        nets.append(net)
    return {
        **path,
        "epochs_trained": 2 * path["e_max"],
        "seconds": round(time.perf_counter() - start, 2),
        "nets": nets,
    }


def _compact(value: float) -> float | None:
    # Five significant digits: far below seed noise, and it keeps the corpus small.
    return float(f"{value:.5g}") if math.isfinite(value) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=300, help="path indices 0..N-1 to have trained")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--worker", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads per worker")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    done = {p["key"] for p in read_paths(args.data_dir)}
    shard = args.data_dir / f"paths-s{args.seed}-w{args.worker}.jsonl.gz"
    todo = [i for i in range(args.paths) if i % args.workers == args.worker]
    trained = 0
    for i in todo:
        path = draw_path(args.seed, i)
        if path["key"] in done:
            continue
        record = train_path(path)
        append_path(shard, record)
        trained += 1
        print(
            f"{record['key']} {record['family']:<13} n={record['n']:<6} {record['layers']}x{record['units']:<4}"
            f" {record['optimizer']:<7} lr={record['lr']:<6g} b={record['batch']:<4} E={record['e_max']:<4}"
            f" {record['order']:<9} {record['path_kind']}: {record['seconds']:.1f} s"
            f" ({record['seconds'] / 8:.2f} s per run)",
            flush=True,
        )
    print(f"trained {trained} paths; {len(done) + trained} stored in {args.data_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
