"""Residual unit of Deep Crossing (Shan et al., 2016)."""

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ada_keras")
class ResidualUnit(keras.layers.Layer):
    """Two-layer perceptron with a skip connection, `y = ReLU(x + W_1 ReLU(W_0 x + b_0) + b_1)`.

    The inner layer has `hidden_units` neurons; the outer one maps back to the input width d
    so that the skip connection adds like shapes.

    Input shape: `[batch, d]`. Output shape: `[batch, d]`.

    Args:
        hidden_units: Width of the inner layer.
        l2: L2 penalty factor on both kernels. 0 disables it.
        kernel_initializer: Initialiser of W_0 and W_1.

    Example:

    ```python
    unit = ResidualUnit(hidden_units=64)
    out = unit(keras.random.normal((4, 48)))  # [4, 48]
    ```
    """

    def __init__(
        self,
        hidden_units: int = 256,
        l2: float = 0.0,
        kernel_initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

        if int(hidden_units) < 1:
            raise ValueError(f"`hidden_units` must be at least 1, got {hidden_units}.")
        if l2 < 0.0:
            raise ValueError(f"`l2` must be non-negative, got {l2}.")

        self.hidden_units = int(hidden_units)
        self.l2 = float(l2)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(f"ResidualUnit expects inputs of shape [batch, d] with known d, got {input_shape}.")

        width = int(input_shape[-1])
        regularizer = keras.regularizers.L2(self.l2) if self.l2 > 0.0 else None
        self.inner = keras.layers.Dense(
            self.hidden_units,
            activation="relu",
            kernel_initializer=self.kernel_initializer.from_config(self.kernel_initializer.get_config()),
            kernel_regularizer=regularizer,
            dtype=self.dtype_policy,
            name="inner",
        )
        # The outer bias b_1 is a separate weight added after the skip connection. With a
        # Dense bias, TensorFlow 2.21's CPU graph optimiser fuses MatMul + BiasAdd + Add +
        # Relu into a kernel it has not registered and logs a warning on every trace.
        self.outer = keras.layers.Dense(
            width,
            use_bias=False,
            kernel_initializer=self.kernel_initializer.from_config(self.kernel_initializer.get_config()),
            kernel_regularizer=regularizer,
            dtype=self.dtype_policy,
            name="outer",
        )
        self.inner.build(tuple(input_shape))
        self.outer.build((input_shape[0], self.hidden_units))
        self.outer_bias = self.add_weight(name="outer_bias", shape=(width,), initializer="zeros")

    def call(self, inputs: Any) -> Any:
        inputs = ops.cast(inputs, self.compute_dtype)
        skip_sum = inputs + self.outer(self.inner(inputs))
        return ops.relu(skip_sum + ops.cast(self.outer_bias, self.compute_dtype))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "hidden_units": self.hidden_units,
                "l2": self.l2,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
