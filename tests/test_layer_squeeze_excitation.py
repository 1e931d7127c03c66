"""SqueezeExcitation (SENET) against its squeeze, excitation and re-weight steps in NumPy."""

import keras
import numpy as np

from ada_keras.layers.squeeze_excitation import SqueezeExcitation


def test_squeeze_excitation_matches_numpy():
    embeddings = np.random.default_rng(0).normal(size=(3, 6, 4))
    layer = SqueezeExcitation(reduction_ratio=2)
    outputs = keras.ops.convert_to_numpy(layer(embeddings.astype("float32")))
    squeeze_kernel = keras.ops.convert_to_numpy(layer.squeeze_kernel).astype("float64")
    excitation_kernel = keras.ops.convert_to_numpy(layer.excitation_kernel).astype("float64")

    assert squeeze_kernel.shape == (6, 3)
    squeezed = embeddings.mean(axis=2)
    field_weights = np.maximum(np.maximum(squeezed @ squeeze_kernel, 0.0) @ excitation_kernel, 0.0)
    expected = embeddings * field_weights[:, :, None]
    np.testing.assert_allclose(outputs, expected, rtol=1e-4, atol=1e-5)


def test_squeeze_excitation_config_round_trip():
    layer = SqueezeExcitation(reduction_ratio=4)
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert clone.get_config() == layer.get_config()
