"""Second-order factorisation-machine term over field embeddings."""

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ada_keras")
class FactorizationMachine(keras.layers.Layer):
    """Sum of all pairwise inner products of field embeddings, in O(F D) (Rendle, 2010).

    `sum_{i<j} <e_i, e_j> = 0.5 * sum_d ((sum_i e_{i,d})^2 - sum_i e_{i,d}^2)`, the
    square-of-sum identity, so the cost is linear in the number of fields F.

    Input shape: `[batch, F, D]`.
    Output shape: `[batch, 1]`, or `[batch, D]` with `reduce_sum=False` (the per-coordinate
    terms before the final sum, which NFM calls bi-interaction pooling).

    Args:
        reduce_sum: Whether to sum the D coordinates into one value.

    Example:

    ```python
    fm = FactorizationMachine()
    second_order = fm(keras.random.normal((4, 3, 8)))  # [4, 1]
    ```
    """

    def __init__(self, reduce_sum: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reduce_sum = bool(reduce_sum)

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                f"FactorizationMachine expects inputs of shape [batch, F, D], got {input_shape}."
            )

    def call(self, inputs: Any) -> Any:
        embeddings = ops.cast(inputs, self.compute_dtype)

        square_of_sum = ops.square(ops.sum(embeddings, axis=1))  # [batch, D]
        sum_of_squares = ops.sum(ops.square(embeddings), axis=1)  # [batch, D]
        pairwise = 0.5 * (square_of_sum - sum_of_squares)

        if self.reduce_sum:
            return ops.sum(pairwise, axis=1, keepdims=True)
        return pairwise

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], 1) if self.reduce_sum else (input_shape[0], input_shape[2])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"reduce_sum": self.reduce_sum})
        return config
