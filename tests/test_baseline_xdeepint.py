"""xDeepInt's prediction against its polynomial recurrence computed in NumPy."""

import keras
import numpy as np

from baselines.xdeepint import XDeepInt


def test_xdeepint_matches_polynomial_recurrence():
    vocabulary_sizes = [5, 6, 7]
    num_subspaces, embedding_dim = 2, 4
    model = XDeepInt(vocabulary_sizes, embedding_dim=embedding_dim, num_layers=2, num_subspaces=num_subspaces)
    ids = np.array([[0, 5, 6], [4, 1, 2], [2, 3, 0]], dtype="int32")
    model(ids)
    # Unit-scale embeddings, so the degree-2 and degree-3 terms are far above the tolerance.
    table = np.random.default_rng(0).normal(size=(sum(vocabulary_sizes), embedding_dim))
    model.field_embedding.embeddings.assign(table)
    predictions = keras.ops.convert_to_numpy(model(ids))

    offsets = np.concatenate([[0], np.cumsum(vocabulary_sizes)[:-1]])
    x0 = table[ids + offsets]  # [batch, F, D]
    # Subspace crossing: field i's block s of D / h coordinates is row i * h + s.
    x0 = x0.reshape(len(ids), 3 * num_subspaces, embedding_dim // num_subspaces)
    hidden = x0
    for layer in model.polynomial_layers:
        kernel = keras.ops.convert_to_numpy(layer.mixing.kernels[0]).astype("float64")
        hidden = hidden * (1.0 + np.einsum("ij,bje->bie", kernel, x0))
    weights, bias = (w.astype("float64") for w in model.output_dense.get_weights())
    logit = hidden.reshape(len(ids), -1) @ weights + bias
    expected = 1.0 / (1.0 + np.exp(-logit))
    np.testing.assert_allclose(predictions, expected, rtol=1e-4, atol=1e-6)
