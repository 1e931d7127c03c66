"""Noisy cosine gate: routes each example to its top-k experts, with an annealed k.

    h   = FFN(X0 o u),  u ~ U(1 - eps, 1 + eps) per element, in training only
    s_j = <h, e_j> / (|h| |e_j|)                 cosine against expert embedding e_j
    g_j = s_j / tau                              learnable temperature tau > 0
    G   = softmax over the top-k g_j, 0 elsewhere  (the expert gates)
    P   = softmax over all g_j                     (router probabilities, for the balance loss)

FFN is two dense layers on the flattened X0: F*D -> F*D / r (activation) -> gate_dim.

Top-k masking selects instead of adding a large negative constant: the k largest logits
are gathered, softmaxed and scattered back, so every value stays finite in float16, also
with k equal to the number of experts. The routing arithmetic after the FFN runs in
float32 because |h|^2 can exceed the float16 range.

Annealing: k starts at ``num_experts`` and falls linearly to ``top_k`` over
``anneal_steps`` steps, k(t) = num_experts - floor((num_experts - top_k) * min(t, S) / S).
The step t is the layer's ``step`` variable, which grows by one in every call with
``training=True`` and ``update_step=True``. `CTRModel.get_weights` and ``set_weights`` leave
it out (see ``training_progress_variables``), so restoring an earlier epoch's weights, as
early stopping does, does not move k back up.

Shapes: X0 ``[batch, F, D]`` -> gates, probabilities ``[batch, num_experts]`` float32 and
selected ``[batch, num_experts]`` bool.
"""

import math
from typing import Any

import keras
import tensorflow as tf
from keras import ops

from ada_keras.layers._shapes import feature_map_shape

# tau is kept >= 0.05 so |g_j| <= 20: softmax weights of the selected experts then stay
# above exp(-40) and never underflow to 0 in float32.
MIN_TEMPERATURE = 0.05


def load_distribution_loss(selected_scores: Any, probabilities: Any, expected_loads: Any) -> Any:
    """Return sum_j f_j P_j / w_j for one batch (0 for an empty batch).

    f_j is the fraction of examples whose largest ``selected_scores`` entry is j, P_j the
    mean of ``probabilities[:, j]`` and w_j = ``expected_loads[j]``. With uniform
    w_j = 1 / n this is the Switch Transformer balance loss n * sum_j f_j P_j, whose
    minimum 1 is reached at a uniform load.

    Args:
        selected_scores: float ``[batch, n]``; its argmax is each example's choice.
        probabilities: float32 ``[batch, n]``, differentiable router probabilities.
        expected_loads: float ``[n]``, positive, summing to 1.
    """
    num_choices = ops.shape(probabilities)[-1]
    batch_size = ops.cast(ops.shape(probabilities)[0], "float32")
    # An empty batch (all examples exited before this layer) contributes 0, not NaN.
    denominator = ops.maximum(batch_size, 1.0)
    choices = ops.one_hot(ops.argmax(selected_scores, axis=-1), num_choices, dtype="float32")
    fractions = ops.sum(choices, axis=0) / denominator
    mean_probabilities = ops.sum(ops.cast(probabilities, "float32"), axis=0) / denominator
    return ops.sum(fractions * mean_probabilities / ops.cast(expected_loads, "float32"))


def validate_expected_loads(expected_loads: Any, size: int, name: str) -> list[float] | None:
    """Return ``expected_loads`` as floats, or raise unless it has ``size`` positive entries
    summing to 1 (None stays None and means uniform)."""
    if expected_loads is None:
        return None
    loads = [float(value) for value in expected_loads]
    if len(loads) != size or any(value <= 0 for value in loads):
        raise ValueError(
            f"{name} = {loads} is invalid; give {size} positive fractions, one per choice."
        )
    if not math.isclose(sum(loads), 1.0, rel_tol=0, abs_tol=1e-6):
        raise ValueError(f"{name} = {loads} sums to {sum(loads)}; the fractions must sum to 1.")
    return loads


@keras.saving.register_keras_serializable(package="ada_keras")
class NoisyCosineGate(keras.layers.Layer):
    """Noisy cosine top-k router over ``num_experts`` choices.

    Its trainable variables belong to alpha in bi-level training (``is_routing_layer``).

    Args:
        num_experts: n, the number of choices.
        top_k: target number of selected experts per example, 1 <= top_k <= n.
        anneal_steps: steps over which k falls from n to top_k; 0 uses top_k at once.
        reduction_ratio: r; the FFN's hidden width is max(1, F * D // r).
        gate_dim: d, length of h and of every expert embedding.
        jitter_eps: eps of the multiplicative U(1 - eps, 1 + eps) jitter; 0 disables it.
        initial_temperature: starting tau; >= 0.05.
        activation: activation of the FFN's hidden layer.
        seed: seed of the jitter.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    ```python
    gate = NoisyCosineGate(num_experts=5, top_k=2)
    gates, probabilities, selected = gate(keras.random.normal((8, 6, 4)))
    ```
    """

    is_routing_layer = True

    def __init__(
        self,
        num_experts: int,
        top_k: int = 1,
        anneal_steps: int = 0,
        reduction_ratio: int = 4,
        gate_dim: int = 16,
        jitter_eps: float = 0.01,
        initial_temperature: float = 1.0,
        activation: str = "relu",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        num_experts, top_k = int(num_experts), int(top_k)
        if num_experts < 1:
            raise ValueError(f"num_experts = {num_experts} is invalid; it must be >= 1.")
        if not 1 <= top_k <= num_experts:
            raise ValueError(
                f"top_k = {top_k} is invalid; it must lie in [1, num_experts = {num_experts}]."
            )
        if int(anneal_steps) < 0:
            raise ValueError(f"anneal_steps = {anneal_steps} is invalid; it must be >= 0.")
        if int(reduction_ratio) < 1 or int(gate_dim) < 1:
            raise ValueError(
                f"reduction_ratio = {reduction_ratio} and gate_dim = {gate_dim} must be >= 1."
            )
        if not 0.0 <= float(jitter_eps) < 1.0:
            raise ValueError(f"jitter_eps = {jitter_eps} is invalid; it must lie in [0, 1).")
        if float(initial_temperature) < MIN_TEMPERATURE:
            raise ValueError(
                f"initial_temperature = {initial_temperature} is invalid; it must be >= "
                f"{MIN_TEMPERATURE}."
            )
        self.num_experts = num_experts
        self.top_k = top_k
        self.anneal_steps = int(anneal_steps)
        self.reduction_ratio = int(reduction_ratio)
        self.gate_dim = int(gate_dim)
        self.jitter_eps = float(jitter_eps)
        self.initial_temperature = float(initial_temperature)
        self.activation = keras.activations.get(activation)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape: Any) -> None:
        num_fields, embedding_dim = feature_map_shape(self.__class__.__name__, input_shape)
        self.flat_dim = num_fields * embedding_dim
        hidden_units = max(1, self.flat_dim // self.reduction_ratio)
        self.hidden = keras.layers.Dense(
            hidden_units, activation=self.activation, dtype=self.dtype_policy, name="hidden"
        )
        self.hidden.build((None, self.flat_dim))
        self.projection = keras.layers.Dense(
            self.gate_dim, dtype=self.dtype_policy, name="projection"
        )
        self.projection.build((None, hidden_units))
        self.expert_embeddings = self.add_weight(
            name="expert_embeddings",
            shape=(self.num_experts, self.gate_dim),
            initializer="glorot_normal",
        )
        self.log_temperature = self.add_weight(
            name="log_temperature",
            shape=(),
            initializer=keras.initializers.Constant(math.log(self.initial_temperature)),
        )
        self.step = self.add_weight(
            name="step", shape=(), dtype="int64", initializer="zeros", trainable=False
        )

    @property
    def training_progress_variables(self) -> list[keras.Variable]:
        """The annealing ``step``: saved with the model, left out of `CTRModel.get_weights`."""
        return [self.step] if self.built else []

    def current_top_k(self) -> Any:
        """Return k at the current step, an int32 scalar."""
        if self.anneal_steps == 0 or self.top_k == self.num_experts:
            return ops.convert_to_tensor(self.top_k, dtype="int32")
        progress = ops.minimum(ops.cast(self.step, "float32"), float(self.anneal_steps))
        removed = ops.floor((self.num_experts - self.top_k) * progress / self.anneal_steps)
        return ops.cast(self.num_experts - removed, "int32")

    def logits(self, x0: Any, training: bool | None = None) -> Any:
        """Return g = cosine(h, e_j) / tau, float32 ``[batch, num_experts]``."""
        flat = ops.reshape(x0, (-1, self.flat_dim))
        if training and self.jitter_eps > 0:
            noise = keras.random.uniform(
                ops.shape(flat),
                minval=1.0 - self.jitter_eps,
                maxval=1.0 + self.jitter_eps,
                dtype=flat.dtype,
                seed=self.seed_generator,
            )
            flat = flat * noise
        h = ops.cast(self.projection(self.hidden(flat)), "float32")
        expert_embeddings = ops.cast(self.expert_embeddings, "float32")
        h = h / ops.maximum(ops.norm(h, axis=-1, keepdims=True), 1e-6)
        expert_embeddings = expert_embeddings / ops.maximum(
            ops.norm(expert_embeddings, axis=-1, keepdims=True), 1e-6
        )
        cosine = ops.matmul(h, ops.transpose(expert_embeddings))
        log_temperature = ops.maximum(
            ops.cast(self.log_temperature, "float32"), math.log(MIN_TEMPERATURE)
        )
        return cosine / ops.exp(log_temperature)

    def call(
        self, x0: Any, training: bool | None = None, update_step: bool = True
    ) -> tuple[Any, Any, Any]:
        logits = self.logits(x0, training=training)
        probabilities = ops.softmax(logits, axis=-1)

        k = self.current_top_k()
        top_logits, top_indices = tf.math.top_k(logits, k=k)
        # tf.nn.softmax: keras.ops.softmax warns on the size-1 axis that k = 1 gives.
        top_gates = tf.nn.softmax(top_logits, axis=-1)
        # Scatter the k softmax values back to their experts: [B, k, n] summed over k.
        one_hot = ops.one_hot(top_indices, self.num_experts, dtype="float32")
        gates = ops.sum(one_hot * top_gates[:, :, None], axis=1)
        selected = ops.sum(one_hot, axis=1) > 0

        if training and update_step:
            self.step.assign_add(1)
        return gates, probabilities, selected

    def compute_output_spec(self, x0: Any, training: bool | None = None,
                            update_step: bool = True) -> Any:
        shape = (x0.shape[0], self.num_experts)
        return (
            keras.KerasTensor(shape, dtype="float32"),
            keras.KerasTensor(shape, dtype="float32"),
            keras.KerasTensor(shape, dtype="bool"),
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_experts": self.num_experts,
                "top_k": self.top_k,
                "anneal_steps": self.anneal_steps,
                "reduction_ratio": self.reduction_ratio,
                "gate_dim": self.gate_dim,
                "jitter_eps": self.jitter_eps,
                "initial_temperature": self.initial_temperature,
                "activation": keras.activations.serialize(self.activation),
                "seed": self.seed,
            }
        )
        return config
