"""Tests of SparseMoE: sparse dispatch against the dense computation, loss, statistics."""

import json

import keras
import numpy as np
import pytest

from ada_keras.layers import (
    CrossExpert,
    DenseExpert,
    Estimator,
    FieldEmbedding,
    PolynomialExpert,
    SparseMoE,
)

BATCH, FIELDS, DIM = 7, 3, 4
EXPERTS = ["dense", "conv", "attention", "polynomial", "cross"]


@pytest.fixture(autouse=True)
def seeded_initializers():
    """Seed Keras' initialisers, so every run builds the same weights."""
    keras.utils.set_random_seed(0)


def feature_maps(batch=BATCH, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, FIELDS, DIM)).astype(np.float32)
    x0 = rng.normal(size=(batch, FIELDS, DIM)).astype(np.float32)
    return x, x0


class RowCounter(keras.layers.Layer):
    """Identity-like expert that records how many rows each call received."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rows_seen = []

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

    def call(self, inputs):
        self.rows_seen.append(int(inputs.shape[0]))
        return inputs * self.scale


def sparse_and_dense(layer, x, x0):
    layer.dispatch = "sparse"
    sparse = keras.ops.convert_to_numpy(layer(x, x0=x0))
    layer.dispatch = "dense"
    dense = keras.ops.convert_to_numpy(layer(x, x0=x0))
    layer.dispatch = "sparse"
    return sparse, dense


@pytest.mark.parametrize("top_k", [1, 2, 5])
def test_sparse_dispatch_equals_dense(top_k):
    x, x0 = feature_maps()
    layer = SparseMoE(EXPERTS, top_k=top_k)
    sparse, dense = sparse_and_dense(layer, x, x0)
    np.testing.assert_allclose(sparse, dense, rtol=1e-5, atol=1e-5)


def test_sparse_dispatch_with_idle_expert():
    x, x0 = feature_maps(batch=2)
    layer = SparseMoE(EXPERTS, top_k=1)
    layer(x, x0=x0)
    selected = keras.ops.convert_to_numpy(layer.gate(x0)[2])
    assert (selected.sum(0) == 0).any(), "precondition: some expert receives no example"
    sparse, dense = sparse_and_dense(layer, x, x0)
    np.testing.assert_allclose(sparse, dense, rtol=1e-5, atol=1e-5)


def force_single_expert(layer):
    """Make h constant, so that every example picks the same experts."""
    projection = layer.gate.projection
    kernel, bias = projection.get_weights()
    projection.set_weights([np.zeros_like(kernel), np.linspace(1.0, 2.0, bias.size)])


def test_sparse_dispatch_all_examples_one_expert():
    x, x0 = feature_maps()
    layer = SparseMoE(EXPERTS, top_k=1)
    layer(x, x0=x0)
    force_single_expert(layer)
    selected = keras.ops.convert_to_numpy(layer.gate(x0)[2])
    assert (selected.sum(0) == BATCH).sum() == 1, "precondition: one expert gets every row"
    sparse, dense = sparse_and_dense(layer, x, x0)
    np.testing.assert_allclose(sparse, dense, rtol=1e-5, atol=1e-5)


def test_output_is_layer_norm_of_residual_sum():
    x, x0 = feature_maps()
    experts = [DenseExpert(), CrossExpert(), PolynomialExpert()]
    layer = SparseMoE(experts, top_k=2)
    output = keras.ops.convert_to_numpy(layer(x, x0=x0))
    gates = keras.ops.convert_to_numpy(layer.gate(x0)[0])
    expert_outputs = [
        keras.ops.convert_to_numpy(experts[0](x)),
        keras.ops.convert_to_numpy(experts[1](x, x0=x0)),
        keras.ops.convert_to_numpy(experts[2](x, x0=x0)),
    ]
    combined = sum(gates[:, j, None, None] * out for j, out in enumerate(expert_outputs))
    residual = x + combined
    mean = residual.mean(-1, keepdims=True)
    variance = residual.var(-1, keepdims=True)
    gamma, beta = (keras.ops.convert_to_numpy(v) for v in layer.norm.weights)
    expected = (residual - mean) / np.sqrt(variance + layer.norm.epsilon) * gamma + beta
    np.testing.assert_allclose(output, expected, rtol=1e-4, atol=1e-5)


def test_each_expert_runs_only_on_its_rows():
    x, x0 = feature_maps()
    counters = [RowCounter() for _ in range(4)]
    layer = SparseMoE(counters, top_k=2)
    layer(x, x0=x0)
    for counter in counters:
        counter.rows_seen.clear()
    layer(x, x0=x0)
    selected = keras.ops.convert_to_numpy(layer.gate(x0)[2])
    assert [c.rows_seen for c in counters] == [[int(n)] for n in selected.sum(0)]
    assert sum(c.rows_seen[0] for c in counters) == 2 * BATCH


def test_load_loss_added_and_tracked():
    x, x0 = feature_maps()
    layer = SparseMoE(EXPERTS, top_k=2, expected_loads=[0.3, 0.1, 0.2, 0.2, 0.2],
                      load_loss_weight=0.5)
    layer(x, x0=x0)
    gates, probabilities, _ = (keras.ops.convert_to_numpy(t) for t in layer.gate(x0))
    fractions = np.bincount(gates.argmax(1), minlength=5) / BATCH
    expected = np.sum(fractions * probabilities.mean(0) / np.array([0.3, 0.1, 0.2, 0.2, 0.2]))
    assert len(layer.losses) == 1
    assert float(layer.losses[0]) == pytest.approx(0.5 * expected, rel=1e-5)
    assert float(layer.load_loss_tracker.result()) == pytest.approx(expected, rel=1e-5)


def test_empty_batch_passes_through():
    x, x0 = feature_maps()
    layer = SparseMoE(EXPERTS, top_k=2)
    layer(x, x0=x0)
    output = layer(x[:0], x0=x0[:0])
    assert tuple(output.shape) == (0, FIELDS, DIM)
    assert float(layer.losses[0]) == 0.0


def test_routing_statistics_count_inference():
    x, x0 = feature_maps()
    layer = SparseMoE(EXPERTS, top_k=2)
    layer(x, x0=x0, training=True)
    layer.reset_routing_statistics()
    layer(x, x0=x0)
    layer(x, x0=x0, training=True)  # not counted
    gates, _, selected = (keras.ops.convert_to_numpy(t) for t in layer.gate(x0))
    shares = layer.routing_shares()
    assert shares["examples"] == BATCH
    np.testing.assert_allclose(shares["routed"], selected.sum(0) / BATCH)
    np.testing.assert_allclose(shares["top1"], np.bincount(gates.argmax(1), minlength=5) / BATCH)


def test_mixed_precision_finite():
    x, x0 = feature_maps()
    layer = SparseMoE(EXPERTS, top_k=5, dtype="mixed_float16")
    output = layer(keras.ops.cast(x, "float16"), x0=keras.ops.cast(x0, "float16"),
                   training=True)
    assert output.dtype == "float16"
    assert np.isfinite(keras.ops.convert_to_numpy(output)).all()
    assert all(expert.compute_dtype == "float16" for expert in layer.experts)


def test_keras_file_round_trip(tmp_path):
    ids = keras.Input(shape=(FIELDS,), dtype="int32")
    x0 = FieldEmbedding([5, 6, 7], DIM)(ids)
    x1 = SparseMoE(EXPERTS, top_k=2, anneal_steps=3, seed=2)(x0)
    x2 = SparseMoE([CrossExpert(mode="bit", rank=2), "dense"], top_k=1)(x1, x0=x0)
    model = keras.Model(ids, Estimator()(x2))
    rng = np.random.default_rng(0)
    batch = np.stack([rng.integers(0, n, 9) for n in (5, 6, 7)], axis=1).astype(np.int32)
    expected = model.predict(batch, verbose=0)
    path = tmp_path / "moe.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored.predict(batch, verbose=0), expected, rtol=1e-6)
    moe = restored.layers[2]
    assert isinstance(moe, SparseMoE)
    # JSON normalises the tuples of build shapes that the file stores as lists.
    restored_config = json.loads(json.dumps(moe.get_config()))
    assert restored_config == json.loads(json.dumps(model.layers[2].get_config()))


def test_invalid_arguments():
    with pytest.raises(ValueError, match="Unknown expert name"):
        SparseMoE(["dense", "lstm"])
    with pytest.raises(ValueError, match="dispatch"):
        SparseMoE(["dense"], dispatch="random")
    with pytest.raises(ValueError, match="expected_loads"):
        SparseMoE(["dense", "cross"], expected_loads=[1.0])
