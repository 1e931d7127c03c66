"""FM: factorisation machine, LR plus all pairwise embedding inner products."""

from typing import Any

import keras

from ada_keras.layers.factorization_machine import FactorizationMachine
from ada_keras.layers.linear_term import LinearTerm
from baselines.base import EmbeddingBaseline, probability_from_logit


@keras.saving.register_keras_serializable(package="baselines")
class FM(EmbeddingBaseline):
    """`p = sigmoid(b + sum_i w_i + sum_{i<j} <e_i, e_j>)` (Rendle, 2010).

    The pairwise sum costs O(F D) through the square-of-sum identity.

    Args:
        vocabulary_sizes, embedding_dim, embedding_l2: See `EmbeddingBaseline`.
        linear_l2: L2 penalty factor on the first-order weights of the ids in each batch.
    """

    def __init__(self, vocabulary_sizes: Any, linear_l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(vocabulary_sizes, **kwargs)
        self.linear_l2 = float(linear_l2)
        self.linear = LinearTerm(self.vocabulary_sizes, l2=self.linear_l2, name="linear")
        self.factorization_machine = FactorizationMachine(name="factorization_machine")

    def call(self, ids: Any, training: bool | None = None) -> Any:
        embeddings = self.field_embedding(ids)
        logit = self.linear(ids) + self.factorization_machine(embeddings)
        return probability_from_logit(logit)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"linear_l2": self.linear_l2})
        return config
