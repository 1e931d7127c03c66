"""Convolution expert: dense fuse, 1-D convolution over the fields, pooling, dense.

    H = reshape(W_f vec(X_{l-1}) + b_f, [F, D])        fuse, because a convolution only covers
                                                       kernel_size neighbouring fields
    C = act(Conv1D(H))                                 [F, filters], "same" padding
    P = MaxPool1D(C)                                   [ceil(F / pool_size), filters]
    X_l = reshape(W_o vec(P) + b_o, [F, D])

The convolution runs along the field axis with the D embedding coordinates as channels,
with `tf.nn.conv1d` and `tf.nn.max_pool1d` in "same" mode (Keras' "same" layout).
SparseMoE hands an expert an empty batch whenever no example is routed to it. TensorFlow
2.21's CPU convolution gradient aborts the process on an empty batch, so the convolution
runs on the batch plus one zero row, which is dropped after pooling.
Shapes: ``[batch, F, D]`` -> ``[batch, F, D]``.
"""

from typing import Any

import keras
import tensorflow as tf
from keras import ops

from ada_keras.layers._shapes import feature_map_shape


@keras.saving.register_keras_serializable(package="ada_keras")
class ConvExpert(keras.layers.Layer):
    """1-D convolutional feature-interaction expert.

    Args:
        filters: number of convolution filters.
        kernel_size: width of the convolution window, in fields.
        pool_size: width of the max-pooling window, in fields.
        fuse: whether a dense layer mixes all fields before the convolution.
        activation: activation of the convolution.
        kernel_initializer: initialiser of every kernel.
        kernel_regularizer: optional regularizer of every kernel.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    ```python
    expert = ConvExpert(filters=8, kernel_size=3, pool_size=2)
    y = expert(keras.random.normal((8, 5, 4)))  # shape (8, 5, 4)
    ```
    """

    def __init__(
        self,
        filters: int = 16,
        kernel_size: int = 3,
        pool_size: int = 2,
        fuse: bool = True,
        activation: str = "relu",
        kernel_initializer: Any = "glorot_uniform",
        kernel_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for name, value in (("filters", filters), ("kernel_size", kernel_size),
                            ("pool_size", pool_size)):
            if int(value) < 1:
                raise ValueError(f"ConvExpert: {name} = {value} is invalid; it must be >= 1.")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.pool_size = int(pool_size)
        self.fuse = bool(fuse)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def _initializer(self) -> keras.initializers.Initializer:
        # A fresh initialiser per sub-layer, so seeded initialisers do not repeat values.
        return keras.initializers.get(keras.initializers.serialize(self.kernel_initializer))

    def build(self, input_shape: Any) -> None:
        self.num_fields, self.embedding_dim = feature_map_shape("ConvExpert", input_shape)
        flat_dim = self.num_fields * self.embedding_dim

        self.fuse_dense = None
        if self.fuse:
            self.fuse_dense = keras.layers.Dense(
                flat_dim,
                kernel_initializer=self._initializer(),
                kernel_regularizer=self.kernel_regularizer,
                dtype=self.dtype_policy,
                name="fuse",
            )
            self.fuse_dense.build((None, flat_dim))

        # Same layout as keras.layers.Conv1D: (kernel_size, in_channels, filters).
        self.conv_kernel = self.add_weight(
            name="conv_kernel",
            shape=(self.kernel_size, self.embedding_dim, self.filters),
            initializer=self._initializer(),
            regularizer=self.kernel_regularizer,
        )
        self.conv_bias = self.add_weight(
            name="conv_bias", shape=(self.filters,), initializer="zeros"
        )

        pooled_fields = -(-self.num_fields // self.pool_size)
        self.output_dense = keras.layers.Dense(
            flat_dim,
            kernel_initializer=self._initializer(),
            kernel_regularizer=self.kernel_regularizer,
            dtype=self.dtype_policy,
            name="output",
        )
        self.output_dense.build((None, pooled_fields * self.filters))
        self.pooled_fields = pooled_fields

    def call(self, inputs: Any) -> Any:
        hidden = inputs
        if self.fuse_dense is not None:
            flat = ops.reshape(inputs, (-1, self.num_fields * self.embedding_dim))
            hidden = ops.reshape(self.fuse_dense(flat), (-1, self.num_fields, self.embedding_dim))

        pooled = self._convolve_and_pool(hidden)
        flat = ops.reshape(pooled, (-1, self.pooled_fields * self.filters))
        return ops.reshape(self.output_dense(flat), (-1, self.num_fields, self.embedding_dim))

    def _convolve_and_pool(self, hidden: Any) -> Any:
        """Return MaxPool1D(act(Conv1D(hidden))), both "same": [B, ceil(F / pool), filters]."""
        # One extra zero row keeps the convolution's batch non-empty, because the CPU
        # gradient aborts on an empty batch. The row is dropped after pooling.
        extra_row = tf.zeros((1, self.num_fields, self.embedding_dim), hidden.dtype)
        padded = tf.concat([hidden, extra_row], axis=0)

        kernel = tf.cast(self.conv_kernel, hidden.dtype)
        outputs = tf.nn.conv1d(padded, kernel, stride=1, padding="SAME")
        outputs = self.activation(outputs + tf.cast(self.conv_bias, hidden.dtype))
        pooled = tf.nn.max_pool1d(outputs, self.pool_size, self.pool_size, padding="SAME")
        return pooled[:-1]

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "pool_size": self.pool_size,
                "fuse": self.fuse,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            }
        )
        return config
