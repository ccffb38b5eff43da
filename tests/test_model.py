"""The seed's network: layer stack, regularizer and dropout placement."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")

from fitdoc.config import ModelConfig, TrainingConfig  # noqa: E402
from fitdoc.training.model import build_model, compile_model  # noqa: E402

pytestmark = pytest.mark.training


def _kinds(net) -> list[str]:
    return [type(layer).__name__ for layer in net.layers]


def test_stack_regularizers_on_hidden_kernels_only() -> None:
    net = build_model(ModelConfig(hidden_layers=3, units=8, l2=1e-3, l1=1e-5, dropout=0.2), 4, 2)
    assert _kinds(net) == ["Dense", "Dropout", "Dense", "Dropout", "Dense", "Dense"]
    dense = [layer for layer in net.layers if isinstance(layer, keras.layers.Dense)]
    for layer in dense[:-1]:
        config = layer.kernel_regularizer.get_config()
        assert config["l2"] == pytest.approx(1e-3) and config["l1"] == pytest.approx(1e-5)
        assert layer.bias_regularizer is None
        assert layer.units == 8 and layer.activation.__name__ == "relu"
    output = dense[-1]
    assert output.kernel_regularizer is None
    assert output.units == 2 and output.activation.__name__ == "linear"
    assert [d.rate for d in net.layers if isinstance(d, keras.layers.Dropout)] == [0.2, 0.2]


def test_plain_net_has_no_dropout_and_no_regularizer() -> None:
    net = build_model(ModelConfig(hidden_layers=5, units=64), 8, 1)
    assert _kinds(net) == ["Dense"] * 6
    assert all(layer.kernel_regularizer is None for layer in net.layers)
    assert net.losses == []
    # 8*64+64 + 4*(64*64+64) + 64+1: the founding net's size
    assert net.count_params() == 8 * 64 + 64 + 4 * (64 * 64 + 64) + 65


def test_l2_only_matches_keras_penalty() -> None:
    keras.utils.set_random_seed(0)
    net = build_model(ModelConfig(hidden_layers=2, units=4, l2=0.01), 3, 1)
    kernels = [layer.kernel for layer in net.layers[:-1]]
    expected = sum(0.01 * float((k.numpy() ** 2).sum()) for k in kernels)
    assert float(sum(net.losses)) == pytest.approx(expected, rel=1e-5)


def test_compiled_with_adam_mse_mae() -> None:
    net = compile_model(
        build_model(ModelConfig(hidden_layers=1, units=2), 1, 1), TrainingConfig(learning_rate=0.01)
    )
    assert type(net.optimizer).__name__ == "Adam"
    assert float(net.optimizer.learning_rate) == pytest.approx(0.01)
    assert net.loss == "mse"
