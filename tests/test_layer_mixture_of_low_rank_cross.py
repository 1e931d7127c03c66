"""MixtureOfLowRankCross (DCN V2) against a per-expert loop in NumPy."""

import keras
import numpy as np
import pytest

from ada_keras.layers.mixture_of_low_rank_cross import MixtureOfLowRankCross


def test_mixture_cross_matches_expert_loop():
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(3, 6))
    x = rng.normal(size=(3, 6))
    layer = MixtureOfLowRankCross(rank=2, num_experts=3)
    layer.build(x.shape, x0.shape)
    layer.bias.assign(np.linspace(-0.3, 0.3, 6))
    outputs = keras.ops.convert_to_numpy(layer(x.astype("float32"), x0=x0.astype("float32")))

    def weight(variable):
        return keras.ops.convert_to_numpy(variable).astype("float64")

    u, v, c, gate, bias = (weight(w) for w in (layer.u_kernel, layer.v_kernel, layer.c_kernel, layer.gate_kernel, layer.bias))
    gate_logits = x @ gate
    gates = np.exp(gate_logits - gate_logits.max(axis=1, keepdims=True))
    gates /= gates.sum(axis=1, keepdims=True)
    expected = x.copy()
    for i in range(3):
        expert = x0 * (np.tanh(np.tanh(x @ v[i]) @ c[i]) @ u[i].T + bias)
        expected += gates[:, i : i + 1] * expert
    np.testing.assert_allclose(outputs, expected, rtol=1e-4, atol=1e-5)


def test_single_linear_expert_is_low_rank_cross():
    rng = np.random.default_rng(1)
    x0 = rng.normal(size=(4, 5)).astype("float32")
    layer = MixtureOfLowRankCross(rank=3, num_experts=1, activation="linear")
    layer.build(x0.shape)
    layer.c_kernel.assign(np.eye(3)[None])
    outputs = keras.ops.convert_to_numpy(layer(x0))

    u = keras.ops.convert_to_numpy(layer.u_kernel)[0]
    v = keras.ops.convert_to_numpy(layer.v_kernel)[0]
    expected = x0 * (x0 @ v @ u.T) + x0
    np.testing.assert_allclose(outputs, expected, rtol=1e-4, atol=1e-5)


def test_mixture_cross_config_round_trip():
    layer = MixtureOfLowRankCross(rank=4, num_experts=2, kernel_regularizer="l2")
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert clone.get_config() == layer.get_config()


def test_mixture_cross_rejects_zero_rank():
    with pytest.raises(ValueError, match="rank"):
        MixtureOfLowRankCross(rank=0)
