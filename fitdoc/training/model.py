"""The seed's network, built from the config's `model` section.

`hidden_layers` Dense layers of `units` with `activation`, L2/L1 on the kernel
of every hidden layer (not the output), Dropout after each hidden layer except
the last, and a linear output with one unit per target. TensorFlow is
imported only when a function here is called.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

from fitdoc.config import ModelConfig, TrainingConfig
from fitdoc.errors import MissingDependencyError

TENSORFLOW_MISSING = "TensorFlow is not installed; install the training extra: pip install 'fitdoc[train]'"


def require_training_extra() -> None:
    """MissingDependencyError (one line) unless TensorFlow and pandas are installed, without importing them."""
    import importlib.util

    for name in ("tensorflow", "pandas"):
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise MissingDependencyError(TENSORFLOW_MISSING)


def import_keras() -> Any:
    """Keras 3 on TensorFlow, or MissingDependencyError (one line) when absent."""
    # TensorFlow's C++ start-up chatter (absl "before InitializeLog", oneDNN, CUDA probes)
    # is not for fitdoc's users; export TF_CPP_MIN_LOG_LEVEL to see it again.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        with _native_stderr_silenced(os.environ["TF_CPP_MIN_LOG_LEVEL"].strip() in ("2", "3")):
            import keras
            import tensorflow  # noqa: F401  (the backend must be importable too)
    except ImportError:
        raise MissingDependencyError(TENSORFLOW_MISSING) from None
    return keras


@contextlib.contextmanager
def _native_stderr_silenced(active: bool) -> Iterator[None]:
    """Point file descriptor 2 at /dev/null while native code logs at import time."""
    if not active or "tensorflow" in sys.modules:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        yield
        return
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def kernel_regularizer(model: ModelConfig) -> Any:
    """Keras' own L1/L2/L1L2 object, so the penalty is exactly what Keras adds to the loss."""
    keras = import_keras()
    if model.l1 > 0 and model.l2 > 0:
        return keras.regularizers.L1L2(l1=model.l1, l2=model.l2)
    if model.l2 > 0:
        return keras.regularizers.L2(model.l2)
    if model.l1 > 0:
        return keras.regularizers.L1(model.l1)
    return None


def build_model(model: ModelConfig, n_features: int, n_targets: int) -> Any:
    """An uncompiled `keras.Sequential`; call `keras.utils.set_random_seed` first for repeatable weights."""
    keras = import_keras()
    layers: list[Any] = [keras.Input(shape=(n_features,), name="features")]
    for i in range(model.hidden_layers):
        layers.append(
            keras.layers.Dense(
                model.units,
                activation=model.activation,
                kernel_regularizer=kernel_regularizer(model),
                name=f"dense_{i}",
            )
        )
        if model.dropout > 0 and i < model.hidden_layers - 1:
            layers.append(keras.layers.Dropout(model.dropout, name=f"dropout_{i}"))
    layers.append(keras.layers.Dense(n_targets, activation="linear", name="output"))
    return keras.Sequential(layers, name="fitdoc_net")


def make_optimizer(training: TrainingConfig) -> Any:
    keras = import_keras()
    return keras.optimizers.Adam(learning_rate=training.learning_rate)


def compile_model(net: Any, training: TrainingConfig, *, extra_metrics: tuple[str, ...] = ()) -> Any:
    """Adam, MSE loss, MAE metric (plus `extra_metrics`), as in the founding case."""
    net.compile(optimizer=make_optimizer(training), loss="mse", metrics=["mae", *extra_metrics])
    return net
