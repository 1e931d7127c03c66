"""Tests of FieldEmbedding against a NumPy lookup with per-field offsets."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from ada_keras.layers import FieldEmbedding

VOCABULARY_SIZES = [5, 3, 7]


def make_ids() -> np.ndarray:
    return np.array([[0, 2, 6], [4, 0, 1], [3, 1, 0]], dtype=np.int32)


def test_lookup_matches_numpy_offsets():
    layer = FieldEmbedding(VOCABULARY_SIZES, embedding_dim=4)
    ids = make_ids()
    output = keras.ops.convert_to_numpy(layer(ids))
    table = keras.ops.convert_to_numpy(layer.embeddings)
    offsets = np.array([0, 5, 8])
    expected = table[ids + offsets]
    assert output.shape == (3, 3, 4)
    np.testing.assert_allclose(output, expected, rtol=0, atol=0)


def test_eager_out_of_range_raises():
    layer = FieldEmbedding(VOCABULARY_SIZES, embedding_dim=2)
    ids = make_ids()
    ids[1, 1] = 3  # field 1 has ids 0..2
    with pytest.raises(ValueError, match=r"id 3 at batch row 1, field 1 is outside \[0, 3\)"):
        layer(ids)
    with pytest.raises(ValueError, match="outside"):
        layer(np.array([[0, -1, 0]], dtype=np.int32))


def test_graph_out_of_range_maps_to_oov():
    layer = FieldEmbedding(VOCABULARY_SIZES, embedding_dim=2)
    ids = make_ids()
    layer(ids)
    bad = ids.copy()
    bad[0, 2] = 7
    bad[2, 0] = -4
    lookup = tf.function(lambda x: layer(x))
    expected_ids = ids.copy()
    expected_ids[0, 2] = 0
    expected_ids[2, 0] = 0
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(lookup(tf.constant(bad))),
        keras.ops.convert_to_numpy(layer(expected_ids)),
    )
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.out_of_range_count),
                                  [1, 0, 1])


def test_gradient_is_indexed_slices():
    layer = FieldEmbedding(VOCABULARY_SIZES, embedding_dim=2)
    ids = tf.constant(make_ids())
    layer(ids)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(ids))
    gradient = tape.gradient(loss, layer.embeddings)
    assert isinstance(gradient, tf.IndexedSlices)
    dense = tf.convert_to_tensor(gradient).numpy()
    touched_rows = np.unique(make_ids() + np.array([0, 5, 8]))
    assert set(np.flatnonzero(dense.any(axis=1))) == set(touched_rows)


def test_mixed_precision_output_dtype():
    layer = FieldEmbedding(VOCABULARY_SIZES, embedding_dim=2, dtype="mixed_float16")
    output = layer(make_ids())
    assert output.dtype == "float16"
    assert layer.embeddings.dtype == "float32"


def test_invalid_arguments_rejected():
    with pytest.raises(ValueError, match="vocabulary_sizes\\[1\\] = 0"):
        FieldEmbedding([3, 0], embedding_dim=2)
    with pytest.raises(ValueError, match="embedding_dim"):
        FieldEmbedding([3], embedding_dim=0)
    with pytest.raises(ValueError, match="shape"):
        FieldEmbedding([3, 4], embedding_dim=2)(np.zeros((2, 3), dtype=np.int32))


def test_config_round_trip():
    layer = FieldEmbedding(VOCABULARY_SIZES, embedding_dim=3, embeddings_regularizer="l2")
    clone = FieldEmbedding.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
