"""CrossNetwork (DCN v1) against its recurrence in NumPy."""

import keras
import numpy as np
import pytest

from ada_keras.layers.cross_network import CrossNetwork


def test_cross_network_matches_recurrence():
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(4, 6)).astype("float32")
    layer = CrossNetwork(num_layers=3, bias_initializer="random_normal")
    outputs = keras.ops.convert_to_numpy(layer(inputs))

    x0 = inputs.astype("float64")
    x = x0
    for kernel, bias in zip(layer.cross_kernels, layer.cross_biases):
        w = keras.ops.convert_to_numpy(kernel)[:, 0]
        b = keras.ops.convert_to_numpy(bias)
        x = x0 * (x @ w)[:, None] + b + x
    np.testing.assert_allclose(outputs, x, rtol=1e-4, atol=1e-5)


def test_cross_network_config_round_trip():
    layer = CrossNetwork(num_layers=2, l2=1e-3)
    inputs = np.ones((2, 3), dtype="float32")
    layer(inputs)
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    clone(inputs)
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == layer.get_config()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(inputs)), keras.ops.convert_to_numpy(layer(inputs)))


def test_cross_network_rejects_zero_layers():
    with pytest.raises(ValueError):
        CrossNetwork(num_layers=0)
