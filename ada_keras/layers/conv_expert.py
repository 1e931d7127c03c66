"""Convolution expert: dense fuse, 1-D convolution over the fields, pooling, dense.

    H = reshape(W_f vec(X_{l-1}) + b_f, [F, D])        fuse, because a convolution only covers
                                                       kernel_size neighbouring fields
    C = act(Conv1D(H))                                 [F, filters], "same" padding
    P = MaxPool1D(C)                                   [ceil(F / pool_size), filters]
    X_l = reshape(W_o vec(P) + b_o, [F, D])

The convolution runs along the field axis with the D embedding coordinates as channels.
Convolution and pooling are written as padding, slicing and a matmul rather than with
`keras.layers.Conv1D`, because TensorFlow 2.21's CPU convolution returns a wrongly shaped
result for an empty batch, and SparseMoE hands an expert an empty batch whenever no
example is routed to it. The padding and window layout match Keras' "same" mode.
Shapes: ``[batch, F, D]`` -> ``[batch, F, D]``.
"""

from typing import Any

import keras
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

        pooled = self._max_pool(self._convolve(hidden))
        flat = ops.reshape(pooled, (-1, self.pooled_fields * self.filters))
        return ops.reshape(self.output_dense(flat), (-1, self.num_fields, self.embedding_dim))

    def _convolve(self, hidden: Any) -> Any:
        """Return act(Conv1D(hidden)) with "same" padding and stride 1: [B, F, filters]."""
        pad_left = (self.kernel_size - 1) // 2
        pad_right = self.kernel_size - 1 - pad_left
        padded = ops.pad(hidden, ((0, 0), (pad_left, pad_right), (0, 0)))
        # windows[b, i, k, d] = padded[b, i + k, d]
        windows = ops.stack(
            [padded[:, k : k + self.num_fields, :] for k in range(self.kernel_size)], axis=2
        )
        outputs = ops.einsum("bikd,kdf->bif", windows, self.conv_kernel) + self.conv_bias
        return self.activation(outputs)

    def _max_pool(self, hidden: Any) -> Any:
        """Return max pooling with window = stride = pool_size, "same" padding."""
        total_padding = self.pooled_fields * self.pool_size - self.num_fields
        pad_left = total_padding // 2
        pad_right = total_padding - pad_left
        # Padding rows repeat the edge rows, which lie in the same window, so the maximum
        # ignores them as Keras' "same" pooling does.
        parts = [hidden[:, :1, :]] * pad_left + [hidden] + [hidden[:, -1:, :]] * pad_right
        padded = ops.concatenate(parts, axis=1) if total_padding else hidden
        windows = ops.reshape(padded, (-1, self.pooled_fields, self.pool_size, self.filters))
        # An element-wise maximum over the window positions: ops.max rejects empty batches.
        pooled = windows[:, :, 0, :]
        for position in range(1, self.pool_size):
            pooled = ops.maximum(pooled, windows[:, :, position, :])
        return pooled

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
