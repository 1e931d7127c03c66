"""Multi-layer perceptron: the deep part shared by most CTR baselines."""

from collections.abc import Sequence
from typing import Any

import keras


@keras.saving.register_keras_serializable(package="ada_keras")
class MLP(keras.layers.Layer):
    """Stack of dense layers, each optionally followed by batch norm and dropout.

    Each block computes `h = dropout(activation(batch_norm(W h + b)))`, in that order
    (batch norm before the nonlinearity, as in Ioffe and Szegedy). Every block uses the
    same activation. Build the output logit with a separate `keras.layers.Dense(1)`.

    Input shape: `[batch, input_dim]`. Output shape: `[batch, units[-1]]`.

    Args:
        units: Width of each hidden layer, first to last. At least one entry.
        activation: Activation of every block, any name or callable Keras accepts.
        dropout_rate: Dropout rate after every block, in [0, 1). 0 disables dropout.
        use_batch_norm: Whether to insert batch normalisation after each dense layer.
        l2: L2 penalty factor on the dense kernels. 0 disables it.
        kernel_initializer: Initialiser of the dense kernels.

    Example:

    ```python
    mlp = MLP(units=(256, 128), dropout_rate=0.1, use_batch_norm=True)
    hidden = mlp(keras.ops.ones((4, 32)))  # [4, 128]
    ```
    """

    def __init__(
        self,
        units: Sequence[int],
        activation: Any = "relu",
        dropout_rate: float = 0.0,
        use_batch_norm: bool = False,
        l2: float = 0.0,
        kernel_initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

        units = tuple(int(width) for width in units)
        if not units:
            raise ValueError("`units` must contain at least one layer width, got an empty sequence.")
        if any(width <= 0 for width in units):
            raise ValueError(f"Every entry of `units` must be a positive integer, got {units}.")
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"`dropout_rate` must be in [0, 1), got {dropout_rate}.")
        if l2 < 0.0:
            raise ValueError(f"`l2` must be non-negative, got {l2}.")

        self.units = units
        self.activation = keras.activations.get(activation)
        self.dropout_rate = float(dropout_rate)
        self.use_batch_norm = bool(use_batch_norm)
        self.l2 = float(l2)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

        regularizer = keras.regularizers.L2(self.l2) if self.l2 > 0.0 else None
        self.dense_layers = []
        self.batch_norm_layers = []
        self.dropout_layers = []
        for index, width in enumerate(self.units):
            self.dense_layers.append(
                keras.layers.Dense(
                    width,
                    # Clone so that each layer draws its own initial weights from a config.
                    kernel_initializer=self.kernel_initializer.from_config(
                        self.kernel_initializer.get_config()
                    ),
                    kernel_regularizer=regularizer,
                    dtype=self.dtype_policy,
                    name=f"dense_{index}",
                )
            )
            if self.use_batch_norm:
                self.batch_norm_layers.append(
                    keras.layers.BatchNormalization(dtype=self.dtype_policy, name=f"batch_norm_{index}")
                )
            if self.dropout_rate > 0.0:
                self.dropout_layers.append(
                    keras.layers.Dropout(self.dropout_rate, dtype=self.dtype_policy, name=f"dropout_{index}")
                )

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 2:
            raise ValueError(f"MLP expects inputs of shape [batch, input_dim], got {input_shape}.")

        shape = tuple(input_shape)
        for index, dense in enumerate(self.dense_layers):
            dense.build(shape)
            shape = dense.compute_output_shape(shape)
            if self.use_batch_norm:
                self.batch_norm_layers[index].build(shape)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        hidden = inputs
        for index, dense in enumerate(self.dense_layers):
            hidden = dense(hidden)
            if self.use_batch_norm:
                hidden = self.batch_norm_layers[index](hidden, training=training)
            hidden = self.activation(hidden)
            if self.dropout_rate > 0.0:
                hidden = self.dropout_layers[index](hidden, training=training)
        return hidden

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], self.units[-1])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "units": list(self.units),
                "activation": keras.activations.serialize(self.activation),
                "dropout_rate": self.dropout_rate,
                "use_batch_norm": self.use_batch_norm,
                "l2": self.l2,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
