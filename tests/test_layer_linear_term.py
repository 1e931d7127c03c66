"""LinearTerm against a per-field weight lookup in NumPy."""

import keras
import numpy as np
import pytest

from ada_keras.layers.linear_term import LinearTerm


def test_linear_term_sums_weights_of_active_ids():
    vocabulary_sizes = [3, 5, 2]
    layer = LinearTerm(vocabulary_sizes, weights_initializer="random_normal")
    ids = np.array([[0, 4, 1], [2, 0, 0], [1, 3, 1]], dtype="int32")
    layer.build(ids.shape)
    layer.bias.assign([0.25])
    outputs = keras.ops.convert_to_numpy(layer(ids))

    table = keras.ops.convert_to_numpy(layer.id_weights.embeddings)[:, 0]
    per_field = np.split(table, np.cumsum(vocabulary_sizes)[:-1])
    expected = np.array(
        [[0.25 + sum(per_field[field][row[field]] for field in range(3))] for row in ids]
    )
    np.testing.assert_allclose(outputs, expected, rtol=1e-6)


def test_linear_term_config_round_trip():
    layer = LinearTerm([4, 4], use_bias=False, l2=0.01)
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert clone.get_config() == layer.get_config()


def test_linear_term_rejects_wrong_field_count():
    layer = LinearTerm([4, 4])
    with pytest.raises(ValueError, match=r"\[batch, 2\]"):
        layer(np.zeros((2, 3), dtype="int32"))


def test_linear_term_rejects_empty_vocabulary():
    with pytest.raises(ValueError):
        LinearTerm([4, 0])


def test_linear_term_l2_penalises_looked_up_rows():
    layer = LinearTerm([3, 4], l2=0.5, weights_initializer="random_normal")
    ids = np.array([[1, 2], [1, 0]], dtype="int32")
    layer(ids)
    table = keras.ops.convert_to_numpy(layer.id_weights.embeddings)[:, 0]

    # Rows 1 (twice), 3 + 2 and 3 + 0 of the table; row 0 and the others are not in the batch.
    expected = 0.5 * (2 * table[1] ** 2 + table[5] ** 2 + table[3] ** 2)
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(layer.losses[0]), expected, rtol=1e-5)
