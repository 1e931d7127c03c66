"""Estimator: the click probability read from one layer's feature map.

    y_l = sigmoid(W_l vec(X_l) + b_l)

W_l aggregates the flattened F x D map linearly. The sigmoid runs in float32 so that
probabilities near 0 or 1 keep their precision under mixed precision.
Shapes: ``[batch, F, D]`` -> float32 ``[batch, 1]``.
"""

from typing import Any

import keras
from keras import ops

from ada_keras.layers._shapes import feature_map_shape


@keras.saving.register_keras_serializable(package="ada_keras")
class Estimator(keras.layers.Layer):
    """Logistic read-out of a feature map.

    Args:
        kernel_initializer: initialiser of W_l.
        kernel_regularizer: optional regularizer of W_l.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    ```python
    probability = Estimator()(keras.random.normal((8, 6, 4)))  # shape (8, 1)
    ```
    """

    def __init__(
        self,
        kernel_initializer: Any = "glorot_uniform",
        kernel_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape: Any) -> None:
        num_fields, embedding_dim = feature_map_shape("Estimator", input_shape)
        self.flat_dim = num_fields * embedding_dim
        self.dense = keras.layers.Dense(
            1,
            kernel_initializer=self.kernel_initializer,
            kernel_regularizer=self.kernel_regularizer,
            dtype=self.dtype_policy,
            name="logit",
        )
        self.dense.build((None, self.flat_dim))

    def call(self, inputs: Any) -> Any:
        logit = self.dense(ops.reshape(inputs, (-1, self.flat_dim)))
        return ops.sigmoid(ops.cast(logit, "float32"))

    def compute_output_spec(self, inputs: Any) -> Any:
        return keras.KerasTensor((inputs.shape[0], 1), dtype="float32")

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            }
        )
        return config
