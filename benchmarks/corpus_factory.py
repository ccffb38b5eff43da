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
from benchmarks.corpus.store import (  # noqa: E402
    DATA_DIR,
    EXTRA_WIDTHS_DIR,
    SECOND_SEEDS_DIR,
    append_path,
    net_id,
    read_overlay,
    read_paths,
    read_shard,
)

PENALTIES = (0.0, 1e-5, 1e-4, 1e-3, 1e-2)
# Batch steps one net may take over its whole training, and the arithmetic of a
# whole path (8 nets, train steps plus val and test every epoch): about half a
# minute a path on a busy core here.
STEP_BUDGET = 3_000
FLOP_BUDGET = 3.0e11
# A third of the paths also train twice and half the units at WIDTH_SETTINGS (penalty,
# dropout), the width steps that label `underfit (capacity)` (DESIGN.md).
WIDTH_SHARE = 1 / 3
WIDTH_SETTINGS = ((0.0, 0.0), (1e-4, 0.0))
WIDTH_FACTORS = (2.0, 0.5)
LR_RANGES = {"adam": (1e-4, 1e-2), "rmsprop": (1e-4, 1e-2), "sgd": (1e-3, 1e-1)}
SLOW_SGD_LR = (1e-4, 1e-2)  # plain SGD (`--slow-sgd`): small steps, no momentum
# Short classification runs (`--short-classification`): the few-epoch fits real classification
# logs mostly are (fine-tuning, a quick CNN), where the corpus' 50-200 epoch paths are thin.
SHORT_EPOCHS = (10, 20, 40)


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
        # Drawn last, so every earlier choice of a path is what it was before width steps existed.
        "width_steps": rng.random() < WIDTH_SHARE,
        # Half of those are narrow nets (2-8 units), where too little capacity is common.
        "narrow_units": rng.choice([2, 4, 8]) if rng.random() < 0.5 else None,
    }


def fit_budget(path: dict[str, Any], n_train: int, n_eval: int, n_inputs: int) -> dict[str, Any]:
    """Shrink the batch count, then the epochs, then the width until a path fits the budgets."""
    e_max, batch, units = path["e_max"], min(path["batch"], n_train), path["units"]
    floor = min(50, e_max)  # a short run (`SHORT_EPOCHS`) stays short, never shorter
    while math.ceil(n_train / batch) * 2 * e_max > STEP_BUDGET and batch < 512:
        batch *= 2
    while math.ceil(n_train / batch) * 2 * e_max > STEP_BUDGET and e_max > floor:
        e_max //= 2

    def flops(e: int, u: int) -> float:
        params = n_inputs * u + (path["layers"] - 1) * u * u + u
        return 2 * e * 8 * (3 * n_train + n_eval) * params * 2

    while flops(e_max, units) > FLOP_BUDGET and e_max > floor:
        e_max //= 2
    while flops(e_max, units) > FLOP_BUDGET and units > 16:  # narrow nets are never widened
        units //= 2
    # No cut below 10 epochs: too few evaluations to read (a short run's 3-epoch cut).
    cuts = sorted({c for c in (max(10, e_max // 10), (3 * e_max) // 10, e_max) if c >= 10})
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


def slow_sgd(path: dict[str, Any]) -> dict[str, Any]:
    """The same draw trained with plain SGD (no momentum) at a small learning rate: the slow
    runs whose val is still falling at the end, which real logs show and momentum hides.
    Its own key (`p1s-...`), so it never collides with the momentum path of the same index."""
    rng = random.Random(f"{path['key']}-slow-sgd")
    lr = float(f"{10 ** rng.uniform(math.log10(SLOW_SGD_LR[0]), math.log10(SLOW_SGD_LR[1])):.2g}")
    seed, index = path["key"][1:].split("-")
    return {**path, "key": f"p{seed}s-{index}", "optimizer": "sgd_plain", "lr": lr}


def short_classification(path: dict[str, Any]) -> dict[str, Any]:
    """A classification draw trained for few epochs (`SHORT_EPOCHS`): the path at the same
    index with its family, noise and row count redrawn among the classification families and
    its longest cut short. Its own key (`p1c-...`), so it never collides with the long path."""
    rng = random.Random(f"{path['key']}-short-classification")
    family = FAMILIES[rng.choice(sorted(n for n, f in FAMILIES.items() if f.task == "classification"))]
    n = 0 if family.is_real else round(10 ** rng.uniform(math.log10(100), math.log10(20_000)))
    seed, index = path["key"][1:].split("-")
    return {
        **path,
        "key": f"p{seed}c-{index}",
        "family": family.name,
        "task": family.task,
        "noise": rng.choice(family.noises),
        "n": n,
        "e_max": rng.choice(SHORT_EPOCHS),
    }


def make_optimizer(name: str, lr: float) -> Any:
    import keras

    if name == "sgd_plain":
        return keras.optimizers.SGD(lr)
    if name == "adam":
        return keras.optimizers.Adam(lr)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(lr)
    return keras.optimizers.SGD(lr, momentum=0.9)


def train_path(path: dict[str, Any], seeds: int = 1, *, fixed_budget: bool = False) -> dict[str, Any]:
    """Train one path. With `seeds` 2 every net is trained again from a second seed (other
    initial weights, other row order) and its `test_error` is the mean of the two (the
    shared corpus' labelling, DESIGN.md); the visible curves stay the first seed's.
    `fixed_budget`: a stored path's epochs, batch and width as they are (`fit_budget` is not
    idempotent on its own output: a second pass can halve the epochs again)."""
    if seeds > 1:
        first = train_path(path)
        # Same data and split (drawn from `seed`), another initialization and row order.
        second = train_path({**path, "train_seed": path["seed"] + 1})
        for group in ("nets", "width_nets"):
            for a, b in zip(first.get(group, ()), second.get(group, ()), strict=True):
                a["test_error"] = [
                    _mean_of(x, y) for x, y in zip(a["test_error"], b["test_error"], strict=True)
                ]
        return {**first, "label_seeds": 2, "seconds": round(first["seconds"] + second["seconds"], 2)}
    family = FAMILIES[path["family"]]
    split = make_split(family, path["n"], path["noise"], path["seed"])
    if path.get("width_steps") and path.get("narrow_units"):
        path = {**path, "units": path["narrow_units"]}
    if not fixed_budget:
        path = fit_budget(
            {**path, "n": path["n"] or len(split.x_train) + len(split.x_val)},
            len(split.x_train),
            len(split.x_val) + len(split.x_test),
            split.x_train.shape[1],
        )
    settings = regularization_path(path["path_kind"])
    start = time.perf_counter()
    nets = _train_nets(path, split, family.classes, path["units"], settings)
    width_nets = []
    if path.get("width_steps"):
        kind = path["path_kind"]
        narrow = [{"l2": 0.0, "l1": 0.0, kind: p, "dropout": d} for p, d in WIDTH_SETTINGS]
        for factor in WIDTH_FACTORS:
            units = max(1, round(path["units"] * factor))
            width_nets += [
                {**net, "units": units} for net in _train_nets(path, split, family.classes, units, narrow)
            ]
    record = {
        **path,
        "epochs_trained": 2 * path["e_max"],
        "seconds": round(time.perf_counter() - start, 2),
        "nets": nets,
    }
    if width_nets:
        record["width_nets"] = width_nets
    return record


def train_extra_width(record: dict[str, Any], units: int) -> dict[str, Any]:
    """Nets `units` wide at WIDTH_SETTINGS for a stored path, on its split, with its budget and
    label seeds: `{key, width_nets}` for `store.EXTRA_WIDTHS_DIR`."""
    per_seed = [_width_nets(record, units, s) for s in range(record.get("label_seeds", 1))]
    nets = per_seed[0]
    for other in per_seed[1:]:
        for a, b in zip(nets, other, strict=True):
            a["test_error"] = [_mean_of(x, y) for x, y in zip(a["test_error"], b["test_error"], strict=True)]
    return {"key": record["key"], "width_nets": nets}


def _width_nets(record: dict[str, Any], units: int, seed_offset: int) -> list[dict[str, Any]]:
    """A stored path's nets `units` wide at WIDTH_SETTINGS, on its split and budget, trained
    from seed `record["seed"] + seed_offset` (0: the first seed, 1: the second)."""
    family = FAMILIES[record["family"]]
    split = make_split(family, record["n"], record["noise"], record["seed"])
    kind = record["path_kind"]
    settings = [{"l2": 0.0, "l1": 0.0, kind: p, "dropout": d} for p, d in WIDTH_SETTINGS]
    seeded = {**record, "train_seed": record["seed"] + seed_offset}
    return [{**net, "units": units} for net in _train_nets(seeded, split, family.classes, units, settings)]


def extra_width_todo(data_dir: Path, units: int) -> list[dict[str, Any]]:
    """Stored regression paths with width steps, narrower than `units`, that lack nets that wide."""
    return [
        p
        for p in read_paths(data_dir)
        if p["task"] == "regression"
        and p.get("width_nets")
        and 2 * p["units"] < units
        and not any(n["units"] == units for n in p["width_nets"])
    ]


def train_second_seed(record: dict[str, Any], extra_units: tuple[int, ...] = ()) -> dict[str, Any]:
    """A stored one-seed path trained again from the second seed `train_path(seeds=2)` uses (same
    data, split and budget; another initialization and row order), with its extra widths:
    `{key, test_error: {net id: series}}` for `store.SECOND_SEEDS_DIR`."""
    drawn = {k: v for k, v in record.items() if k not in ("nets", "width_nets")}
    again = train_path({**drawn, "train_seed": record["seed"] + 1}, fixed_budget=True)
    nets = [*again["nets"], *again.get("width_nets", ())]
    for units in extra_units:
        nets += _width_nets(record, units, 1)
    return {"key": record["key"], "test_error": {net_id(net, record): net["test_error"] for net in nets}}


def second_seed_todo(data_dir: Path) -> list[tuple[dict[str, Any], tuple[int, ...]]]:
    """Stored paths labelled from one seed that have no second seed yet, with the widths of
    their extra width nets; the quickest first (so a time limit finishes the most paths)."""
    seeded = {r["key"] for r in read_overlay(data_dir, SECOND_SEEDS_DIR)}
    extra: dict[str, set[int]] = {}
    for r in read_overlay(data_dir, EXTRA_WIDTHS_DIR):
        extra.setdefault(r["key"], set()).update(n["units"] for n in r["width_nets"])
    todo = [
        (record, tuple(sorted(extra.get(record["key"], ()))))
        for shard in sorted(data_dir.glob("*.jsonl.gz"))
        for record in read_shard(shard)
        if record.get("label_seeds", 1) == 1 and record["key"] not in seeded
    ]
    return sorted(todo, key=lambda t: (t[0]["seconds"] * (1 + len(t[1])), t[0]["key"]))


def _train_nets(
    path: dict[str, Any], split: Any, classes: int, units: int, settings: list[dict[str, float]]
) -> list[dict[str, Any]]:
    """The nets of these settings at this width, stacked in fitdoc's own engine
    (`fitdoc.training.engine`), to twice the longest cut."""
    from fitdoc.training.engine import FIELDS as ENGINE_FIELDS
    from fitdoc.training.engine import Arrays, NetSpec, StackedEngine

    outputs = classes if classes > 1 else split.y_train.shape[1]
    sizes = [split.x_train.shape[1], *[units] * path["layers"], outputs]
    engine = StackedEngine(
        glorot_weights(sizes, path.get("train_seed", path["seed"])),
        [NetSpec(l2=s["l2"], l1=s["l1"], dropout=s["dropout"]) for s in settings],
        Arrays(split.x_train, split.y_train, split.x_val, split.y_val, split.x_test, split.y_test),
        optimizer=make_optimizer(path["optimizer"], path["lr"]),
        batch_size=path["batch"],
        seed=path.get("train_seed", path["seed"]),
        order=path["order"],
        classes=classes,
    )
    curves = engine.run(2 * path["e_max"])
    # The held-out error: MAE for regression (the metric users watch), cross-entropy for
    # classification (what the val_loss curve shows; an error rate on a few hundred real
    # rows moves in coarse steps and hides what regularizing does).
    held_out = "test_loss" if classes > 1 else "test_metric"
    columns = [ENGINE_FIELDS.index(f) for f in ("loss", "metric", "val_loss", "val_metric", held_out)]
    nets = []
    for setting, values in zip(settings, curves, strict=True):
        net: dict[str, Any] = dict(setting)
        for field, j in zip(FIELDS, columns, strict=True):
            net[field] = [_compact(v) for v in values[:, j]]
        nets.append(net)
    return nets


def _mean_of(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else _compact((a + b) / 2)


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
    parser.add_argument("--shard", help="shard file name under --data-dir (default paths-s<seed>-w<worker>)")
    parser.add_argument("--only-width", action="store_true", help="train only the paths with width steps")
    parser.add_argument(
        "--only-narrow", action="store_true", help="train only the width paths of narrow nets (2-8 units)"
    )
    parser.add_argument("--max-seconds", type=float, default=math.inf, help="stop starting paths after this")
    parser.add_argument(
        "--slow-sgd",
        action="store_true",
        help="train each drawn path with plain SGD at a small learning rate",
    )
    parser.add_argument(
        "--short-classification",
        action="store_true",
        help="train each drawn path as a short classification run (10-40 epochs)",
    )
    parser.add_argument(
        "--extra-width",
        action="store_true",
        help="train nets as wide as the probe's width neighbour (fitdoc.training.probe.WIDE_UNITS) "
        "for the stored narrow regression width paths",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        choices=(1, 2),
        help="label from the mean test error of this many seeds",
    )
    parser.add_argument(
        "--second-seed",
        action="store_true",
        help="train the stored one-seed paths again from a second seed, so that their labels "
        "come from the mean test error of two (the quickest paths first)",
    )
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    if args.extra_width:
        return _extra_width(args)
    if args.second_seed:
        return _second_seed(args)
    done = {p["key"] for p in read_paths(args.data_dir)}
    shard = args.data_dir / (args.shard or f"paths-s{args.seed}-w{args.worker}.jsonl.gz")
    todo = [i for i in range(args.paths) if i % args.workers == args.worker]
    trained = 0
    began = time.perf_counter()
    for i in todo:
        path = draw_path(args.seed, i)
        if args.slow_sgd:
            path = slow_sgd(path)
        if args.short_classification:
            path = short_classification(path)
        wanted = path["width_steps"] and (path["narrow_units"] or not args.only_narrow)
        if path["key"] in done or ((args.only_width or args.only_narrow) and not wanted):
            continue
        if time.perf_counter() - began > args.max_seconds:
            print(f"stopping: {args.max_seconds:g} s spent")
            break
        record = train_path(path, args.seeds)
        append_path(shard, record)
        trained += 1
        print(
            f"{record['key']} {record['family']:<13} n={record['n']:<6} {record['layers']}x{record['units']:<4}"
            f" {record['optimizer']:<7} lr={record['lr']:<6g} b={record['batch']:<4} E={record['e_max']:<4}"
            f" {record['order']:<9} {record['path_kind']}{' +width' if 'width_nets' in record else ''}:"
            f" {record['seconds']:.1f} s",
            flush=True,
        )
    print(f"trained {trained} paths; {len(done) + trained} stored in {args.data_dir}")
    return 0


def _extra_width(args: argparse.Namespace) -> int:
    from fitdoc.training.probe import WIDE_UNITS

    shard = args.data_dir / EXTRA_WIDTHS_DIR / (args.shard or f"wide-s{args.seed}-w{args.worker}.jsonl.gz")
    todo = extra_width_todo(args.data_dir, WIDE_UNITS)[args.worker :: args.workers]
    began = time.perf_counter()
    for record in todo:
        if time.perf_counter() - began > args.max_seconds:
            print(f"stopping: {args.max_seconds:g} s spent")
            break
        started = time.perf_counter()
        append_path(shard, train_extra_width(record, WIDE_UNITS))
        print(
            f"{record['key']} {record['layers']}x{record['units']} -> {WIDE_UNITS}: "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
    print(
        f"{len(extra_width_todo(args.data_dir, WIDE_UNITS))} narrow regression width paths still lack {WIDE_UNITS} units"
    )
    return 0


def _second_seed(args: argparse.Namespace) -> int:
    shard = args.data_dir / SECOND_SEEDS_DIR / (args.shard or f"s2-w{args.worker}.jsonl.gz")
    todo = second_seed_todo(args.data_dir)[args.worker :: args.workers]
    began = time.perf_counter()
    for record, extra_units in todo:
        if time.perf_counter() - began > args.max_seconds:
            print(f"stopping: {args.max_seconds:g} s spent")
            break
        started = time.perf_counter()
        append_path(shard, train_second_seed(record, extra_units))
        print(f"{record['key']} second seed: {time.perf_counter() - started:.1f} s", flush=True)
    print(f"{len(second_seed_todo(args.data_dir))} stored paths still labelled from one seed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
