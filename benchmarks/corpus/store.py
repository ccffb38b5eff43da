"""The factory's stored trajectories, and the labelled runs cut from them.

Storage: `benchmarks/corpus/data/*.jsonl.gz`, one JSON line per trained path
(a data family, a network, an optimizer, a row order and eight regularization
settings, each trained to twice the longest cut). A shard is appended one
gzip member per path, so a killed factory leaves every finished path
readable; a torn last member is skipped.

A labelled run is one member of a path cut at one epoch count (and, for the
early-stopping variant, cut where Keras' `EarlyStopping` would have stopped).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.corpus.labels import Label, Member, label_run

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Run:
    """One labelled run: its visible history, its config, its label."""

    name: str
    family: str
    task: str
    order: str
    early_stopping: bool
    epochs: int
    history: dict[str, list[float]]
    model: dict[str, Any]
    training: dict[str, Any]
    label: Label
    path_key: str


# Nets of more widths trained later for stored paths (`corpus_factory.py --extra-width`):
# one {key, width_nets} line per path, joined to the path's own `width_nets` when read.
EXTRA_WIDTHS_DIR = "extra_widths"
# The held-out error of a second training seed for paths first labelled from one
# (`corpus_factory.py --second-seed`): one {key, test_error: {net id: series}} line per path.
# Read, each net's `test_error` becomes the mean of the two seeds (the shared corpus'
# labelling) and `test_error_seeds` keeps both; the visible curves stay the first seed's.
SECOND_SEEDS_DIR = "second_seeds"


def net_id(net: dict[str, Any], path: dict[str, Any]) -> str:
    """A net's place on its path: width and regularization (unique within a path)."""
    return f"{net.get('units', path['units'])}:{net['l2']:g}:{net['l1']:g}:{net['dropout']:g}"


def read_paths(data_dir: Path = DATA_DIR) -> Iterator[dict[str, Any]]:
    """Every stored path, shard by shard, with its extra widths and second seeds; a torn final
    gzip member is skipped."""
    extra: dict[str, list[dict[str, Any]]] = {}
    for record in read_overlay(data_dir, EXTRA_WIDTHS_DIR):
        extra.setdefault(record["key"], []).extend(record["width_nets"])
    second = {record["key"]: record["test_error"] for record in read_overlay(data_dir, SECOND_SEEDS_DIR)}
    for shard in sorted(data_dir.glob("*.jsonl.gz")):
        for path in read_shard(shard):
            more = extra.get(path["key"])
            if more:
                path = {**path, "width_nets": [*path.get("width_nets", ()), *more]}
            seed2 = second.get(path["key"])
            yield with_second_seed(path, seed2) if seed2 else path


def read_overlay(data_dir: Path, name: str) -> Iterator[dict[str, Any]]:
    """The records stored later for stored paths, under `data_dir / name` (`EXTRA_WIDTHS_DIR`,
    `SECOND_SEEDS_DIR`), shard by shard."""
    for shard in sorted((data_dir / name).glob("*.jsonl.gz")):
        yield from read_shard(shard)


def with_second_seed(path: dict[str, Any], seed2: dict[str, list[float | None]]) -> dict[str, Any]:
    """The path labelled from the mean test error of both seeds, where the second was trained
    for every net (else it is left as it was: a label from one seed, not from a mix)."""
    groups = ("nets", "width_nets")
    nets = [net for group in groups for net in path.get(group, ())]
    if not nets or any(net_id(net, path) not in seed2 for net in nets):
        return path

    def averaged(net: dict[str, Any]) -> dict[str, Any]:
        first, other = net["test_error"], seed2[net_id(net, path)]
        mean = [None if a is None or b is None else (a + b) / 2 for a, b in zip(first, other, strict=True)]
        return {**net, "test_error": mean, "test_error_seeds": [first, other]}

    out = {**path, "label_seeds": 2}
    for group in groups:
        if group in path:
            out[group] = [averaged(net) for net in path[group]]
    return out


def read_shard(shard: Path) -> Iterator[dict[str, Any]]:
    """The records of one shard, in order; a torn last gzip member is skipped."""
    raw = shard.read_bytes()
    while raw:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            text = inflater.decompress(raw)
        except zlib.error:
            return
        if not inflater.eof:
            return  # torn member: the writer was killed mid-path
        for line in text.decode().splitlines():
            if line.strip():
                yield json.loads(line)
        raw = inflater.unused_data


def append_path(shard: Path, record: dict[str, Any]) -> None:
    shard.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(shard, "ab", compresslevel=9) as handle:
        handle.write((json.dumps(record, separators=(",", ":")) + "\n").encode())


def early_stop_epochs(val_loss: np.ndarray, patience: int, limit: int) -> int:
    """Epochs Keras' EarlyStopping(monitor='val_loss', patience) trains before stopping (<= limit)."""
    best, wait = np.inf, 0
    for epoch in range(limit):
        if val_loss[epoch] < best:
            best, wait = val_loss[epoch], 0
        else:
            wait += 1
            if wait >= patience:
                return epoch + 1
    return limit


def members_of(path: dict[str, Any], seed: int | None = None) -> list[Member]:
    """The path's nets as labelling members: its own nets first, then its width steps
    (`width_nets`: twice and half the units at some of its settings), when it has them.
    `seed` 0 or 1: one training seed's test error alone (paths with `test_error_seeds`)."""
    kind = path["path_kind"]
    return [
        Member(
            net[kind],
            net["dropout"],
            np.asarray(net["test_error"] if seed is None else net["test_error_seeds"][seed], dtype=float),
            net.get("units", path["units"]),
        )
        for net in (*path["nets"], *path.get("width_nets", ()))
    ]


def seed_labels(path: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """For a path with both seeds' test errors, each run's label from seed 1 alone and from
    seed 2 alone (every cut runs_of makes, early-stopping ones left out): how much a one-seed
    label is worth."""
    if "test_error_seeds" not in path["nets"][0]:
        return
    kind = path["path_kind"]
    one, two = members_of(path, 0), members_of(path, 1)
    for index in range(len(path["nets"])):
        for epochs in path["cuts"]:
            a, b = label_run(one, index, epochs, kind), label_run(two, index, epochs, kind)
            if a is not None and b is not None:
                yield a.label, b.label


def runs_of(path: dict[str, Any]) -> Iterator[Run]:
    """Every labelled run cut from one stored path (ambiguous ones included); the width
    steps are neighbours only, not runs."""
    kind = path["path_kind"]
    nets = path["nets"]
    members = members_of(path)
    metric = "mae" if path["task"] == "regression" else "accuracy"
    for index, net in enumerate(nets):
        cuts = [(e, False) for e in path["cuts"]]
        patience = path.get("patience")
        if patience:
            stop = early_stop_epochs(np.asarray(net["val_loss"]), patience, max(path["cuts"]))
            if stop < max(path["cuts"]):
                cuts.append((stop, True))
        for epochs, stopped in cuts:
            label = label_run(members, index, epochs, kind)
            if label is None:
                continue
            yield Run(
                name=f"{path['key']}-{kind}_{net[kind]:g}-do_{net['dropout']:g}-e{epochs}{'-es' if stopped else ''}",
                family=path["family"],
                task=path["task"],
                order=path["order"],
                early_stopping=stopped,
                epochs=epochs,
                history=_history(net, metric, epochs),
                model={
                    "hidden_layers": path["layers"],
                    "units": path["units"],
                    "l2": net["l2"],
                    "l1": net["l1"],
                    "dropout": net["dropout"],
                },
                training=_training(path, stopped, epochs),
                label=label,
                path_key=path["key"],
            )


def _history(net: dict[str, Any], metric: str, epochs: int) -> dict[str, list[float]]:
    return {
        "epoch": list(range(epochs)),
        "loss": net["loss"][:epochs],
        metric: net["metric"][:epochs],
        "val_loss": net["val_loss"][:epochs],
        f"val_{metric}": net["val_metric"][:epochs],
    }


def _training(path: dict[str, Any], stopped: bool, epochs: int) -> dict[str, Any]:
    training: dict[str, Any] = {
        "epochs": max(path["cuts"]) if stopped else epochs,
        "batch_size": path["batch"],
        "learning_rate": path["lr"],
        "shuffle": True,
    }
    if stopped:
        training["early_stopping"] = {"patience": path["patience"]}
    return training
