"""Multiply-adds per example of the CTR layers and models, computed from their configuration.

A `FlopCount` splits the work of one example into

* ``matmul``: multiply-accumulates of matrix products, i.e. dense layers, convolutions and
  contractions such as vector-wise field mixing ``W X`` and attention's ``Q K^T`` and
  ``A V``. One multiply-accumulate is one multiplication plus one addition.
* ``elementwise``: element-wise products that define an interaction (the Hadamard
  product of the cross and polynomial layers, the squares of the factorisation machine).
* ``embedding_lookups``: embedding rows gathered (one per field and table).

Biases, activations, normalisation, softmax, the gate weighting of expert outputs and
the sparse dispatch's gathers are not counted. They are linear in F * D, while the
matrix products grow with (F * D)^2 or F^2 * D. ``flops`` is 2 * ``multiply_adds``, the
usual convention of FLOP counters such as TensorFlow's profiler for MatMul.

Counts read the built layers' shapes (kernel sizes, F, D, heads), so a layer must be
built. For AdaEnsemble, `adaensemble_flops` counts what actually runs for a given
routing. Expert j of layer l costs ``routed_shares[l][j]`` of its full cost, which is the
share of the examples reaching layer l that selected expert j. An example that exits
after layer l pays only for layers 1..l and one estimator.

Example:

```python
model = AdaEnsemble([100, 20, 7], num_layers=2, top_k=2)
model(np.zeros((1, 3), "int32"))
print(model_flops(model).flops)   # balanced routing at k = 2, every example at depth 2
statistics = model.routing_statistics()   # after model.evaluate(test_ds)
print(model_flops(model, routed_shares=[layer["routed"] for layer in statistics["layers"]],
                  exit_shares=statistics["exit_depth_shares"]).flops)
```
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import keras

from ada_keras.layers.attention_expert import AttentionExpert
from ada_keras.layers.bilinear_interaction import BilinearInteraction
from ada_keras.layers.compressed_interaction_network import CompressedInteractionNetwork
from ada_keras.layers.conv_expert import ConvExpert
from ada_keras.layers.cross_expert import CrossExpert
from ada_keras.layers.cross_network import CrossNetwork
from ada_keras.layers.dense_expert import DenseExpert
from ada_keras.layers.estimator import Estimator
from ada_keras.layers.factorization_machine import FactorizationMachine
from ada_keras.layers.field_embedding import FieldEmbedding
from ada_keras.layers.inner_product import InnerProduct
from ada_keras.layers.interacting_attention import InteractingAttention
from ada_keras.layers.linear_term import LinearTerm
from ada_keras.layers.mixture_of_low_rank_cross import MixtureOfLowRankCross
from ada_keras.layers.mlp import MLP
from ada_keras.layers.noisy_cosine_gate import NoisyCosineGate
from ada_keras.layers.outer_product import OuterProduct
from ada_keras.layers.polynomial_expert import PolynomialExpert
from ada_keras.layers.residual_unit import ResidualUnit
from ada_keras.layers.sparse_moe import SparseMoE
from ada_keras.layers.squeeze_excitation import SqueezeExcitation

# (F, D) of the field embeddings, for layers that store neither.
FeatureShape = tuple[int, int]


@dataclasses.dataclass(frozen=True)
class FlopCount:
    """Work per example. The module docstring describes what each field counts."""

    matmul: float = 0.0
    elementwise: float = 0.0
    embedding_lookups: float = 0.0

    @property
    def multiply_adds(self) -> float:
        """Multiply-adds per example: matrix products plus interaction products."""
        return self.matmul + self.elementwise

    @property
    def flops(self) -> float:
        """Floating-point operations per example, 2 per multiply-add."""
        return 2.0 * self.multiply_adds

    def __add__(self, other: "FlopCount") -> "FlopCount":
        return FlopCount(
            self.matmul + other.matmul,
            self.elementwise + other.elementwise,
            self.embedding_lookups + other.embedding_lookups,
        )

    def scaled(self, factor: float) -> "FlopCount":
        """Return the count for a `factor` share of the examples."""
        return FlopCount(
            self.matmul * factor, self.elementwise * factor, self.embedding_lookups * factor
        )

    def as_dict(self) -> dict[str, float]:
        return {
            "matmul": self.matmul,
            "elementwise": self.elementwise,
            "multiply_adds": self.multiply_adds,
            "flops": self.flops,
            "embedding_lookups": self.embedding_lookups,
        }


def _require_built(layer: keras.layers.Layer) -> None:
    if not layer.built:
        raise ValueError(
            f"{layer.name} ({type(layer).__name__}) is not built, so its shapes are unknown; "
            "call the model on one batch of ids before counting its FLOPs."
        )


def _dense_flops(dense: keras.layers.Dense, positions: int = 1) -> FlopCount:
    """Count a dense layer applied at `positions` vectors of each example (1 when flat)."""
    input_dim, units = dense.kernel.shape
    return FlopCount(matmul=float(positions * input_dim * units))


def _mlp_flops(mlp: MLP) -> FlopCount:
    return sum((_dense_flops(dense) for dense in mlp.dense_layers), FlopCount())


def _field_embedding_flops(layer: FieldEmbedding) -> FlopCount:
    return FlopCount(embedding_lookups=float(layer.num_fields))


def _linear_term_flops(layer: LinearTerm) -> FlopCount:
    # One weight per field, gathered from a D = 1 embedding table, then summed.
    return FlopCount(embedding_lookups=float(len(layer.vocabulary_sizes)))


def _gate_flops(gate: NoisyCosineGate) -> FlopCount:
    """FFN F*D -> F*D/r -> d, then the cosine of h against each of the n embeddings."""
    cosine = gate.num_experts * gate.gate_dim
    return _dense_flops(gate.hidden) + _dense_flops(gate.projection) + FlopCount(
        matmul=float(cosine)
    )


def _estimator_flops(estimator: Estimator) -> FlopCount:
    return _dense_flops(estimator.dense)


def _dense_expert_flops(expert: DenseExpert) -> FlopCount:
    return sum((_dense_flops(dense) for dense in expert.dense_layers), FlopCount())


def _conv_expert_flops(expert: ConvExpert) -> FlopCount:
    """Fuse F*D -> F*D, Conv1D over F positions, dense from the pooled map to F*D."""
    count = FlopCount()
    if expert.fuse_dense is not None:
        count = count + _dense_flops(expert.fuse_dense)
    convolution = (
        expert.num_fields * expert.kernel_size * expert.embedding_dim * expert.filters
    )
    return count + FlopCount(matmul=float(convolution)) + _dense_flops(expert.output_dense)


def _attention_expert_flops(expert: AttentionExpert) -> FlopCount:
    """Q, K, V projections, Q K^T, A V, the output projection, then a per-field D x D map."""
    attention = expert.attention
    fields, dim = expert.num_fields, expert.embedding_dim
    heads, key_dim, value_dim = attention.num_heads, attention.key_dim, attention.value_dim
    projections = fields * dim * heads * (2 * key_dim + value_dim)
    scores = heads * fields * fields * key_dim
    weighted_values = heads * fields * fields * value_dim
    output_projection = fields * heads * value_dim * dim
    total = projections + scores + weighted_values + output_projection
    return FlopCount(matmul=float(total)) + _dense_flops(expert.output_dense, positions=fields)


def _mixing_flops(layer: PolynomialExpert | CrossExpert) -> FlopCount:
    """W X (vector-wise or bit-wise, full or rank r) and one F x D Hadamard product."""
    mixing = layer.mixing
    if mixing.mode == "vector":
        # W acts on F' = F * h rows of D / h columns each.
        columns = mixing.embedding_dim // mixing.num_subspaces
    else:
        columns = 1
    if mixing.rank is None:
        products = mixing.size * mixing.size * columns
    else:
        products = 2 * mixing.size * mixing.rank * columns
    hadamard = mixing.num_fields * mixing.embedding_dim
    return FlopCount(matmul=float(products), elementwise=float(hadamard))


def _cross_network_flops(layer: CrossNetwork) -> FlopCount:
    """DCN's x0 (x_l^T w_l): a d-long dot product and a d-long scaling per layer."""
    count = FlopCount()
    for kernel in layer.cross_kernels:
        width = kernel.shape[0]
        count = count + FlopCount(matmul=float(width), elementwise=float(width))
    return count


def factorization_machine_flops(num_fields: int, embedding_dim: int) -> FlopCount:
    """(sum_i e_i)^2 - sum_i e_i^2: F * D squares of the embeddings and D of their sum.

    `FactorizationMachine` stores no shape, so its model passes F and D.
    """
    return FlopCount(elementwise=float((num_fields + 1) * embedding_dim))


def _residual_unit_flops(unit: ResidualUnit) -> FlopCount:
    return _dense_flops(unit.inner) + _dense_flops(unit.outer)


def _pair_count(num_fields: int) -> int:
    return num_fields * (num_fields - 1) // 2


def _inner_product_flops(layer: InnerProduct, shape: FeatureShape) -> FlopCount:
    """<e_i, e_j> for the F (F - 1) / 2 field pairs, D products each."""
    num_fields, dim = shape
    return FlopCount(elementwise=float(_pair_count(num_fields) * dim))


def _outer_product_flops(layer: OuterProduct, shape: FeatureShape) -> FlopCount:
    """e_i^T K_ij e_j per pair: a D x D kernel ("mat") or a D-long one, then a D-long dot."""
    num_fields, dim = shape
    pairs = _pair_count(num_fields)
    if layer.kernel_type == "mat":
        return FlopCount(matmul=float(pairs * dim * dim), elementwise=float(pairs * dim))
    return FlopCount(elementwise=float(2 * pairs * dim))


def _cin_flops(layer: CompressedInteractionNetwork, shape: FeatureShape) -> FlopCount:
    """Per CIN layer: H_{k-1} * F Hadamard products of D, then a 1 x 1 convolution to H_k."""
    _, dim = shape
    count = FlopCount()
    for kernel in layer.cin_kernels:
        pair_maps, size = kernel.shape  # H_{k-1} * F, H_k
        count = count + FlopCount(matmul=float(pair_maps * size * dim), elementwise=float(pair_maps * dim))
    return count


def _interacting_attention_flops(layer: InteractingAttention, shape: FeatureShape) -> FlopCount:
    """Q, K, V (and residual) projections of F fields, then F x F scores and weighted values."""
    num_fields, _ = shape
    input_dim, output_dim = layer.query_kernel.shape
    projections = 4 if layer.use_residual else 3
    attention = 2 * layer.num_heads * num_fields * num_fields * layer.head_dim
    return FlopCount(matmul=float(projections * num_fields * input_dim * output_dim + attention))


def _squeeze_excitation_flops(layer: SqueezeExcitation, shape: FeatureShape) -> FlopCount:
    """Two small dense maps F -> F / r -> F, then one weight per field on its D values."""
    num_fields, dim = shape
    squeeze = layer.squeeze_kernel.shape[0] * layer.squeeze_kernel.shape[1]
    excitation = layer.excitation_kernel.shape[0] * layer.excitation_kernel.shape[1]
    return FlopCount(matmul=float(squeeze + excitation), elementwise=float(num_fields * dim))


def _bilinear_flops(layer: BilinearInteraction, shape: FeatureShape) -> FlopCount:
    """(e_i W) o e_j per pair: W on every field ("field_all", "field_each") or every pair."""
    num_fields, dim = shape
    pairs = _pair_count(num_fields)
    transformed = pairs if layer.bilinear_type == "field_interaction" else num_fields
    return FlopCount(matmul=float(transformed * dim * dim), elementwise=float(pairs * dim))


def _mixture_of_low_rank_cross_flops(layer: MixtureOfLowRankCross) -> FlopCount:
    """K experts x0 o (U C V^T x + b), each d -> r -> r -> d, plus a d -> K gate."""
    experts, width, rank = layer.u_kernel.shape
    per_expert = width * rank + rank * rank + rank * width
    gate = width * experts if experts > 1 else 0
    return FlopCount(matmul=float(experts * per_expert + gate), elementwise=float(experts * width))


def moe_flops(moe: SparseMoE, routed_shares: Sequence[float] | None = None) -> FlopCount:
    """Return the work of one SparseMoE layer per example that reaches it.

    Args:
        moe: a built SparseMoE layer.
        routed_shares: per expert, the share of the examples whose selected experts include
            it (they sum to k). None assumes balanced routing at the target k, i.e.
            k / n for every expert.
    """
    _require_built(moe)
    if routed_shares is None:
        routed_shares = [moe.gate.top_k / moe.num_experts] * moe.num_experts
    if len(routed_shares) != moe.num_experts:
        raise ValueError(
            f"{moe.name}: got {len(routed_shares)} routed shares for {moe.num_experts} "
            "experts; give one share per expert."
        )
    count = _gate_flops(moe.gate)
    for expert, share in zip(moe.experts, routed_shares):
        count = count + layer_flops(expert).scaled(float(share))
    return count


def adaensemble_flops(
    model: Any,
    routed_shares: Sequence[Sequence[float]] | None = None,
    exit_shares: Sequence[float] | None = None,
) -> FlopCount:
    """Return the executed work of an AdaEnsemble model per example.

    Args:
        model: a built `ada_keras.model.AdaEnsemble`.
        routed_shares: per layer, per expert, the share of the examples reaching that
            layer whose selected experts include the expert, as in
            ``routing_statistics()["layers"][l]["routed"]``. None assumes k / n each.
        exit_shares: share of all examples exiting after each layer, summing to 1, as in
            ``routing_statistics()["exit_depth_shares"]``. None means every example runs
            all layers, which is also what a model without the depth controller does.

    Layer l runs on the examples that have not exited before it, a share of
    ``sum(exit_shares[l:])``; the estimator of layer l runs on ``exit_shares[l]``.
    """
    _require_built(model)
    num_layers = model.num_layers
    if model.depth_controller is None and exit_shares is not None:
        if any(share > 0 for share in exit_shares[:-1]):
            raise ValueError(
                "exit_shares gives early exits, but the model has no depth controller and "
                "runs every example through all layers; pass None."
            )
    if exit_shares is None:
        exit_shares = [0.0] * (num_layers - 1) + [1.0]
    exit_shares = [float(share) for share in exit_shares]
    if len(exit_shares) != num_layers:
        raise ValueError(
            f"got {len(exit_shares)} exit shares for {num_layers} layers; give one per layer."
        )
    if abs(sum(exit_shares) - 1.0) > 1e-6:
        raise ValueError(f"exit shares {exit_shares} sum to {sum(exit_shares)}, not 1.")
    if routed_shares is not None and len(routed_shares) != num_layers:
        raise ValueError(
            f"got routed shares for {len(routed_shares)} layers, but the model has "
            f"{num_layers}; give one list per layer."
        )

    count = _field_embedding_flops(model.embedding)
    if model.depth_controller is not None:
        count = count + _gate_flops(model.depth_controller)
    for layer, (moe, estimator) in enumerate(zip(model.moe_layers, model.estimators)):
        reached = sum(exit_shares[layer:])
        shares = None if routed_shares is None else routed_shares[layer]
        count = count + moe_flops(moe, shares).scaled(reached)
        # Estimator l runs on the examples exiting at l; without the controller only the
        # last estimator runs, on every example.
        count = count + _estimator_flops(estimator).scaled(exit_shares[layer])
    return count


_LAYER_COUNTERS: dict[type, Callable[[Any], FlopCount]] = {
    keras.layers.Dense: _dense_flops,
    MLP: _mlp_flops,
    FieldEmbedding: _field_embedding_flops,
    LinearTerm: _linear_term_flops,
    NoisyCosineGate: _gate_flops,
    Estimator: _estimator_flops,
    DenseExpert: _dense_expert_flops,
    ConvExpert: _conv_expert_flops,
    AttentionExpert: _attention_expert_flops,
    PolynomialExpert: _mixing_flops,
    CrossExpert: _mixing_flops,
    CrossNetwork: _cross_network_flops,
    ResidualUnit: _residual_unit_flops,
    MixtureOfLowRankCross: _mixture_of_low_rank_cross_flops,
    SparseMoE: moe_flops,
}

# Layers that store neither F nor D: their counters also take the (F, D) of the input.
_SHAPED_LAYER_COUNTERS: dict[type, Callable[[Any, FeatureShape], FlopCount]] = {
    FactorizationMachine: lambda layer, shape: factorization_machine_flops(*shape),
    InnerProduct: _inner_product_flops,
    OuterProduct: _outer_product_flops,
    CompressedInteractionNetwork: _cin_flops,
    InteractingAttention: _interacting_attention_flops,
    SqueezeExcitation: _squeeze_excitation_flops,
    BilinearInteraction: _bilinear_flops,
}

# Layers without trainable work of their own that models hold as attributes.
_FREE_LAYERS: tuple[type, ...] = (
    keras.layers.Dropout,
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
)


def layer_flops(layer: keras.layers.Layer, feature_shape: FeatureShape | None = None) -> FlopCount:
    """Return the work of one built layer per example.

    A `keras.layers.Dense` is counted as applied once per example, to a flat vector.

    Args:
        layer: a built layer.
        feature_shape: (F, D) of the layer's [batch, F, D] input, needed by the layers of
            `_SHAPED_LAYER_COUNTERS` (factorisation machine, inner and outer product, CIN,
            interacting attention, SENET, bilinear interaction), which store neither.

    Raises:
        NotImplementedError: for a layer type without a counter here.
    """
    _require_built(layer)
    for cls in type(layer).__mro__:
        if cls in _LAYER_COUNTERS:
            return _LAYER_COUNTERS[cls](layer)
        if cls in _SHAPED_LAYER_COUNTERS:
            if feature_shape is None:
                raise ValueError(
                    f"{layer.name} ({type(layer).__name__}) stores no input shape; pass "
                    "feature_shape=(F, D), or count it through its model with model_flops."
                )
            return _SHAPED_LAYER_COUNTERS[cls](layer, feature_shape)
    if isinstance(layer, _FREE_LAYERS):
        return FlopCount()
    raise NotImplementedError(
        f"no FLOP counter for layer {layer.name!r} of type {type(layer).__name__}; add one "
        "to ada_keras.flops._LAYER_COUNTERS."
    )


def model_flops(model: keras.Model, **adaensemble_arguments: Any) -> FlopCount:
    """Return the work of a built CTR model per example.

    AdaEnsemble goes to `adaensemble_flops` (keyword arguments ``routed_shares`` and
    ``exit_shares`` pass through). Another model is the sum of its direct sub-layers,
    each run once per example on the field embeddings or on a flat vector, which holds
    for the thirteen baselines of `baselines.registry`.

    Raises:
        NotImplementedError: for a model holding a layer without a counter.
    """
    from ada_keras.model import AdaEnsemble

    _require_built(model)
    if isinstance(model, AdaEnsemble):
        return adaensemble_flops(model, **adaensemble_arguments)
    if adaensemble_arguments:
        raise ValueError(
            f"routing arguments {sorted(adaensemble_arguments)} apply to AdaEnsemble only, "
            f"not to {type(model).__name__}."
        )

    feature_shape = None
    if hasattr(model, "num_fields") and hasattr(model, "embedding_dim"):
        feature_shape = (int(model.num_fields), int(model.embedding_dim))
    count = FlopCount()
    for layer in model._flatten_layers(include_self=False, recursive=False):
        if isinstance(layer, keras.metrics.Metric):
            continue
        count = count + layer_flops(layer, feature_shape)
    return count
