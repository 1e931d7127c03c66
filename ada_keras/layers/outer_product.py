"""Pairwise kernel outer products of field embeddings (the OPNN product layer)."""

from typing import Any

import keras
import numpy as np
from keras import ops

KERNEL_TYPES = ("mat", "vec", "num")


@keras.saving.register_keras_serializable(package="ada_keras")
class OuterProduct(keras.layers.Layer):
    """One learned reduction of each outer product `e_i e_j^T`, i < j.

    The outer product `e_i e_j^T` is a D x D matrix per pair. Reducing it with a learned
    kernel `K_ij` of the same shape gives one value per pair,

        p_ij = sum_{a,b} (e_i e_j^T)_{a,b} K_ij[a, b] = e_i^T K_ij e_j,

    the kernel form of the outer-product layer of PNN (Qu et al., "Product-based neural
    networks for user response prediction", 2016), computed without forming the D x D
    matrix. `kernel_type` restricts `K_ij`: "mat" is a full D x D matrix per pair,
    "vec" a diagonal one (`sum_a e_{i,a} k_{ij,a} e_{j,a}`) and "num" a scalar times the
    identity (a weighted inner product).

    Pairs are in the order of `numpy.triu_indices(F, k=1)`, as in `InnerProduct`.

    Input shape: `[batch, F, D]`. Output shape: `[batch, F (F - 1) / 2]`.

    Args:
        kernel_type: "mat", "vec" or "num", as above.
        l2: L2 penalty factor on the kernels. 0 disables it.
        kernel_initializer: Initialiser of the kernels.

    Example:

    ```python
    products = OuterProduct(kernel_type="mat")(keras.random.normal((4, 5, 8)))  # [4, 10]
    ```
    """

    def __init__(
        self,
        kernel_type: str = "mat",
        l2: float = 0.0,
        kernel_initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

        if kernel_type not in KERNEL_TYPES:
            raise ValueError(f"`kernel_type` must be one of {KERNEL_TYPES}, got {kernel_type!r}.")
        if l2 < 0.0:
            raise ValueError(f"`l2` must be non-negative, got {l2}.")

        self.kernel_type = kernel_type
        self.l2 = float(l2)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 3 or input_shape[1] is None or input_shape[1] < 2 or input_shape[2] is None:
            raise ValueError(
                f"OuterProduct expects inputs of shape [batch, F, D] with known F >= 2 and D, got {input_shape}."
            )

        num_fields, embedding_dim = int(input_shape[1]), int(input_shape[2])
        self.left_fields, self.right_fields = (
            indices.astype("int32") for indices in np.triu_indices(num_fields, k=1)
        )
        num_pairs = len(self.left_fields)
        kernel_shape = {
            "mat": (num_pairs, embedding_dim, embedding_dim),
            "vec": (num_pairs, embedding_dim),
            "num": (num_pairs, 1),
        }[self.kernel_type]
        self.kernel = self.add_weight(
            name="kernel",
            shape=kernel_shape,
            initializer=self.kernel_initializer,
            regularizer=keras.regularizers.L2(self.l2) if self.l2 > 0.0 else None,
        )

    def call(self, inputs: Any) -> Any:
        embeddings = ops.cast(inputs, self.compute_dtype)
        left = ops.take(embeddings, self.left_fields, axis=1)  # [batch, P, D]
        right = ops.take(embeddings, self.right_fields, axis=1)  # [batch, P, D]
        kernel = ops.cast(self.kernel, self.compute_dtype)

        if self.kernel_type == "mat":
            # e_i^T K_ij: [batch, P, D]
            left = ops.einsum("bpd,pde->bpe", left, kernel)
        else:
            left = left * kernel
        return ops.sum(left * right, axis=2)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        num_fields = input_shape[1]
        return (input_shape[0], num_fields * (num_fields - 1) // 2)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "kernel_type": self.kernel_type,
                "l2": self.l2,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
