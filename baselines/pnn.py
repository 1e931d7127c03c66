"""PNN (Qu et al., 2016): inner and outer product layers, then an MLP."""

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from ada_keras.layers.inner_product import InnerProduct
from ada_keras.layers.mlp import MLP
from ada_keras.layers.outer_product import OuterProduct
from baselines.base import EmbeddingBaseline, probability_from_logit, validate_units

PRODUCT_TYPES = ("inner", "outer", "both")


@keras.saving.register_keras_serializable(package="baselines")
class PNN(EmbeddingBaseline):
    """`p = sigmoid(w^T MLP([z; p_inner; p_outer]) + b)`.

    `z = [e_1; ...; e_F]` is the linear signal. `p_inner` contains the `F (F - 1) / 2`
    inner products `<e_i, e_j>` and `p_outer` the kernel-reduced outer products
    `e_i^T K_ij e_j` (see `OuterProduct`). With `product_type="both"` (the default) the
    model uses both product layers; "inner" and "outer" give IPNN and OPNN.

    Args:
        vocabulary_sizes, embedding_dim, embedding_l2: See `EmbeddingBaseline`.
        product_type: "inner", "outer" or "both".
        outer_kernel_type: Kernel of the outer products: "mat", "vec" or "num".
        hidden_units, dropout_rate, use_batch_norm, l2: The MLP, as in `DNN`. `l2` also
            penalises the outer-product kernels.
    """

    def __init__(
        self,
        vocabulary_sizes: Sequence[int],
        product_type: str = "both",
        outer_kernel_type: str = "mat",
        hidden_units: Sequence[int] = (400, 400, 400),
        dropout_rate: float = 0.0,
        use_batch_norm: bool = False,
        l2: float = 1e-4,
        **kwargs: Any,
    ) -> None:
        super().__init__(vocabulary_sizes, **kwargs)

        if product_type not in PRODUCT_TYPES:
            raise ValueError(f"`product_type` must be one of {PRODUCT_TYPES}, got {product_type!r}.")
        if self.num_fields < 2:
            raise ValueError(f"PNN needs at least 2 fields to form products, got {self.num_fields}.")

        self.product_type = product_type
        self.outer_kernel_type = outer_kernel_type
        self.hidden_units = validate_units("hidden_units", hidden_units)
        self.dropout_rate = float(dropout_rate)
        self.use_batch_norm = bool(use_batch_norm)
        self.l2 = float(l2)

        self.inner_product = InnerProduct(name="inner_product") if product_type in ("inner", "both") else None
        self.outer_product = (
            OuterProduct(kernel_type=outer_kernel_type, l2=self.l2, name="outer_product")
            if product_type in ("outer", "both")
            else None
        )
        self.mlp = MLP(self.hidden_units, dropout_rate=dropout_rate, use_batch_norm=use_batch_norm, l2=l2, name="mlp")
        self.output_dense = keras.layers.Dense(1, name="output_dense")

    def call(self, ids: Any, training: bool | None = None) -> Any:
        embeddings, flat = self.flat_embeddings(ids)
        signals = [flat]
        if self.inner_product is not None:
            signals.append(self.inner_product(embeddings))
        if self.outer_product is not None:
            signals.append(self.outer_product(embeddings))
        hidden = self.mlp(ops.concatenate(signals, axis=1), training=training)
        return probability_from_logit(self.output_dense(hidden))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "product_type": self.product_type,
                "outer_kernel_type": self.outer_kernel_type,
                "hidden_units": list(self.hidden_units),
                "dropout_rate": self.dropout_rate,
                "use_batch_norm": self.use_batch_norm,
                "l2": self.l2,
            }
        )
        return config
