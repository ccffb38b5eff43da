"""Train a whole regularization path at once, one compiled call per epoch.

The same technique as fitdoc's fast engine (`fitdoc.training.engine`): the data stays
in tensors and one `tf.function` runs the epoch (every batch step, then
validation and the held-out test error). The path's K nets are stacked: each
layer's kernel is one [K, in, out] variable and every op serves all K nets at
once, so TensorFlow's per-op overhead, which dominates for nets this small,
is paid once instead of K times. The nets stay independent: the loss is the
sum of the K nets' losses, so each weight's gradient comes from its own net
only, and Keras' optimizers (Adam, RMSprop, SGD with momentum) update every
element on its own. Each net has the Keras Dense layer's initialization
(Glorot-uniform kernels, zero biases), the same for all K (one seed), its
own L1/L2 factor on every hidden kernel, and its own dropout rate between
hidden layers. All nets see the same batches in the same order.

Row order (the two kinds of run users have):
- `reshuffle`: a fresh permutation every epoch (fitdoc's fast engine);
- `fixed`: one permutation reused every epoch, which is what Keras 3's
  `model.fit(shuffle=True)` does after `keras.utils.set_random_seed(...)`.

The held-out error recorded every epoch is the test MAE for regression and
the test cross-entropy for classification.

Train `loss` and the train metric are the running means over the epoch's
batches in training mode (dropout on, regularization in `loss`), as Keras
logs them; `val_*` are measured after the epoch's last step.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.corpus.families import Split

# Per-epoch outputs of one net, in this order.
FIELDS = ("loss", "metric", "val_loss", "val_metric", "test_error")


@dataclass(frozen=True)
class NetSpec:
    layers: int
    units: int
    l2: float
    l1: float
    dropout: float


def make_optimizer(keras: Any, name: str, lr: float) -> Any:
    if name == "adam":
        return keras.optimizers.Adam(lr)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(lr)
    return keras.optimizers.SGD(lr, momentum=0.9)


class PathTrainer:
    """Compiled epochs over K stacked nets trained side by side on one split."""

    def __init__(
        self,
        specs: list[NetSpec],
        split: Split,
        *,
        classes: int,
        optimizer: str,
        lr: float,
        batch_size: int,
        order: str,
        seed: int,
        jit: bool = False,
    ) -> None:
        import keras
        import tensorflow as tf

        self._tf = tf
        self._classes = classes
        k = len(specs)
        self._k = k
        layers, units = specs[0].layers, specs[0].units
        sizes = (
            [split.x_train.shape[1]] + [units] * layers + [classes if classes > 1 else split.y_train.shape[1]]
        )
        rng = np.random.default_rng(seed)
        self._kernels, self._biases = [], []
        for fan_in, fan_out in itertools.pairwise(sizes):
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32)
            self._kernels.append(keras.Variable(np.repeat(w[None], k, axis=0)))
            self._biases.append(keras.Variable(np.zeros((k, 1, fan_out), np.float32)))
        self._vars = [*self._kernels, *self._biases]
        self._l2 = tf.constant([s.l2 for s in specs], tf.float32)
        self._l1 = tf.constant([s.l1 for s in specs], tf.float32)
        self._keep = tf.constant([1.0 - s.dropout for s in specs], tf.float32)[:, None, None]
        self._opt = make_optimizer(keras, optimizer, lr)
        self._opt.build(self._vars)
        self._x, self._y = tf.constant(split.x_train), tf.constant(split.y_train)
        self._xv, self._yv = tf.constant(split.x_val), tf.constant(split.y_val)
        self._xt, self._yt = tf.constant(split.x_test), tf.constant(split.y_test)
        self._n = int(split.x_train.shape[0])
        self._batch = min(batch_size, self._n)
        self._steps = self._n // self._batch
        self._tail = self._n - self._steps * self._batch
        self._order = order
        self._seed = seed
        self._epoch_fn = tf.function(self._epoch, autograph=True, jit_compile=jit)

    def _forward(self, x: Any, training: bool, seed: Any = None) -> Any:
        """[K, B, out] outputs of the K nets for inputs x [B, in]."""
        tf = self._tf
        h = tf.einsum("bi,kio->kbo", x, self._kernels[0]) + self._biases[0]
        hidden = len(self._kernels) - 1
        for i in range(1, len(self._kernels)):
            h = tf.nn.relu(h)
            # Dropout after each hidden layer except the last, as fitdoc's model.
            if training and i < hidden:
                draw = tf.random.stateless_uniform(tf.shape(h), seed=seed + i)
                h = tf.where(draw < self._keep, h / self._keep, 0.0)
            h = tf.einsum("kbi,kio->kbo", h, self._kernels[i]) + self._biases[i]
        return h

    def _per_net(self, y: Any, out: Any) -> tuple[Any, Any]:
        """([K] mean loss, [K] sum of the per-row metric) for labels y [B, t]."""
        tf = self._tf
        if self._classes > 1:
            labels = tf.broadcast_to(tf.reshape(y, [1, -1]), tf.shape(out)[:2])
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, out)
            hits = tf.cast(tf.equal(tf.argmax(out, axis=-1, output_type=tf.int32), labels), tf.float32)
            return tf.reduce_mean(ce, axis=1), tf.reduce_sum(hits, axis=1)
        err = y[None] - out
        return tf.reduce_mean(tf.square(err), axis=[1, 2]), tf.reduce_sum(
            tf.reduce_mean(tf.abs(err), axis=2), axis=1
        )

    def _penalty(self) -> Any:
        """[K] L1/L2 penalty of each net's hidden kernels (not the output layer's)."""
        tf = self._tf
        total = tf.zeros([self._k])
        for w in self._kernels[:-1]:
            total += self._l2 * tf.reduce_sum(tf.square(w), axis=[1, 2])
            total += self._l1 * tf.reduce_sum(tf.abs(w), axis=[1, 2])
        return total

    def _step(self, xb: Any, yb: Any, seed: Any) -> tuple[Any, Any]:
        tf = self._tf
        with tf.GradientTape() as tape:
            loss, metric = self._per_net(yb, self._forward(xb, True, seed))
            loss = loss + self._penalty()
            total = tf.reduce_sum(loss)
        grads = tape.gradient(total, self._vars)
        self._opt.apply(grads, self._vars)
        return loss, metric

    def _epoch(self, epoch: Any) -> Any:
        tf = self._tf
        stream = tf.constant(0, tf.int32) if self._order == "fixed" else epoch
        order = tf.argsort(tf.random.stateless_uniform([self._n], seed=tf.stack([self._seed, stream])))
        x, y = tf.gather(self._x, order), tf.gather(self._y, order)
        b = self._batch
        loss_sum, metric_sum = tf.zeros([self._k]), tf.zeros([self._k])
        base = tf.stack([tf.constant(self._seed + 7, tf.int32), epoch * 100_003])
        if self._steps > 0:
            xs = tf.reshape(x[: self._steps * b], [self._steps, b, -1])
            ys = tf.reshape(y[: self._steps * b], [self._steps, b, -1])
            for i in tf.range(self._steps):
                loss, metric = self._step(xs[i], ys[i], base + tf.stack([0, i * 17]))
                loss_sum += loss * b
                metric_sum += metric
        if self._tail:
            loss, metric = self._step(x[self._steps * b :], y[self._steps * b :], base + tf.stack([1, 0]))
            loss_sum += loss * self._tail
            metric_sum += metric
        penalty = self._penalty()
        val_loss, val_metric = self._per_net(self._yv, self._forward(self._xv, False))
        test_loss, test_metric = self._per_net(self._yt, self._forward(self._xt, False))
        n_val = tf.cast(tf.shape(self._xv)[0], tf.float32)
        n_test = tf.cast(tf.shape(self._xt)[0], tf.float32)
        # The held-out error: MAE for regression (the metric users watch), cross-entropy
        # for classification (the quantity the val_loss curve shows; an error rate on a
        # few hundred real rows moves in coarse steps and hides what regularizing does).
        test_error = test_loss if self._classes > 1 else test_metric / n_test
        return tf.stack(
            [loss_sum / self._n, metric_sum / self._n, val_loss + penalty, val_metric / n_val, test_error],
            axis=1,
        )

    def run(self, epochs: int) -> np.ndarray:
        """Array [nets, epochs, FIELDS]."""
        out = [self._epoch_fn(self._tf.constant(e, self._tf.int32)).numpy() for e in range(epochs)]
        return np.transpose(np.asarray(out, dtype=np.float64), (1, 0, 2))
