"""FactorizationMachine against the explicit sum over field pairs."""

import keras
import numpy as np

from ada_keras.layers.factorization_machine import FactorizationMachine


def test_fm_identity_matches_pairwise_sum():
    embeddings = np.random.default_rng(0).normal(size=(4, 6, 5))
    outputs = keras.ops.convert_to_numpy(FactorizationMachine()(embeddings.astype("float32")))

    expected = np.zeros((4, 1))
    for i in range(6):
        for j in range(i + 1, 6):
            expected[:, 0] += np.sum(embeddings[:, i] * embeddings[:, j], axis=1)
    np.testing.assert_allclose(outputs, expected, rtol=1e-4, atol=1e-5)


def test_fm_without_reduction_keeps_coordinates():
    embeddings = np.random.default_rng(1).normal(size=(3, 4, 5))
    outputs = keras.ops.convert_to_numpy(FactorizationMachine(reduce_sum=False)(embeddings.astype("float32")))

    expected = np.zeros((3, 5))
    for i in range(4):
        for j in range(i + 1, 4):
            expected += embeddings[:, i] * embeddings[:, j]
    np.testing.assert_allclose(outputs, expected, rtol=1e-4, atol=1e-5)


def test_fm_config_round_trip():
    layer = FactorizationMachine(reduce_sum=False)
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert clone.get_config() == layer.get_config()
