"""The one training engine: K nets of one architecture, stacked, one compiled call per epoch.

`model.fit` spends about 0.1 s per epoch on Python around a few milliseconds
of arithmetic when the net is small. Here the data stays in tensors and one
`tf.function` runs the epoch: the row order, every batch step, validation and
the held-out error, returning one row of numbers per net.

The K nets are stacked the way PyTorch's model ensembling (`torch.func.stack_module_state`
+ `vmap`) stacks them: each layer's kernel is one [K, in, out] variable and
each op serves all K nets, so TensorFlow's per-op overhead, which dominates
for nets this small, is paid once instead of K times. The nets stay
independent: the loss is the sum of the K nets' losses, so each weight's
gradient comes from its own net only, and Keras' optimizers (Adam, RMSprop,
SGD with momentum) update every element on its own. Each net has its own
L1/L2 factor on every hidden kernel and its own dropout rate between hidden
layers; all K see the same batches in the same order and share one dropout
draw (a unit is kept when the draw is under the net's keep rate), so two nets
differ by their settings, not by their luck: a paired comparison.

Nets of other widths stack too (`starts`: a net that begins from weights of
its own, such as the seeded build of a net with twice the units): every
kernel is zero-padded to the widest net's shape and each hidden layer's
output is multiplied by the net's unit mask. A padded unit then carries 0
forward and receives a zero gradient, so Adam never moves it and the
narrower net trains exactly as it would alone (tests/test_engine.py checks
it against a separate engine); the cost is that every net computes at the
widest width.

K = 1 is an ordinary `fitdoc train` run; `fitdoc train --probe` trains the
run and its ladder neighbours as K > 1 (`fitdoc.training.probe`), and the
corpus factory trains whole regularization paths with it.

What each epoch reports per net (`FIELDS`), as Keras logs it: train `loss`
(regularization included) and `metric` (MAE, or accuracy for
classification) are running means over the epoch's batches in training mode
(dropout on); `reg_loss` is the regularization part of `loss`; `val_loss`
(regularization included, as Keras' evaluation adds `model.losses`) and
`val_metric` are measured after the epoch's last step; `test_metric` and
`test_loss` are the same on the held-out part (NaN when there is none).

Row orders: `reshuffle` (a fresh permutation every epoch, fitdoc's default),
`fixed` (one permutation reused every epoch: what Keras 3's
`model.fit(shuffle=True)` does after `keras.utils.set_random_seed`) and
`none` (file order).

The compiled unit is one epoch, so the caller writes each history row and
looks for signals between epochs. TensorFlow is imported when an engine is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

# Per-epoch outputs of one net, in this order (the last axis of `run_epoch`).
FIELDS = ("loss", "metric", "val_loss", "val_metric", "reg_loss", "test_metric", "test_loss")
Order = Literal["reshuffle", "fixed", "none"]
ORDERS: tuple[Order, ...] = ("reshuffle", "fixed", "none")


@dataclass(frozen=True)
class NetSpec:
    """What distinguishes one of the K stacked nets: its regularization."""

    l2: float = 0.0
    l1: float = 0.0
    dropout: float = 0.0


@dataclass(frozen=True)
class Arrays:
    """The split the nets train on, as float32 arrays (labels int32 for classification)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None


class StackedEngine:
    """Compiled epochs over K stacked nets that start from the same weights.

    `initial` is one net's weights in Keras' order (kernel, bias per Dense
    layer, output layer last), for example `keras_model.get_weights()` right
    after a seeded build, so each net starts exactly as the plain run would.
    `starts` gives the nets that start from weights of their own, by index:
    the same depth, inputs and outputs, hidden widths of their own.

    Example:
        >>> engine = StackedEngine(net.get_weights(), [NetSpec(), NetSpec(l2=1e-4)], arrays,
        ...                        optimizer=keras.optimizers.Adam(1e-3), batch_size=500, seed=1)
        >>> rows = engine.run_epoch(0)        # [K, len(FIELDS)]
        >>> net.set_weights(engine.weights(0))
    """

    def __init__(
        self,
        initial: Sequence[np.ndarray],
        specs: Sequence[NetSpec],
        arrays: Arrays,
        *,
        optimizer: Any,
        batch_size: int,
        seed: int,
        order: Order = "reshuffle",
        activation: str = "relu",
        classes: int = 0,
        jit_compile: bool = False,
        starts: Mapping[int, Sequence[np.ndarray]] | None = None,
    ) -> None:
        import keras
        import tensorflow as tf

        if not specs:
            raise ValueError("StackedEngine needs at least one net")
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
        self._tf = tf
        k = len(specs)
        self.k = k
        self._classes = classes
        self._activation = keras.activations.get(activation)
        # One net (a plain run) keeps Keras' 2-D kernels: a batched matmul over a batch of one
        # costs about 1.5x a plain one on CPU at these sizes (benchmarks/train_speed.py).
        self._stacked = k > 1
        kernels, biases, masks, self._shapes = _stack_weights(initial, starts or {}, k)
        self._masks = [tf.constant(m) for m in masks]
        self._kernels = [keras.Variable(w) for w in kernels]
        self._biases = [keras.Variable(b) for b in biases]
        self._vars = [*self._kernels, *self._biases]
        self._l2 = tf.constant([s.l2 for s in specs], tf.float32)
        self._l1 = tf.constant([s.l1 for s in specs], tf.float32)
        keep = tf.constant([1.0 - s.dropout for s in specs], tf.float32)
        self._keep = keep[:, None, None] if self._stacked else keep[0]
        self._any_dropout = any(s.dropout > 0 for s in specs)
        self._any_penalty = any(s.l2 > 0 or s.l1 > 0 for s in specs)
        self._opt = optimizer
        self._opt.build(self._vars)
        self._x, self._y = tf.constant(arrays.x_train), tf.constant(arrays.y_train)
        self._xv, self._yv = tf.constant(arrays.x_val), tf.constant(arrays.y_val)
        self._has_test = arrays.x_test is not None and arrays.y_test is not None
        self._xt = tf.constant(arrays.x_test if self._has_test else arrays.x_val[:1])
        self._yt = tf.constant(arrays.y_test if self._has_test else arrays.y_val[:1])
        self._n = int(arrays.x_train.shape[0])
        self._batch = min(batch_size, self._n)
        self._steps = self._n // self._batch
        self._tail = self._n - self._steps * self._batch
        self._order = order
        self._seed = int(seed)
        # XLA off by default: on CPU it compiles the epoch loop in ~3 s and runs these
        # small nets no faster (benchmarks/train_speed.py).
        self._epoch_fn = tf.function(self._epoch, autograph=True, jit_compile=jit_compile)

    # ------------------------------------------------------------ compiled parts

    def _forward(self, x: Any, training: bool, seed: Any = None) -> Any:
        """[K, B, out] outputs of the K nets for inputs x [B, in] (broadcast to every net)."""
        tf = self._tf
        h = tf.matmul(x[None] if self._stacked else x, self._kernels[0]) + self._biases[0]
        hidden = len(self._kernels) - 1
        for i in range(1, len(self._kernels)):
            h = self._activation(h)
            if self._masks:
                h = h * self._masks[i - 1]  # a narrower net's padded units carry nothing
            # Dropout after each hidden layer except the last, as fitdoc's model; one draw
            # shared by the K nets ([1, B, units]), each keeping units under its own rate.
            if training and self._any_dropout and i < hidden:
                layer_seed = seed + tf.constant([0, 1], tf.int32) * i
                if not self._stacked:
                    draw = tf.random.stateless_uniform(tf.shape(h), seed=layer_seed)
                else:
                    # Net 0's units get the draw a plain run of it gets; a wider net's extra
                    # units draw from a stream of their own, so the run stays as it is alone.
                    own = self._shapes[0][i - 1][1]
                    rows = tf.shape(h)[1]
                    draw = tf.random.stateless_uniform(tf.stack([1, rows, own]), seed=layer_seed)
                    extra = int(h.shape[-1]) - own
                    if extra > 0:
                        more = tf.random.stateless_uniform(
                            tf.stack([1, rows, extra]), seed=layer_seed + tf.constant([104_729, 0], tf.int32)
                        )
                        draw = tf.concat([draw, more], axis=-1)
                h = tf.where(draw < self._keep, h / self._keep, 0.0)
            h = tf.matmul(h, self._kernels[i]) + self._biases[i]
        return h if self._stacked else h[None]

    def _per_net(self, y: Any, out: Any) -> tuple[Any, Any]:
        """([K] mean loss, [K] sum over rows of the metric) for labels y and outputs [K, B, out]."""
        tf = self._tf
        if self._classes > 1:
            labels = tf.broadcast_to(tf.reshape(y, [1, -1]), tf.shape(out)[:2])
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, out)
            hits = tf.cast(tf.equal(tf.argmax(out, axis=-1, output_type=tf.int32), labels), tf.float32)
            return tf.reduce_mean(ce, axis=1), tf.reduce_sum(hits, axis=1)
        err = y[None] - out
        # Keras' MSE (mean over targets, then rows) and MAE summed per row.
        return tf.reduce_mean(tf.square(err), axis=[1, 2]), tf.reduce_sum(
            tf.reduce_mean(tf.abs(err), axis=2), axis=1
        )

    def _penalty(self) -> Any:
        """[K] L1/L2 penalty of each net's hidden kernels (not the output layer's), as Keras adds it."""
        tf = self._tf
        total = tf.zeros([self.k])
        if not self._any_penalty:
            return total
        axes = [1, 2] if self._stacked else None
        for w in self._kernels[:-1]:
            total += self._l2 * tf.reduce_sum(tf.square(w), axis=axes)
            total += self._l1 * tf.reduce_sum(tf.abs(w), axis=axes)
        return total

    def _step(self, xb: Any, yb: Any, seed: Any) -> tuple[Any, Any, Any]:
        tf = self._tf
        with tf.GradientTape() as tape:
            loss, metric = self._per_net(yb, self._forward(xb, True, seed))
            reg = self._penalty()
            loss = loss + reg
            # The sum of independent losses: each net's gradient is its own.
            total = tf.reduce_sum(loss)
        grads = tape.gradient(total, self._vars)
        self._opt.apply(grads, self._vars)
        return loss, metric, reg

    def _epoch(self, epoch: Any) -> Any:
        tf = self._tf
        x, y = self._x, self._y
        if self._order != "none":
            stream = tf.constant(0, tf.int32) if self._order == "fixed" else epoch
            order = tf.argsort(tf.random.stateless_uniform([self._n], seed=tf.stack([self._seed, stream])))
            x, y = tf.gather(x, order), tf.gather(y, order)
        b = self._batch
        # Keras' Mean metrics: sum of batch value x batch size, divided by rows.
        loss_sum, metric_sum, reg_sum = tf.zeros([self.k]), tf.zeros([self.k]), tf.zeros([self.k])
        base = tf.stack([tf.constant(self._seed + 7, tf.int32), epoch * 100_003])
        if self._steps > 0:
            xs = tf.reshape(x[: self._steps * b], [self._steps, b, -1])
            ys = tf.reshape(y[: self._steps * b], [self._steps, b, -1])
            for i in tf.range(self._steps):
                # Dropout draws need a per-step seed; without dropout no op is spent on it.
                step_seed = base + tf.stack([0, i * 17]) if self._any_dropout else None
                loss, metric, reg = self._step(xs[i], ys[i], step_seed)
                loss_sum += loss * b
                metric_sum += metric
                reg_sum += reg * b
        if self._tail:
            loss, metric, reg = self._step(
                x[self._steps * b :], y[self._steps * b :], base + tf.stack([1, 0])
            )
            loss_sum += loss * self._tail
            metric_sum += metric
            reg_sum += reg * self._tail
        n = float(self._n)
        end_reg = self._penalty()
        val_loss, val_metric = self._per_net(self._yv, self._forward(self._xv, False))
        test_loss, test_metric = self._per_net(self._yt, self._forward(self._xt, False))
        n_val = tf.cast(tf.shape(self._xv)[0], tf.float32)
        n_test = tf.cast(tf.shape(self._xt)[0], tf.float32)
        return tf.stack(
            [
                loss_sum / n,
                metric_sum / n,
                val_loss + end_reg,
                val_metric / n_val,
                reg_sum / n,
                test_metric / n_test,
                test_loss,
            ],
            axis=1,
        )

    # ------------------------------------------------------------ Python side

    def run_epoch(self, epoch: int) -> np.ndarray:
        """Train one epoch; [K, len(FIELDS)] float64 (test columns NaN without a held-out part)."""
        rows: np.ndarray = np.asarray(
            self._epoch_fn(self._tf.constant(epoch, self._tf.int32)), dtype=np.float64
        )
        if not self._has_test:
            rows[:, FIELDS.index("test_metric")] = np.nan
            rows[:, FIELDS.index("test_loss")] = np.nan
        return rows

    def run(self, epochs: int) -> np.ndarray:
        """Train `epochs` epochs; [K, epochs, len(FIELDS)]."""
        out = [self.run_epoch(e) for e in range(epochs)]
        return np.transpose(np.asarray(out, dtype=np.float64), (1, 0, 2))

    def weights(self, net: int) -> list[np.ndarray]:
        """Net `net`'s weights in Keras' order, for `keras_model.set_weights`."""
        out: list[np.ndarray] = []
        for w, b, (rows, cols) in zip(self._kernels, self._biases, self._shapes[net], strict=True):
            kernel, bias = w.numpy(), b.numpy()
            out.append(np.array((kernel[net] if self._stacked else kernel)[:rows, :cols]))
            out.append(np.array((bias[net] if self._stacked else bias).reshape(-1)[:cols]))
        return out


def _stack_weights(
    initial: Sequence[np.ndarray], starts: Mapping[int, Sequence[np.ndarray]], k: int
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[list[tuple[int, int]]]]:
    """(kernels, biases, hidden unit masks, each net's kernel shapes) for K nets.

    One net keeps Keras' 2-D kernels. K nets get [K, in, out] kernels and [K, 1, out]
    biases, zero-padded to the widest net per layer; the masks ([K, 1, units] per hidden
    layer) are empty when every net has the same shape.
    """
    if any(not 0 <= i < k for i in starts):
        raise ValueError(f"starts names nets outside 0..{k - 1}: {sorted(starts)}")
    per_net = [[np.asarray(w, np.float32) for w in starts.get(i, initial)] for i in range(k)]
    kernels_of = [ws[0::2] for ws in per_net]
    biases_of = [[b.reshape(-1) for b in ws[1::2]] for ws in per_net]
    shapes = [[(int(w.shape[0]), int(w.shape[1])) for w in ws] for ws in kernels_of]
    depth = len(shapes[0])
    if any(len(s) != depth or s[0][0] != shapes[0][0][0] or s[-1][1] != shapes[0][-1][1] for s in shapes):
        raise ValueError(
            "stacked nets need the same depth, inputs and outputs; only hidden widths may differ"
        )
    if k == 1:
        return kernels_of[0], biases_of[0], [], shapes
    kernels, biases, masks = [], [], []
    for layer in range(depth):
        rows = max(s[layer][0] for s in shapes)
        cols = max(s[layer][1] for s in shapes)
        kernel = np.zeros((k, rows, cols), np.float32)
        bias = np.zeros((k, 1, cols), np.float32)
        mask = np.zeros((k, 1, cols), np.float32)
        for n in range(k):
            r, c = shapes[n][layer]
            kernel[n, :r, :c] = kernels_of[n][layer]
            bias[n, 0, :c] = biases_of[n][layer]
            mask[n, 0, :c] = 1.0
        kernels.append(kernel)
        biases.append(bias)
        if layer < depth - 1:
            masks.append(mask)
    uniform = all(s == shapes[0] for s in shapes)
    return kernels, biases, [] if uniform else masks, shapes
