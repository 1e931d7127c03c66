"""CompressedInteractionNetwork (CIN) against an explicit loop over maps and field pairs."""

import keras
import numpy as np
import pytest

from ada_keras.layers.compressed_interaction_network import CompressedInteractionNetwork


def cin_loop(x0, kernels, biases, layer_sizes, split_half):
    """CIN by its definition: X^k_h = sum_{i,j} W^{k,h}_{ij} (X^{k-1}_i o X^0_j) + b^{k,h}."""
    batch, num_fields, dim = x0.shape
    hidden = x0
    pooled = []
    for index, (kernel, bias) in enumerate(zip(kernels, biases)):
        size = layer_sizes[index]
        weights = kernel.reshape(hidden.shape[1], num_fields, size)
        maps = np.zeros((batch, size, dim))
        for h in range(size):
            for i in range(hidden.shape[1]):
                for j in range(num_fields):
                    maps[:, h] += weights[i, j, h] * hidden[:, i] * x0[:, j]
            maps[:, h] += bias[h]
        last = index == len(kernels) - 1
        if split_half and not last:
            hidden, output = maps[:, : size // 2], maps[:, size // 2 :]
        else:
            hidden, output = maps, maps
        pooled.append(output.sum(axis=2))
    return np.concatenate(pooled, axis=1)


@pytest.mark.parametrize("split_half", [True, False])
def test_cin_matches_explicit_loop(split_half):
    x0 = np.random.default_rng(0).normal(size=(3, 4, 5))
    layer_sizes = (4, 2, 3)
    layer = CompressedInteractionNetwork(layer_sizes=layer_sizes, split_half=split_half)
    layer.build(x0.shape)
    # Non-zero biases, so the check also covers where the bias enters.
    for index, bias in enumerate(layer.cin_biases):
        bias.assign(np.linspace(-0.5, 0.5, layer_sizes[index]))
    outputs = keras.ops.convert_to_numpy(layer(x0.astype("float32")))

    kernels = [keras.ops.convert_to_numpy(kernel).astype("float64") for kernel in layer.cin_kernels]
    biases = [keras.ops.convert_to_numpy(bias).astype("float64") for bias in layer.cin_biases]
    expected = cin_loop(x0, kernels, biases, layer_sizes, split_half)
    assert outputs.shape == layer.compute_output_shape(x0.shape)
    np.testing.assert_allclose(outputs, expected, rtol=1e-4, atol=1e-4)


def test_cin_config_round_trip():
    layer = CompressedInteractionNetwork(layer_sizes=(4, 3), activation="relu", l2=1e-4)
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert clone.get_config() == layer.get_config()


def test_cin_rejects_odd_split_sizes():
    with pytest.raises(ValueError, match="even"):
        CompressedInteractionNetwork(layer_sizes=(3, 4), split_half=True)
