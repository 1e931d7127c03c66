"""AdaEnsemble: stacked SparseMoE layers of interaction experts with learned early exits.

The model of Yan and Li (AdaEnsemble, CTR prediction):

    X0 = FieldEmbedding(ids)                              [batch, F, D]
    exit_probabilities, exit_depth = DepthController(X0)  [batch, L], [batch]
    X_l = SparseMoE_l(X_{l-1}, X0)                        l = 1 .. L
    y = Estimator_l(X_l) for the layer l = exit_depth + 1 where the example exits

Dynamic propagation (inference): after layer l, the examples whose exit depth is l are
predicted by estimator l and removed from the batch, so they never enter layer l + 1. The
last layer predicts every example still present. ``tf.dynamic_stitch`` puts the
predictions back in the original order.

Gradients to the routers. Gate values weight the expert sum, so the expert gates get a
gradient from the prediction loss in every pass. A hard top-1 exit gives the depth
controller none, so the alpha step (`alpha_call`) runs every example through all L
layers and minimises the expected validation LogLoss over the exits,

    sum_l exit_probabilities[l] * LogLoss(label, Estimator_l(X_l)),

which is differentiable in the controller's weights. The controller's choice is
therefore learned from validation loss, not only pulled toward its expected depth loads
by the load loss. ``call(..., soft_exits=True)`` returns the mixed prediction
sum_l exit_probabilities[l] * Estimator_l(X_l) for analysis.

W steps (`w_call`) minimise the same expected LogLoss on training rows, so each
estimator is trained on every example in proportion to the chance that the controller
sends it there. Training only the hard top-1 exit instead leaves the estimators that few
training examples reach undertrained, yet the controller, which changes in every alpha
step, sends test examples to them. Inference uses the hard exits. Without early exit,
only the last estimator runs.

Total loss = LogLoss + lambda_1 * sum over layers of the expert load-distribution loss
+ lambda_2 * the depth load-distribution loss; the layers add both terms with add_loss.
"""

import logging
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from ada_keras.layers.depth_controller import DepthController
from ada_keras.layers.estimator import Estimator
from ada_keras.layers.field_embedding import FieldEmbedding
from ada_keras.layers.noisy_cosine_gate import validate_expected_loads
from ada_keras.layers.sparse_moe import SparseMoE, make_expert
from ada_keras.training import CTRModel

logger = logging.getLogger(__name__)

DEFAULT_EXPERTS = ("dense", "conv", "attention", "polynomial", "cross")


@keras.saving.register_keras_serializable(package="ada_keras")
class AdaEnsemble(CTRModel):
    """AdaEnsemble CTR model.

    Defaults follow the configuration Yan and Li report as best on Criteo (4 layers,
    k = 3 of the 5 experts, embedding dimension 16). Their paper fixes no value for the
    reduction ratio (searched in 4..16), the jitter, the loss weights or the annealing
    length. The defaults for those (4, 0.01, 0.01, 1000 steps) follow the Switch
    Transformer's jitter and balance-loss settings and are a starting point for tuning.

    Args:
        vocabulary_sizes: ids per field, including the OOV id 0.
        embedding_dim: D.
        num_layers: L, the number of SparseMoE layers.
        experts: expert names ("dense", "conv", "attention", "polynomial", "cross"),
            layer instances or serialised layers; every SparseMoE layer gets its own copy.
        top_k: target number of experts per example.
        anneal_steps: W steps over which k falls from len(experts) to top_k.
        reduction_ratio: r of the expert gates' FFN.
        depth_reduction_ratio: r of the depth controller's FFN; defaults to
            ``reduction_ratio``.
        gate_dim: length of the routers' projections and expert (or layer) embeddings.
        jitter_eps: eps of the routers' training-time multiplicative jitter.
        expected_expert_loads: w_j per expert for every layer; None for uniform.
        expected_depth_loads: expected share of exits per layer; None for uniform.
        lambda_1: weight of the expert load-distribution loss (per layer).
        lambda_2: weight of the depth load-distribution loss.
        early_exit: False runs every example through all layers and predicts with the
            last estimator, without a depth controller (the "without controller" ablation).
        dispatch: "sparse" or "dense" expert dispatch (same outputs).
        embeddings_initializer: initialiser of the embedding table.
        embeddings_regularizer: optional regularizer of the embedding table.
        seed: seed of the routers' jitter.
        **kwargs: standard `keras.Model` arguments (name, dtype, ...).

    Example:

    ```python
    model = AdaEnsemble([100, 50, 20], num_layers=2, top_k=2)
    model.compile(optimizer="adam", alpha_optimizer="adam")
    model.fit(with_alpha_batches(train_ds, validation_ds), epochs=1)
    model.evaluate(test_ds)
    print(model.routing_statistics())
    ```
    """

    def __init__(
        self,
        vocabulary_sizes: Sequence[int],
        embedding_dim: int = 16,
        num_layers: int = 4,
        experts: Sequence[Any] = DEFAULT_EXPERTS,
        top_k: int = 3,
        anneal_steps: int = 1000,
        reduction_ratio: int = 4,
        depth_reduction_ratio: int | None = None,
        gate_dim: int = 16,
        jitter_eps: float = 0.01,
        expected_expert_loads: Sequence[float] | None = None,
        expected_depth_loads: Sequence[float] | None = None,
        lambda_1: float = 0.01,
        lambda_2: float = 0.01,
        early_exit: bool = True,
        dispatch: str = "sparse",
        embeddings_initializer: Any = "uniform",
        embeddings_regularizer: Any = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if int(num_layers) < 1:
            raise ValueError(f"num_layers = {num_layers} is invalid; it must be >= 1.")
        if not experts:
            raise ValueError("experts is empty; give at least one expert name or layer.")
        self.vocabulary_sizes = [int(size) for size in vocabulary_sizes]
        self.embedding_dim = int(embedding_dim)
        self.num_layers = int(num_layers)
        self.expert_specs = [
            expert if isinstance(expert, (str, dict)) else keras.saving.serialize_keras_object(
                expert
            )
            for expert in experts
        ]
        self.top_k = int(top_k)
        self.anneal_steps = int(anneal_steps)
        self.reduction_ratio = int(reduction_ratio)
        self.depth_reduction_ratio = int(depth_reduction_ratio or reduction_ratio)
        self.gate_dim = int(gate_dim)
        self.jitter_eps = float(jitter_eps)
        self.expected_expert_loads = validate_expected_loads(
            expected_expert_loads, len(self.expert_specs), "expected_expert_loads"
        )
        self.expected_depth_loads = validate_expected_loads(
            expected_depth_loads, self.num_layers, "expected_depth_loads"
        )
        self.lambda_1 = float(lambda_1)
        self.lambda_2 = float(lambda_2)
        self.early_exit = bool(early_exit)
        self.dispatch = dispatch
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.embeddings_regularizer = keras.regularizers.get(embeddings_regularizer)
        self.seed = seed

        self.embedding = FieldEmbedding(
            self.vocabulary_sizes,
            self.embedding_dim,
            embeddings_initializer=self.embeddings_initializer,
            embeddings_regularizer=self.embeddings_regularizer,
            dtype=self.dtype_policy,
            name="field_embedding",
        )
        self.moe_layers = [
            SparseMoE(
                [make_expert(spec, dtype=self.dtype_policy) for spec in self.expert_specs],
                top_k=self.top_k,
                anneal_steps=self.anneal_steps,
                reduction_ratio=self.reduction_ratio,
                gate_dim=self.gate_dim,
                jitter_eps=self.jitter_eps,
                expected_loads=self.expected_expert_loads,
                load_loss_weight=self.lambda_1,
                dispatch=dispatch,
                seed=None if seed is None else seed + layer,
                dtype=self.dtype_policy,
                name=f"moe_{layer + 1}",
            )
            for layer in range(self.num_layers)
        ]
        self.estimators = [
            Estimator(dtype=self.dtype_policy, name=f"estimator_{layer + 1}")
            for layer in range(self.num_layers)
        ]
        self.depth_controller = None
        if self.early_exit:
            self.depth_controller = DepthController(
                self.num_layers,
                expected_loads=self.expected_depth_loads,
                load_loss_weight=self.lambda_2,
                reduction_ratio=self.depth_reduction_ratio,
                gate_dim=self.gate_dim,
                jitter_eps=self.jitter_eps,
                seed=None if seed is None else seed + self.num_layers,
                dtype=self.dtype_policy,
                name="depth_controller",
            )
        self.supports_jit = dispatch == "dense" and not self.early_exit

    def build(self, input_shape: Any) -> None:
        num_fields = len(self.vocabulary_sizes)
        if tuple(input_shape)[-1] not in (None, num_fields):
            raise ValueError(
                f"AdaEnsemble expects ids of shape [batch, {num_fields}], got {input_shape}."
            )
        self.embedding.build((None, num_fields))
        feature_map = (None, num_fields, self.embedding_dim)
        for moe, estimator in zip(self.moe_layers, self.estimators):
            moe.build(feature_map, feature_map)
            estimator.build(feature_map)
        if self.depth_controller is not None:
            self.depth_controller.build(feature_map)
        self.exit_counts = self.add_weight(
            name="exit_counts", shape=(self.num_layers,), dtype="int64",
            initializer="zeros", trainable=False,
        )

    def call(
        self, ids: Any, training: bool = False, soft_exits: bool = False,
        all_exits: bool = False, update_step: bool = True,
    ) -> Any:
        """Return click probabilities, float32 [batch, 1].

        ``soft_exits=True`` (for analysis) mixes all exits by the exit probabilities;
        otherwise each example exits at its hard top-1 depth. ``all_exits=True`` (the W
        and alpha steps, see `w_call`) instead returns the tuple ``(probability,
        exit_predictions, exit_probabilities)``: the hard-exit prediction [batch, 1] and
        every estimator's prediction and exit probability, float32 [batch, L] each. ``update_step=False``
        leaves the expert gates' annealing steps unchanged in that mode.
        """
        x0 = self.embedding(ids)
        if self.depth_controller is None:
            return self._last_exit(x0, training)

        exit_probabilities, exit_depth = self.depth_controller(x0, training=training)
        if all_exits:
            exit_predictions = ops.concatenate(
                self._full_depth(x0, training, update_step=update_step), 1
            )
            hard = ops.take_along_axis(exit_predictions, exit_depth[:, None], axis=1)
            return hard, exit_predictions, exit_probabilities
        if soft_exits:
            predictions = ops.concatenate(self._full_depth(x0, training, update_step=False), 1)
            return ops.sum(exit_probabilities * predictions, axis=1, keepdims=True)
        return self._dynamic_propagation(x0, exit_depth, training)

    def alpha_call(self, ids: Any) -> tuple[Any, Any, Any]:
        """Run the alpha step's forward pass: every exit, weighted by its exit probability.

        The alpha loss is the expected validation LogLoss over the controller's exits, the
        W loss of `w_call` on validation rows. Its gradient raises the probability of the
        exits whose estimators have the lowest loss on an example, which is the exit that
        the hard argmax then picks at inference. A LogLoss of the mixed prediction
        (``soft_exits=True``) would instead reward blends of exits that inference never
        outputs. The expert gates' annealing steps do not advance here.
        """
        if self.depth_controller is None:
            return self(ids, training=True), None, None
        return self(ids, training=True, all_exits=True, update_step=False)

    def w_call(self, ids: Any) -> tuple[Any, Any, Any]:
        """Run the W step's forward pass: every exit, weighted by its exit probability.

        With hard top-1 exits in the W step, estimator l would learn only from the
        examples whose current argmax is l. The controller changes in every alpha step
        and learns from the few validation rows, so at test time it can send examples to
        exits that saw few or different training examples. Those estimators are then
        undertrained and badly calibrated. Here every example runs through all L layers,
        and the W loss is the expected LogLoss of the controller's exit distribution,

            sum_l exit_probabilities[l] * LogLoss(label, Estimator_l(X_l)),

        so every estimator learns from every example in proportion to the probability
        that the controller sends it there. The exit that inference picks (the argmax)
        has weight >= 1/L on that example. Inference keeps hard top-1 exits with dynamic
        propagation. The exit probabilities act as fixed weights in bi-level training
        because the W step does not update the controller.
        """
        if self.depth_controller is None:
            return self(ids, training=True), None, None
        return self(ids, training=True, all_exits=True)

    def _last_exit(self, x0: Any, training: Any) -> Any:
        """Run all layers on all examples; return the last estimator's probabilities."""
        x = x0
        for moe in self.moe_layers:
            x = moe(x, x0=x0, training=training)
        return self.estimators[-1](x)

    def _full_depth(self, x0: Any, training: Any, update_step: bool = True) -> list[Any]:
        """Run all layers on all examples; return every estimator's probabilities."""
        x = x0
        predictions = []
        for moe, estimator in zip(self.moe_layers, self.estimators):
            x = moe(x, x0=x0, training=training, update_step=update_step)
            predictions.append(estimator(x))
        return predictions

    def _dynamic_propagation(self, x0: Any, exit_depth: Any, training: Any) -> Any:
        """Run Algorithm 1 of Yan and Li: exited examples skip all deeper layers."""
        positions = tf.range(tf.shape(x0)[0])
        x, x0_active = x0, x0
        position_parts, prediction_parts = [], []
        exit_sizes = []
        for layer, (moe, estimator) in enumerate(zip(self.moe_layers, self.estimators)):
            x = moe(x, x0=x0_active, training=training)
            if layer == self.num_layers - 1:
                exits = tf.ones_like(exit_depth, dtype=tf.bool)
            else:
                exits = exit_depth <= layer
            exit_rows = tf.cast(tf.where(exits)[:, 0], tf.int32)
            stay_rows = tf.cast(tf.where(tf.logical_not(exits))[:, 0], tf.int32)

            prediction_parts.append(estimator(tf.gather(x, exit_rows)))
            position_parts.append(tf.gather(positions, exit_rows))
            exit_sizes.append(tf.shape(exit_rows)[0])

            x = tf.gather(x, stay_rows)
            x0_active = tf.gather(x0_active, stay_rows)
            positions = tf.gather(positions, stay_rows)
            exit_depth = tf.gather(exit_depth, stay_rows)

        if not training:
            self.exit_counts.assign_add(tf.cast(tf.stack(exit_sizes), tf.int64))
        predictions = tf.dynamic_stitch(position_parts, prediction_parts)
        return tf.reshape(predictions, (-1, 1))

    # ------------------------------------------------------------------ diagnostics

    def reset_routing_statistics(self) -> None:
        """Set the expert-routing and exit-depth counters to zero."""
        self.exit_counts.assign(ops.zeros_like(self.exit_counts))
        for moe in self.moe_layers:
            moe.reset_routing_statistics()

    def routing_statistics(self) -> dict[str, Any]:
        """Return the routing of the inference calls since the last reset.

        `evaluate` resets the counters first, so after ``model.evaluate(test_ds)`` this
        describes exactly the evaluated examples.

        Returns:
            ``{"exit_depth_shares": [L] share of examples exiting after each layer,
            "examples": examples counted, "layers": [{"routed": [n], "top1": [n],
            "examples": int} per layer]}``. A layer's shares are relative to the
            examples that reached it. Without early exit, ``exit_depth_shares`` is
            None.
        """
        layers = [moe.routing_shares() for moe in self.moe_layers]
        examples = layers[0]["examples"]
        exit_shares = None
        if self.depth_controller is not None:
            counts = keras.ops.convert_to_numpy(self.exit_counts).astype(np.float64)
            exit_shares = counts / max(counts.sum(), 1.0)
        return {"exit_depth_shares": exit_shares, "examples": examples, "layers": layers}

    def routing_paths(self, ids: Any, batch_size: int = 4096) -> dict[str, np.ndarray]:
        """Return each example's top-1 expert per layer and its exit depth (inference).

        Every gate reads X0, so one embedding lookup gives all layers' choices. These
        paths feed an alluvial diagram of expert choices across layers.

        Returns:
            ``{"top1": int32 [N, L]`` index of the expert with the largest gate, -1 for
            the layers after the example's exit, ``"exit_depth": int32 [N]`` 0-based exit
            layer (L - 1 for every example without early exit)``}``.
        """
        ids = np.asarray(ids)
        top1_parts, depth_parts = [], []
        for start in range(0, len(ids), batch_size):
            x0 = self.embedding(ids[start:start + batch_size])
            choices = [
                keras.ops.convert_to_numpy(ops.argmax(moe.gate(x0)[0], axis=-1))
                for moe in self.moe_layers
            ]
            top1 = np.stack(choices, axis=1).astype(np.int32)
            if self.depth_controller is None:
                depth = np.full(len(top1), self.num_layers - 1, np.int32)
            else:
                depth = keras.ops.convert_to_numpy(self.depth_controller(x0)[1])
            top1[np.arange(self.num_layers)[None, :] > depth[:, None]] = -1
            top1_parts.append(top1)
            depth_parts.append(depth.astype(np.int32))
        return {"top1": np.concatenate(top1_parts), "exit_depth": np.concatenate(depth_parts)}

    def format_routing_statistics(self) -> str:
        """Return `routing_statistics` as a small text table, one row per layer."""
        statistics = self.routing_statistics()
        names = [make_expert(spec).__class__.__name__ for spec in self.expert_specs]
        lines = ["layer  examples  " + "  ".join(f"{name:>16}" for name in names)
                 + "  exit share"]
        for index, layer in enumerate(statistics["layers"]):
            shares = "  ".join(f"{share:16.3f}" for share in layer["top1"])
            exit_share = (
                "" if statistics["exit_depth_shares"] is None
                else f"{statistics['exit_depth_shares'][index]:10.3f}"
            )
            lines.append(f"{index + 1:5d}  {layer['examples']:8d}  {shares}  {exit_share}")
        return "\n".join(lines)

    def evaluate(self, *args: Any, **kwargs: Any) -> Any:
        if self.built:
            self.reset_routing_statistics()
        return super().evaluate(*args, **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "vocabulary_sizes": self.vocabulary_sizes,
                "embedding_dim": self.embedding_dim,
                "num_layers": self.num_layers,
                "experts": self.expert_specs,
                "top_k": self.top_k,
                "anneal_steps": self.anneal_steps,
                "reduction_ratio": self.reduction_ratio,
                "depth_reduction_ratio": self.depth_reduction_ratio,
                "gate_dim": self.gate_dim,
                "jitter_eps": self.jitter_eps,
                "expected_expert_loads": self.expected_expert_loads,
                "expected_depth_loads": self.expected_depth_loads,
                "lambda_1": self.lambda_1,
                "lambda_2": self.lambda_2,
                "early_exit": self.early_exit,
                "dispatch": self.dispatch,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
                "embeddings_regularizer": keras.regularizers.serialize(
                    self.embeddings_regularizer
                ),
                "seed": self.seed,
            }
        )
        return config
