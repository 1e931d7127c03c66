"""Attention expert: multi-head self-attention over the F field vectors, then a dense map.

    A = MultiHeadAttention(query=X_{l-1}, value=X_{l-1}, key=X_{l-1})   [F, D]
    X_l = A W + b                                                        W in R^{D x D}

Every field attends to every field (no mask). The final dense layer acts on each field
vector separately. Shapes: ``[batch, F, D]`` -> ``[batch, F, D]``.
"""

from typing import Any

import keras

from ada_keras.layers._shapes import feature_map_shape


@keras.saving.register_keras_serializable(package="ada_keras")
class AttentionExpert(keras.layers.Layer):
    """Multi-head self-attention feature-interaction expert.

    Args:
        num_heads: number of attention heads.
        key_dim: size of each head's query and key; defaults to D.
        activation: activation of the final dense layer (None for linear).
        kernel_initializer: initialiser of every kernel.
        kernel_regularizer: optional regularizer of every kernel.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    ```python
    expert = AttentionExpert(num_heads=2)
    y = expert(keras.random.normal((8, 5, 4)))  # shape (8, 5, 4)
    ```
    """

    def __init__(
        self,
        num_heads: int = 2,
        key_dim: int | None = None,
        activation: str | None = None,
        kernel_initializer: Any = "glorot_uniform",
        kernel_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if int(num_heads) < 1:
            raise ValueError(f"AttentionExpert: num_heads = {num_heads} is invalid; use >= 1.")
        if key_dim is not None and int(key_dim) < 1:
            raise ValueError(f"AttentionExpert: key_dim = {key_dim} is invalid; use >= 1.")
        self.num_heads = int(num_heads)
        self.key_dim = None if key_dim is None else int(key_dim)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def _initializer(self) -> keras.initializers.Initializer:
        return keras.initializers.get(keras.initializers.serialize(self.kernel_initializer))

    def build(self, input_shape: Any) -> None:
        self.num_fields, self.embedding_dim = feature_map_shape("AttentionExpert", input_shape)
        self.attention = keras.layers.MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=self.key_dim or self.embedding_dim,
            kernel_initializer=self._initializer(),
            kernel_regularizer=self.kernel_regularizer,
            dtype=self.dtype_policy,
            name="attention",
        )
        shape = (None, self.num_fields, self.embedding_dim)
        self.attention.build(shape, shape, shape)
        self.output_dense = keras.layers.Dense(
            self.embedding_dim,
            activation=self.activation,
            kernel_initializer=self._initializer(),
            kernel_regularizer=self.kernel_regularizer,
            dtype=self.dtype_policy,
            name="output",
        )
        self.output_dense.build(shape)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        attended = self.attention(inputs, inputs, inputs, training=training)
        return self.output_dense(attended)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            }
        )
        return config
