"""Interacting layer of AutoInt (Song et al., 2019): multi-head self-attention over fields."""

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ada_keras")
class InteractingAttention(keras.layers.Layer):
    """Multi-head self-attention across the F field vectors, with a projected residual.

    For each head h and field m, with `d'` = `head_dim`:

        alpha^h_{m,k} = softmax_k(<W_Q^h e_m, W_K^h e_k>)
        e~^h_m = sum_k alpha^h_{m,k} W_V^h e_k
        e^Res_m = ReLU([e~^1_m; ...; e~^H_m] + W_Res e_m)

    The scores are not divided by sqrt(d'), as in the AutoInt formula; `use_scale=True`
    adds that scaling. Stacking these layers models interactions of growing order.

    Input shape: `[batch, F, D_in]`. Output shape: `[batch, F, num_heads * head_dim]`.

    Args:
        num_heads: Number of attention heads H.
        head_dim: Width d' of each head's query, key and value.
        use_residual: Whether to add `W_Res e_m` before the ReLU.
        use_scale: Whether to divide the attention scores by sqrt(head_dim).
        kernel_initializer: Initialiser of W_Q, W_K, W_V and W_Res.

    Example:

    ```python
    attention = InteractingAttention(num_heads=2, head_dim=8)
    fields = attention(keras.random.normal((4, 5, 16)))  # [4, 5, 16]
    ```
    """

    def __init__(
        self,
        num_heads: int = 2,
        head_dim: int = 32,
        use_residual: bool = True,
        use_scale: bool = False,
        kernel_initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

        if int(num_heads) < 1:
            raise ValueError(f"`num_heads` must be at least 1, got {num_heads}.")
        if int(head_dim) < 1:
            raise ValueError(f"`head_dim` must be at least 1, got {head_dim}.")

        self.num_heads = int(num_heads)
        self.head_dim = int(head_dim)
        self.use_residual = bool(use_residual)
        self.use_scale = bool(use_scale)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                f"InteractingAttention expects inputs of shape [batch, F, D_in] with known D_in, "
                f"got {input_shape}."
            )

        input_dim = int(input_shape[-1])
        output_dim = self.num_heads * self.head_dim
        names = ["query_kernel", "key_kernel", "value_kernel"] + (["residual_kernel"] if self.use_residual else [])
        for name in names:
            setattr(
                self,
                name,
                self.add_weight(
                    name=name,
                    shape=(input_dim, output_dim),
                    initializer=self.kernel_initializer.from_config(self.kernel_initializer.get_config()),
                ),
            )

    def call(self, inputs: Any) -> Any:
        fields = ops.cast(inputs, self.compute_dtype)
        batch_size = ops.shape(fields)[0]
        num_fields = ops.shape(fields)[1]

        def project(kernel: Any) -> Any:
            # [batch, F, D_in] -> [batch, F, H, d']
            projected = ops.matmul(fields, ops.cast(kernel, self.compute_dtype))
            return ops.reshape(projected, (batch_size, num_fields, self.num_heads, self.head_dim))

        queries = project(self.query_kernel)
        keys = project(self.key_kernel)
        values = project(self.value_kernel)

        # [batch, H, F, F]: score of field m (query) against field k (key).
        scores = ops.einsum("bmhd,bkhd->bhmk", queries, keys)
        if self.use_scale:
            scores = scores / ops.cast(self.head_dim**0.5, self.compute_dtype)
        weights = ops.softmax(scores, axis=-1)

        attended = ops.einsum("bhmk,bkhd->bmhd", weights, values)
        attended = ops.reshape(attended, (batch_size, num_fields, self.num_heads * self.head_dim))
        if self.use_residual:
            attended = attended + ops.matmul(fields, ops.cast(self.residual_kernel, self.compute_dtype))
        return ops.relu(attended)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], input_shape[1], self.num_heads * self.head_dim)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "head_dim": self.head_dim,
                "use_residual": self.use_residual,
                "use_scale": self.use_scale,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
