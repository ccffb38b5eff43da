"""The suggestion ladder: from a verdict (and the run's knobs, when known) to the next change.

This is the one place the ladder of the design notes ("Suggestion ladder") lives.
`fitdoc diagnose` takes its first step (`suggest`), `fitdoc tune` walks it
(`fitdoc.tune.plan` calls `ladder` on each trial), so the two never disagree:

- L2: 0 -> 1e-4, then x10 up to 1e-2; down: /10 to 1e-5, then 0.
- dropout: 0 -> 0.2 -> 0.5 and back. An overfit run already at the top of
  the L2 ladder keeps its L2 and adds dropout (one key per change).
- early stopping at the validation minimum: `training.early_stopping:
  {patience: P}` with P = `patience_for(epochs run)`, a tenth of the run
  (5..50 epochs); fitdoc's early stopping restores the best weights, so the
  model kept is the one at the minimum.
- more epochs: x2; more capacity: units x2, then one more hidden layer.

Without a config the change names the key but has no `from`/`to`, and its
text is worded generically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from fitdoc.diagnosis.features import Features
from fitdoc.diagnosis.rules.base import Rule
from fitdoc.diagnosis.rules.registry import get_rule
from fitdoc.errors import ConfigError
from fitdoc.formatting import value_text
from fitdoc.verdict import Cause, Change, Suggestion, Verdict

if TYPE_CHECKING:
    from fitdoc.config import AnyConfig

# The ladder's rungs (the design notes' "Suggestion ladder"): steps, not thresholds.
L2_START = 1e-4
L2_MAX = 1e-2
L2_MIN = 1e-5
DROPOUT_STEPS = (0.0, 0.2, 0.5)
PATIENCE_MIN, PATIENCE_MAX = 5, 50


@cache
def schema_max(section: str, name: str) -> int:
    """Where growth stops: the config schema's bound (`schema_max("ModelConfig", "units")`).
    The schema loads only when a known config's value grows, never on the curves-only path."""
    from fitdoc import config

    return config.upper_bound(getattr(config, section), name)


def _default(code: str, name: str) -> float:
    return float(get_rule(code).thresholds[name])


@dataclass(frozen=True)
class LadderNumbers:
    """The rule thresholds in force that the ladder reads, so it never repeats them:
    `strong_l2` (FD201's `min_l2`: from here L2 is the regularizer to ease first) and
    `late_minimum` (FD202's `min_best_position`: a val minimum before this point of the
    run is early enough to offer stopping there)."""

    strong_l2: float = field(default_factory=lambda: _default("FD201", "min_l2"))
    late_minimum: float = field(default_factory=lambda: _default("FD202", "min_best_position"))

    @classmethod
    def of(cls, rules: Sequence[Rule]) -> LadderNumbers:
        by_code = {r.code: r.thresholds for r in rules}
        return cls(
            strong_l2=float(by_code["FD201"]["min_l2"]),
            late_minimum=float(by_code["FD202"]["min_best_position"]),
        )


@dataclass(frozen=True)
class Knobs:
    """The config values the ladder turns. `hidden_layers`/`patience` None: unknown / off."""

    l2: float = 0.0
    l1: float = 0.0
    dropout: float = 0.0
    epochs: int = 1000
    units: int = 64
    hidden_layers: int | None = None
    patience: int | None = None

    @classmethod
    def of_config(cls, config: AnyConfig | None) -> Knobs | None:
        """From a `Config`/`ModelOnlyConfig`; None when the config is unknown."""
        if config is None:
            return None
        model, training = config.model, config.training
        stopping = training.early_stopping
        return cls(
            l2=float(model.l2),
            l1=float(model.l1),
            dropout=float(model.dropout),
            epochs=int(training.epochs),
            units=int(model.units),
            hidden_layers=int(model.hidden_layers),
            patience=None if stopping is None else int(stopping.patience),
        )

    @classmethod
    def of_settings(cls, settings: Mapping[str, Any]) -> Knobs:
        """From dotted settings (`{"model.l2": 0.001, ...}`), as `fitdoc tune` keeps them."""
        stopping = settings.get("training.early_stopping")
        layers = settings.get("model.hidden_layers")
        return cls(
            l2=float(settings.get("model.l2") or 0.0),
            l1=float(settings.get("model.l1") or 0.0),
            dropout=float(settings.get("model.dropout") or 0.0),
            epochs=int(settings.get("training.epochs") or 1000),
            units=int(settings.get("model.units") or 64),
            hidden_layers=None if layers is None else int(layers),
            patience=None if not isinstance(stopping, Mapping) else int(stopping.get("patience", 50)),
        )


@dataclass(frozen=True)
class RunPoint:
    """Where the run's validation minimum lies: epoch label, epochs run, position in (0, 1]."""

    best_epoch: int
    n_epochs: int
    best_position: float

    @classmethod
    def of_features(cls, f: Features | None) -> RunPoint | None:
        if f is None or f.best_epoch < 0:
            return None
        return cls(int(f.best_epoch), int(f.n_epochs), float(f.best_position))


def patience_for(n_epochs: int) -> int:
    """Early-stopping patience for a run of `n_epochs`: a tenth of it, 5..50 epochs."""
    return int(min(PATIENCE_MAX, max(PATIENCE_MIN, round(n_epochs / 10))))


def suggest(
    verdict: Verdict,
    cause: Cause | None,
    config: AnyConfig | None = None,
    features: Features | None = None,
    numbers: LadderNumbers | None = None,
) -> Suggestion | None:
    """The next change for this verdict, or None (balanced, inconclusive)."""
    changes = ladder(verdict, cause, Knobs.of_config(config), RunPoint.of_features(features), numbers)
    if not changes:
        return None
    return Suggestion(primary=changes[0], alternatives=tuple(changes[1:]))


def ladder(
    verdict: Verdict,
    cause: Cause | None,
    knobs: Knobs | None,
    run: RunPoint | None,
    numbers: LadderNumbers | None = None,
) -> list[Change]:
    """Every change the ladder offers for this verdict, best first (empty: none).

    `knobs` None (config unknown) gives generic changes with no `from`/`to`;
    `numbers` None reads the rules' default thresholds.
    """
    t = numbers or LadderNumbers()
    if verdict is Verdict.OVERFIT:
        changes = _overfit(cause, knobs, run, t)
    elif verdict is Verdict.UNDERFIT:
        changes = _underfit(cause, knobs, t)
    else:
        return []
    return [c for c in changes if c is not None]


def step(kind: str, knobs: Knobs | None, run: RunPoint | None) -> Change | None:
    """The ladder's one step of a kind (`fitdoc.diagnosis.gains.CHANGES`) from these knobs,
    or None where the ladder has no such step (no L2 to lower, dropout at the top).

    Without knobs the step is the generic wording of the same change.
    """
    if knobs is None:
        return _generic_step(kind, run)
    key, penalty = ("model.l1", knobs.l1) if knobs.l1 > 0 and knobs.l2 == 0 else ("model.l2", knobs.l2)
    name = "L1" if key == "model.l1" else "L2"
    if kind == "penalty_up":
        up = l2_up(penalty)
        return (
            None if up is None else _change(key, penalty, up, f"raise {name}" if penalty else f"add {name}")
        )
    if kind == "penalty_down":
        down = l2_down(penalty)
        verb = f"lower {name} tenfold" if down else f"remove {name}"
        return None if down is None else _change(key, penalty, down, verb)
    if kind == "dropout_up":
        up = dropout_up(knobs.dropout)
        verb = "raise dropout" if knobs.dropout else "add dropout"
        return None if up is None else _change("model.dropout", knobs.dropout, up, verb)
    if kind == "dropout_down":
        down = dropout_down(knobs.dropout)
        return None if down is None else _change("model.dropout", knobs.dropout, down, "lower dropout")
    if kind == "stop_at_min":
        return _early_stop(knobs, run)
    if kind == "epochs_x2":
        epochs = knobs.epochs
        return _change(
            "training.epochs",
            epochs,
            min(schema_max("TrainingConfig", "epochs"), epochs * 2),
            "train twice as long",
        )
    if kind == "units_x2":
        return _units(knobs, 2.0)
    raise ValueError(f"unknown change kind {kind!r}")


def _generic_step(kind: str, run: RunPoint | None) -> Change | None:
    if kind in ("penalty_up", "dropout_up", "stop_at_min"):
        cause = Cause.REBOUND if kind == "stop_at_min" else Cause.GAP
        generic = _generic_overfit(cause, run)
        index = {"penalty_up": 0, "dropout_up": 1, "stop_at_min": 0}[kind]
        if kind != "stop_at_min":
            generic = [c for c in generic if c is not None and c.key != "training.early_stopping"]
        return generic[index]
    if kind in ("penalty_down", "dropout_down"):
        return _generic_underfit(Cause.OVER_REGULARIZED)
    if kind == "epochs_x2":
        return _generic_underfit(Cause.NOT_CONVERGED)
    if kind == "units_x2":
        return _generic_underfit(Cause.CAPACITY)
    raise ValueError(f"unknown change kind {kind!r}")


def next_config(config: AnyConfig, suggestion: Suggestion) -> AnyConfig:
    """The config to train next: the primary change applied (and validated)."""
    change = suggestion.primary
    if change.to is None:
        raise ConfigError(f"the suggestion is generic ({change.text}); no value to apply", field=change.key)
    return config.with_changes({change.key: change.to})


# ---------------------------------------------------------------- ladders


def l2_up(l2: float) -> float | None:
    if l2 <= 0:
        return L2_START
    return None if l2 >= L2_MAX * (1 - 1e-9) else _round(min(L2_MAX, l2 * 10))


def l2_down(l2: float) -> float | None:
    if l2 <= 0:
        return None
    return 0.0 if l2 <= L2_MIN * 1.0001 else _round(max(L2_MIN, l2 / 10))


def dropout_up(rate: float) -> float | None:
    return next((step for step in DROPOUT_STEPS if step > rate + 1e-9), None)


def dropout_down(rate: float) -> float | None:
    return next((step for step in reversed(DROPOUT_STEPS) if step < rate - 1e-9), None)


# ---------------------------------------------------------------- by verdict


def _overfit(
    cause: Cause | None, knobs: Knobs | None, run: RunPoint | None, t: LadderNumbers
) -> list[Change | None]:
    if knobs is None:
        return _generic_overfit(cause, run)
    # A run that chose L1 alone climbs the L1 ladder; otherwise L2 is the penalty to raise.
    key, penalty = ("model.l1", knobs.l1) if knobs.l1 > 0 and knobs.l2 == 0 else ("model.l2", knobs.l2)
    more: list[Change | None] = list(_more_regularization(penalty, knobs.dropout, key))
    stop = _early_stop(knobs, run)
    if cause is Cause.REBOUND and stop is not None:
        return [stop, *more]
    if not more:
        return [stop, _units(knobs, 0.5)]
    early = [stop] if run is not None and run.best_position < t.late_minimum else []
    return [*more, *early]


def _generic_overfit(cause: Cause | None, run: RunPoint | None) -> list[Change | None]:
    regularize: list[Change | None] = [
        Change(
            "model.l2",
            None,
            None,
            "add L2 regularization (1e-4 on every hidden layer, x10 if still overfit)",
        ),
        Change("model.dropout", None, None, "add dropout between the hidden layers (0.2, then 0.5)"),
    ]
    where = f" (epoch {run.best_epoch + 1})" if run is not None else ""
    stop = Change("training.early_stopping", None, None, f"stop at the validation minimum{where}")
    return [stop, *regularize] if cause is Cause.REBOUND else [*regularize, stop]


def _more_regularization(l2: float, dropout: float, key: str = "model.l2") -> list[Change]:
    up_l2, up_do = l2_up(l2), dropout_up(dropout)
    name = "L1" if key == "model.l1" else "L2"
    l2_change = None if up_l2 is None else _change(key, l2, up_l2, f"raise {name}" if l2 else f"add {name}")
    do_change = (
        None
        if up_do is None
        else _change("model.dropout", dropout, up_do, "raise dropout" if dropout else "add dropout")
    )
    # No regularization yet, or L2 already in use: L2 first (the founding advice);
    # a run that chose dropout alone climbs the dropout ladder first.
    order = (do_change, l2_change) if dropout > 0 and l2 == 0 else (l2_change, do_change)
    return [c for c in order if c is not None]


def _early_stop(knobs: Knobs, run: RunPoint | None) -> Change | None:
    if run is None:
        return None
    patience = patience_for(run.n_epochs)
    if knobs.patience is not None:
        if knobs.patience <= patience:
            return None
        was = {"patience": knobs.patience}
        return _change(
            "training.early_stopping", was, {"patience": patience}, "stop sooner at the validation minimum"
        )
    return Change(
        "training.early_stopping",
        None,
        {"patience": patience},
        f"stop at the validation minimum (epoch {run.best_epoch + 1}): "
        f"training.early_stopping: none -> patience {patience}, restoring the best weights",
    )


def _underfit(cause: Cause | None, knobs: Knobs | None, t: LadderNumbers) -> list[Change | None]:
    if knobs is None:
        return [_generic_underfit(cause)]
    if cause is Cause.OVER_REGULARIZED:
        return _less_regularization(knobs, t)
    if cause is Cause.NOT_CONVERGED:
        epochs = knobs.epochs
        return [
            _change(
                "training.epochs",
                epochs,
                min(schema_max("TrainingConfig", "epochs"), epochs * 2),
                "train twice as long",
            ),
            _patience_up(knobs),
        ]
    return [_units(knobs, 2.0), _layers(knobs)]


def _less_regularization(knobs: Knobs, t: LadderNumbers) -> list[Change | None]:
    down_l2, down_do = l2_down(knobs.l2), dropout_down(knobs.dropout)
    l2_change = (
        None
        if down_l2 is None
        else _change("model.l2", knobs.l2, down_l2, "lower L2 tenfold" if down_l2 else "remove L2")
    )
    do_change = None if down_do is None else _change("model.dropout", knobs.dropout, down_do, "lower dropout")
    l1_change = None
    if knobs.l1 > 0:
        l1_change = _change("model.l1", knobs.l1, l2_down(knobs.l1), "lower L1 tenfold")
    # Ease the stronger regularizer first: strong L2, else dropout, else what is left.
    strong_l2 = knobs.l2 >= t.strong_l2 or knobs.dropout == 0
    order = (l2_change, do_change) if strong_l2 else (do_change, l2_change)
    changes: list[Change | None] = [c for c in (*order, l1_change) if c is not None]
    return changes or [_units(knobs, 2.0)]


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


def _patience_up(knobs: Knobs) -> Change | None:
    if knobs.patience is None:
        return None
    return _change(
        "training.early_stopping",
        {"patience": knobs.patience},
        {"patience": knobs.patience * 2},
        "be more patient",
    )


def _units(knobs: Knobs, factor: float) -> Change | None:
    units = knobs.units
    new = int(min(schema_max("ModelConfig", "units"), max(1, round(units * factor))))
    if new == units:
        return None
    return _change(
        "model.units",
        units,
        new,
        "more units per hidden layer" if factor > 1 else "fewer units per hidden layer",
    )


def _layers(knobs: Knobs) -> Change | None:
    layers = knobs.hidden_layers
    if layers is None or layers >= schema_max("ModelConfig", "hidden_layers"):
        return None
    return _change("model.hidden_layers", layers, layers + 1, "one more hidden layer")


def _change(key: str, old: Any, new: Any, verb: str) -> Change:
    return Change(
        key, old, new, f"{verb}: {key} {value_text(old, none='none')} -> {value_text(new, none='none')}"
    )


def _round(value: float) -> float:
    """0.001 / 10 is 0.00010000000000000002 in floats; people write 0.0001."""
    return float(f"{value:.3g}")
