"""Depth controller: picks, per example, the SparseMoE layer after which it exits.

The network is the noisy cosine gate's (jittered two-layer FFN on X0, cosine against one
learnable embedding per layer, learnable temperature) with one score per layer:

    P = softmax(g)            exit probabilities, float32 [batch, num_layers]
    exit_depth = argmax(g)    0-based index of the exit layer, int32 [batch] (top-1)

The hard ``exit_depth`` drives dynamic propagation at inference and in W steps. ``P``
weights the soft mixture of exits in AdaEnsemble's alpha step, which is how the
controller learns from the validation loss. Every call also adds the depth
load-distribution loss ``load_loss_weight * sum_l f_l P_l / w_l`` with ``add_loss``
(f_l: share of examples exiting at l, w_l: expected share) and tracks its value in the
Mean metric ``depth_load_loss``.
"""

from typing import Any

import keras
from keras import ops

import numpy as np

from ada_keras.layers.noisy_cosine_gate import (
    NoisyCosineGate,
    load_distribution_loss,
    validate_expected_loads,
)


@keras.saving.register_keras_serializable(package="ada_keras")
class DepthController(NoisyCosineGate):
    """Top-1 exit-layer selector over ``num_layers`` layers.

    Its trainable variables belong to alpha in bi-level training (``is_routing_layer``).

    Args:
        num_layers: L, the number of SparseMoE layers to choose from.
        expected_loads: w_l, the expected share of examples exiting at each layer,
            positive, summing to 1; None for uniform.
        load_loss_weight: lambda of the depth load-distribution loss; 0 adds no loss.
        reduction_ratio: r; the FFN's hidden width is max(1, F * D // r).
        gate_dim: length of h and of every layer embedding.
        jitter_eps: eps of the multiplicative training-time jitter; 0 disables it.
        initial_temperature: starting temperature; >= 0.05.
        activation: activation of the FFN's hidden layer.
        seed: seed of the jitter.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    ```python
    controller = DepthController(num_layers=3)
    exit_probabilities, exit_depth = controller(keras.random.normal((8, 6, 4)))
    ```
    """

    def __init__(
        self,
        num_layers: int,
        expected_loads: list[float] | None = None,
        load_loss_weight: float = 0.01,
        reduction_ratio: int = 4,
        gate_dim: int = 16,
        jitter_eps: float = 0.01,
        initial_temperature: float = 1.0,
        activation: str = "relu",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            num_experts=num_layers,
            top_k=1,
            anneal_steps=0,
            reduction_ratio=reduction_ratio,
            gate_dim=gate_dim,
            jitter_eps=jitter_eps,
            initial_temperature=initial_temperature,
            activation=activation,
            seed=seed,
            **kwargs,
        )
        self.num_layers = self.num_experts
        self.expected_loads = validate_expected_loads(
            expected_loads, self.num_layers, "expected depth loads"
        )
        if float(load_loss_weight) < 0:
            raise ValueError(f"load_loss_weight = {load_loss_weight} is invalid; use >= 0.")
        self.load_loss_weight = float(load_loss_weight)
        self.load_loss_tracker = keras.metrics.Mean(name="depth_load_loss")

    def call(self, x0: Any, training: bool | None = None) -> tuple[Any, Any]:
        logits = self.logits(x0, training=training)
        exit_probabilities = ops.softmax(logits, axis=-1)
        exit_depth = ops.cast(ops.argmax(logits, axis=-1), "int32")

        expected_loads = self.expected_loads or [1.0 / self.num_layers] * self.num_layers
        load_loss = load_distribution_loss(
            exit_probabilities, exit_probabilities, np.array(expected_loads)
        )
        if self.load_loss_weight > 0:
            self.add_loss(self.load_loss_weight * load_loss)
        self.load_loss_tracker.update_state(load_loss)
        return exit_probabilities, exit_depth

    def compute_output_spec(self, x0: Any, training: bool | None = None) -> Any:
        return (
            keras.KerasTensor((x0.shape[0], self.num_layers), dtype="float32"),
            keras.KerasTensor((x0.shape[0],), dtype="int32"),
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for key in ("num_experts", "top_k", "anneal_steps"):
            config.pop(key)
        config["num_layers"] = self.num_layers
        config["expected_loads"] = self.expected_loads
        config["load_loss_weight"] = self.load_loss_weight
        return config
