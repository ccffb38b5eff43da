"""Understanding column names: `val_mae`, `Validation Loss`, `TrainLoss`,
`coil_val_losses`, `reg_val_mae`, `train_loss_epoch`, `lr-Adam`, ...

A name is normalized (camelCase split, lower case, non-alphanumerics to `_`),
then read as tokens: a split (train / val / test), an optional head prefix
(multi-output models), a metric (aliases folded: `mean_absolute_error` ->
`mae`, `losses` -> `loss`, `acc` -> `accuracy`) and an optional `_epoch` /
`_step` level suffix (Lightning). Names without a split are train series, as
Keras writes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")

SPLITS = {
    "train": "train",
    "training": "train",
    "trn": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "vali": "val",
    "eval": "val",
    "evaluation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}

# Longest first so multi-token aliases win over their parts.
_METRIC_ALIASES = (
    ("root_mean_squared_error", "rmse"),
    ("mean_absolute_percentage_error", "mape"),
    ("mean_squared_logarithmic_error", "msle"),
    ("mean_absolute_error", "mae"),
    ("mean_squared_error", "mse"),
    ("sparse_categorical_accuracy", "accuracy"),
    ("categorical_accuracy", "accuracy"),
    ("binary_accuracy", "accuracy"),
    ("losses", "loss"),
    ("acc", "accuracy"),
    ("maes", "mae"),
    ("mses", "mse"),
)

# Metrics where higher is better: never chosen as the curve to diagnose.
HIGHER_IS_BETTER = frozenset(
    {
        "accuracy",
        "auc",
        "f1",
        "precision",
        "recall",
        "r2",
        "iou",
        "dice",
        "dice_coef",
        "spearman",
        "pearson",
        "ssim",
        "psnr",
        "bleu",
        "rouge",
        "rouge1",
        "rouge2",
        "rougel",
        "rougelsum",
        "macro_f1",
        "micro_f1",
        "weighted_f1",
        "kappa",
        "mcc",
        "top_k_accuracy",
        "mean_io_u",
        "io_u",
        "jaccard",
        "map",
        "ap",
        "score",
        "corr",
        "r_squared",
    }
)

HIGHER_PREFIXES = ("rouge", "bleu", "accuracy", "f1", "auc", "precision", "recall", "r2")

# Lower-is-better metrics in order of preference (MAE first, as the design notes say).
METRIC_RANK = {
    "mae": 0,
    "loss": 1,
    "mse": 2,
    "rmse": 3,
    "mape": 4,
    "msle": 5,
    "wer": 6,
    "cer": 6,
    "nll": 7,
    "cross_entropy": 7,
    "bce": 7,
    "ce": 7,
    "huber": 7,
    "perplexity": 8,
    "ppl": 8,
    "error": 8,
    "err": 8,
    "kl": 9,
}

_EPOCH = frozenset({"epoch", "epoch_num", "epoch_idx", "epoch_index", "ep"})
_STEP = frozenset({"step", "global_step", "steps", "iteration", "iter", "batch"})
_IGNORED_TOKENS = frozenset({"metric", "metrics", "history", "hist", "set", "data_set"})
_OTHER_PREFIXES = ("lr", "learning_rate", "learning_rates", "epoch_seconds", "time", "duration")
_OTHER_WORDS = frozenset(
    {
        "runtime",
        "per",
        "samples",
        "second",
        "seconds",
        "flos",
        "grad",
        "norm",
        "momentum",
        "wall",
        "timestamp",
        "elapsed",
        "memory",
        # Counts and throughput: how much was processed, never how well (`eval_num_tokens`,
        # `num_input_tokens_seen`, `total_flos`, `train_tokens_per_second`).
        "num",
        "tokens",
        "token",
        "seen",
        "throughput",
        "count",
        "flops",
        "tflops",
        "mfu",
        "gpu",
        "batches",
        "examples",
    }
)


@dataclass(frozen=True)
class ColumnName:
    """What a column name says: `kind` is series / epoch / step / lr / reg / other."""

    raw: str
    norm: str
    kind: str
    split: str = ""
    head: str = ""
    metric: str = ""
    level: str = ""
    # The name says its split (`val_loss`); Keras' bare `loss` is train by convention only.
    split_named: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.head, self.metric)


def normalize(name: str) -> str:
    s = name.strip().strip('"').strip("'").lstrip("\ufeff")
    s = _CAMEL.sub("_", s).lower()
    return _NON_ALNUM.sub("_", s).strip("_")


def _fold_metric(tokens: list[str]) -> str:
    joined = "_".join(tokens)
    for alias, canon in _METRIC_ALIASES:
        if joined == alias or joined.endswith("_" + alias):
            return joined[: len(joined) - len(alias)] + canon
    return joined


@lru_cache(maxsize=4096)
def parse_name(raw: str, *, reg_is_head: bool = False) -> ColumnName:
    """Read one column name. `reg_is_head`: other `reg_*` columns exist, so
    `reg_loss` is a head called `reg`, not fitdoc's regularization extra."""
    norm = normalize(raw)
    if not norm or norm in {"unnamed_0", "index", "level_0"}:
        return ColumnName(raw, norm, "index")
    if norm in _EPOCH:
        return ColumnName(raw, norm, "epoch")
    if norm in _STEP:
        return ColumnName(raw, norm, "step")
    if norm == "reg_loss" and not reg_is_head:
        return ColumnName(raw, norm, "reg")
    tokens = [t for t in norm.split("_") if t not in _IGNORED_TOKENS]
    if not tokens:
        return ColumnName(raw, norm, "other")
    if tokens[0] in ("lr", "learning") or norm.startswith(_OTHER_PREFIXES[1:]):
        return ColumnName(raw, norm, "lr" if tokens[0] in ("lr", "learning") else "other")
    if _OTHER_WORDS.intersection(tokens) or norm in {"epochs", "steps", "phase", "time"}:
        return ColumnName(raw, norm, "other")
    level = ""
    if len(tokens) > 1 and tokens[-1] in ("epoch", "step"):
        level = tokens.pop()
    split = ""
    rest: list[str] = []
    for tok in tokens:
        if not split and tok in SPLITS:
            split = SPLITS[tok]
        else:
            rest.append(tok)
    if not rest:
        # `train`, `val`: a bare split name holds the loss.
        rest = ["loss"]
    if len(rest) > 1 and rest[-1].isdigit():
        rest.pop()  # Keras suffixes repeated metric names: `mean_io_u_5`
    metric_full = _fold_metric(rest)
    head, metric = _split_head(metric_full)
    return ColumnName(raw, norm, "series", split or "train", head, metric, level, bool(split))


_KNOWN_LONGEST_FIRST = sorted(HIGHER_IS_BETTER | set(METRIC_RANK), key=len, reverse=True)


def _split_head(metric_full: str) -> tuple[str, str]:
    """`power_mae` -> (`power`, `mae`); known multi-token metrics stay whole."""
    if metric_full.startswith(HIGHER_PREFIXES):
        return "", metric_full
    for known in _KNOWN_LONGEST_FIRST:
        if metric_full == known:
            return "", known
        if metric_full.endswith("_" + known):
            return metric_full[: -len(known) - 1], known
    parts = metric_full.rsplit("_", 1)
    if len(parts) == 2 and parts[1] in METRIC_RANK:
        return parts[0], parts[1]
    return "", metric_full


def parse_names(raws: list[str]) -> list[ColumnName]:
    norms = [normalize(r) for r in raws]
    reg_is_head = any(n.startswith("reg_") and n != "reg_loss" for n in norms)
    return [parse_name(r, reg_is_head=reg_is_head) for r in raws]
