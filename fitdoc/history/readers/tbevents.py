"""TensorBoard log directories -> named columns, read with the `tensorboard`
package's event reader (the `fitdoc[tensorboard]` extra), never TensorFlow.

A run is a directory holding `events.out.tfevents.*` files, together with its
split subdirectories: Keras' `TensorBoard` callback writes `LOGDIR/train/` and
`LOGDIR/validation/` (scalars `epoch_loss`, `epoch_mae`, ...), which read as
`loss`, `val_loss`, `mae`, `val_mae`; PyTorch / tensorboardX `SummaryWriter`
runs keep their tags (`Loss/train`, `val/loss`), which the column-name parser
understands. Scalars written as tensors (TF2 `tf.summary.scalar`) and as
simple values both read. Each validation point pairs with the train values
logged since the previous one (by step); nothing is filled in. Hyperparameters
written by the HParams plugin (`hp.hparams(...)`, `SummaryWriter.add_hparams`)
name the run's knobs through `readers.params`.
"""

from __future__ import annotations

import sys
import types
from dataclasses import replace
from pathlib import Path

import numpy as np

from fitdoc.errors import HistoryError, MissingDependencyError
from fitdoc.history.readers.params import knobs_from_params
from fitdoc.history.readers.steps import table_from_points
from fitdoc.history.readers.table import Table

INSTALL_HINT = (
    "reading TensorBoard event files needs the tensorboard package: pip install 'fitdoc[tensorboard]'"
)
# Subdirectories that hold one split of a run (Keras: train/, validation/).
SPLIT_DIRS = {
    "train": "",
    "training": "",
    "validation": "val_",
    "val": "val_",
    "eval": "val_",
    "test": "test_",
}
_KERAS_PREFIXES = ("epoch_", "evaluation_")


def is_event_file(path: Path) -> bool:
    return ".tfevents." in path.name and path.is_file()


def has_event_files(path: Path) -> bool:
    if path.is_file():
        return is_event_file(path)
    return any(is_event_file(f) for f in path.iterdir()) or any(
        (path / d).is_dir() and any(is_event_file(f) for f in (path / d).iterdir()) for d in SPLIT_DIRS
    )


def find_runs(root: Path, files: list[Path] | None = None) -> list[Path]:
    """Run directories under `root` (itself included), sorted; split subdirectories join their parent.
    `files`: the files under `root` when the caller has listed them already."""
    listed = root.rglob("*.tfevents.*") if files is None else (f for f in files if ".tfevents." in f.name)
    dirs = sorted({f.parent for f in listed if f.is_file()})
    runs: set[Path] = set()
    for d in dirs:
        if d.name.lower() in SPLIT_DIRS and d != root:
            runs.add(d.parent)
        else:
            runs.add(d)
    return sorted(runs)


def _run_files(run: Path) -> list[tuple[str, Path]]:
    """(column prefix, event file) of one run: its own files, then its split subdirectories'."""
    if run.is_file():
        return [("", run)]
    out = [("", f) for f in sorted(run.iterdir()) if is_event_file(f)]
    for sub in sorted(run.iterdir()):
        prefix = SPLIT_DIRS.get(sub.name.lower())
        if prefix is not None and sub.is_dir():
            out.extend((prefix, f) for f in sorted(sub.iterdir()) if is_event_file(f))
    return out


def _loader() -> object:
    if "tensorflow" not in sys.modules:
        # tensorboard's own switch to its TensorFlow stub (//tensorboard/compat:no_tensorflow):
        # without it, `tensorboard.compat.tf` imports TensorFlow when installed.
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
    try:
        # The raw loader: events as written. The compat layers of `EventFileLoader` turn every
        # simple value into a tensor proto and back, which costs more than reading the file.
        from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
    except ImportError:
        raise MissingDependencyError(INSTALL_HINT) from None
    return LegacyEventFileLoader


# TensorFlow's DataType numbers for the scalar dtypes a summary may hold.
_DTYPES = {
    1: "<f4",
    2: "<f8",
    3: "<i4",
    9: "<i8",
    19: "<f2",
    14: "<f2",
    4: "<u1",
    6: "<i1",
    5: "<i2",
    10: "?",
}


def _tensor_scalar(tensor: object) -> float | None:
    """The one number a scalar tensor proto holds (TF2 `tf.summary.scalar`), else None."""
    t = tensor
    dims = [d.size for d in t.tensor_shape.dim]  # type: ignore[attr-defined]
    if any(size != 1 for size in dims):
        return None
    for field in ("float_val", "double_val", "int_val", "int64_val", "bool_val"):
        values = getattr(t, field)
        if len(values) == 1:
            return float(values[0])
    if t.half_val and t.dtype in (19, 14):  # type: ignore[attr-defined]
        return float(np.array([t.half_val[0]], dtype=np.uint16).view(np.float16)[0])  # type: ignore[attr-defined]
    content = t.tensor_content  # type: ignore[attr-defined]
    dtype = _DTYPES.get(t.dtype)  # type: ignore[attr-defined]
    if content and dtype is not None:
        array = np.frombuffer(content, dtype=dtype)
        if array.size == 1:
            return float(array[0])
    return None


def _scalars(path: Path, hparams: dict[str, object] | None = None) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of one event file: tag -> [(step, value)], in file order.
    `hparams`, when given, collects the run's hyperparameters (HParams plugin)."""
    loader_cls = _loader()
    out: dict[str, list[tuple[int, float]]] = {}
    plugin: dict[str, str] = {}  # a tag's plugin, said by its first event only
    try:
        for event in loader_cls(str(path)).Load():  # type: ignore[operator]
            if not event.HasField("summary"):
                continue
            step = int(event.step)
            for value in event.summary.value:
                tag = value.tag
                name = value.metadata.plugin_data.plugin_name
                if name:
                    plugin.setdefault(tag, name)
                kind = value.WhichOneof("value")
                if name == "hparams":
                    if hparams is not None:
                        hparams.update(_session_hparams(value.metadata.plugin_data.content))
                    continue
                if kind == "simple_value":
                    number: float | None = float(value.simple_value)
                elif kind == "tensor" and plugin.get(tag, "scalars") == "scalars":
                    number = _tensor_scalar(value.tensor)
                else:
                    continue
                if number is not None:
                    out.setdefault(tag, []).append((step, number))
    except HistoryError:
        raise
    except Exception as exc:  # a truncated or corrupt record file
        raise HistoryError(
            f"unreadable TensorBoard event file ({type(exc).__name__}: {exc})", path=path
        ) from None
    return out


def _session_hparams(content: bytes) -> dict[str, object]:
    """The hyperparameters of an HParams `session_start_info` summary; {} for its other summaries."""
    try:
        from tensorboard.plugins.hparams import plugin_data_pb2
    except ImportError:  # an older tensorboard without the plugin: the scalars still read
        return {}
    data = plugin_data_pb2.HParamsPluginData.FromString(content)
    if not data.HasField("session_start_info"):
        return {}
    out: dict[str, object] = {}
    for name, value in data.session_start_info.hparams.items():
        kind = value.WhichOneof("kind")
        if kind in ("number_value", "string_value", "bool_value"):
            out[name] = getattr(value, kind)
    return out


def _column(prefix: str, tag: str, keras: bool) -> str:
    name = tag
    if keras:
        for p in _KERAS_PREFIXES:
            if name.startswith(p):
                name = name[len(p) :]
                break
        if name.endswith("_vs_iterations"):
            name = name[: -len("_vs_iterations")]
    return prefix + name


def read_tensorboard(path: Path, fmt: str = "tensorboard") -> Table:
    """One run (a directory or one event file) -> a Table with one row per validation point."""
    files = _run_files(path)
    if not files:
        raise HistoryError("no TensorBoard event files (events.out.tfevents.*) here", path=path)
    series: dict[str, dict[int, float]] = {}
    hparams: dict[str, object] = {}
    keras = any(prefix for prefix, _ in files)
    for prefix, f in files:
        scalars = _scalars(f, hparams)
        tags = set(scalars)
        for tag, points in scalars.items():
            if tag.startswith("batch_") or (
                tag.startswith("evaluation_")
                and "epoch_" + tag[len("evaluation_") :].removesuffix("_vs_iterations") in tags
            ):
                continue  # per-batch values and Keras' duplicate of epoch_* against iterations
            name = _column(prefix, tag, keras or tag.startswith(_KERAS_PREFIXES))
            target = series.setdefault(name, {})
            for step, v in points:
                target[step] = v  # a later write of the same step (a resumed run) wins
    if not series:
        raise HistoryError("no scalar summaries in these TensorBoard event files", path=path)
    table = table_from_points(series, fmt)
    knobs = knobs_from_params(hparams, "hparams")
    if not knobs.notes:
        return table
    return replace(table, notes=(*table.notes, *knobs.notes), settings=knobs.settings)
