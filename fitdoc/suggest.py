"""From a verdict (and the run's config, when known) to one concrete next change.

The changes are steps on fixed ladders (DESIGN.md "Suggestion ladder"):

- L2: 0 -> 1e-4, then x10 up to 1e-2; down: /10 to 1e-5, then 0.
- dropout: 0 -> 0.2 -> 0.5 and back.
- early stopping at the validation minimum: `training.early_stopping:
  {patience: P}` with P a tenth of the run (5..50 epochs); fitdoc's early
  stopping restores the best weights, so the model kept is the one at the
  minimum. The alternative `training.epochs: E -> best_epoch + 1` reproduces
  that epoch exactly with the same seed.
- more epochs: x2; more capacity: units x2, then one more hidden layer.

Without a config the change names the key but has no `from`/`to`, and its
text is worded generically.
"""

from __future__ import annotations

from typing import Any

from fitdoc.errors import ConfigError
from fitdoc.features import Features
from fitdoc.rules._config import regularization
from fitdoc.verdict import Cause, Change, Suggestion, Verdict

L2_START = 1e-4
L2_MAX = 1e-2
L2_MIN = 1e-5
DROPOUT_STEPS = (0.0, 0.2, 0.5)
STRONG_L2 = 1e-3  # from here L2 is the regularizer to ease first
MAX_UNITS = 65536
MAX_LAYERS = 64
MAX_EPOCHS = 1_000_000


def suggest(
    verdict: Verdict, cause: Cause | None, config: Any = None, features: Features | None = None
) -> Suggestion | None:
    """The next change for this verdict, or None (balanced, inconclusive)."""
    if verdict is Verdict.OVERFIT:
        changes = _overfit(cause, config, features)
    elif verdict is Verdict.UNDERFIT:
        changes = _underfit(cause, config, features)
    else:
        return None
    changes = [c for c in changes if c is not None]
    if not changes:
        return None
    return Suggestion(primary=changes[0], alternatives=tuple(changes[1:]))


def next_config(config: Any, suggestion: Suggestion) -> Any:
    """The config to train next: the primary change applied (and validated)."""
    change = suggestion.primary
    if change.to is None:
        raise ConfigError(f"the suggestion is generic ({change.text}); no value to apply", field=change.key)
    return config.with_changes({change.key: change.to})


# ---------------------------------------------------------------- ladders


def l2_up(l2: float) -> float | None:
    if l2 <= 0:
        return L2_START
    return None if l2 >= L2_MAX else _round(min(L2_MAX, l2 * 10))


def l2_down(l2: float) -> float | None:
    if l2 <= 0:
        return None
    return 0.0 if l2 <= L2_MIN * 1.0001 else _round(max(L2_MIN, l2 / 10))


def dropout_up(rate: float) -> float | None:
    return next((step for step in DROPOUT_STEPS if step > rate + 1e-9), None)


def dropout_down(rate: float) -> float | None:
    return next((step for step in reversed(DROPOUT_STEPS) if step < rate - 1e-9), None)


# ---------------------------------------------------------------- by verdict


def _overfit(cause: Cause | None, config: Any, f: Features | None) -> list[Change | None]:
    reg = regularization(config)
    if reg is None:
        regularize = [
            Change(
                "model.l2",
                None,
                None,
                "add L2 regularization (1e-4 on every hidden layer, x10 if still overfit)",
            ),
            Change("model.dropout", None, None, "add dropout between the hidden layers (0.2, then 0.5)"),
        ]
        stop = Change(
            "training.early_stopping",
            None,
            None,
            "stop at the validation minimum"
            + (f" (epoch {f.best_epoch})" if f and f.best_epoch >= 0 else ""),
        )
        return [stop, *regularize] if cause is Cause.REBOUND else [*regularize, stop]
    regularize = _more_regularization(reg.l2, reg.dropout)
    stop = _early_stop(config, f)
    if cause is Cause.REBOUND and stop is not None:
        return [stop, *regularize]
    if not regularize:
        return [stop, _units(config, 0.5)]
    early = [stop] if f is not None and f.best_position < 0.75 else []
    return [*regularize, *early]


def _more_regularization(l2: float, dropout: float) -> list[Change | None]:
    up_l2, up_do = l2_up(l2), dropout_up(dropout)
    l2_change = None if up_l2 is None else _change("model.l2", l2, up_l2, "raise L2" if l2 else "add L2")
    do_change = (
        None
        if up_do is None
        else _change("model.dropout", dropout, up_do, "raise dropout" if dropout else "add dropout")
    )
    # No regularization yet, or L2 already in use: L2 first (the founding advice);
    # a run that chose dropout alone climbs the dropout ladder first.
    if dropout > 0 and l2 == 0:
        return [c for c in (do_change, l2_change) if c is not None]
    return [c for c in (l2_change, do_change) if c is not None]


def _early_stop(config: Any, f: Features | None) -> Change | None:
    training = getattr(config, "training", None)
    if training is None or f is None or f.best_epoch < 0:
        return None
    current = training.early_stopping
    patience = int(min(50, max(5, round(f.n_epochs / 10))))
    if current is not None:
        if current.patience <= patience:
            return None
        was = {"patience": current.patience}
        return _change(
            "training.early_stopping", was, {"patience": patience}, "stop sooner at the validation minimum"
        )
    return Change(
        "training.early_stopping",
        None,
        {"patience": patience},
        f"stop at the validation minimum (epoch {f.best_epoch}): "
        f"training.early_stopping: none -> patience {patience}, restoring the best weights",
    )


def _underfit(cause: Cause | None, config: Any, f: Features | None) -> list[Change | None]:
    reg = regularization(config)
    if reg is None:
        return [_generic_underfit(cause)]
    if cause is Cause.OVER_REGULARIZED:
        down_l2, down_do = l2_down(reg.l2), dropout_down(reg.dropout)
        l2_change = (
            None
            if down_l2 is None
            else _change("model.l2", reg.l2, down_l2, "lower L2 tenfold" if down_l2 else "remove L2")
        )
        do_change = (
            None if down_do is None else _change("model.dropout", reg.dropout, down_do, "lower dropout")
        )
        l1_change = None
        if reg.l1 > 0:
            l1_change = _change("model.l1", reg.l1, l2_down(reg.l1), "lower L1 tenfold")
        # Ease the stronger regularizer first: strong L2, else dropout, else what is left.
        order = (l2_change, do_change) if reg.l2 >= STRONG_L2 or reg.dropout == 0 else (do_change, l2_change)
        changes = [c for c in (*order, l1_change) if c is not None]
        return changes or [_units(config, 2.0)]
    if cause is Cause.NOT_CONVERGED:
        epochs = config.training.epochs
        return [
            _change("training.epochs", epochs, min(MAX_EPOCHS, epochs * 2), "train twice as long"),
            _patience_up(config),
        ]
    return [_units(config, 2.0), _layers(config)]


def _generic_underfit(cause: Cause | None) -> Change:
    if cause is Cause.OVER_REGULARIZED:
        return Change(
            "model.l2",
            None,
            None,
            "lower the regularization: L2 /10 (down to 1e-5, then 0), dropout 0.5 -> 0.2 -> 0",
        )
    if cause is Cause.NOT_CONVERGED:
        return Change("training.epochs", None, None, "train for twice as many epochs")
    return Change(
        "model.units", None, None, "give the network more capacity: twice the units per hidden layer"
    )


def _patience_up(config: Any) -> Change | None:
    current = config.training.early_stopping
    if current is None:
        return None
    return _change(
        "training.early_stopping",
        {"patience": current.patience},
        {"patience": current.patience * 2},
        "be more patient",
    )


def _units(config: Any, factor: float) -> Change | None:
    units = config.model.units
    new = int(min(MAX_UNITS, max(1, round(units * factor))))
    if new == units:
        return None
    return _change(
        "model.units",
        units,
        new,
        "more units per hidden layer" if factor > 1 else "fewer units per hidden layer",
    )


def _layers(config: Any) -> Change | None:
    layers = config.model.hidden_layers
    if layers >= MAX_LAYERS:
        return None
    return _change("model.hidden_layers", layers, layers + 1, "one more hidden layer")


def _change(key: str, old: Any, new: Any, verb: str) -> Change:
    return Change(key, old, new, f"{verb}: {key} {_text(old)} -> {_text(new)}")


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_text(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "none"
    if isinstance(value, float):
        if value == 0:
            return "0"
        # 0.0001 as people write it in a config; tiny values in e-notation.
        return f"{value:.10f}".rstrip("0").rstrip(".") if abs(value) >= 1e-4 else f"{value:g}"
    return str(value)


def _round(value: float) -> float:
    """0.001 / 10 is 0.00010000000000000002 in floats; people write 0.0001."""
    return float(f"{value:.3g}")
