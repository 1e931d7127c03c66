"""SparseMoE: a sparsely gated mixture of feature-interaction experts with Add & Normalize.

    G, P = NoisyCosineGate(X0)                       gates G: top-k softmax, [batch, n]
    Y    = sum_{j : G_j > 0} G_j E_j(X_{l-1}, X0)    each expert runs on its rows only
    X_l  = LayerNorm(X_{l-1} + Y)
    loss = load_loss_weight * sum_j f_j P_j / w_j    added with add_loss

Sparse dispatch splits the (row, expert) selections by expert with
``tf.dynamic_partition``, gathers the rows routed to expert j, runs the expert on them
alone and adds the gate-weighted outputs of all experts back into their rows with one
``tf.math.unsorted_segment_sum``. An expert that receives no row runs on an empty batch.
``dispatch="dense"`` runs every expert on every row and weights by the same gates (zero
for unselected experts); it gives the same output and serves as the reference and for
XLA, which cannot compile data-dependent shapes.

f_j is the fraction of examples whose largest gate is expert j, P_j the mean router
probability and w_j the expected load (uniform by default, which gives the Switch
Transformer balance loss). The loss value is also tracked by the Mean metric
``<layer name>_load_loss``.

Routing statistics for analysis accumulate in every call with ``training=False``:
``routed_counts[j]`` (examples whose k selected experts include j), ``top1_counts[j]``
(examples whose largest gate is j) and ``routed_examples``; see `routing_shares`.

Shapes: inputs X_{l-1} ``[batch, F, D]``, ``x0`` ``[batch, F, D]`` -> ``[batch, F, D]``.
"""

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from ada_keras.layers.attention_expert import AttentionExpert
from ada_keras.layers.conv_expert import ConvExpert
from ada_keras.layers.cross_expert import CrossExpert
from ada_keras.layers.dense_expert import DenseExpert
from ada_keras.layers.noisy_cosine_gate import (
    NoisyCosineGate,
    load_distribution_loss,
    validate_expected_loads,
)
from ada_keras.layers.polynomial_expert import PolynomialExpert

# Expert names accepted wherever an expert can be given by name.
EXPERT_CLASSES: dict[str, type[keras.layers.Layer]] = {
    "dense": DenseExpert,
    "conv": ConvExpert,
    "attention": AttentionExpert,
    "polynomial": PolynomialExpert,
    "cross": CrossExpert,
}
DISPATCH_MODES = ("sparse", "dense")


def make_expert(
    spec: str | dict[str, Any] | keras.layers.Layer, dtype: Any = None, keep_name: bool = False
) -> keras.layers.Layer:
    """Return a new, unbuilt expert layer from a name, a serialised layer or a template.

    A layer instance is copied through its config, so one template can seed experts in
    several SparseMoE layers without sharing weights. ``dtype`` (a dtype policy), when
    given, replaces the spec's own, so experts follow the enclosing layer's precision.
    The copy gets a fresh unique name unless ``keep_name`` is True (deserialisation).
    """
    if isinstance(spec, str):
        if spec not in EXPERT_CLASSES:
            raise ValueError(
                f"Unknown expert name {spec!r}; use one of {sorted(EXPERT_CLASSES)} or pass "
                "a Keras layer mapping [batch, F, D] to [batch, F, D]."
            )
        return EXPERT_CLASSES[spec]() if dtype is None else EXPERT_CLASSES[spec](dtype=dtype)
    if isinstance(spec, keras.layers.Layer):
        spec = keras.saving.serialize_keras_object(spec)
    if isinstance(spec, dict):
        spec = {**spec, "config": dict(spec["config"])}
        if not keep_name:
            spec["config"].pop("name", None)
        expert = keras.saving.deserialize_keras_object(spec)
        if dtype is not None:
            expert.dtype_policy = dtype
        return expert
    raise TypeError(
        f"Expert spec {spec!r} has type {type(spec).__name__}; pass a name, a serialised "
        "layer dict or a keras.layers.Layer."
    )


def call_expert(expert: keras.layers.Layer, inputs: Any, x0: Any, training: Any) -> Any:
    """Run one expert; X0 goes only to experts that declare ``uses_x0 = True``."""
    if getattr(expert, "uses_x0", False):
        return expert(inputs, x0=x0, training=training)
    return expert(inputs, training=training)


@keras.saving.register_keras_serializable(package="ada_keras")
class SparseMoE(keras.layers.Layer):
    """Sparsely gated mixture-of-experts layer with residual and layer normalisation.

    Args:
        experts: expert layers (used as given) or names from ``EXPERT_CLASSES`` or
            serialised layers (built anew); each maps [batch, F, D] to [batch, F, D].
        top_k: target number of experts per example.
        anneal_steps: steps over which k falls from len(experts) to top_k.
        reduction_ratio: r of the gate's FFN.
        gate_dim: length of the gate's projection and expert embeddings.
        jitter_eps: eps of the gate's training-time multiplicative jitter.
        expected_loads: w_j, positive, summing to 1; None for uniform.
        load_loss_weight: lambda of the load-distribution loss; 0 adds no loss.
        dispatch: "sparse" (each expert runs on its rows only) or "dense".
        seed: seed of the gate's jitter.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    ```python
    from ada_keras.layers import SparseMoE, CrossExpert
    moe = SparseMoE(["dense", CrossExpert(), "polynomial"], top_k=2)
    x0 = keras.random.normal((8, 6, 4))
    x1 = moe(x0)
    x2 = SparseMoE(["dense", "cross"])(x1, x0=x0)
    ```
    """

    def __init__(
        self,
        experts: Sequence[str | dict[str, Any] | keras.layers.Layer],
        top_k: int = 1,
        anneal_steps: int = 0,
        reduction_ratio: int = 4,
        gate_dim: int = 16,
        jitter_eps: float = 0.01,
        expected_loads: Sequence[float] | None = None,
        load_loss_weight: float = 0.01,
        dispatch: str = "sparse",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not experts:
            raise ValueError("SparseMoE needs at least one expert.")
        if dispatch not in DISPATCH_MODES:
            raise ValueError(f"dispatch = {dispatch!r} is invalid; use one of {DISPATCH_MODES}.")
        if float(load_loss_weight) < 0:
            raise ValueError(f"load_loss_weight = {load_loss_weight} is invalid; use >= 0.")
        self.experts = [
            expert
            if isinstance(expert, keras.layers.Layer)
            else make_expert(expert, dtype=self.dtype_policy)
            for expert in experts
        ]
        self.num_experts = len(self.experts)
        self.expected_loads = validate_expected_loads(
            expected_loads, self.num_experts, "expected_loads"
        )
        self.load_loss_weight = float(load_loss_weight)
        self.dispatch = dispatch
        self.gate = NoisyCosineGate(
            self.num_experts,
            top_k=top_k,
            anneal_steps=anneal_steps,
            reduction_ratio=reduction_ratio,
            gate_dim=gate_dim,
            jitter_eps=jitter_eps,
            seed=seed,
            dtype=self.dtype_policy,
            name="gate",
        )
        self.norm = keras.layers.LayerNormalization(dtype=self.dtype_policy, name="norm")
        self.load_loss_tracker = keras.metrics.Mean(name=f"{self.name}_load_loss")
        # Sparse dispatch has data-dependent shapes, which XLA cannot compile.
        self.supports_jit = dispatch == "dense"

    def build(self, inputs_shape: Any, x0_shape: Any = None) -> None:
        shape = tuple(inputs_shape)
        self.gate.build(shape if x0_shape is None else tuple(x0_shape))
        for expert in self.experts:
            if not expert.built:
                if getattr(expert, "uses_x0", False):
                    expert.build(shape, shape)
                else:
                    expert.build(shape)
        self.norm.build(shape)
        self.routed_counts = self.add_weight(
            name="routed_counts", shape=(self.num_experts,), dtype="int64",
            initializer="zeros", trainable=False,
        )
        self.top1_counts = self.add_weight(
            name="top1_counts", shape=(self.num_experts,), dtype="int64",
            initializer="zeros", trainable=False,
        )
        self.routed_examples = self.add_weight(
            name="routed_examples", shape=(), dtype="int64", initializer="zeros",
            trainable=False,
        )

    def call(
        self,
        inputs: Any,
        x0: Any = None,
        training: bool | None = None,
        update_step: bool = True,
    ) -> Any:
        if x0 is None:
            x0 = inputs
        gates, probabilities, selected = self.gate(
            x0, training=training, update_step=update_step
        )

        if self.dispatch == "sparse":
            combined = self._dispatch_sparse(inputs, x0, gates, selected, training)
        else:
            combined = self._dispatch_dense(inputs, x0, gates, training)
        outputs = self.norm(inputs + combined)

        expected_loads = self.expected_loads or [1.0 / self.num_experts] * self.num_experts
        load_loss = load_distribution_loss(gates, probabilities, np.array(expected_loads))
        if self.load_loss_weight > 0:
            self.add_loss(self.load_loss_weight * load_loss)
        # Weighted by batch size, so a batch that no example reached does not count.
        self.load_loss_tracker.update_state(load_loss, sample_weight=ops.shape(gates)[0])

        if not training:
            self._record_routing(gates, selected)
        return outputs

    def _dispatch_sparse(self, inputs, x0, gates, selected, training):
        # (row, expert) pairs of every selection, int32 [batch * k, 2]. They are split by
        # expert into the n_j rows that expert j runs on, and n_j may be 0.
        pairs = tf.cast(tf.where(selected), tf.int32)
        expert_rows = tf.dynamic_partition(pairs[:, 0], pairs[:, 1], self.num_experts)

        weighted_outputs = []
        for j, expert in enumerate(self.experts):
            rows = expert_rows[j]
            expert_outputs = call_expert(
                expert, tf.gather(inputs, rows), tf.gather(x0, rows), training
            )
            weights = ops.cast(tf.gather(gates[:, j], rows), expert_outputs.dtype)
            weighted_outputs.append(expert_outputs * weights[:, None, None])

        # One segment sum adds the k weighted outputs of each row: [batch, F, D].
        return tf.math.unsorted_segment_sum(
            tf.concat(weighted_outputs, axis=0),
            tf.concat(expert_rows, axis=0),
            num_segments=tf.shape(inputs)[0],
        )

    def _dispatch_dense(self, inputs, x0, gates, training):
        combined = ops.zeros_like(inputs)
        for j, expert in enumerate(self.experts):
            expert_outputs = call_expert(expert, inputs, x0, training)
            weights = ops.cast(gates[:, j], expert_outputs.dtype)
            combined = combined + expert_outputs * weights[:, None, None]
        return combined

    def _record_routing(self, gates, selected):
        self.routed_counts.assign_add(ops.sum(ops.cast(selected, "int64"), axis=0))
        top1 = ops.one_hot(ops.argmax(gates, axis=-1), self.num_experts, dtype="int64")
        self.top1_counts.assign_add(ops.sum(top1, axis=0))
        self.routed_examples.assign_add(ops.cast(ops.shape(gates)[0], "int64"))

    def reset_routing_statistics(self) -> None:
        """Set the routing counters to zero."""
        for variable in (self.routed_counts, self.top1_counts, self.routed_examples):
            variable.assign(ops.zeros_like(variable))

    def routing_shares(self) -> dict[str, np.ndarray | int]:
        """Return the routing statistics since the last reset, as NumPy values.

        ``routed`` [n] is the share of examples whose selected experts include j (it sums
        to k). ``top1`` [n] is the share whose largest gate is j (it sums to 1).
        ``examples`` is the number of examples counted.
        """
        examples = int(keras.ops.convert_to_numpy(self.routed_examples))
        denominator = max(examples, 1)
        return {
            "routed": keras.ops.convert_to_numpy(self.routed_counts) / denominator,
            "top1": keras.ops.convert_to_numpy(self.top1_counts) / denominator,
            "examples": examples,
        }

    def compute_output_shape(self, inputs_shape: Any, x0_shape: Any = None) -> Any:
        return tuple(inputs_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "experts": [keras.saving.serialize_keras_object(e) for e in self.experts],
                "top_k": self.gate.top_k,
                "anneal_steps": self.gate.anneal_steps,
                "reduction_ratio": self.gate.reduction_ratio,
                "gate_dim": self.gate.gate_dim,
                "jitter_eps": self.gate.jitter_eps,
                "expected_loads": self.expected_loads,
                "load_loss_weight": self.load_loss_weight,
                "dispatch": self.dispatch,
                "seed": self.gate.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "SparseMoE":
        config = dict(config)
        config["experts"] = [
            make_expert(spec, dtype=config.get("dtype"), keep_name=True)
            for spec in config["experts"]
        ]
        return cls(**config)
