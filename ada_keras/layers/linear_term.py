"""First-order (logistic regression) term over categorical field ids."""

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from ada_keras.layers.field_embedding import FieldEmbedding


@keras.saving.register_keras_serializable(package="ada_keras")
class LinearTerm(keras.layers.Layer):
    """Sum of one learned weight per active id, plus a bias: the logit of LR.

    With one-hot fields, `logit = b + sum_i w[offset_i + id_i]`, where `offset_i` is the
    number of ids of all fields before field `i`. The weights are a `FieldEmbedding` with
    `embedding_dim=1`, so they share its offsets and out-of-range handling and count as
    embedding variables for `CTRModel`'s optimiser groups.

    Input shape: int `[batch, F]`, each id in `[0, vocabulary_sizes[i])`.
    Output shape: `[batch, 1]`.

    Args:
        vocabulary_sizes: Number of ids of each field, in field order.
        use_bias: Whether to add the global bias `b`.
        l2: L2 penalty factor on the id weights, applied to the rows looked up in each batch
            (so rare ids are not shrunk on batches where they are absent). 0 disables it.
        weights_initializer: Initialiser of the id weights.

    Example:

    ```python
    linear = LinearTerm(vocabulary_sizes=[10, 20, 5])
    logit = linear(keras.ops.zeros((4, 3), dtype="int32"))  # [4, 1]
    ```
    """

    def __init__(
        self,
        vocabulary_sizes: Sequence[int],
        use_bias: bool = True,
        l2: float = 0.0,
        weights_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

        vocabulary_sizes = tuple(int(size) for size in vocabulary_sizes)
        if not vocabulary_sizes:
            raise ValueError("`vocabulary_sizes` must name at least one field, got an empty sequence.")
        if any(size <= 0 for size in vocabulary_sizes):
            raise ValueError(
                f"Every vocabulary size must be a positive integer, got {vocabulary_sizes}."
            )
        if l2 < 0.0:
            raise ValueError(f"`l2` must be non-negative, got {l2}.")

        self.vocabulary_sizes = vocabulary_sizes
        self.use_bias = bool(use_bias)
        self.l2 = float(l2)
        self.weights_initializer = keras.initializers.get(weights_initializer)

        self.id_weights = FieldEmbedding(
            vocabulary_sizes,
            embedding_dim=1,
            embeddings_initializer=self.weights_initializer,
            dtype=self.dtype_policy,
            name="id_weights",
        )

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 2 or input_shape[1] != len(self.vocabulary_sizes):
            raise ValueError(
                f"LinearTerm expects ids of shape [batch, {len(self.vocabulary_sizes)}], "
                f"got {input_shape}."
            )

        self.id_weights.build(input_shape)
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(1,), initializer="zeros")

    def call(self, inputs: Any) -> Any:
        # [batch, F, 1] weights of the active ids.
        weights = self.id_weights(inputs)
        if self.l2 > 0.0:
            self.add_loss(self.l2 * ops.sum(ops.square(ops.cast(weights, "float32"))))

        logit = ops.sum(ops.cast(weights, self.compute_dtype), axis=1)
        if self.use_bias:
            logit = logit + ops.cast(self.bias, self.compute_dtype)
        return logit

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], 1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "vocabulary_sizes": list(self.vocabulary_sizes),
                "use_bias": self.use_bias,
                "l2": self.l2,
                "weights_initializer": keras.initializers.serialize(self.weights_initializer),
            }
        )
        return config
