"""xDeepInt (Yan and Li): a polynomial interaction network with subspace crossing."""

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from ada_keras.layers.polynomial_expert import PolynomialExpert
from baselines.base import EmbeddingBaseline, probability_from_logit


@keras.saving.register_keras_serializable(package="baselines")
class XDeepInt(EmbeddingBaseline):
    """`p = sigmoid(w^T flatten(X_L) + b)` with `X_l = X_{l-1} o (1 + W_l X_0)`.

    Each polynomial interaction layer is vector-wise: `W_l` mixes fields and is shared by
    the embedding coordinates. With `num_subspaces = h` the D coordinates are split into h
    blocks that act as h * F fields, so `W_l` also mixes subspaces (subspace crossing).
    The interaction part has no DNN and no nonlinearity, and keeps the residual `X_{l-1}`
    (the "1 +" above), so L layers hold every interaction degree from 1 to L + 1.

    Args:
        vocabulary_sizes, embedding_dim, embedding_l2: See `EmbeddingBaseline`.
        num_layers: Number L of polynomial interaction layers.
        num_subspaces: h; must divide `embedding_dim`.
        l2: L2 penalty factor on the `W_l`.
    """

    def __init__(
        self,
        vocabulary_sizes: Sequence[int],
        num_layers: int = 3,
        num_subspaces: int = 1,
        l2: float = 1e-4,
        **kwargs: Any,
    ) -> None:
        super().__init__(vocabulary_sizes, **kwargs)

        if int(num_layers) < 1:
            raise ValueError(f"`num_layers` must be at least 1, got {num_layers}.")
        if int(num_subspaces) < 1 or self.embedding_dim % int(num_subspaces):
            raise ValueError(
                f"`num_subspaces` must be a positive divisor of embedding_dim={self.embedding_dim}, "
                f"got {num_subspaces}."
            )

        self.num_layers = int(num_layers)
        self.num_subspaces = int(num_subspaces)
        self.l2 = float(l2)

        self.polynomial_layers = [
            PolynomialExpert(
                mode="vector",
                num_subspaces=self.num_subspaces,
                residual=True,
                kernel_regularizer=keras.regularizers.L2(self.l2) if self.l2 > 0.0 else None,
                name=f"polynomial_{index}",
            )
            for index in range(self.num_layers)
        ]
        self.output_dense = keras.layers.Dense(1, name="output_dense")

    def call(self, ids: Any, training: bool | None = None) -> Any:
        x0 = self.field_embedding(ids)
        hidden = x0
        for layer in self.polynomial_layers:
            hidden = layer(hidden, x0=x0)
        flat = ops.reshape(hidden, (-1, self.num_fields * self.embedding_dim))
        return probability_from_logit(self.output_dense(flat))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"num_layers": self.num_layers, "num_subspaces": self.num_subspaces, "l2": self.l2})
        return config
