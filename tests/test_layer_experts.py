"""Tests of the five feature-interaction experts against NumPy implementations."""

import keras
import numpy as np
import pytest

from ada_keras.layers import (
    AttentionExpert,
    ConvExpert,
    CrossExpert,
    DenseExpert,
    PolynomialExpert,
)

BATCH, FIELDS, DIM = 3, 4, 6


@pytest.fixture(autouse=True)
def seeded_initializers():
    """Seed Keras' initialisers, so every run builds the same weights."""
    keras.utils.set_random_seed(0)


def feature_maps(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(BATCH, FIELDS, DIM)).astype(np.float32)
    x0 = rng.normal(size=(BATCH, FIELDS, DIM)).astype(np.float32)
    return x, x0


def numpy_weights(layer):
    return {v.path.split("/")[-1]: keras.ops.convert_to_numpy(v) for v in layer.weights}


def relu(x):
    return np.maximum(x, 0)


def test_dense_expert_matches_numpy():
    x, _ = feature_maps()
    layer = DenseExpert(hidden_units=5)
    output = keras.ops.convert_to_numpy(layer(x))
    first, second = layer.dense_layers
    w1, b1 = (keras.ops.convert_to_numpy(v) for v in first.weights)
    w2, b2 = (keras.ops.convert_to_numpy(v) for v in second.weights)
    expected = relu(relu(x.reshape(BATCH, -1) @ w1 + b1) @ w2 + b2).reshape(x.shape)
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-5)


def test_conv_expert_matches_numpy():
    x, _ = feature_maps()
    layer = ConvExpert(filters=3, kernel_size=3, pool_size=2)
    output = keras.ops.convert_to_numpy(layer(x))
    wf, bf = (keras.ops.convert_to_numpy(v) for v in layer.fuse_dense.weights)
    wc = keras.ops.convert_to_numpy(layer.conv_kernel)
    bc = keras.ops.convert_to_numpy(layer.conv_bias)
    wo, bo = (keras.ops.convert_to_numpy(v) for v in layer.output_dense.weights)

    fused = (x.reshape(BATCH, -1) @ wf + bf).reshape(BATCH, FIELDS, DIM)
    padded = np.pad(fused, ((0, 0), (1, 1), (0, 0)))  # "same" padding for kernel 3
    conv = np.stack(
        [np.einsum("bkd,kdf->bf", padded[:, i : i + 3], wc) + bc for i in range(FIELDS)],
        axis=1,
    )
    conv = relu(conv)
    pooled = np.maximum(conv[:, 0::2], conv[:, 1::2])  # F = 4, pool 2 -> 2 positions
    expected = (pooled.reshape(BATCH, -1) @ wo + bo).reshape(x.shape)
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fields, kernel_size, pool_size", [(5, 3, 2), (4, 2, 3), (6, 4, 4)])
def test_conv_expert_matches_keras_conv1d(fields, kernel_size, pool_size):
    """The hand-written convolution and pooling equal Keras' Conv1D and MaxPooling1D."""
    x = np.random.default_rng(1).normal(size=(BATCH, fields, DIM)).astype(np.float32)
    layer = ConvExpert(filters=3, kernel_size=kernel_size, pool_size=pool_size, fuse=False)
    layer(x)
    conv = keras.layers.Conv1D(3, kernel_size, padding="same", activation="relu")
    conv.build((None, fields, DIM))
    conv.set_weights([keras.ops.convert_to_numpy(layer.conv_kernel),
                      keras.ops.convert_to_numpy(layer.conv_bias)])
    pool = keras.layers.MaxPooling1D(pool_size, padding="same")
    expected = keras.ops.convert_to_numpy(pool(conv(x)))
    output = keras.ops.convert_to_numpy(layer._convolve_and_pool(x))
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-6)


def test_attention_expert_matches_numpy():
    x, _ = feature_maps()
    heads, key_dim = 2, 3
    layer = AttentionExpert(num_heads=heads, key_dim=key_dim)
    output = keras.ops.convert_to_numpy(layer(x))
    attention = layer.attention
    wq, bq = (keras.ops.convert_to_numpy(v) for v in attention.query_dense.weights)
    wk, bk = (keras.ops.convert_to_numpy(v) for v in attention.key_dense.weights)
    wv, bv = (keras.ops.convert_to_numpy(v) for v in attention.value_dense.weights)
    wo, bo = (keras.ops.convert_to_numpy(v) for v in attention.output_dense.weights)
    wd, bd = (keras.ops.convert_to_numpy(v) for v in layer.output_dense.weights)

    q = np.einsum("bfd,dhk->bfhk", x, wq) + bq
    k = np.einsum("bfd,dhk->bfhk", x, wk) + bk
    v = np.einsum("bfd,dhk->bfhk", x, wv) + bv
    scores = np.einsum("bqhk,bshk->bhqs", q, k) / np.sqrt(key_dim)
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    scores = scores / scores.sum(-1, keepdims=True)
    attended = np.einsum("bhqs,bshk->bqhk", scores, v)
    mha = np.einsum("bqhk,hkd->bqd", attended, wo) + bo
    expected = mha @ wd + bd
    np.testing.assert_allclose(output, expected, rtol=1e-4, atol=1e-5)


def vector_mix(w, x, subspaces=1):
    b, f, d = x.shape
    blocks = x.reshape(b, f * subspaces, d // subspaces)
    return np.einsum("ij,bje->bie", w, blocks).reshape(b, f, d)


def bit_mix(w, x):
    return (x.reshape(x.shape[0], -1) @ w.T).reshape(x.shape)


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("subspaces", [1, 2])
def test_polynomial_vector_matches_numpy(residual, subspaces):
    x, x0 = feature_maps()
    layer = PolynomialExpert(num_subspaces=subspaces, residual=residual, use_bias=True,
                             bias_initializer="random_normal")
    output = keras.ops.convert_to_numpy(layer(x, x0=x0))
    weights = numpy_weights(layer)
    assert weights["kernel"].shape == (FIELDS * subspaces, FIELDS * subspaces)
    expected = x * (vector_mix(weights["kernel"], x0, subspaces) + weights["bias"]
                    + (1.0 if residual else 0.0))
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-5)


def test_polynomial_bitwise_low_rank_matches_numpy():
    x, x0 = feature_maps()
    layer = PolynomialExpert(mode="bit", rank=2)
    output = keras.ops.convert_to_numpy(layer(x, x0=x0))
    weights = numpy_weights(layer)
    w = weights["kernel_u"] @ weights["kernel_v"]
    np.testing.assert_allclose(output, x * bit_mix(w, x0), rtol=1e-5, atol=1e-5)


def test_polynomial_without_x0_uses_inputs():
    x, _ = feature_maps()
    layer = PolynomialExpert()
    output = keras.ops.convert_to_numpy(layer(x))
    w = numpy_weights(layer)["kernel"]
    np.testing.assert_allclose(output, x * vector_mix(w, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "mode, rank, placement, residual",
    [
        ("vector", None, "outside", False),
        ("vector", 2, "inside", True),
        ("bit", None, "inside", True),
        ("bit", 3, "outside", False),
    ],
)
def test_cross_matches_numpy(mode, rank, placement, residual):
    x, x0 = feature_maps()
    layer = CrossExpert(mode=mode, rank=rank, bias_placement=placement, residual=residual,
                        bias_initializer="random_normal")
    output = keras.ops.convert_to_numpy(layer(x, x0=x0))
    weights = numpy_weights(layer)
    w = weights["kernel"] if rank is None else weights["kernel_u"] @ weights["kernel_v"]
    mixed = vector_mix(w, x) if mode == "vector" else bit_mix(w, x)
    bias = weights["bias"]
    if placement == "inside":
        expected = x0 * (mixed + bias)
    else:
        expected = x0 * mixed + bias
    if residual:
        expected = expected + x
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-5)


ALL_EXPERTS = [
    lambda: DenseExpert(hidden_units=4),
    lambda: ConvExpert(filters=2),
    lambda: AttentionExpert(num_heads=2),
    lambda: PolynomialExpert(num_subspaces=2),
    lambda: CrossExpert(mode="bit", rank=2),
]


@pytest.mark.parametrize("make_expert", ALL_EXPERTS)
def test_expert_config_round_trip(make_expert):
    x, _ = feature_maps()
    layer = make_expert()
    output = keras.ops.convert_to_numpy(layer(x))
    clone = layer.__class__.from_config(layer.get_config())
    clone(x)
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == layer.get_config()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(x)), output, rtol=1e-6)


@pytest.mark.parametrize("make_expert", ALL_EXPERTS)
def test_expert_accepts_empty_batch(make_expert):
    x, _ = feature_maps()
    layer = make_expert()
    layer(x)
    assert tuple(layer(x[:0]).shape) == (0, FIELDS, DIM)


@pytest.mark.parametrize("make_expert", ALL_EXPERTS)
def test_expert_mixed_precision(make_expert):
    x, _ = feature_maps()
    layer = make_expert()
    layer.dtype_policy = keras.DTypePolicy("mixed_float16")
    output = layer(keras.ops.cast(x, "float16"))
    assert output.dtype == "float16"
    assert np.isfinite(keras.ops.convert_to_numpy(output)).all()


def test_invalid_expert_arguments():
    with pytest.raises(ValueError, match="mode"):
        CrossExpert(mode="matrix")
    with pytest.raises(ValueError, match="not divisible"):
        PolynomialExpert(num_subspaces=4)(np.zeros((1, 2, 6), np.float32))
    with pytest.raises(ValueError, match="bias_placement"):
        CrossExpert(bias_placement="middle")
    with pytest.raises(ValueError, match=r"\[batch, F, D\]"):
        DenseExpert()(np.zeros((2, 6), np.float32))
