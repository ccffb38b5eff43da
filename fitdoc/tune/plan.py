"""The tuning loop's decisions, with no training in sight.

Given the trials so far (their settings, verdict, cause and validation MAE),
`plan_next` says which configurations to train next and why, or why to stop.
Each step comes from `fitdoc.diagnosis.suggest.ladder`, the function `diagnose`
suggests from (the design notes' "Suggestion ladder"), so a tune's first move is
diagnose's suggestion; once an overfit and an underfit value bracket the
answer it bisects between them instead of jumping a whole ladder step. A configuration that
was tried once is never proposed again, so the loop always terminates.

Everything here is pure: the same trials give the same plan, which is what
makes `--resume` a matter of reading `tune.json` back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fitdoc.diagnosis.suggest import Knobs, RunPoint, dropout_down, dropout_up, l2_down, l2_up, ladder
from fitdoc.formatting import value_text, verdict_text
from fitdoc.verdict import Cause, Change, Verdict

# The config fields a tune may change. Two trials with equal values here are
# the same configuration (everything else comes from the base config).
TUNED_KEYS = (
    "model.l2",
    "model.dropout",
    "training.epochs",
    "training.early_stopping",
    "model.units",
    "model.l1",
    "model.hidden_layers",
)
# Keys the loop grows (x2 by default), capped at GROWTH_CAP times the base config.
GROWN_KEYS = ("training.epochs", "model.units", "model.hidden_layers")

# How far the loop may grow epochs and units above the base config.
GROWTH_CAP = 4


@dataclass(frozen=True)
class Axis:
    """A regularization knob and its ladder.

    `geometric` axes (L2) bisect with the geometric mean, linear ones
    (dropout) with the arithmetic mean. Two tried values closer than
    `resolution` (a ratio, or a difference) leave nothing between them.
    """

    key: str
    ladder: tuple[float, ...]
    geometric: bool
    resolution: float

    def up(self, value: float) -> float | None:
        """One ladder step more regularization, or None at the top (`fitdoc.diagnosis.suggest`'s ladder)."""
        return l2_up(value) if self.geometric else dropout_up(value)

    def down(self, value: float) -> float | None:
        """One ladder step less regularization, or None at zero (`fitdoc.diagnosis.suggest`'s ladder)."""
        return l2_down(value) if self.geometric else dropout_down(value)

    def midpoint(self, a: float, b: float) -> float | None:
        """The value between two tried ones, or None when they are neighbours already."""
        lo, hi = sorted((a, b))
        if self.geometric:
            # Zero sits one decade below the smallest ladder step, so that the
            # midpoint of 0 and 1e-4 is 1e-5, the ladder's own next step.
            floor = _positive_floor(self) / 10
            lo_eff = lo if lo > 0 else floor
            if hi / lo_eff <= self.resolution:
                return None
            mid = _clean(math.sqrt(lo_eff * hi), digits=3)
            return mid if mid >= floor * 10 * (1 - 1e-9) else None
        if hi - lo <= self.resolution + 1e-12:
            return None
        return _clean((lo + hi) / 2, digits=3)

    def step(
        self, value: float, direction: int, tried: Sequence[float], *, bisect: bool = True
    ) -> float | None:
        """Move one step up (+1) or down (-1) from `value`.

        The ladder step, unless a value already tried lies at or before it on
        that side: then halfway to that value (bisection), or nothing when
        the two are within `resolution` of each other (or `bisect` is off:
        that side has been checked already).
        """
        ladder_step = self.up(value) if direction > 0 else self.down(value)
        if direction > 0:
            side = [t for t in tried if t > value * (1 + 1e-9) + 1e-15]
        else:
            side = [t for t in tried if t < value * (1 - 1e-9)]
        if not side:
            return ladder_step
        nearest = min(side) if direction > 0 else max(side)
        if ladder_step is not None and (
            (direction > 0 and ladder_step < nearest * (1 - 1e-9))
            or (direction < 0 and ladder_step > nearest * (1 + 1e-9) + 1e-15)
        ):
            return ladder_step
        return self.midpoint(value, nearest) if bisect else None


L2 = Axis("model.l2", (0.0, 1e-5, 1e-4, 1e-3, 1e-2), geometric=True, resolution=3.2)
DROPOUT = Axis("model.dropout", (0.0, 0.2, 0.5), geometric=False, resolution=0.15)
AXES = (L2, DROPOUT)
AXIS_BY_KEY = {axis.key: axis for axis in AXES}


@dataclass(frozen=True)
class Trial:
    """One finished (or failed) training, as the loop remembers it.

    `settings` holds the values of TUNED_KEYS; `verdict` is None when the
    training failed (diverged) and produced no diagnosis. `val_mae` is the
    best validation MAE of the run (as Keras Tuner scores a trial).
    """

    index: int
    settings: Mapping[str, Any]
    verdict: Verdict | None
    cause: Cause | None = None
    val_mae: float | None = None
    suggestion: Mapping[str, Any] | None = None
    status: str = "completed"
    change: str = "baseline"
    reason: str = "the given config"
    run_dir: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    # For an inconclusive trial: the verdict its strongest rule voted for
    # (e.g. a clear overfit gap next to an unstable-training veto), so the
    # loop can still take a step in that direction.
    leaning: Verdict | None = None
    leaning_cause: Cause | None = None

    def __post_init__(self) -> None:
        # tune.json holds the names; a Trial holds the enums (a name read back is checked here).
        for name, kind in (
            ("verdict", Verdict),
            ("cause", Cause),
            ("leaning", Verdict),
            ("leaning_cause", Cause),
        ):
            value = getattr(self, name)
            if value is not None and not isinstance(value, kind):
                object.__setattr__(self, name, kind(value))

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "settings": dict(self.settings),
            "change": self.change,
            "reason": self.reason,
            "status": self.status,
            "verdict": _name(self.verdict),
            "cause": _name(self.cause),
            "val_mae": self.val_mae,
            "suggestion": None if self.suggestion is None else dict(self.suggestion),
            "run_dir": self.run_dir,
            "leaning": _name(self.leaning),
            "leaning_cause": _name(self.leaning_cause),
            **dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trial:
        known = {
            "index",
            "settings",
            "change",
            "reason",
            "status",
            "verdict",
            "cause",
            "val_mae",
            "suggestion",
            "run_dir",
            "leaning",
            "leaning_cause",
        }
        return cls(
            index=int(data["index"]),
            settings=dict(data["settings"]),
            verdict=data.get("verdict"),
            cause=data.get("cause"),
            val_mae=None if data.get("val_mae") is None else float(data["val_mae"]),
            suggestion=data.get("suggestion"),
            status=str(data.get("status", "completed")),
            change=str(data.get("change", "")),
            reason=str(data.get("reason", "")),
            run_dir=data.get("run_dir"),
            extra={k: v for k, v in data.items() if k not in known},
            leaning=data.get("leaning"),
            leaning_cause=data.get("leaning_cause"),
        )


def _name(value: Verdict | Cause | None) -> str | None:
    return None if value is None else value.value


@dataclass(frozen=True)
class Move:
    """A configuration to train next: its full tuned settings, the trial it
    starts from, the edit as `key: from -> to`, and why."""

    settings: Mapping[str, Any]
    parent: int | None
    change: str
    reason: str


@dataclass(frozen=True)
class Plan:
    """What to do next: some moves, or none and the reason to stop."""

    moves: tuple[Move, ...]
    stop_reason: str | None = None


def settings_key(settings: Mapping[str, Any]) -> tuple[Any, ...]:
    """The identity of a configuration for "never retrain the same thing"."""
    return tuple(_normalize(settings.get(key)) for key in TUNED_KEYS)


def best_trial(trials: Sequence[Trial]) -> Trial | None:
    """The trial with the lowest validation MAE (ties: the earliest)."""
    scored = [t for t in trials if t.val_mae is not None and math.isfinite(t.val_mae)]
    return min(scored, key=lambda t: (t.val_mae, t.index)) if scored else None


def plan_next(
    trials: Sequence[Trial],
    base: Mapping[str, Any],
    *,
    max_runs: int,
    max_parallel: int = 1,
) -> Plan:
    """The next trials to run (at most `max_parallel`), or why to stop.

    - No trial yet: train the base config.
    - A balanced trial exists: check the neighbouring steps of the best
      balanced one on its ladder (both at once when running in parallel);
      stop when they have been tried.
    - Otherwise follow the latest trial's verdict: overfit -> more
      regularization, underfit over-regularized -> less, not converged ->
      more epochs, capacity -> more units; inconclusive -> the way its
      strongest rule leans, else a longer history. Fall back to earlier
      trials when the latest leaves nothing untried.
    """
    left = max_runs - len(trials)
    if left <= 0:
        return Plan((), f"budget spent ({len(trials)} of {max_runs} trainings)")
    if not trials:
        return Plan((Move(dict(base), None, "baseline", "train the given config first"),))
    width = max(1, min(max_parallel, left))
    tried = {settings_key(t.settings) for t in trials}

    balanced = [t for t in trials if t.verdict is Verdict.BALANCED]
    if balanced:
        anchor = min(balanced, key=lambda t: (_score(t), t.index))
        moves = _dedup(_neighbour_moves(anchor, trials), tried)
        if not moves:
            return Plan(
                (),
                f"trial {anchor.index} is balanced and its neighbouring steps have been checked",
            )
        return Plan(tuple(moves[:width]))

    for trial in sorted(trials, key=lambda t: -t.index):
        moves = _dedup(_moves_from(trial, trials, base), tried)
        if moves:
            return Plan(tuple(moves[:width]))
    return Plan((), "no untried step left on the ladders")


# ---------------------------------------------------------------- moves


def axis_of(settings: Mapping[str, Any]) -> Axis:
    """The knob a configuration regularizes with: dropout when it uses
    dropout alone, L2 otherwise (L2 first, as the founding advice says)."""
    l2 = float(settings.get("model.l2") or 0.0)
    dropout = float(settings.get("model.dropout") or 0.0)
    return DROPOUT if dropout > 0 and l2 == 0 else L2


def _other(axis: Axis) -> Axis:
    return DROPOUT if axis is L2 else L2


def _tried_on_line(axis: Axis, settings: Mapping[str, Any], trials: Sequence[Trial]) -> list[float]:
    """Values of `axis` tried with the other knob as in `settings`."""
    other = _other(axis).key
    here = _normalize(settings.get(other))
    return [
        float(t.settings.get(axis.key) or 0.0) for t in trials if _normalize(t.settings.get(other)) == here
    ]


def _axis_move(
    trial: Trial, axis: Axis, direction: int, trials: Sequence[Trial], why: str, *, bisect: bool = True
) -> Move | None:
    value = float(trial.settings.get(axis.key) or 0.0)
    tried = _tried_on_line(axis, trial.settings, trials)
    target = axis.step(value, direction, tried, bisect=bisect)
    if target is None:
        return None
    ladder = axis.up(value) if direction > 0 else axis.down(value)
    how = "ladder step" if ladder is not None and _close(target, ladder) else "bisection"
    if how == "bisection":
        side = [t for t in tried if (t > value if direction > 0 else t < value)]
        nearest = min(side) if direction > 0 else max(side)
        mean = "geometric mean" if axis.geometric else "mean"
        how = f"{mean} of {_fmt(value)} (trial {trial.index}) and {_fmt(nearest)}, already tried"
    return _move(trial, {axis.key: target}, f"{why}; {how}")


def _moves_from(trial: Trial, trials: Sequence[Trial], base: Mapping[str, Any]) -> list[Move]:
    """The ladder's changes for this trial's verdict (`fitdoc.diagnosis.suggest.ladder`, the
    function `diagnose` suggests from), each as a move; steps on the L2 and
    dropout ladders bisect towards a value already tried beyond them."""
    head = f"trial {trial.index} {trial_label(trial)}"
    verdict, cause = trial.verdict, trial.cause
    if verdict is Verdict.INCONCLUSIVE and trial.leaning in (Verdict.OVERFIT, Verdict.UNDERFIT):
        verdict, cause = trial.leaning, trial.leaning_cause
    moves: list[Move | None] = []
    if verdict is not None:
        changes = ladder(verdict, cause, Knobs.of_settings(trial.settings), run_point(trial))
        moves = [
            _change_move(trial, change, trials, base, head) for change in _suggested_first(changes, trial)
        ]
    if trial.verdict is Verdict.INCONCLUSIVE:
        moves.append(_grow(trial, base, "training.epochs", None, f"{head} -> a longer history"))
    return [m for m in moves if m is not None]


def _suggested_first(changes: Sequence[Change], trial: Trial) -> list[Change]:
    """The ladder's changes with the trial's own suggestion first: where the gain model
    reordered diagnose's steps (`fitdoc.diagnosis.decide.rank_by_gain`), tune follows it."""
    said = trial.suggestion or {}
    first = [c for c in changes if c.key == said.get("key") and c.to == said.get("to")]
    return [*first, *(c for c in changes if c not in first)]


def run_point(trial: Trial) -> RunPoint | None:
    """Where the trial's validation minimum was, from what `fitdoc tune` recorded."""
    best, ran = trial.extra.get("best_epoch"), trial.extra.get("epochs_run")
    if not isinstance(best, (int, float)) or not isinstance(ran, (int, float)) or ran <= 0 or best < 0:
        return None
    position = trial.extra.get("best_position")
    if not isinstance(position, (int, float)):
        position = (best + 1) / ran
    return RunPoint(int(best), int(ran), float(position))


def _change_move(
    trial: Trial, change: Change, trials: Sequence[Trial], base: Mapping[str, Any], head: str
) -> Move | None:
    verb = change.text.split(":", 1)[0]
    why = f"{head} -> {verb}"
    axis = AXIS_BY_KEY.get(change.key)
    if axis is not None:
        direction = 1 if float(change.to) > float(change.from_ or 0.0) else -1
        return _axis_move(trial, axis, direction, trials, why)
    if change.key in GROWN_KEYS and isinstance(change.to, int) and change.to > (change.from_ or 0):
        return _grow(trial, base, change.key, change.to, why)
    if change.key in TUNED_KEYS:
        return _move(trial, {change.key: change.to}, why)
    return None


def _neighbour_moves(anchor: Trial, trials: Sequence[Trial]) -> list[Move]:
    axis = axis_of(anchor.settings)
    head = f"trial {anchor.index} is balanced (best so far)"
    moves = [
        _axis_move(anchor, axis, -1, trials, f"{head}: check the neighbouring step below", bisect=False),
        _axis_move(anchor, axis, +1, trials, f"{head}: check the neighbouring step above", bisect=False),
    ]
    return [m for m in moves if m is not None]


def _grow(trial: Trial, base: Mapping[str, Any], key: str, target: int | None, why: str) -> Move | None:
    """`key` up to `target` (default x2), at most GROWTH_CAP times the base config's value."""
    now = int(trial.settings.get(key) or 0)
    if now <= 0:
        return None
    cap = int(base.get(key) or now) * GROWTH_CAP
    target = min(now * 2 if target is None else target, cap)
    if target <= now:
        return None
    return _move(trial, {key: target}, f"{why}; x{target / now:g} (at most x{GROWTH_CAP} the base config)")


def _move(trial: Trial, changes: Mapping[str, Any], reason: str) -> Move:
    settings = {**dict(trial.settings), **dict(changes)}
    edits = [
        f"{k}: {_fmt(trial.settings.get(k))} -> {_fmt(v)}"
        for k, v in changes.items()
        if _normalize(trial.settings.get(k)) != _normalize(v)
    ]
    return Move(settings, trial.index, ", ".join(edits) or "(no change)", reason)


def _dedup(moves: Sequence[Move], tried: set[tuple[Any, ...]]) -> list[Move]:
    out: list[Move] = []
    seen = set(tried)
    for move in moves:
        key = settings_key(move.settings)
        if key not in seen:
            seen.add(key)
            out.append(move)
    return out


# ---------------------------------------------------------------- helpers


def _score(trial: Trial) -> float:
    return trial.val_mae if trial.val_mae is not None and math.isfinite(trial.val_mae) else math.inf


def trial_label(trial: Trial) -> str:
    """`overfit (gap)`, `inconclusive, leaning overfit (gap)`, or the status of a failed trial."""
    if trial.verdict is None:
        return trial.status
    text = verdict_text(trial.verdict, trial.cause)
    if trial.verdict is Verdict.INCONCLUSIVE and trial.leaning:
        text += f", leaning {verdict_text(trial.leaning, trial.leaning_cause)}"
    return text


def _positive_floor(axis: Axis) -> float:
    return min(v for v in axis.ladder if v > 0)


def _clean(value: float, digits: int = 6) -> float:
    return float(f"{value:.{digits}g}")


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-15)


def _normalize(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return _clean(float(value))
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _normalize(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_normalize(v) for v in value)
    return repr(value)


def _fmt(value: Any) -> str:
    return value_text(value, none="off")
