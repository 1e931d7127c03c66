"""Bilinear interaction of FiBiNET (Huang et al., 2019)."""

from typing import Any

import keras
import numpy as np
from keras import ops

BILINEAR_TYPES = ("field_all", "field_each", "field_interaction")


@keras.saving.register_keras_serializable(package="ada_keras")
class BilinearInteraction(keras.layers.Layer):
    """Pairwise interactions `p_ij = (v_i W) o v_j`, i < j, with `o` the Hadamard product.

    `bilinear_type` sets how the D x D matrices W are shared:
    - "field_all": one W for all pairs.
    - "field_each": one W_i per field i (the left field of the pair).
    - "field_interaction": one W_ij per pair.

    Pairs are in the order of `numpy.triu_indices(F, k=1)`.

    Input shape: `[batch, F, D]`. Output shape: `[batch, F (F - 1) / 2, D]`.

    Args:
        bilinear_type: "field_all", "field_each" or "field_interaction", as above.
        kernel_initializer: Initialiser of the W matrices.

    Example:

    ```python
    bilinear = BilinearInteraction(bilinear_type="field_each")
    pairs = bilinear(keras.random.normal((4, 5, 8)))  # [4, 10, 8]
    ```
    """

    def __init__(
        self,
        bilinear_type: str = "field_interaction",
        kernel_initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

        if bilinear_type not in BILINEAR_TYPES:
            raise ValueError(f"`bilinear_type` must be one of {BILINEAR_TYPES}, got {bilinear_type!r}.")

        self.bilinear_type = bilinear_type
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 3 or input_shape[1] is None or input_shape[1] < 2 or input_shape[2] is None:
            raise ValueError(
                f"BilinearInteraction expects inputs of shape [batch, F, D] with known F >= 2 and D, "
                f"got {input_shape}."
            )

        num_fields, embedding_dim = int(input_shape[1]), int(input_shape[2])
        self.left_fields, self.right_fields = (
            indices.astype("int32") for indices in np.triu_indices(num_fields, k=1)
        )
        num_matrices = {
            "field_all": 1,
            "field_each": num_fields,
            "field_interaction": len(self.left_fields),
        }[self.bilinear_type]
        self.kernel = self.add_weight(
            name="kernel",
            shape=(num_matrices, embedding_dim, embedding_dim),
            initializer=self.kernel_initializer,
        )

    def call(self, inputs: Any) -> Any:
        embeddings = ops.cast(inputs, self.compute_dtype)
        kernel = ops.cast(self.kernel, self.compute_dtype)
        right = ops.take(embeddings, self.right_fields, axis=1)  # [batch, P, D]

        if self.bilinear_type == "field_all":
            left = ops.take(ops.matmul(embeddings, kernel[0]), self.left_fields, axis=1)
        elif self.bilinear_type == "field_each":
            # v_i W_i for every field, then pick each pair's left field: [batch, P, D].
            transformed = ops.einsum("bfd,fde->bfe", embeddings, kernel)
            left = ops.take(transformed, self.left_fields, axis=1)
        else:
            left = ops.einsum("bpd,pde->bpe", ops.take(embeddings, self.left_fields, axis=1), kernel)
        return left * right

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        num_fields = input_shape[1]
        return (input_shape[0], num_fields * (num_fields - 1) // 2, input_shape[2])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "bilinear_type": self.bilinear_type,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
