"""LR: logistic regression on one-hot categorical fields."""

from collections.abc import Sequence
from typing import Any

import keras

from ada_keras.layers.linear_term import LinearTerm
from ada_keras.training import CTRModel
from baselines.base import probability_from_logit


@keras.saving.register_keras_serializable(package="baselines")
class LogisticRegression(CTRModel):
    """`p = sigmoid(b + sum_i w[field i, id_i])`: one weight per id, plus a bias.

    LR has no D-dimensional embedding, so unlike the other baselines it takes no
    `embedding_dim`.

    Args:
        vocabulary_sizes: Number of ids of each field, in field order.
        l2: L2 penalty factor on the weights of the ids in each batch. 0 disables it.
    """

    def __init__(self, vocabulary_sizes: Sequence[int], l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vocabulary_sizes = [int(size) for size in vocabulary_sizes]
        self.l2 = float(l2)
        self.linear = LinearTerm(self.vocabulary_sizes, l2=self.l2, name="linear")

    def call(self, ids: Any, training: bool | None = None) -> Any:
        return probability_from_logit(self.linear(ids))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"vocabulary_sizes": list(self.vocabulary_sizes), "l2": self.l2})
        return config
