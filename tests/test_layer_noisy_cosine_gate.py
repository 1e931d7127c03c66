"""Tests of NoisyCosineGate, DepthController, Estimator and the load-distribution loss."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from ada_keras.layers import DepthController, Estimator, NoisyCosineGate
from ada_keras.layers.noisy_cosine_gate import load_distribution_loss


@pytest.fixture(autouse=True)
def seeded_initializers():
    """Seed Keras' initialisers, so every run builds the same weights."""
    keras.utils.set_random_seed(0)


def feature_map(batch=6, fields=3, dim=4, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return (scale * rng.normal(size=(batch, fields, dim))).astype(np.float32)


def numpy_top_k_softmax(logits, k):
    gates = np.zeros_like(logits)
    for row, values in enumerate(logits):
        chosen = np.argsort(-values, kind="stable")[:k]
        weights = np.exp(values[chosen] - values[chosen].max())
        gates[row, chosen] = weights / weights.sum()
    return gates


@pytest.mark.parametrize("top_k", [1, 2, 5])
def test_gate_matches_numpy_top_k(top_k):
    x = feature_map()
    gate = NoisyCosineGate(num_experts=5, top_k=top_k)
    gates, probabilities, selected = (keras.ops.convert_to_numpy(t) for t in gate(x))
    logits = keras.ops.convert_to_numpy(gate.logits(x))
    np.testing.assert_allclose(gates, numpy_top_k_softmax(logits, top_k), atol=1e-6)
    expected_probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(probabilities, expected_probabilities, atol=1e-6)
    np.testing.assert_allclose(gates.sum(-1), 1.0, atol=1e-6)
    assert ((gates > 0).sum(-1) == top_k).all()
    np.testing.assert_array_equal(selected, gates > 0)


def test_gate_logits_are_cosine_over_temperature():
    x = feature_map()
    gate = NoisyCosineGate(num_experts=4, initial_temperature=0.5)
    gate(x)
    hidden = gate.hidden(x.reshape(len(x), -1))
    h = keras.ops.convert_to_numpy(gate.projection(hidden))
    e = keras.ops.convert_to_numpy(gate.expert_embeddings)
    # The layer divides by max(norm, 1e-6): an all-zero h (every ReLU unit off) scores 0.
    h_norm = np.maximum(np.linalg.norm(h, axis=1, keepdims=True), 1e-6)
    e_norm = np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-6)
    cosine = (h / h_norm) @ (e / e_norm).T
    np.testing.assert_allclose(keras.ops.convert_to_numpy(gate.logits(x)), cosine / 0.5,
                               rtol=1e-5, atol=1e-5)


def test_annealed_k_follows_schedule():
    x = feature_map()
    gate = NoisyCosineGate(num_experts=5, top_k=1, anneal_steps=4, jitter_eps=0.0)
    observed = []
    for _ in range(7):
        k = int(gate.current_top_k()) if gate.built else 5
        gates = keras.ops.convert_to_numpy(gate(x, training=True)[0])
        assert ((gates > 0).sum(-1) == k).all()
        observed.append(k)
    # k(t) = 5 - floor(4 * min(t, 4) / 4)
    assert observed == [5, 4, 3, 2, 1, 1, 1]
    assert int(gate.step) == 7
    gate(x, training=True, update_step=False)
    gate(x, training=False)
    assert int(gate.step) == 7


def test_annealing_uneven_steps():
    gate = NoisyCosineGate(num_experts=4, top_k=2, anneal_steps=5)
    gate.build((None, 3, 4))
    expected = [4 - math.floor(2 * min(t, 5) / 5) for t in range(8)]
    observed = []
    for t in range(8):
        gate.step.assign(t)
        observed.append(int(gate.current_top_k()))
    assert observed == expected


def test_gate_float16_finite_with_all_experts():
    x = feature_map(scale=200.0)
    gate = NoisyCosineGate(num_experts=5, top_k=5, dtype="mixed_float16")
    gates, probabilities, _ = (keras.ops.convert_to_numpy(t) for t in gate(x, training=True))
    assert np.isfinite(gates).all()
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(gates.sum(-1), 1.0, atol=1e-5)


def test_jitter_only_in_training():
    x = feature_map()
    gate = NoisyCosineGate(num_experts=3, jitter_eps=0.5, seed=1)
    gate(x)
    first = keras.ops.convert_to_numpy(gate.logits(x, training=False))
    second = keras.ops.convert_to_numpy(gate.logits(x, training=False))
    jittered = keras.ops.convert_to_numpy(gate.logits(x, training=True))
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first, jittered)


def test_gates_carry_gradient_to_router():
    x = feature_map()
    gate = NoisyCosineGate(num_experts=4, top_k=2)
    gate(x)
    weights = tf.constant(np.arange(4, dtype=np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(gate(x)[0] * weights)
    gradients = tape.gradient(loss, gate.trainable_variables)
    assert all(g is not None for g in gradients)
    assert any(np.abs(tf.convert_to_tensor(g).numpy()).sum() > 0 for g in gradients)


def test_temperature_floor():
    x = feature_map()
    gate = NoisyCosineGate(num_experts=3)
    gate(x)
    gate.log_temperature.assign(math.log(1e-4))
    logits = keras.ops.convert_to_numpy(gate.logits(x))
    assert np.abs(logits).max() <= 1 / 0.05 + 1e-4
    with pytest.raises(ValueError, match="initial_temperature"):
        NoisyCosineGate(num_experts=3, initial_temperature=0.01)


def test_load_distribution_loss_matches_numpy():
    rng = np.random.default_rng(3)
    probabilities = rng.dirichlet(np.ones(4), size=10).astype(np.float32)
    loads = np.array([0.1, 0.2, 0.6, 0.1])
    loss = float(load_distribution_loss(probabilities, probabilities, loads))
    fractions = np.bincount(probabilities.argmax(1), minlength=4) / 10
    expected = np.sum(fractions * probabilities.mean(0) / loads)
    assert loss == pytest.approx(expected, rel=1e-5)
    empty = load_distribution_loss(probabilities[:0], probabilities[:0], loads)
    assert float(empty) == 0.0


def test_depth_controller_exits_and_loss():
    x = feature_map()
    controller = DepthController(num_layers=3, expected_loads=[0.2, 0.5, 0.3],
                                 load_loss_weight=0.5)
    probabilities, exit_depth = controller(x)
    probabilities = keras.ops.convert_to_numpy(probabilities)
    logits = keras.ops.convert_to_numpy(controller.logits(x))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(exit_depth), logits.argmax(1))
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-6)
    fractions = np.bincount(logits.argmax(1), minlength=3) / len(x)
    expected = 0.5 * np.sum(fractions * probabilities.mean(0) / np.array([0.2, 0.5, 0.3]))
    assert float(controller.losses[0]) == pytest.approx(expected, rel=1e-5)
    assert controller.is_routing_layer


def test_estimator_matches_numpy():
    x = feature_map()
    estimator = Estimator()
    output = keras.ops.convert_to_numpy(estimator(x))
    kernel, bias = (keras.ops.convert_to_numpy(v) for v in estimator.dense.weights)
    expected = 1 / (1 + np.exp(-(x.reshape(len(x), -1) @ kernel + bias)))
    np.testing.assert_allclose(output, expected, rtol=1e-5)
    assert output.dtype == np.float32


@pytest.mark.parametrize(
    "layer",
    [
        NoisyCosineGate(num_experts=4, top_k=2, anneal_steps=10, reduction_ratio=2, seed=3),
        DepthController(num_layers=3, expected_loads=[0.2, 0.5, 0.3]),
        Estimator(kernel_regularizer="l2"),
    ],
)
def test_router_config_round_trip(layer):
    x = feature_map()
    output = layer(x)
    clone = layer.__class__.from_config(layer.get_config())
    clone(x)
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == layer.get_config()
    for a, b in zip(keras.tree.flatten(output), keras.tree.flatten(clone(x))):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_gate_rejects_invalid_arguments():
    with pytest.raises(ValueError, match="top_k"):
        NoisyCosineGate(num_experts=3, top_k=4)
    with pytest.raises(ValueError, match="jitter_eps"):
        NoisyCosineGate(num_experts=3, jitter_eps=1.5)
    with pytest.raises(ValueError, match="sum"):
        DepthController(num_layers=2, expected_loads=[0.5, 0.6])
