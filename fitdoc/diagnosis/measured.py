"""The measured decision: a probed run's verdict read off its neighbours' validation curves.

`fitdoc train --probe` trains, beside the run, the nets one ladder step away
(L2 or L1 one rung up and down, dropout one step up and down, and for a narrow
net twice the units), with the same data and batch order (and the same
initial weights, but for the wider net, which starts from its own seeded build). Here they are compared on what a
user would compare them on, the final validation MAE (a mean over the last
tenth of the epochs, as every figure fitdoc quotes; never `val_loss`, whose
L2 term favours the less regularized net):

- a neighbour *wins* when it lowers the final val MAE by at least FD501's
  `min_gain` and by more than `noise_z` spreads of the paired per-epoch
  ratio (neighbour / run) over the final window: the two nets saw the same
  batches, so that spread is the noise of this comparison;
- stopping at the validation minimum (the run's own smoothed curve) is a
  candidate too (FD502);
- the best winner decides: a more regularized neighbour or early stopping
  is `overfit`, a less regularized one `underfit (over-regularized)`, the
  wider net `underfit (capacity)`;
- with no winner, a val that still fell clearly over the last doubling
  (FD503) is `underfit (not converged)`: train longer; else `balanced`.

The curves-only diagnosis is still made (`fitdoc.diagnosis.decide`) and kept
beside the measured one; a disagreement becomes a note.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from fitdoc.diagnosis.features import smoothing_window
from fitdoc.formatting import value_text
from fitdoc.history.curves import Curves
from fitdoc.history.rundir import Probe
from fitdoc.verdict import Cause, Change, Diagnosis, Finding, Measurement, Suggestion, Verdict

if TYPE_CHECKING:
    from fitdoc.config import AnyConfig

# How often the measured verdict agreed with held-out labels on the corpus factory's
# regression runs, per branch (benchmarks/probe_quality.py prints them): the confidence
# a measured verdict is shown with.
CONFIDENCE = {"overfit": 0.61, "underfit": 0.92, "balanced": 0.80}

REGULARIZATION_KEYS = ("model.l2", "model.l1", "model.dropout")
# More units loosens the net's constraint as less regularization does (DESIGN.md's width step).
WIDTH_KEY = "model.units"
# Fewer epochs than this say too little for a measured comparison; the curves decide.
MIN_EPOCHS = 10


@dataclass(frozen=True)
class Neighbour:
    """One probed net: the change that made it, its val MAE per epoch, how its training ended."""

    change: Change
    val: np.ndarray
    status: str = "completed"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    cause: Cause | None
    winner: Measurement | None
    measurements: tuple[Measurement, ...]
    findings: tuple[Finding, ...]
    still_falling: float


def direction(change: Change) -> int:
    """+1 when the change constrains the net more (more regularization, fewer units), -1
    less, 0 when it is neither."""
    if change.key not in (*REGULARIZATION_KEYS, WIDTH_KEY) or change.from_ is None or change.to is None:
        return 0
    sign = int(np.sign(float(change.to) - float(change.from_)))
    return -sign if change.key == WIDTH_KEY else sign


def final_value(values: np.ndarray, window: int) -> float:
    tail = values[-window:]
    tail = tail[np.isfinite(tail)]
    return float(tail.mean()) if tail.size else math.nan


def smoothed(values: np.ndarray, window: int) -> np.ndarray:
    """Centred running mean (`window` epochs, shorter at the ends)."""
    kernel = np.ones(window)
    sums = np.convolve(values, kernel, mode="same")
    counts = np.convolve(np.ones_like(values), kernel, mode="same")
    out: np.ndarray = sums / counts
    return out


def compare_neighbour(run_val: np.ndarray, nb: Neighbour, t: Mapping[str, float]) -> Measurement:
    """The neighbour's final val MAE against the run's, over the epochs both finished."""
    n = min(run_val.size, nb.val.size)
    comparable = nb.status != "diverged" and n == run_val.size and n >= 3
    window = smoothing_window(n)
    if not comparable:
        return Measurement(nb.change, None, None, None, False, nb.status, direction(nb.change))
    run_final = final_value(run_val[:n], window)
    nb_final = final_value(nb.val[:n], window)
    ratio = nb.val[n - window : n] / run_val[n - window : n]
    ratio = ratio[np.isfinite(ratio)]
    noise = float(np.std(ratio)) if ratio.size >= 2 else math.inf
    if not (math.isfinite(run_final) and run_final > 0 and math.isfinite(nb_final)):
        return Measurement(nb.change, None, None, None, False, nb.status, direction(nb.change))
    gain = 1.0 - nb_final / run_final
    clear = gain >= t["min_gain"] and gain > t["noise_z"] * noise
    return Measurement(nb.change, nb_final, gain, noise, clear, nb.status, direction(nb.change))


def early_stop(run_val: np.ndarray, t: Mapping[str, float], epochs_planned: int | None = None) -> Measurement:
    """Stopping at the smoothed val minimum, as a candidate change like the neighbours."""
    n = run_val.size
    window = smoothing_window(n)
    smooth = smoothed(run_val, window)
    best = int(np.nanargmin(smooth))
    run_final = final_value(run_val, window)
    gain = 1.0 - float(smooth[best]) / run_final if run_final > 0 else math.nan
    tail = run_val[-window:] / run_final
    noise = float(np.std(tail)) if tail.size >= 2 else math.inf
    clear = bool(
        math.isfinite(gain) and gain >= t["min_gain"] and gain > noise and best < t["max_position"] * n
    )
    patience = max(5, min(50, n // 10))
    change = Change(
        "training.early_stopping",
        None,
        {"patience": patience},
        f"stop at the validation minimum (epoch {best + 1} of {epochs_planned or n})",
    )
    return Measurement(change, float(smooth[best]), gain, noise, clear, "completed", 1, at_epoch=best + 1)


def still_falling(run_val: np.ndarray) -> float:
    """Relative fall of the final val against its smoothed level half-way (E/2)."""
    n = run_val.size
    window = smoothing_window(n)
    if n < 2 * window or n < 6:
        return math.nan
    smooth = smoothed(run_val, window)
    half, late = smooth[n // 2 - 1], smooth[(3 * n) // 4 - 1]
    end = final_value(run_val, window)
    if not (half > 0 and late > 0):
        return math.nan
    # Still falling means falling at the end too: a val that fell to E/2..3E/4 and has
    # since turned back up (a noisy dropout run) has nothing left to gain from more epochs.
    return 1.0 - end / half if end < late else 0.0


def decide(
    run_val: np.ndarray,
    neighbours: Sequence[Neighbour],
    thresholds: Mapping[str, Mapping[str, float]],
    *,
    epochs: int | None = None,
) -> Decision:
    """The measured verdict. `thresholds` maps FD501..FD503 to their values in force."""
    t_nb, t_es, t_fall = thresholds["FD501"], thresholds["FD502"], thresholds["FD503"]
    measurements = [compare_neighbour(run_val, nb, t_nb) for nb in neighbours]
    stop = early_stop(run_val, t_es, epochs)
    candidates = [m for m in (*measurements, stop) if m.clear and m.gain is not None]
    winner = max(candidates, key=lambda m: m.gain or 0.0) if candidates else None
    fall = still_falling(run_val)
    findings = [
        _finding(m, "FD502" if m is stop else "FD501", t_es if m is stop else t_nb) for m in candidates
    ]
    falling = math.isfinite(fall) and fall >= t_fall["min_fall"]
    # Training longer is a candidate too: the next doubling is expected to bring `weight`
    # times the fall of the last one; it beats a measured neighbour that gains less.
    if winner is not None and falling and t_fall["weight"] * fall > (winner.gain or 0.0):
        winner = None
        findings = []
    if winner is not None:
        if winner.direction > 0:
            verdict, cause = Verdict.OVERFIT, (Cause.REBOUND if winner is stop else Cause.GAP)
        else:
            capacity = winner.change.key == WIDTH_KEY
            verdict, cause = Verdict.UNDERFIT, (Cause.CAPACITY if capacity else Cause.OVER_REGULARIZED)
    elif falling:
        verdict, cause = Verdict.UNDERFIT, Cause.NOT_CONVERGED
        findings.append(
            Finding(
                rule_id="FD503",
                name="measured.still_falling",
                verdict=Verdict.UNDERFIT,
                cause=Cause.NOT_CONVERGED,
                strength=1.0,
                value=fall,
                threshold=t_fall["min_fall"],
                message=f"no neighbour wins and val MAE still fell {fall:.0%} over the last doubling of the run",
            )
        )
    else:
        verdict, cause = Verdict.BALANCED, None
    shown = (
        (*measurements, stop) if stop.gain is not None and math.isfinite(stop.gain) else tuple(measurements)
    )
    return Decision(verdict, cause, winner, tuple(shown), tuple(findings), fall)


def _finding(m: Measurement, code: str, t: Mapping[str, float]) -> Finding:
    gain = m.gain or 0.0
    return Finding(
        rule_id=code,
        name="measured.early_stop" if code == "FD502" else "measured.neighbour",
        verdict=Verdict.OVERFIT if m.direction > 0 else Verdict.UNDERFIT,
        cause=None,
        strength=1.0,
        value=gain,
        threshold=t["min_gain"],
        message=f"{measured_text(m)} (paired noise {m.noise or 0.0:.1%})",
    )


def measured_text(m: Measurement, run_final: float | None = None) -> str:
    """`model.l2: 0 -> 0.0001: val MAE 0.067 -> 0.015 (-78 %), measured`."""
    c = m.change
    what = (
        c.text
        if c.key == "training.early_stopping"
        else f"{c.key}: {value_text(c.from_)} -> {value_text(c.to)}"
    )
    before = "" if run_final is None else f"{run_final:.3g} -> "
    after = "?" if m.final_val is None else f"{m.final_val:.3g}"
    gain = "" if m.gain is None else f" ({-m.gain:+.0%})"
    return f"{what}: val MAE {before}{after}{gain}, measured"


def measured_diagnosis(
    curves_diagnosis: Diagnosis, decision: Decision, run_final: float, epochs: int | None = None
) -> Diagnosis:
    """The probed run's diagnosis: the measured verdict and change, the curves-only one kept beside it."""
    from fitdoc.diagnosis.decide import PREDICTED_NOTE

    d = curves_diagnosis
    # The neighbours were measured: the gain model's predictions for the same steps would
    # only contradict the measurement.
    notes = [n for n in d.notes if not n.startswith(PREDICTED_NOTE)]
    if (d.verdict, d.cause) != (decision.verdict, decision.cause) and d.verdict is not Verdict.INCONCLUSIVE:
        curves_said = d.verdict.value + (f" ({d.cause.value})" if d.cause else "")
        notes.append(f"the curves alone said {curves_said}; the measurement decides")
    suggestion = _suggestion(decision, run_final, epochs)
    summary = _summary(decision, run_final)
    return replace(
        d,
        verdict=decision.verdict,
        cause=decision.cause,
        confidence=CONFIDENCE[decision.verdict.value],
        findings=(*decision.findings, *d.findings),
        suggestion=suggestion,
        summary=summary,
        notes=tuple(notes),
        basis="measured",
        measured=decision.measurements,
        curves_verdict=(d.verdict, d.cause, d.confidence),
    )


def _suggestion(decision: Decision, run_final: float, epochs: int | None) -> Suggestion | None:
    if decision.winner is not None:
        w = decision.winner
        primary = replace(w.change, text=measured_text(w, run_final))
        others = sorted(
            (m for m in decision.measurements if m.clear and m is not w),
            key=lambda m: -(m.gain or 0.0),
        )
        return Suggestion(primary, tuple(replace(m.change, text=measured_text(m, run_final)) for m in others))
    if decision.verdict is Verdict.UNDERFIT:
        # Not converged: nothing measured twice the epochs; the ladder's step is the advice.
        if epochs is None:
            return Suggestion(Change("training.epochs", None, None, "train longer (about twice the epochs)"))
        return Suggestion(
            Change(
                "training.epochs",
                epochs,
                2 * epochs,
                f"train longer: val MAE still fell {decision.still_falling:.0%}",
            )
        )
    return None


def _summary(decision: Decision, run_final: float) -> str:
    if decision.winner is not None:
        text = measured_text(decision.winner, run_final).removesuffix(", measured")
        return f"measured beside the run: {text}"
    if decision.verdict is Verdict.UNDERFIT:
        return (
            f"measured: no neighbour beats the run, and val MAE still fell {decision.still_falling:.0%} "
            "over the last doubling: train longer"
        )
    tried = ", ".join(
        f"{m.change.key.split('.')[-1]} {value_text(m.change.to)} {-(m.gain or 0.0):+.0%}"
        for m in decision.measurements
        if m.gain is not None and m.change.key != "training.early_stopping"
    )
    return f"measured: no neighbour beats the run clearly ({tried or 'none comparable'})"


def diagnose_run(
    curves: Curves,
    config: AnyConfig | None,
    probes: Sequence[Probe],
    thresholds: Mapping[str, Mapping[str, Any]] | None = None,
) -> Diagnosis:
    """A run's diagnosis: measured when probed neighbours were trained beside it, else from its curves."""
    from fitdoc.diagnosis.decide import diagnose_curves
    from fitdoc.diagnosis.rules.registry import all_rules

    curves_diagnosis = diagnose_curves(curves, config, thresholds)
    if not probes or curves.val is None or curves.metric != "mae" or len(curves) < MIN_EPOCHS:
        return curves_diagnosis
    if curves_diagnosis.verdict is Verdict.INCONCLUSIVE and any(
        f.rule_id == "FD001" for f in curves_diagnosis.findings
    ):
        return curves_diagnosis  # a gate that no measurement overrides (no validation series)
    rules = {r.code: r for r in all_rules(thresholds)}
    values = {code: dict(rules[code].thresholds) for code in ("FD501", "FD502", "FD503")}
    neighbours = [
        Neighbour(p.change, np.asarray(p.curves.val, float), p.status)
        for p in probes
        if p.curves.val is not None and p.curves.metric == "mae"
    ]
    if not neighbours:
        return curves_diagnosis
    val = np.asarray(curves.val, float)
    decision = decide(val, neighbours, values, epochs=_planned_epochs(config, len(curves)))
    narrow = _too_narrow(curves_diagnosis)
    widened = any(nb.change.key == WIDTH_KEY for nb in neighbours)
    if decision.verdict is Verdict.BALANCED and narrow and not widened:
        # The probe varies regularization, not width: no neighbour winning says nothing about
        # twice the units, so the curves' too-small verdict (FD207, FD208) stands, with what was measured.
        note = (
            f"{_summary(decision, 0.0)}; the probe does not vary the width, so the curves' "
            f"verdict (a net too small, {narrow}) stands"
        )
        return replace(
            curves_diagnosis,
            notes=(*curves_diagnosis.notes, note),
            measured=decision.measurements,
        )
    return measured_diagnosis(
        curves_diagnosis,
        decision,
        final_value(val, smoothing_window(val.size)),
        _planned_epochs(config, len(curves)),
    )


def _too_narrow(d: Diagnosis) -> str:
    """The rule that named a too-small net the curves' cause (FD207 or FD208), else ''."""
    if d.verdict is not Verdict.UNDERFIT or d.cause is not Cause.CAPACITY:
        return ""
    return next((f.rule_id for f in d.findings if f.rule_id in ("FD207", "FD208")), "")


def _planned_epochs(config: AnyConfig | None, default: int) -> int:
    training = getattr(config, "training", None)
    epochs = getattr(training, "epochs", None)
    return int(epochs) if isinstance(epochs, int) and epochs > 0 else default
