"""MLP against a NumPy forward pass."""

import keras
import numpy as np
import pytest

from ada_keras.layers.mlp import MLP


def test_mlp_matches_numpy_forward():
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(5, 6)).astype("float32")
    layer = MLP(units=(4, 3), activation="relu")
    outputs = keras.ops.convert_to_numpy(layer(inputs))

    expected = inputs
    for dense in layer.dense_layers:
        kernel, bias = (np.asarray(w) for w in dense.get_weights())
        expected = np.maximum(expected @ kernel + bias, 0.0)
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-6)


def test_mlp_batch_norm_and_dropout_inference():
    rng = np.random.default_rng(1)
    inputs = rng.normal(size=(8, 6)).astype("float32")
    layer = MLP(units=(4,), activation="linear", use_batch_norm=True, dropout_rate=0.5)
    outputs = keras.ops.convert_to_numpy(layer(inputs, training=False))

    # At inference, dropout is the identity and batch norm uses its moving statistics
    # (mean 0, variance 1 at initialisation): y = (x W + b) / sqrt(1 + epsilon).
    kernel, bias = layer.dense_layers[0].get_weights()
    epsilon = layer.batch_norm_layers[0].epsilon
    expected = (inputs @ kernel + bias) / np.sqrt(1.0 + epsilon)
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-6)


def test_mlp_l2_adds_loss():
    layer = MLP(units=(3,), l2=0.1)
    layer(np.ones((2, 4), dtype="float32"))
    kernel = layer.dense_layers[0].kernel
    expected = 0.1 * np.sum(np.square(keras.ops.convert_to_numpy(kernel)))
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(layer.losses[0]), expected, rtol=1e-5)


def test_mlp_config_round_trip():
    layer = MLP(units=(4, 2), dropout_rate=0.2, use_batch_norm=True, l2=1e-3, activation="tanh")
    inputs = np.random.default_rng(2).normal(size=(3, 5)).astype("float32")
    outputs = layer(inputs)
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    clone(inputs)
    clone.set_weights(layer.get_weights())

    assert clone.get_config() == layer.get_config()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(inputs)), keras.ops.convert_to_numpy(outputs))


@pytest.mark.parametrize("kwargs", [{"units": ()}, {"units": (0,)}, {"units": (4,), "dropout_rate": 1.0}])
def test_mlp_rejects_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        MLP(**kwargs)
