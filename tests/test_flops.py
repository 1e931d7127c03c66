"""ada_keras.flops against hand counts, a count of the traced graph's products and TF's profiler.

Two oracles check the model counts:

* `graph_multiply_adds`: traces the model at a fixed batch size and adds up the
  multiply-accumulates of every MatMul, BatchMatMul and Einsum op from its static
  shapes. It covers Einsum, which TensorFlow's profiler has no FLOP statistics for.
* `profiler_multiply_adds`: TensorFlow's own profiler (`tf.compat.v1.profiler`) on the
  same graph, restricted to matrix products, divided by 2 (it counts 2 FLOPs per
  multiply-add). It checks the first oracle on the models built from MatMul only.
"""

import numpy as np
import pytest
import tensorflow as tf

from ada_keras.flops import FlopCount, adaensemble_flops, layer_flops, model_flops, moe_flops
from ada_keras.layers import (
    AttentionExpert,
    ConvExpert,
    CrossExpert,
    DenseExpert,
    Estimator,
    InnerProduct,
    NoisyCosineGate,
    PolynomialExpert,
)
from ada_keras.model import AdaEnsemble
from baselines.registry import MODEL_NAMES, build_model

VOCABULARY_SIZES = [100, 20, 7, 9, 5, 6]
NUM_FIELDS = len(VOCABULARY_SIZES)
BATCH = 4


def traced_graph(model, batch=BATCH):
    function = tf.function(lambda ids: model(ids, training=False))
    spec = tf.TensorSpec([batch, NUM_FIELDS], tf.int32)
    return function.get_concrete_function(spec).graph


def graph_multiply_adds(graph, batch=BATCH):
    """Multiply-accumulates per example of the graph's matrix products, from static shapes."""
    total = 0
    for op in graph.get_operations():
        if op.type == "MatMul":
            a, b = (tensor.shape.as_list() for tensor in op.inputs)
            m, k = (a[1], a[0]) if op.get_attr("transpose_a") else a
            n = b[0] if op.get_attr("transpose_b") else b[1]
            total += m * k * n
        elif op.type.startswith("BatchMatMul"):
            a = op.inputs[0].shape.as_list()
            k = a[-2] if op.get_attr("adj_x") else a[-1]
            total += int(np.prod(op.outputs[0].shape.as_list())) * k
        elif op.type == "Einsum":
            inputs = op.get_attr("equation").decode().split("->")[0].split(",")
            sizes = {}
            for subscripts, tensor in zip(inputs, op.inputs):
                sizes.update(zip(subscripts, tensor.shape.as_list()))
            # Every index combination is one multiply-accumulate.
            total += int(np.prod(list(sizes.values())))
        elif op.type == "Conv2D":
            # tf.nn.conv1d runs as Conv2D (NHWC): one multiply-accumulate per output
            # value, kernel height, kernel width and input channel.
            kernel = op.inputs[1].shape.as_list()
            total += int(np.prod(op.outputs[0].shape.as_list())) * int(np.prod(kernel[:3]))
        elif op.type.startswith("Conv"):
            raise AssertionError(f"convolution op {op.type} is not counted by this oracle")
    return total / batch


def profiler_multiply_adds(graph, batch=BATCH):
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    options["account_type_regexes"] = ["MatMul", "BatchMatMul.*"]
    flops = tf.compat.v1.profiler.profile(graph, options=options).total_float_ops
    return flops / 2 / batch


def built_model(name, **hyperparameters):
    model = build_model(name, VOCABULARY_SIZES, **hyperparameters)
    model(np.zeros((1, NUM_FIELDS), "int32"))
    return model


def built_layer(layer, fields=3, dim=4, with_x0=False):
    shape = (None, fields, dim)
    if with_x0:
        layer.build(shape, shape)
    else:
        layer.build(shape)
    return layer


# ------------------------------------------------------------------ hand counts


def test_dense_expert_hand_count():
    # F = 3, D = 4: one 12 x 12 kernel; with a hidden layer of 5: 12*5 + 5*12.
    assert layer_flops(built_layer(DenseExpert())).matmul == 144
    assert layer_flops(built_layer(DenseExpert(hidden_units=5))).matmul == 120


def test_conv_expert_hand_count():
    expert = built_layer(ConvExpert(filters=2, kernel_size=3, pool_size=2))
    fuse = 12 * 12
    convolution = 3 * 3 * 4 * 2  # F positions * window * D channels * filters
    output = (2 * 2) * 12  # ceil(3 / 2) pooled fields * filters -> F * D
    assert layer_flops(expert).matmul == fuse + convolution + output


def test_attention_expert_hand_count():
    expert = built_layer(AttentionExpert(num_heads=2, key_dim=3))
    fields, dim, heads, key = 3, 4, 2, 3
    projections = 3 * fields * dim * heads * key
    scores_and_values = 2 * heads * fields * fields * key
    output_projection = fields * heads * key * dim
    final_dense = fields * dim * dim
    expected = projections + scores_and_values + output_projection + final_dense
    assert layer_flops(expert).matmul == expected


@pytest.mark.parametrize(
    "layer, matmul",
    [
        (PolynomialExpert(), 3 * 3 * 4),  # W (F x F) on each of the D columns
        (PolynomialExpert(num_subspaces=2), 6 * 6 * 2),  # F' = 6 rows of D / 2
        (PolynomialExpert(mode="bit"), 12 * 12),
        (CrossExpert(mode="bit", rank=2), 2 * 12 * 2),  # U V with inner dimension 2
        (CrossExpert(), 3 * 3 * 4),
    ],
)
def test_mixing_experts_hand_count(layer, matmul):
    count = layer_flops(built_layer(layer, with_x0=True))
    assert count.matmul == matmul
    assert count.elementwise == 3 * 4  # one Hadamard product of the F x D map


def test_gate_and_estimator_hand_count():
    gate = built_layer(NoisyCosineGate(num_experts=5, reduction_ratio=4, gate_dim=6))
    # 12 -> 3 hidden units, 3 -> 6, cosine against 5 embeddings of length 6.
    assert layer_flops(gate).matmul == 12 * 3 + 3 * 6 + 5 * 6
    assert layer_flops(built_layer(Estimator())).matmul == 12


def test_baseline_hand_counts():
    dnn = built_model("dnn", embedding_dim=4, hidden_units=(10, 5))
    assert model_flops(dnn).matmul == 24 * 10 + 10 * 5 + 5
    assert model_flops(dnn).embedding_lookups == NUM_FIELDS
    fm = built_model("fm", embedding_dim=4)
    # F*D squares plus D squares of the sum; lookups: embeddings and first-order weights.
    assert model_flops(fm) == FlopCount(elementwise=(NUM_FIELDS + 1) * 4, embedding_lookups=12)


def test_flop_count_arithmetic():
    count = FlopCount(matmul=10, elementwise=2, embedding_lookups=3)
    assert count.multiply_adds == 12
    assert count.flops == 24
    assert (count + count).scaled(0.5) == count


# ------------------------------------------------------------------ AdaEnsemble routing


def small_adaensemble(**arguments):
    model = AdaEnsemble(VOCABULARY_SIZES, embedding_dim=4, num_layers=2, **arguments)
    model(np.zeros((1, NUM_FIELDS), "int32"))
    return model


def test_adaensemble_exit_shares_count_only_layers_run():
    model = small_adaensemble(top_k=2)
    shares = [[0.5, 1.0, 0.5, 0.0, 0.0], [0.4, 0.4, 0.4, 0.4, 0.4]]
    counted = adaensemble_flops(model, routed_shares=shares, exit_shares=[0.25, 0.75])

    controller = layer_flops(model.depth_controller)
    layer1 = moe_flops(model.moe_layers[0], shares[0])
    layer2 = moe_flops(model.moe_layers[1], shares[1])
    estimator = layer_flops(model.estimators[0])
    expected = (
        controller + layer1 + estimator.scaled(0.25) + layer2.scaled(0.75)
        + estimator.scaled(0.75) + FlopCount(embedding_lookups=NUM_FIELDS)
    )
    assert counted.matmul == pytest.approx(expected.matmul)
    assert counted.elementwise == pytest.approx(expected.elementwise)
    assert counted.embedding_lookups == NUM_FIELDS


def test_moe_flops_weights_experts_by_share():
    model = small_adaensemble(top_k=1)
    moe = model.moe_layers[0]
    gate = layer_flops(moe.gate)
    dense_only = moe_flops(moe, [1.0, 0.0, 0.0, 0.0, 0.0])
    assert dense_only.matmul == gate.matmul + layer_flops(moe.experts[0]).matmul


def test_adaensemble_flops_rejects_bad_shares():
    model = small_adaensemble(top_k=2)
    with pytest.raises(ValueError, match="sum to"):
        adaensemble_flops(model, exit_shares=[0.5, 0.2])
    with pytest.raises(ValueError, match="one list per layer"):
        adaensemble_flops(model, routed_shares=[[0.4] * 5])
    without_controller = small_adaensemble(top_k=2, early_exit=False)
    with pytest.raises(ValueError, match="no depth controller"):
        adaensemble_flops(without_controller, exit_shares=[0.5, 0.5])


def test_unbuilt_layer_rejected():
    with pytest.raises(ValueError, match="not built"):
        layer_flops(DenseExpert())


# ------------------------------------------------------------------ graph oracles


BASELINE_CASES = [(name, {}) for name in MODEL_NAMES if name not in ("lr", "adaensemble")] + [
    ("dcn_v2", {"hidden_units": (32,), "cross_layers": 2}),
    ("dcn_v2", {"cross_type": "low_rank", "rank": 4}),
    ("dcn_v2", {"cross_type": "mixture", "rank": 4}),
    ("xdeepint", {"num_layers": 2, "num_subspaces": 2}),
    ("pnn", {"product_type": "both"}),
    ("fibinet", {"bilinear_type": "field_each"}),
    ("fibinet", {"bilinear_type": "field_interaction"}),
]


@pytest.mark.parametrize("name, hyperparameters", BASELINE_CASES)
def test_baselines_match_graph_products(name, hyperparameters):
    # xDeepFM's CIN computes its Hadamard products with a broadcast Mul, which the
    # graph count leaves out and ada_keras.flops books as element-wise, so its matrix
    # products (CIN kernels, DNN, linear part) must match the graph exactly.
    hyperparameters = {"embedding_dim": 8, **hyperparameters}
    model = built_model(name, **hyperparameters)
    counted = model_flops(model)
    graph_count = graph_multiply_adds(traced_graph(model))
    if name == "xdeepfm":
        assert counted.matmul == pytest.approx(graph_count, rel=1e-9)
        assert counted.elementwise > 0
    assert counted.matmul == pytest.approx(graph_count, rel=0.05)


def test_linear_models_have_no_products():
    assert model_flops(built_model("lr")) == FlopCount(embedding_lookups=NUM_FIELDS)


def test_shapeless_layer_needs_feature_shape():
    layer = InnerProduct()
    layer.build((None, 4, 3))
    with pytest.raises(ValueError, match="feature_shape"):
        layer_flops(layer)
    assert layer_flops(layer, (4, 3)) == FlopCount(elementwise=6 * 3)


@pytest.mark.parametrize(
    "name, hyperparameters",
    [
        ("dnn", {"embedding_dim": 8, "hidden_units": (32, 16)}),
        ("dcn_v2", {"embedding_dim": 8, "hidden_units": (32,), "cross_layers": 2}),
        ("deepfm", {"embedding_dim": 8, "hidden_units": (32, 16)}),
    ],
)
def test_matmul_models_match_tf_profiler(name, hyperparameters):
    model = built_model(name, **hyperparameters)
    graph = traced_graph(model)
    counted = model_flops(model).matmul
    assert counted == pytest.approx(profiler_multiply_adds(graph), rel=0.05)
    # The graph oracle used for Einsum models agrees with the profiler exactly here.
    assert graph_multiply_adds(graph) == pytest.approx(profiler_multiply_adds(graph))


@pytest.mark.parametrize(
    "experts", [("dense", "conv", "attention", "polynomial", "cross"), ("attention",)]
)
def test_adaensemble_all_experts_match_graph_products(experts):
    # Dense dispatch without early exit has static shapes: every expert runs on every
    # example, i.e. a routed share of 1 for each.
    model = small_adaensemble(
        experts=experts, top_k=1, dispatch="dense", early_exit=False
    )
    counted = model_flops(model, routed_shares=[[1.0] * len(experts)] * 2).matmul
    assert counted == pytest.approx(graph_multiply_adds(traced_graph(model)), rel=0.05)
