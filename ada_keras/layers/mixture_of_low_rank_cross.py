"""Mixture-of-low-rank cross layer of DCN V2 (Wang et al., 2021)."""

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ada_keras")
class MixtureOfLowRankCross(keras.layers.Layer):
    """One DCN-V2 cross layer whose matrix is a gated mixture of low-rank experts.

    For experts i = 1..K, with `g` the nonlinearity and `b` a bias shared by the experts:

        E_i(x_l) = x_0 o (U_i g(C_i g(V_i^T x_l)) + b)
        G_i(x_l) = softmax_i(w_i^T x_l)
        x_{l+1} = sum_i G_i(x_l) E_i(x_l) + x_l

    `U_i`, `V_i` are `d x r` and `C_i` is `r x r`, so each expert crosses in an
    r-dimensional subspace. With K = 1, `g` the identity and `C_1 = I` this reduces to the
    low-rank cross layer `x_0 o (U V^T x_l + b) + x_l`.

    The `CrossExpert` layer (bit-wise mode with `rank`) cannot express this form because
    it has no gate and no inner map `C_i`, so the mixture is its own layer.

    Input shapes: `inputs` x_l and `x0`, both `[batch, d]` (the flattened feature map).
    Without `x0` the inputs are x_0 (the first layer). Output shape: `[batch, d]`.

    Args:
        rank: The inner dimension r of every expert.
        num_experts: The number K of low-rank experts.
        activation: The nonlinearity g.
        kernel_initializer: Initialiser of U_i, V_i, C_i and the gate vectors w_i.
        kernel_regularizer: Optional regularizer of U_i, V_i and C_i.

    Example:

    ```python
    x0 = keras.random.normal((8, 32))
    cross = MixtureOfLowRankCross(rank=8, num_experts=4)
    x1 = cross(x0)
    x2 = MixtureOfLowRankCross(rank=8, num_experts=4)(x1, x0=x0)
    ```
    """

    def __init__(
        self,
        rank: int = 64,
        num_experts: int = 4,
        activation: Any = "tanh",
        kernel_initializer: Any = "glorot_uniform",
        kernel_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

        if int(rank) < 1:
            raise ValueError(f"`rank` must be at least 1, got {rank}.")
        if int(num_experts) < 1:
            raise ValueError(f"`num_experts` must be at least 1, got {num_experts}.")

        self.rank = int(rank)
        self.num_experts = int(num_experts)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, inputs_shape: tuple, x0_shape: tuple | None = None) -> None:
        if len(inputs_shape) != 2 or inputs_shape[-1] is None:
            raise ValueError(
                f"MixtureOfLowRankCross expects inputs of shape [batch, d] with known d, got {inputs_shape}."
            )

        width = int(inputs_shape[-1])

        def add_kernel(name: str, shape: tuple, regularizer: Any) -> Any:
            return self.add_weight(
                name=name,
                shape=shape,
                initializer=self.kernel_initializer.from_config(self.kernel_initializer.get_config()),
                regularizer=regularizer,
            )

        # One tensor per kind of matrix, the expert index first.
        self.u_kernel = add_kernel("u_kernel", (self.num_experts, width, self.rank), self.kernel_regularizer)
        self.v_kernel = add_kernel("v_kernel", (self.num_experts, width, self.rank), self.kernel_regularizer)
        self.c_kernel = add_kernel("c_kernel", (self.num_experts, self.rank, self.rank), self.kernel_regularizer)
        self.gate_kernel = add_kernel("gate_kernel", (width, self.num_experts), None)
        self.bias = self.add_weight(name="bias", shape=(width,), initializer="zeros")

    def call(self, inputs: Any, x0: Any = None) -> Any:
        x = ops.cast(inputs, self.compute_dtype)
        x0 = x if x0 is None else ops.cast(x0, self.compute_dtype)
        u_kernel = ops.cast(self.u_kernel, self.compute_dtype)
        v_kernel = ops.cast(self.v_kernel, self.compute_dtype)
        c_kernel = ops.cast(self.c_kernel, self.compute_dtype)

        # [batch, K, r]: every expert's projection into its subspace.
        low = self.activation(ops.einsum("bd,kdr->bkr", x, v_kernel))
        low = self.activation(ops.einsum("bkr,krs->bks", low, c_kernel))
        # [batch, K, d]
        expert_outputs = x0[:, None, :] * (
            ops.einsum("bks,kds->bkd", low, u_kernel) + ops.cast(self.bias, self.compute_dtype)
        )

        if self.num_experts == 1:
            return expert_outputs[:, 0, :] + x

        # The gate softmax runs in float32 so that float16 logits cannot overflow.
        gate_logits = ops.matmul(ops.cast(x, "float32"), ops.cast(self.gate_kernel, "float32"))
        gates = ops.cast(ops.softmax(gate_logits, axis=-1), self.compute_dtype)  # [batch, K]
        return ops.sum(gates[:, :, None] * expert_outputs, axis=1) + x

    def compute_output_shape(self, inputs_shape: tuple, x0_shape: tuple | None = None) -> tuple:
        return tuple(inputs_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "rank": self.rank,
                "num_experts": self.num_experts,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            }
        )
        return config
