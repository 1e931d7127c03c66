"""FiBiNET (Huang et al., 2019): SENET re-weighting, bilinear interaction, then an MLP."""

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from ada_keras.layers.bilinear_interaction import BilinearInteraction
from ada_keras.layers.linear_term import LinearTerm
from ada_keras.layers.mlp import MLP
from ada_keras.layers.squeeze_excitation import SqueezeExcitation
from baselines.base import EmbeddingBaseline, probability_from_logit, validate_units


@keras.saving.register_keras_serializable(package="baselines")
class FiBiNET(EmbeddingBaseline):
    """`p = sigmoid(LR(ids) + w^T MLP([flatten(B(E)); flatten(B'(SENET(E)))]) + b)`.

    `E` are the field embeddings, `SENET(E)` the re-weighted ones, and `B`, `B'` two
    bilinear-interaction layers (separate weights) that give `F (F - 1) / 2` vectors
    each. The first-order term is part of FiBiNET's output unit.

    Args:
        vocabulary_sizes, embedding_dim, embedding_l2: See `EmbeddingBaseline`.
        bilinear_type: "field_all", "field_each" or "field_interaction".
        reduction_ratio: SENET bottleneck ratio r (bottleneck width `max(1, F // r)`).
        hidden_units, dropout_rate, use_batch_norm, l2: The MLP, as in `DNN`.
        linear_l2: L2 penalty factor on the first-order weights of the ids in each batch.
    """

    def __init__(
        self,
        vocabulary_sizes: Sequence[int],
        bilinear_type: str = "field_interaction",
        reduction_ratio: float = 3.0,
        hidden_units: Sequence[int] = (400, 400, 400),
        dropout_rate: float = 0.0,
        use_batch_norm: bool = False,
        l2: float = 1e-4,
        linear_l2: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(vocabulary_sizes, **kwargs)

        if self.num_fields < 2:
            raise ValueError(f"FiBiNET needs at least 2 fields to form pairs, got {self.num_fields}.")

        self.bilinear_type = bilinear_type
        self.reduction_ratio = float(reduction_ratio)
        self.hidden_units = validate_units("hidden_units", hidden_units)
        self.dropout_rate = float(dropout_rate)
        self.use_batch_norm = bool(use_batch_norm)
        self.l2 = float(l2)
        self.linear_l2 = float(linear_l2)

        self.linear = LinearTerm(self.vocabulary_sizes, l2=self.linear_l2, name="linear")
        self.senet = SqueezeExcitation(self.reduction_ratio, name="senet")
        self.bilinear = BilinearInteraction(bilinear_type, name="bilinear")
        self.senet_bilinear = BilinearInteraction(bilinear_type, name="senet_bilinear")
        self.mlp = MLP(self.hidden_units, dropout_rate=dropout_rate, use_batch_norm=use_batch_norm, l2=l2, name="mlp")
        self.output_dense = keras.layers.Dense(1, name="output_dense")

    def call(self, ids: Any, training: bool | None = None) -> Any:
        embeddings = self.field_embedding(ids)
        num_pairs = self.num_fields * (self.num_fields - 1) // 2
        width = num_pairs * self.embedding_dim

        plain_pairs = ops.reshape(self.bilinear(embeddings), (-1, width))
        senet_pairs = ops.reshape(self.senet_bilinear(self.senet(embeddings)), (-1, width))
        hidden = self.mlp(ops.concatenate([plain_pairs, senet_pairs], axis=1), training=training)
        return probability_from_logit(self.linear(ids) + self.output_dense(hidden))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "bilinear_type": self.bilinear_type,
                "reduction_ratio": self.reduction_ratio,
                "hidden_units": list(self.hidden_units),
                "dropout_rate": self.dropout_rate,
                "use_batch_norm": self.use_batch_norm,
                "l2": self.l2,
                "linear_l2": self.linear_l2,
            }
        )
        return config
