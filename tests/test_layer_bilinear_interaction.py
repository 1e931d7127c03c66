"""BilinearInteraction (FiBiNET) against a loop over field pairs, for all three variants."""

import keras
import numpy as np
import pytest

from ada_keras.layers.bilinear_interaction import BilinearInteraction


@pytest.mark.parametrize("bilinear_type", ["field_all", "field_each", "field_interaction"])
def test_bilinear_interaction_matches_pair_loop(bilinear_type):
    num_fields, dim = 4, 3
    embeddings = np.random.default_rng(0).normal(size=(2, num_fields, dim))
    layer = BilinearInteraction(bilinear_type=bilinear_type)
    outputs = keras.ops.convert_to_numpy(layer(embeddings.astype("float32")))
    kernel = keras.ops.convert_to_numpy(layer.kernel).astype("float64")

    expected = []
    pair = 0
    for i in range(num_fields):
        for j in range(i + 1, num_fields):
            if bilinear_type == "field_all":
                matrix = kernel[0]
            elif bilinear_type == "field_each":
                matrix = kernel[i]
            else:
                matrix = kernel[pair]
            expected.append((embeddings[:, i] @ matrix) * embeddings[:, j])
            pair += 1
    np.testing.assert_allclose(outputs, np.stack(expected, axis=1), rtol=1e-4, atol=1e-5)


def test_bilinear_interaction_kernel_counts():
    embeddings = np.ones((1, 5, 2), dtype="float32")
    counts = {}
    for bilinear_type in ["field_all", "field_each", "field_interaction"]:
        layer = BilinearInteraction(bilinear_type=bilinear_type)
        layer(embeddings)
        counts[bilinear_type] = layer.kernel.shape[0]
    assert counts == {"field_all": 1, "field_each": 5, "field_interaction": 10}


def test_bilinear_interaction_rejects_unknown_type():
    with pytest.raises(ValueError, match="bilinear_type"):
        BilinearInteraction(bilinear_type="pairwise")
