"""Pairwise inner products of field embeddings (the IPNN product layer)."""

from typing import Any

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="ada_keras")
class InnerProduct(keras.layers.Layer):
    """All `F (F - 1) / 2` inner products `<e_i, e_j>`, i < j, of the field embeddings.

    Pairs are in row-major order of the strict upper triangle: (0, 1), (0, 2), ...,
    (0, F-1), (1, 2), ... as `numpy.triu_indices(F, k=1)` lists them.

    Input shape: `[batch, F, D]`. Output shape: `[batch, F (F - 1) / 2]`.

    Example:

    ```python
    products = InnerProduct()(keras.random.normal((4, 5, 8)))  # [4, 10]
    ```
    """

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 3 or input_shape[1] is None or input_shape[1] < 2:
            raise ValueError(
                f"InnerProduct expects inputs of shape [batch, F, D] with known F >= 2, got {input_shape}."
            )
        self.left_fields, self.right_fields = (
            indices.astype("int32") for indices in np.triu_indices(int(input_shape[1]), k=1)
        )

    def call(self, inputs: Any) -> Any:
        embeddings = ops.cast(inputs, self.compute_dtype)
        left = ops.take(embeddings, self.left_fields, axis=1)  # [batch, P, D]
        right = ops.take(embeddings, self.right_fields, axis=1)  # [batch, P, D]
        return ops.sum(left * right, axis=2)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        num_fields = input_shape[1]
        return (input_shape[0], num_fields * (num_fields - 1) // 2)
