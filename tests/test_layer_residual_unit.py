"""ResidualUnit (Deep Crossing) against its formula in NumPy."""

import keras
import numpy as np

from ada_keras.layers.residual_unit import ResidualUnit


def test_residual_unit_matches_formula():
    inputs = np.random.default_rng(0).normal(size=(4, 6))
    layer = ResidualUnit(hidden_units=5)
    layer.build(inputs.shape)
    w0, b0 = layer.inner.get_weights()
    (w1,) = layer.outer.get_weights()
    b1 = np.linspace(-0.5, 0.5, 6)  # Zero biases would hide a misplaced bias.
    layer.outer_bias.assign(b1)
    outputs = keras.ops.convert_to_numpy(layer(inputs.astype("float32")))

    expected = np.maximum(inputs + np.maximum(inputs @ w0 + b0, 0.0) @ w1 + b1, 0.0)
    np.testing.assert_allclose(outputs, expected, rtol=1e-4, atol=1e-5)


def test_residual_unit_config_round_trip():
    layer = ResidualUnit(hidden_units=7, l2=1e-3)
    inputs = np.ones((2, 3), dtype="float32")
    layer(inputs)
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    clone(inputs)
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == layer.get_config()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(inputs)), keras.ops.convert_to_numpy(layer(inputs)))
