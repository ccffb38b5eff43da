"""The fast engine: one compiled call trains a whole epoch and validates it.

`model.fit` spends about 0.1 s per epoch on Python around a few milliseconds
of arithmetic when the net is small. Here the data stays as tensors, and one
`tf.function` (XLA when it helps) does the epoch: shuffle, every batch step,
validation and the held-out test error, returning one row of numbers. It is
the same training as `model.fit`: the same Keras layers, regularizers,
optimizer and loss; a fresh permutation of the training part every epoch with
a partial last batch; train `loss`/`mae` as the running mean over the epoch's
batches in training mode (regularization included in `loss`, as Keras
counts it); validation after the epoch's last update, regularization included
in `val_loss` (Keras adds `model.losses` in evaluation too).

The compiled unit is one epoch, so the caller can write the history and look
for signals between epochs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from fitdoc.training.data import Dataset


# Row layout returned by `FastEpochs.run_epoch`.
ROW_FIELDS = ("loss", "mae", "val_loss", "val_mae", "reg_loss", "test_mae")


class FastEpochs:
    """Compiled epochs over a built, compiled Keras model.

    Example:
        >>> trainer = FastEpochs(net, data, batch_size=500, shuffle=True, seed=1)
        >>> row = trainer.run_epoch(0)   # dict with ROW_FIELDS
    """

    def __init__(
        self,
        net: Any,
        data: Dataset,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int,
        jit_compile: bool = False,
    ) -> None:
        import tensorflow as tf

        self._tf = tf
        self._net = net
        self._optimizer = net.optimizer
        self._variables = list(net.trainable_variables)
        self._optimizer.build(self._variables)
        self._x = tf.constant(data.x_train)
        self._y = tf.constant(data.y_train)
        self._x_val = tf.constant(data.x_val)
        self._y_val = tf.constant(data.y_val)
        self._has_test = data.x_test is not None
        self._x_test = tf.constant(data.x_test if data.x_test is not None else data.x_val[:1])
        self._y_test = tf.constant(data.y_test if data.y_test is not None else data.y_val[:1])
        n = int(data.x_train.shape[0])
        self._n = n
        self._batch = min(batch_size, n)
        self._full_steps = n // self._batch
        self._tail = n - self._full_steps * self._batch
        self._shuffle = shuffle
        self._seed = int(seed)
        # XLA off by default: on CPU it compiles the epoch loop in ~3 s and runs these
        # small nets no faster (about 5 ms per founding epoch either way; benchmarks/train_speed.py).
        self.jit_compile = jit_compile
        self._epoch_fn = tf.function(self._epoch, jit_compile=jit_compile, autograph=True)

    # ------------------------------------------------------------ compiled parts

    def _regularization(self) -> Any:
        losses = self._net.losses
        if not losses:
            return self._tf.constant(0.0, dtype=self._tf.float32)
        return self._tf.add_n([self._tf.cast(v, self._tf.float32) for v in losses])

    def _step(self, xb: Any, yb: Any) -> tuple[Any, Any, Any]:
        """One Keras train step; returns (loss, sum of per-row abs error, reg) of the batch."""
        tf = self._tf
        with tf.GradientTape() as tape:
            pred = self._net(xb, training=True)
            mse = tf.reduce_mean(tf.square(yb - pred))
            reg = self._regularization()
            loss = mse + reg
        grads = tape.gradient(loss, self._variables)
        self._optimizer.apply(grads, self._variables)
        mae_sum = tf.reduce_sum(tf.reduce_mean(tf.abs(yb - pred), axis=-1))
        return loss, mae_sum, reg

    def _epoch(self, epoch: Any) -> Any:
        tf = self._tf
        x, y = self._x, self._y
        if self._shuffle:
            seed = tf.stack([tf.constant(self._seed, tf.int32), epoch])
            order = tf.argsort(tf.random.stateless_uniform([self._n], seed=seed))
            x = tf.gather(x, order)
            y = tf.gather(y, order)
        b = self._batch
        # Keras' Mean metrics: sum of batch value x batch size, divided by rows.
        loss_sum = tf.constant(0.0)
        mae_sum = tf.constant(0.0)
        reg_sum = tf.constant(0.0)
        if self._full_steps > 0:
            xs = tf.reshape(x[: self._full_steps * b], [self._full_steps, b, -1])
            ys = tf.reshape(y[: self._full_steps * b], [self._full_steps, b, -1])
            for i in tf.range(self._full_steps):
                loss, mae, reg = self._step(xs[i], ys[i])
                loss_sum += loss * b
                mae_sum += mae
                reg_sum += reg * b
        if self._tail:
            loss, mae, reg = self._step(x[self._full_steps * b :], y[self._full_steps * b :])
            loss_sum += loss * self._tail
            mae_sum += mae
            reg_sum += reg * self._tail
        n = float(self._n)
        end_reg = self._regularization()
        val_pred = self._net(self._x_val, training=False)
        val_loss = tf.reduce_mean(tf.square(self._y_val - val_pred)) + end_reg
        val_mae = tf.reduce_mean(tf.abs(self._y_val - val_pred))
        test_pred = self._net(self._x_test, training=False)
        test_mae = tf.reduce_mean(tf.abs(self._y_test - test_pred))
        return tf.stack([loss_sum / n, mae_sum / n, val_loss, val_mae, reg_sum / n, test_mae])

    # ------------------------------------------------------------ Python side

    def run_epoch(self, epoch: int) -> dict[str, float]:
        values = self._epoch_fn(self._tf.constant(epoch, self._tf.int32)).numpy().astype(np.float64)
        row = dict(zip(ROW_FIELDS, (float(v) for v in values), strict=True))
        if not self._has_test:
            row.pop("test_mae")
        return row
