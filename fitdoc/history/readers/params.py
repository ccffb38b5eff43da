"""A run's logged params (MLflow params, W&B config, TensorBoard hparams) -> the knobs the ladder turns.

The one mapping from the names people log (`l2`, `weight_decay`, `dropout`,
`lr`, `epochs`, `units`, ...) to fitdoc's dotted config keys (`model.l2`,
`training.learning_rate`, ...). Every reader that sees params calls
`knobs_from_params`, and the history loader turns its settings into a config
(`config_from_settings`), so the suggestion is a concrete edit and a note
says which params were used.

A name is matched on its last component (`optimizer/lr`, `model.dropout`,
`hparams.l2` all count), case- and dash-insensitive. Values are read as
people write them (`"1e-4"`, `0`, `"0.2"`); a value that does not fit the
knob (`dropout=1.5`, `epochs=many`, a list) is left out with a note, never
guessed at.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fitdoc.config import AnyConfig

# name as logged (normalized) -> dotted config key. `weight_decay` is read as L2: for Adam
# (not AdamW) it is the same penalty, and it is the knob people turn for the same purpose.
PARAM_KNOBS: dict[str, str] = {
    "l2": "model.l2",
    "l2_reg": "model.l2",
    "l2_lambda": "model.l2",
    "l2_penalty": "model.l2",
    "l2_regularization": "model.l2",
    "weight_decay": "model.l2",
    "wd": "model.l2",
    "l1": "model.l1",
    "l1_reg": "model.l1",
    "l1_lambda": "model.l1",
    "dropout": "model.dropout",
    "dropout_rate": "model.dropout",
    "dropout_prob": "model.dropout",
    "lr": "training.learning_rate",
    "learning_rate": "training.learning_rate",
    "epochs": "training.epochs",
    "num_epochs": "training.epochs",
    "n_epochs": "training.epochs",
    "max_epochs": "training.epochs",
    "num_train_epochs": "training.epochs",
    "units": "model.units",
    "hidden_units": "model.units",
    "hidden_size": "model.units",
    "hidden_dim": "model.units",
    "width": "model.units",
    "hidden_layers": "model.hidden_layers",
    "num_layers": "model.hidden_layers",
    "n_layers": "model.hidden_layers",
    "layers": "model.hidden_layers",
    "depth": "model.hidden_layers",
    "batch_size": "training.batch_size",
}
# Keys whose knowledge makes the run's regularization known (the rules read it, the ladder turns it).
REGULARIZATION_KEYS = frozenset({"model.l2", "model.l1", "model.dropout"})
_INT_KEYS = frozenset({"training.epochs", "model.units", "model.hidden_layers", "training.batch_size"})
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class ParamKnobs:
    """What a run's params say about its knobs: dotted settings and the notes to show."""

    settings: dict[str, float | int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def knows_regularization(self) -> bool:
        return bool(REGULARIZATION_KEYS & set(self.settings))


def normalize_param(name: str) -> str:
    """`optimizer/LR` -> `lr`, `model.drop-out` -> `drop_out`: the last component, lowercased."""
    last = re.split(r"[/.]", name.strip())[-1]
    return last.lower().replace("-", "_").replace(" ", "_")


def knobs_from_params(params: Mapping[str, object], source: str = "run params") -> ParamKnobs:
    """The knobs `params` name, first name wins per knob; notes say which params were used.

    `source` words the note's start ("run params", "W&B config", "hparams").
    """
    settings: dict[str, float | int] = {}
    used: list[str] = []
    skipped: list[str] = []
    for name in sorted(params, key=lambda n: (n.count("/") + n.count("."), n)):
        key = PARAM_KNOBS.get(normalize_param(name))
        if key is None or key in settings:
            continue
        value = _knob_value(key, params[name])
        if value is None:
            skipped.append(f"{name}={_shown(params[name])}")
            continue
        settings[key] = value
        used.append(f"{name}={_shown(params[name])} as {key}")
    notes: list[str] = []
    if used:
        tail = (
            ""
            if REGULARIZATION_KEYS & set(settings)
            else " (no regularization param, so the suggestion stays generic)"
        )
        notes.append(f"{source} used: {', '.join(used)}{tail}")
    if skipped:
        notes.append(f"{source} not used (not a value that knob takes): {', '.join(skipped)}")
    return ParamKnobs(settings, tuple(notes))


def _shown(value: object) -> str:
    text = str(value)
    return text if len(text) <= 24 else text[:21] + "..."


def _knob_value(key: str, raw: object) -> float | int | None:
    """`raw` as the knob's number, or None when it is not one the knob can take."""
    number = _number(raw)
    if number is None or not math.isfinite(number) or number < 0:
        return None
    if key == "model.dropout":
        return number if number < 1 else None
    if key in _INT_KEYS:
        return int(number) if number.is_integer() and number >= 1 else None
    if key == "training.learning_rate" and number == 0:
        return None
    return number


def _number(raw: object) -> float | None:
    if isinstance(raw, bool):
        return None  # `dropout: true` says a switch, not a rate
    if isinstance(raw, (int, float)):
        return float(raw)
    if isinstance(raw, str) and _NUMBER.match(raw.strip()):
        return float(raw.strip())
    return None


def config_from_settings(settings: Mapping[str, float | int]) -> AnyConfig:
    """A model-only config (`fitdoc.config.ModelOnlyConfig`) with the settings applied over
    fitdoc's defaults; imported here, so a history without params never loads the schema."""
    from fitdoc.config import validate_config

    raw: dict[str, dict[str, float | int]] = {}
    for key, value in settings.items():
        section, leaf = key.split(".", 1)
        raw.setdefault(section, {})[leaf] = value
    return validate_config(raw, path="<run params>", model_only=True)
