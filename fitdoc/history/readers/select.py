"""Pick the train and validation series out of named numeric columns -> `Curves`.

Preference (the design notes): MAE where present, else the loss; among several
candidates (multi-output logs) `val_mae`, then `val_loss`; pairs that have
both a train and a validation series win over one-sided ones. The choice and
the other candidates are written into `Curves.notes`; `train_col` / `val_col`
override it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from fitdoc.errors import HistoryError
from fitdoc.history.curves import Curves
from fitdoc.history.readers.names import (
    HIGHER_IS_BETTER,
    HIGHER_PREFIXES,
    METRIC_RANK,
    ColumnName,
    normalize,
    parse_names,
)

_LEVEL_RANK = {"epoch": 0, "": 1, "step": 2}
# Metrics that measure the same thing for an MSE-trained regression net: a
# train `loss` may stand in for a missing train `mse` (and back), with a note.
_COMPATIBLE = {"loss": "mse", "mse": "loss"}


def build_curves(
    columns: Mapping[str, np.ndarray],
    *,
    epochs: np.ndarray,
    source: str,
    fmt: str,
    notes: Sequence[str] = (),
    train_col: str | None = None,
    val_col: str | None = None,
    path: object | None = None,
    epoch_at: np.ndarray | None = None,
    steps: np.ndarray | None = None,
    point: str = "epoch",
) -> Curves:
    """Choose the series to diagnose among `columns` (all of `len(epochs)`)."""
    names = list(columns)
    parsed = parse_names(names)
    groups = _group_series(parsed, columns)
    notes = list(notes)
    explicit = train_col is not None or val_col is not None
    if explicit:
        train, val = _resolve_overrides(names, parsed, groups, train_col, val_col, path)
    else:
        train, val = _choose_automatically(columns, parsed, groups, notes, fmt, path)

    chosen = train or val
    assert chosen is not None
    head, metric = chosen.key
    metric = metric or chosen.norm
    if train is not None and val is not None and train.key != val.key:
        notes.append(_pairing_note(train, val, both_given=train_col is not None and val_col is not None))

    loss_group = groups.get((head, "loss"), {})
    reg = next((c for c in parsed if c.kind == "reg"), None)
    accuracy = _pick(groups.get((head, "accuracy"), {}).get("val", []))
    picked = (train, val, _pick(loss_group.get("train", [])), _pick(loss_group.get("val", [])), reg, accuracy)
    train_a, val_a, tl_a, vl_a, reg_a, acc_a = (
        None if col is None else np.asarray(columns[col.raw], dtype=float) for col in picked
    )
    keep = _trailing_keep((train_a, val_a, tl_a, vl_a), len(epochs))

    def cut(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[:keep]

    return Curves(
        epochs=np.asarray(epochs)[:keep],
        train=cut(train_a),
        val=cut(val_a),
        metric=f"{head}_{metric}" if head else metric,
        train_name=None if train is None else train.raw,
        val_name=None if val is None else val.raw,
        train_loss=cut(tl_a),
        val_loss=cut(vl_a),
        reg_loss=cut(reg_a),
        source=source,
        format=fmt,
        notes=tuple(notes),
        epoch_at=cut(epoch_at),
        steps=cut(steps),
        point=point,
        val_accuracy=cut(acc_a),
    )


def _choose_automatically(
    columns: Mapping[str, np.ndarray],
    parsed: list[ColumnName],
    groups: dict[tuple[str, str], dict[str, list[ColumnName]]],
    notes: list[str],
    fmt: str,
    path: object | None,
) -> tuple[ColumnName | None, ColumnName | None]:
    """(train, val) without --train-col/--val-col; a held-out series left unused is noted."""
    unused_tests = _held_out_as_validation(parsed, columns, groups, notes, fmt)
    train, val = _auto_choose(groups, notes, path, list(columns))
    if unused_tests and val is not None:
        same = [c for c in unused_tests if c.key == val.key] or unused_tests
        notes.append(
            f"held-out `{same[0].raw}` not used (validation is `{val.raw}`); "
            f"diagnose against it with --val-col {same[0].raw}"
        )
    return train, val


def _pairing_note(train: ColumnName, val: ColumnName, *, both_given: bool) -> str:
    """Train and val are different quantities: say which pair is judged, and why."""
    if both_given:
        return f"train `{train.raw}` paired with validation `{val.raw}`"
    return (
        f"no metric is logged for both train and validation; train `{train.raw}` paired with "
        f"validation `{val.raw}` as the same quantity (an MSE loss); if it is not, choose "
        "with --train-col/--val-col"
    )


def _group_series(
    parsed: list[ColumnName], columns: Mapping[str, np.ndarray]
) -> dict[tuple[str, str], dict[str, list[ColumnName]]]:
    groups: dict[tuple[str, str], dict[str, list[ColumnName]]] = {}
    for col in parsed:
        if col.kind != "series" or col.split not in ("train", "val"):
            continue
        values = np.asarray(columns[col.raw], dtype=float)
        if values.size == 0 or np.isnan(values).all():
            continue
        groups.setdefault(col.key, {}).setdefault(col.split, []).append(col)
    return groups


def _held_out_as_validation(
    parsed: list[ColumnName],
    columns: Mapping[str, np.ndarray],
    groups: dict[tuple[str, str], dict[str, list[ColumnName]]],
    notes: list[str],
    fmt: str,
) -> list[ColumnName]:
    """`test_*` series stand in for validation only when there is no validation series at all;
    beside one, they are returned so a note can say how to use them.

    A single final test value (Lightning's `test_loss` row) is no curve. fitdoc's own
    `test_mae` is the held-out label of benchmarks and is never read (the design notes' "History columns").
    """
    if fmt == "fitdoc":
        return []
    tests = [
        col
        for col in parsed
        if col.kind == "series"
        and col.split == "test"
        and int(np.isfinite(np.asarray(columns[col.raw], dtype=float)).sum()) >= 2
    ]
    if not tests:
        return []
    has_val = any("val" in sides for sides in groups.values())
    listed = ", ".join(f"`{c.raw}`" for c in tests[:4])
    if has_val:
        return tests
    for col in tests:
        groups.setdefault(col.key, {}).setdefault("val", []).append(col)
    usable = [c for c in tests if _tier(c.key, list(groups)) < 99]
    if usable:
        notes.append(
            f"no validation series; using held-out {listed} as validation (choose another with --val-col)"
        )
    return []


def _pick(cols: list[ColumnName]) -> ColumnName | None:
    """Among columns of one key and split, prefer the `_epoch` level (Lightning)."""
    if not cols:
        return None
    return min(cols, key=lambda c: _LEVEL_RANK.get(c.level, 3))


def _tier(key: tuple[str, str], keys: list[tuple[str, str]]) -> int:
    head, metric = key
    if metric in HIGHER_IS_BETTER or metric.startswith(HIGHER_PREFIXES):
        return 99
    if metric not in METRIC_RANK:
        return 50
    same_metric = [k for k in keys if k[1] == metric]
    if metric == "mae":
        return 0 if not head else (1 if len(same_metric) == 1 else 6)
    if metric == "loss":
        return 2 if not head else (3 if len(same_metric) == 1 else 7)
    return 4 + METRIC_RANK[metric] if not head else 10 + METRIC_RANK[metric]


_Groups = dict[tuple[str, str], dict[str, list[ColumnName]]]


def _auto_choose(
    groups: _Groups,
    notes: list[str],
    path: object | None,
    names: list[str],
) -> tuple[ColumnName | None, ColumnName | None]:
    """The (train, val) pair to diagnose when the user named none: by preference
    (val_mae, then val_loss, then like with like), with notes on what was passed over."""
    usable = _usable_keys(groups, path, names)
    order = {k: i for i, k in enumerate(groups)}

    def rank(k: tuple[str, str]) -> tuple[int, int, int]:
        sides = groups[k]
        both = "train" in sides and "val" in sides
        side_rank = 0 if both else (1 if "val" in sides else 2)
        return (side_rank, _tier(k, usable), order[k])

    keys = sorted(usable, key=rank)
    best = keys[0]
    train = _pick(groups[best].get("train", []))
    val = _pick(groups[best].get("val", []))
    # A one-sided loss/mse pair: borrow the other side from its twin metric.
    twin = _COMPATIBLE.get(best[1])
    if twin and (train is None or val is None):
        other = groups.get((best[0], twin), {})
        if train is None and other.get("train"):
            train = _pick(other["train"])
        elif val is None and other.get("val"):
            val = _pick(other["val"])
    notes += _choice_notes(groups, keys, best, train, val)
    return train, val


def _usable_keys(groups: _Groups, path: object | None, names: list[str]) -> list[tuple[str, str]]:
    """The series groups a diagnosis could use; a HistoryError when there are none."""
    keys = [k for k in groups if _tier(k, list(groups)) < 99]
    if not keys:
        raise HistoryError(
            "no usable numeric series (expected a loss or error metric such as "
            f"loss, val_loss, mae, val_mae); columns: {_listing(names)}",
            path=path,
        )
    if all(_tier(k, keys) == 50 for k in keys) and not any(
        c.split_named for k in keys for side in groups[k].values() for c in side
    ):
        raise HistoryError(
            "no column is a known loss or error metric (such as loss, val_loss, mae, val_mae) "
            f"and none names a train/validation split; columns: {_listing(names)}; "
            "name the series with --train-col and --val-col",
            path=path,
        )
    return keys


def _choice_notes(
    groups: _Groups,
    keys: list[tuple[str, str]],
    best: tuple[str, str],
    train: ColumnName | None,
    val: ColumnName | None,
) -> list[str]:
    """What the automatic choice passed over: a side with no partner, other val series."""
    notes = []
    # The total loss beside its own head's metric is the normal Keras pair, not a choice
    # worth a note; several metrics or several heads are.
    if (train is None) != (val is None):
        trains = [k for k in keys if "train" in groups[k]]
        vals = [k for k in keys if "val" in groups[k]]
        if trains and vals:
            t_names = ", ".join(f"`{_pick(groups[k]['train']).raw}`" for k in trains[:4])  # type: ignore[union-attr]
            v_names = ", ".join(f"`{_pick(groups[k]['val']).raw}`" for k in vals[:4])  # type: ignore[union-attr]
            alone = val.raw if val is not None else train.raw  # type: ignore[union-attr]
            notes.append(
                f"no metric is logged for both train and validation (train {t_names}; validation "
                f"{v_names}); diagnosing `{alone}` alone (pair two with --train-col/--val-col)"
            )
    with_val = [k for k in keys if "val" in groups[k] and not (k != best and k == (best[0], "loss"))]
    if len(with_val) > 1:
        listed = ", ".join(f"`{_pick(groups[k]['val']).raw}`" for k in with_val[:8])  # type: ignore[union-attr]
        chosen = val.raw if val is not None else (train.raw if train is not None else "")
        notes.append(
            f"several validation series: {listed}; using `{chosen}` "
            "(choose another with --train-col/--val-col)"
        )
    return notes


def _find(name: str, names: list[str], parsed: list[ColumnName]) -> ColumnName | None:
    for col in parsed:
        if col.raw == name:
            return col
    norm = normalize(name)
    for col in parsed:
        if col.norm == norm:
            return col
    return None


def _resolve_overrides(
    names: list[str],
    parsed: list[ColumnName],
    groups: dict[tuple[str, str], dict[str, list[ColumnName]]],
    train_col: str | None,
    val_col: str | None,
    path: object | None,
) -> tuple[ColumnName | None, ColumnName | None]:
    found: dict[str, ColumnName | None] = {"train": None, "val": None}
    for side, wanted, field in (("train", train_col, "train_col"), ("val", val_col, "val_col")):
        if wanted is None:
            continue
        col = _find(wanted, names, parsed)
        if col is None:
            raise HistoryError(
                f"column `{wanted}` not found; available: {_listing(names)}",
                path=path,
                field=field,
            )
        found[side] = col
    # Only one given: its counterpart is the same metric on the other split.
    for side, other in (("train", "val"), ("val", "train")):
        given = found[side]
        one_given = train_col is None or val_col is None
        if given is not None and found[other] is None and one_given and given.kind == "series":
            found[other] = _pick(groups.get(given.key, {}).get(other, []))
    return found["train"], found["val"]


def _listing(names: list[str]) -> str:
    shown = [n if n else "<index>" for n in names]
    return ", ".join(shown)


def _trailing_keep(series: tuple[np.ndarray | None, ...], n: int) -> int:
    """Rows after the last one holding a value (test rows, ragged JSON) are dropped."""
    present = np.zeros(n, dtype=bool)
    for a in series:
        if a is not None:
            present |= ~np.isnan(a)
    idx = np.flatnonzero(present)
    return int(idx[-1]) + 1 if idx.size else n
