"""DeepFM (Guo et al., 2017): FM and DNN on the same embeddings, logits summed."""

from collections.abc import Sequence
from typing import Any

import keras

from ada_keras.layers.factorization_machine import FactorizationMachine
from ada_keras.layers.linear_term import LinearTerm
from ada_keras.layers.mlp import MLP
from baselines.base import EmbeddingBaseline, probability_from_logit, validate_units


@keras.saving.register_keras_serializable(package="baselines")
class DeepFM(EmbeddingBaseline):
    """`p = sigmoid(LR(ids) + sum_{i<j} <e_i, e_j> + w^T MLP([e_1; ...; e_F]) + b)`.

    Args:
        vocabulary_sizes, embedding_dim, embedding_l2: See `EmbeddingBaseline`.
        hidden_units, dropout_rate, use_batch_norm, l2: The deep part, as in `DNN`.
        linear_l2: L2 penalty factor on the first-order weights of the ids in each batch.
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
        self.factorization_machine = FactorizationMachine(name="factorization_machine")
        self.mlp = MLP(self.hidden_units, dropout_rate=dropout_rate, use_batch_norm=use_batch_norm, l2=l2, name="mlp")
        self.output_dense = keras.layers.Dense(1, name="output_dense")

    def call(self, ids: Any, training: bool | None = None) -> Any:
        embeddings, flat = self.flat_embeddings(ids)
        logit = (
            self.linear(ids)
            + self.factorization_machine(embeddings)
            + self.output_dense(self.mlp(flat, training=training))
        )
        return probability_from_logit(logit)

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
