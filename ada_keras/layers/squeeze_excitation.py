"""SENET field re-weighting of FiBiNET (Huang et al., 2019)."""

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ada_keras")
class SqueezeExcitation(keras.layers.Layer):
    """Learned per-field weights that rescale each field embedding.

    Squeeze: `z_i = mean_d e_{i,d}`. Excitation: `a = ReLU(W_2 ReLU(W_1 z))` with
    `W_1` of shape `[F, F / r]` and `W_2` of shape `[F / r, F]`, no biases. Re-weight:
    `v_i = a_i e_i`.

    Input shape: `[batch, F, D]`. Output shape: `[batch, F, D]`.

    Args:
        reduction_ratio: The ratio r; the bottleneck width is `max(1, F // r)`.
        kernel_initializer: Initialiser of W_1 and W_2.

    Example:

    ```python
    senet = SqueezeExcitation(reduction_ratio=3)
    reweighted = senet(keras.random.normal((4, 6, 8)))  # [4, 6, 8]
    ```
    """

    def __init__(self, reduction_ratio: float = 3.0, kernel_initializer: Any = "glorot_uniform", **kwargs: Any) -> None:
        super().__init__(**kwargs)

        if reduction_ratio < 1:
            raise ValueError(f"`reduction_ratio` must be at least 1, got {reduction_ratio}.")

        self.reduction_ratio = float(reduction_ratio)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 3 or input_shape[1] is None:
            raise ValueError(
                f"SqueezeExcitation expects inputs of shape [batch, F, D] with known F, got {input_shape}."
            )

        num_fields = int(input_shape[1])
        bottleneck = max(1, int(num_fields // self.reduction_ratio))
        self.squeeze_kernel = self.add_weight(
            name="squeeze_kernel",
            shape=(num_fields, bottleneck),
            initializer=self.kernel_initializer.from_config(self.kernel_initializer.get_config()),
        )
        self.excitation_kernel = self.add_weight(
            name="excitation_kernel",
            shape=(bottleneck, num_fields),
            initializer=self.kernel_initializer.from_config(self.kernel_initializer.get_config()),
        )

    def call(self, inputs: Any) -> Any:
        embeddings = ops.cast(inputs, self.compute_dtype)

        squeezed = ops.mean(embeddings, axis=2)  # [batch, F]
        hidden = ops.relu(ops.matmul(squeezed, ops.cast(self.squeeze_kernel, self.compute_dtype)))
        field_weights = ops.relu(ops.matmul(hidden, ops.cast(self.excitation_kernel, self.compute_dtype)))
        return embeddings * field_weights[:, :, None]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "reduction_ratio": self.reduction_ratio,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
