"""InnerProduct against explicit pairwise dot products."""

import keras
import numpy as np
import pytest

from ada_keras.layers.inner_product import InnerProduct


def test_inner_product_matches_pairwise_dots():
    embeddings = np.random.default_rng(0).normal(size=(3, 5, 4))
    outputs = keras.ops.convert_to_numpy(InnerProduct()(embeddings.astype("float32")))

    expected = [
        np.sum(embeddings[:, i] * embeddings[:, j], axis=1) for i in range(5) for j in range(i + 1, 5)
    ]
    np.testing.assert_allclose(outputs, np.stack(expected, axis=1), rtol=1e-4, atol=1e-5)


def test_inner_product_rejects_single_field():
    with pytest.raises(ValueError, match="F >= 2"):
        InnerProduct()(np.ones((2, 1, 4), dtype="float32"))
