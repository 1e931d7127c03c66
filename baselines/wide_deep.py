"""Wide&Deep (Cheng et al., 2016): LR (wide) plus DNN (deep), logits summed."""

from collections.abc import Sequence
from typing import Any

import keras

from ada_keras.layers.linear_term import LinearTerm
from ada_keras.layers.mlp import MLP
from baselines.base import EmbeddingBaseline, probability_from_logit, validate_units


@keras.saving.register_keras_serializable(package="baselines")
class WideDeep(EmbeddingBaseline):
    """`p = sigmoid(LR(ids) + w^T MLP([e_1; ...; e_F]) + b)`.

    The wide part here is the first-order term on the raw ids. The original model also
    feeds hand-made cross-product features to the wide part. These baselines leave them
    out because every model gets the same features (no engineering beyond bucketing).

    Args:
        vocabulary_sizes, embedding_dim, embedding_l2: See `EmbeddingBaseline`.
        hidden_units, dropout_rate, use_batch_norm, l2: The deep part, as in `DNN`.
        linear_l2: L2 penalty factor on the wide weights of the ids in each batch.
    """

    def __init__(
        self,
        vocabulary_sizes: Sequence[int],
        hidden_units: Sequence[int] = (400, 400, 400),
        dropout_rate: float = 0.0,
        use_batch_norm: bool = False,
        l2: float = 1e-4,
        linear_l2: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(vocabulary_sizes, **kwargs)
        self.hidden_units = validate_units("hidden_units", hidden_units)
        self.dropout_rate = float(dropout_rate)
        self.use_batch_norm = bool(use_batch_norm)
        self.l2 = float(l2)
        self.linear_l2 = float(linear_l2)

        self.linear = LinearTerm(self.vocabulary_sizes, l2=self.linear_l2, name="linear")
        self.mlp = MLP(self.hidden_units, dropout_rate=dropout_rate, use_batch_norm=use_batch_norm, l2=l2, name="mlp")
        self.output_dense = keras.layers.Dense(1, name="output_dense")

    def call(self, ids: Any, training: bool | None = None) -> Any:
        _, flat = self.flat_embeddings(ids)
        deep_logit = self.output_dense(self.mlp(flat, training=training))
        return probability_from_logit(self.linear(ids) + deep_logit)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "hidden_units": list(self.hidden_units),
                "dropout_rate": self.dropout_rate,
                "use_batch_norm": self.use_batch_norm,
                "l2": self.l2,
                "linear_l2": self.linear_l2,
            }
        )
        return config
