"""Curve features, measured once per history, that every rule reads.

Measure, then judge: this module only measures. Every feature is scale-free (a
ratio, a relative change or a position as a fraction of the run), so a run
whose MAE is 0.003 and one whose MAE is 30 are described by the same numbers.
Rules compare these features to thresholds; nothing here decides a verdict.

Smoothing is deliberately plain: "the value at the end" is the mean of the last
`window` epochs, so one spiky epoch does not decide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from fitdoc.history.curves import Curves

NAN = float("nan")
# Fewest epochs a trend is fitted on (one spike must not decide it).
MIN_TREND_POINTS = 5
# Epochs averaged for "val at epoch E" in the stop/continue comparisons: a
# spiky epoch must not decide, and a longer span would blur the two points.
POINT_SPAN = 5


@dataclass(frozen=True)
class Features:
    """Scale-free numbers describing one run's learning curves.

    Ratios are NaN when a series has non-positive values (ratio rules skip
    them, as the design notes' contracts say); `best_epoch` is the 0-based epoch label
    (as the CSV's `epoch` column), `best_at` the same point in words, 1-based.
    """

    n_epochs: int
    metric: str
    has_validation: bool
    has_train: bool
    window: int
    nonfinite_train: int
    nonfinite_val: int
    positive: bool
    train_start: float
    train_end: float
    train_min: float
    val_end: float
    val_min: float
    best_epoch: int
    best_position: float
    val_rebound: float
    gap_ratio_end: float
    gap_ratio_best: float
    train_half_drop: float
    val_half_drop: float
    val_gain_2x: float
    train_gain_2x: float
    val_noise: float
    blowup: float
    reg_share: float
    val_stop_gain: float = NAN
    val_last_fall: float = NAN
    val_step_noise: float = NAN
    train_progress: float = NAN
    val_progress: float = NAN
    val_rise_run: int = 0
    val_last_rise: float = NAN
    val_gain_2x_half: float = NAN
    loss_gain_2x: float = NAN
    # A classification log's validation accuracy: evaluations logged, their range (max - min)
    # and their last value (0 / NaN when no accuracy is logged beside the loss).
    val_accuracy_points: int = 0
    val_accuracy_spread: float = NAN
    val_accuracy_end: float = NAN
    span: str = ""
    # What one point of the curves is ("epoch", or "evaluation" in step logs).
    point: str = "epoch"

    @property
    def best_at(self) -> str:
        """Where val is lowest, counted as people (and progress bars) count: "epoch 5" for
        the fifth epoch, whose 0-based label (the CSV's `epoch` column) is 4."""
        return f"{self.point} {self.best_epoch + 1}"

    def as_dict(self) -> dict[str, float | int | str | bool]:
        return dict(self.__dict__)


def compute_features(curves: Curves) -> Features:
    """Every feature the rules use, from aligned train/val arrays (numpy only): one
    constructor call lists every feature beside the helper below that measures it."""
    train = _as_array(curves.train)
    val = _as_array(curves.val) if curves.has_validation else None
    n = len(curves)
    window = _window(n)
    train_f = _finite(train)
    val_f = _finite(val) if val is not None else np.empty(0)
    positive = bool(train_f.size and val_f.size and (train_f > 0).all() and (val_f > 0).all())
    train_end = _tail_mean(train, window)
    val_end = _tail_mean(val, window) if val is not None else NAN
    best_epoch, val_min = _argmin(val)
    best_epoch_label, best_position = _best_point(np.asarray(curves.epochs), best_epoch)
    ratios_ok = positive and n > 0
    return Features(
        n_epochs=n,
        metric=curves.metric,
        has_validation=val is not None and val_f.size > 0,
        has_train=train_f.size > 0,
        window=window,
        nonfinite_train=_diverged_points(train),
        nonfinite_val=_diverged_points(val),
        positive=positive,
        train_start=_head_mean(train, window),
        train_end=train_end,
        train_min=float(np.nanmin(train)) if train_f.size else NAN,
        val_end=val_end,
        val_min=val_min,
        best_epoch=best_epoch_label,
        best_position=best_position,
        val_rebound=_ratio(val_end, val_min) - 1.0 if ratios_ok else NAN,
        gap_ratio_end=_ratio(val_end, train_end) if ratios_ok else NAN,
        gap_ratio_best=_gap_around(train, val, best_epoch, window) if ratios_ok else NAN,
        train_half_drop=_drop(train, n // 2 - 1, window) if positive else NAN,
        val_half_drop=_drop(val, n // 2 - 1, window) if positive else NAN,
        val_gain_2x=_gain_if_doubled(val) if positive else NAN,
        train_gain_2x=_gain_if_doubled(train) if positive else NAN,
        val_noise=_noise(val) if positive else NAN,
        blowup=_blowup(train),
        reg_share=_reg_share(curves, window),
        val_stop_gain=_stop_gain(val) if positive else NAN,
        val_last_fall=_last_fall(val) if positive else NAN,
        val_step_noise=_step_noise(val) if positive else NAN,
        train_progress=_progress(train),
        val_progress=_progress(val),
        val_rise_run=_rise_run(val),
        val_last_rise=_last_rise(val) if positive else NAN,
        val_gain_2x_half=_gain_if_doubled(val, share=2) if positive else NAN,
        loss_gain_2x=_loss_gain(curves),
        **_accuracy(curves.val_accuracy),
        span=f"over {curves.span}",
        point=curves.point,
    )


# ---------------------------------------------------------------- helpers


def _best_point(epochs: np.ndarray, best: int) -> tuple[int, float]:
    """The val minimum's epoch label and its position in the run, (best + 1) / n; (-1, NaN): none."""
    if best < 0 or not epochs.size:
        return -1, NAN
    return int(epochs[best]), (best + 1) / epochs.size


def _gap_around(train: np.ndarray, val: np.ndarray | None, best: int, window: int) -> float:
    """val/train over the `window` epochs centred on the val minimum."""
    if best < 0 or val is None:
        return NAN
    lo, hi = max(0, best - window // 2), best + window // 2 + 1
    return _ratio(_mean(val[lo:hi]), _mean(train[lo:hi]))


def _as_array(values: np.ndarray | None) -> np.ndarray:
    if values is None:
        return np.empty(0)
    return np.asarray(values, dtype=float)


def _diverged_points(values: np.ndarray | None) -> int:
    """Points that say the run diverged: every inf, and a run of NaN that ends the series.

    A NaN inside the series is a point that was not logged (a step log with fewer
    train logs than evaluations, a Lightning row with one side only): a gap, not a
    divergence. Keras logs `nan` from the epoch a loss blows up until the end.
    """
    if values is None or values.size == 0:
        return 0
    count = int(np.isinf(values).sum())
    finite_at = np.flatnonzero(np.isfinite(values))
    if finite_at.size:
        count += int(np.isnan(values[finite_at[-1] + 1 :]).sum())
    return count


def _finite(values: np.ndarray | None) -> np.ndarray:
    if values is None:
        return np.empty(0)
    finite: np.ndarray = values[np.isfinite(values)]
    return finite


def _window(n: int) -> int:
    """A tenth of the run, at least 3 epochs and at most 50: the smoothing span."""
    return int(min(50, max(3, round(n / 10)))) if n else 0


def smoothing_window(n: int) -> int:
    """The smoothing span of an `n`-epoch run, for modules that measure curves the same way."""
    return _window(n)


def _mean(values: np.ndarray | None) -> float:
    if values is None or values.size == 0:
        return NAN
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else NAN


def _tail_mean(values: np.ndarray | None, window: int) -> float:
    return NAN if values is None or window <= 0 else _mean(values[-window:])


def _head_mean(values: np.ndarray | None, window: int) -> float:
    # The first epoch is often far above the rest (random init); start after it.
    if values is None or values.size < 2 or window <= 0:
        return _mean(values)
    return _mean(values[1 : 1 + window])


def _ratio(num: float, den: float) -> float:
    if not (math.isfinite(num) and math.isfinite(den)) or den <= 0:
        return NAN
    return num / den


def _drop(values: np.ndarray | None, at: int, window: int) -> float:
    """Relative fall from a smoothed value around index `at` to the smoothed end.

    0.25 means the end value is 25% below (the curve was still falling);
    negative means it rose.
    """
    if values is None or values.size < 2 * window or at < 0:
        return NAN
    lo = max(0, at - window // 2)
    before = _mean(values[lo : at + window // 2 + 1])
    end = _tail_mean(values, window)
    return _ratio(before, end) - 1.0


def _loss_gain(curves: Curves) -> float:
    """`_gain_if_doubled` of val_loss, when the curves' metric is another series (MAE)."""
    if curves.val_loss is None or curves.val is None or curves.val_loss is curves.val:
        return NAN
    loss = np.asarray(curves.val_loss, dtype=float)
    if loss.shape != np.shape(curves.val) or np.array_equal(loss, np.asarray(curves.val), equal_nan=True):
        return NAN
    finite = loss[np.isfinite(loss)]
    if finite.size == 0 or (finite <= 0).any():
        return NAN
    return _gain_if_doubled(loss)


def _gain_if_doubled(values: np.ndarray | None, share: int = 4) -> float:
    """Predicted relative fall of the series if the run were trained twice as long.

    Learning curves fall roughly as a power of the epoch late in training, so
    the log-log slope `b` of the last quarter extrapolates to a factor `2**b`
    at twice the epochs: 0.08 means 8% lower after doubling; negative means
    the series is rising. A least-squares slope over the whole quarter (or the
    last `1/share` of the run) is far less sensitive to one spiky epoch than a
    difference of two points.
    """
    if values is None:
        return NAN
    n = values.size
    lo = n - max(MIN_TREND_POINTS, n // share)
    if lo < 1:
        return NAN
    y = values[lo:]
    x = np.log(np.arange(lo, n) + 1.0)
    keep = np.isfinite(y) & (y > 0)
    if keep.sum() < MIN_TREND_POINTS:
        return NAN
    slope = float(np.polyfit(x[keep], np.log(y[keep]), 1)[0])
    # A curve that explodes by orders of magnitude per epoch would overflow 2**slope.
    return 1.0 - float(2.0 ** min(slope, 1000.0))


def _halfway_and_end(values: np.ndarray) -> tuple[float, float]:
    """Mean val over the few epochs ending at E/2, and over the last few epochs."""
    n = values.size
    span = min(POINT_SPAN, max(1, n // 4))
    half = n // 2
    return _mean(values[max(0, half - span) : half]), _mean(values[-span:])


def _stop_gain(values: np.ndarray | None) -> float:
    """Relative fall of the final val had the run stopped at half its epochs:
    1 - val(E/2) / val(E). 0.10 means stopping at E/2 ends 10 % lower (a missed
    early stop); negative means val fell over the last doubling of the run."""
    if values is None or values.size < 4:
        return NAN
    half, end = _halfway_and_end(values)
    return 1.0 - _ratio(half, end)


def _last_fall(values: np.ndarray | None) -> float:
    """Relative fall of val over the last doubling of the run: 1 - val(E) / val(E/2).

    Equal to -g / (1 - g) for g = `_stop_gain`, but without dividing by 1 - g,
    which is exactly 0 once val(E) exceeds val(E/2) some 1e16-fold."""
    if values is None or values.size < 4:
        return NAN
    half, end = _halfway_and_end(values)
    return 1.0 - _ratio(end, half)


def _step_noise(values: np.ndarray | None) -> float:
    """Epoch-to-epoch jitter of val over the second half, relative to its level:
    a robust spread (1.4826 x MAD) of the first differences, divided by sqrt(2)
    so it is the noise of one epoch, not of a difference of two."""
    if values is None:
        return NAN
    half = values[len(values) // 2 :]
    half = half[np.isfinite(half)]
    if half.size < 6:
        return NAN
    steps = np.diff(half)
    mad = float(np.median(np.abs(steps - np.median(steps))))
    level = float(np.median(half))
    return _ratio(1.4826 * mad / math.sqrt(2.0), level)


def _argmin(values: np.ndarray | None) -> tuple[int, float]:
    if values is None or values.size == 0 or not np.isfinite(values).any():
        return -1, NAN
    index = int(np.nanargmin(values))
    return index, float(values[index])


def _noise(values: np.ndarray | None) -> float:
    """Typical epoch-to-epoch jitter relative to the level over the second half:
    the median |log value - log running median of 5|, scaled to one epoch's spread.

    A running median follows a trend and a level shift (val jumping up after its
    minimum, which is the overfit itself, not noise), so only the jitter is left.
    """
    if values is None:
        return NAN
    half = values[len(values) // 2 :]
    half = half[np.isfinite(half)]
    if half.size < 6 or (half <= 0).any():
        return NAN
    logs = np.log(half)
    padded = np.concatenate([logs[:1].repeat(2), logs, logs[-1:].repeat(2)])
    smooth = np.median(np.lib.stride_tricks.sliding_window_view(padded, 5), axis=1)
    return float(np.median(np.abs(logs - smooth)) * 1.4826)


def _progress(values: np.ndarray | None) -> float:
    """How much the series ever fell below its first value: 1 - min / first.

    0.02 means the run never got more than 2 % below where it started: it has
    barely learned. NaN when the series has no two finite positive values."""
    if values is None:
        return NAN
    finite = values[np.isfinite(values)]
    if finite.size < 2 or finite[0] <= 0 or (finite <= 0).any():
        return NAN
    return float(1.0 - finite.min() / finite[0])


def _accuracy(values: np.ndarray | None) -> dict[str, Any]:
    """The validation accuracy's evaluations, range and last value (`val_accuracy_*`)."""
    finite = np.empty(0) if values is None else values[np.isfinite(values)]
    if not finite.size:
        return {}
    return {
        "val_accuracy_points": int(finite.size),
        "val_accuracy_spread": float(finite.max() - finite.min()),
        "val_accuracy_end": float(finite[-1]),
    }


def _rise_run(values: np.ndarray | None) -> int:
    """Consecutive rises of val at the end of the run (4 means the last four values each rose)."""
    if values is None:
        return 0
    finite = values[np.isfinite(values)]
    count = 0
    for a, b in zip(finite[-2::-1], finite[::-1], strict=False):
        if b > a:
            count += 1
        else:
            break
    return count


def _last_rise(values: np.ndarray | None) -> float:
    """How far the last val stands above the run's minimum: last / min - 1."""
    if values is None:
        return NAN
    finite = values[np.isfinite(values)]
    if finite.size < 2:
        return NAN
    return _ratio(float(finite[-1]), float(finite.min())) - 1.0


def _blowup(train: np.ndarray) -> float:
    """Largest end/min ratio of the train series (a diverging run explodes)."""
    finite = train[np.isfinite(train)]
    if finite.size < 2 or finite.min() <= 0:
        return NAN
    return float(finite[-max(1, finite.size // 20) :].mean() / finite.min())


def _reg_share(curves: Curves, window: int) -> float:
    """The regularization part of the train loss at the end, when logged."""
    if curves.reg_loss is None or curves.train_loss is None:
        return NAN
    reg = _tail_mean(np.asarray(curves.reg_loss, dtype=float), window)
    loss = _tail_mean(np.asarray(curves.train_loss, dtype=float), window)
    return _ratio(reg, loss)
