"""InteractingAttention (AutoInt) against per-head attention written in NumPy."""

import keras
import numpy as np
import pytest

from ada_keras.layers.interacting_attention import InteractingAttention


def softmax(scores):
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("use_residual,use_scale", [(True, False), (False, True)])
def test_interacting_attention_matches_numpy(use_residual, use_scale):
    num_heads, head_dim = 2, 3
    fields = np.random.default_rng(0).normal(size=(2, 4, 5))
    layer = InteractingAttention(num_heads=num_heads, head_dim=head_dim, use_residual=use_residual, use_scale=use_scale)
    outputs = keras.ops.convert_to_numpy(layer(fields.astype("float32")))

    def kernel(name):
        return keras.ops.convert_to_numpy(getattr(layer, name)).astype("float64")

    heads = []
    for h in range(num_heads):
        columns = slice(h * head_dim, (h + 1) * head_dim)
        queries = fields @ kernel("query_kernel")[:, columns]
        keys = fields @ kernel("key_kernel")[:, columns]
        values = fields @ kernel("value_kernel")[:, columns]
        scores = np.einsum("bmd,bkd->bmk", queries, keys)
        if use_scale:
            scores /= np.sqrt(head_dim)
        heads.append(softmax(scores) @ values)
    expected = np.concatenate(heads, axis=-1)
    if use_residual:
        expected += fields @ kernel("residual_kernel")
    expected = np.maximum(expected, 0.0)
    np.testing.assert_allclose(outputs, expected, rtol=1e-4, atol=1e-5)


def test_interacting_attention_config_round_trip():
    layer = InteractingAttention(num_heads=3, head_dim=4, use_residual=False)
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert clone.get_config() == layer.get_config()
