"""OuterProduct against explicit outer products reduced by each pair's kernel."""

import keras
import numpy as np
import pytest

from ada_keras.layers.outer_product import OuterProduct


@pytest.mark.parametrize("kernel_type", ["mat", "vec", "num"])
def test_outer_product_matches_kernel_reduction(kernel_type):
    num_fields, dim = 4, 3
    embeddings = np.random.default_rng(0).normal(size=(2, num_fields, dim))
    layer = OuterProduct(kernel_type=kernel_type)
    outputs = keras.ops.convert_to_numpy(layer(embeddings.astype("float32")))
    kernel = keras.ops.convert_to_numpy(layer.kernel).astype("float64")

    expected = []
    pair = 0
    for i in range(num_fields):
        for j in range(i + 1, num_fields):
            # The D x D outer product e_i e_j^T of every example.
            outer = np.einsum("ba,bc->bac", embeddings[:, i], embeddings[:, j])
            if kernel_type == "mat":
                pair_kernel = kernel[pair]
            elif kernel_type == "vec":
                pair_kernel = np.diag(kernel[pair])
            else:
                pair_kernel = kernel[pair, 0] * np.eye(dim)
            expected.append(np.sum(outer * pair_kernel, axis=(1, 2)))
            pair += 1
    np.testing.assert_allclose(outputs, np.stack(expected, axis=1), rtol=1e-4, atol=1e-5)


def test_outer_product_config_round_trip():
    layer = OuterProduct(kernel_type="vec", l2=1e-4)
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert clone.get_config() == layer.get_config()


def test_outer_product_rejects_unknown_kernel_type():
    with pytest.raises(ValueError, match="kernel_type"):
        OuterProduct(kernel_type="full")
