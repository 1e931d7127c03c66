"""Deep Crossing (Shan et al., 2016): residual units on the concatenated embeddings."""

from collections.abc import Sequence
from typing import Any

import keras

from ada_keras.layers.residual_unit import ResidualUnit
from baselines.base import EmbeddingBaseline, probability_from_logit, validate_units


@keras.saving.register_keras_serializable(package="baselines")
class DeepCrossing(EmbeddingBaseline):
    """`p = sigmoid(w^T R_K(... R_1([e_1; ...; e_F])) + b)`, R_k a residual unit.

    Each residual unit is `x -> ReLU(x + W_1 ReLU(W_0 x + b_0) + b_1)`, so every unit keeps
    the width F * D of the stacked embeddings.

    Args:
        vocabulary_sizes, embedding_dim, embedding_l2: See `EmbeddingBaseline`.
        residual_hidden_units: Inner width of each residual unit, one entry per unit.
        l2: L2 penalty factor on the residual units' kernels.
    """

    def __init__(
        self,
        vocabulary_sizes: Sequence[int],
        residual_hidden_units: Sequence[int] = (256, 256, 256),
        l2: float = 1e-4,
        **kwargs: Any,
    ) -> None:
        super().__init__(vocabulary_sizes, **kwargs)
        self.residual_hidden_units = validate_units("residual_hidden_units", residual_hidden_units)
        self.l2 = float(l2)

        self.residual_units = [
            ResidualUnit(width, l2=self.l2, name=f"residual_unit_{index}")
            for index, width in enumerate(self.residual_hidden_units)
        ]
        self.output_dense = keras.layers.Dense(1, name="output_dense")

    def call(self, ids: Any, training: bool | None = None) -> Any:
        _, hidden = self.flat_embeddings(ids)
        for unit in self.residual_units:
            hidden = unit(hidden)
        return probability_from_logit(self.output_dense(hidden))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"residual_hidden_units": list(self.residual_hidden_units), "l2": self.l2})
        return config
