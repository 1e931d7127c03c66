"""Dense expert: a fully connected map of the flattened feature map, back to F x D.

    X_l = reshape(act(W_2 act(W_1 vec(X_{l-1}) + b_1) + b_2), [F, D])   (hidden_units set)
    X_l = reshape(act(W vec(X_{l-1}) + b), [F, D])                      (hidden_units None)

Shapes: ``[batch, F, D]`` -> ``[batch, F, D]``.
"""

from typing import Any

import keras
from keras import ops

from ada_keras.layers._shapes import feature_map_shape


@keras.saving.register_keras_serializable(package="ada_keras")
class DenseExpert(keras.layers.Layer):
    """Dense (DNN) feature-interaction expert.

    Args:
        hidden_units: width of an optional hidden layer; None for one layer F*D -> F*D.
        activation: activation of every layer (the sigma of the formula).
        kernel_initializer: initialiser of the kernels.
        kernel_regularizer: optional regularizer of the kernels.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    ```python
    expert = DenseExpert(hidden_units=64)
    y = expert(keras.random.normal((8, 5, 4)))  # shape (8, 5, 4)
    ```
    """

    def __init__(
        self,
        hidden_units: int | None = None,
        activation: str = "relu",
        kernel_initializer: Any = "glorot_uniform",
        kernel_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if hidden_units is not None and int(hidden_units) < 1:
            raise ValueError(f"hidden_units = {hidden_units} is invalid; use None or >= 1.")
        self.hidden_units = None if hidden_units is None else int(hidden_units)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape: Any) -> None:
        self.num_fields, self.embedding_dim = feature_map_shape("DenseExpert", input_shape)
        flat_dim = self.num_fields * self.embedding_dim
        self.dense_layers = []
        widths = [flat_dim] if self.hidden_units is None else [self.hidden_units, flat_dim]
        input_dim = flat_dim
        for index, width in enumerate(widths):
            dense = keras.layers.Dense(
                width,
                activation=self.activation,
                kernel_initializer=keras.initializers.get(
                    keras.initializers.serialize(self.kernel_initializer)
                ),
                kernel_regularizer=self.kernel_regularizer,
                dtype=self.dtype_policy,
                name=f"dense_{index}",
            )
            dense.build((None, input_dim))
            self.dense_layers.append(dense)
            input_dim = width

    def call(self, inputs: Any) -> Any:
        hidden = ops.reshape(inputs, (-1, self.num_fields * self.embedding_dim))
        for dense in self.dense_layers:
            hidden = dense(hidden)
        return ops.reshape(hidden, (-1, self.num_fields, self.embedding_dim))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "hidden_units": self.hidden_units,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            }
        )
        return config
