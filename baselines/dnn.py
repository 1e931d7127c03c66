"""DNN: a multi-layer perceptron on the concatenated field embeddings."""

from collections.abc import Sequence
from typing import Any

import keras

from ada_keras.layers.mlp import MLP
from baselines.base import EmbeddingBaseline, probability_from_logit, validate_units


@keras.saving.register_keras_serializable(package="baselines")
class DNN(EmbeddingBaseline):
    """`p = sigmoid(w^T MLP([e_1; ...; e_F]) + b)`.

    Args:
        vocabulary_sizes, embedding_dim, embedding_l2: See `EmbeddingBaseline`.
        hidden_units: Width of each hidden layer.
        dropout_rate: Dropout rate after each hidden layer.
        use_batch_norm: Whether to batch-normalise each hidden layer.
        l2: L2 penalty factor on the dense kernels.
    """

    def __init__(
        self,
        vocabulary_sizes: Sequence[int],
        hidden_units: Sequence[int] = (400, 400, 400),
        dropout_rate: float = 0.0,
        use_batch_norm: bool = False,
        l2: float = 1e-4,
        **kwargs: Any,
    ) -> None:
        super().__init__(vocabulary_sizes, **kwargs)
        self.hidden_units = validate_units("hidden_units", hidden_units)
        self.dropout_rate = float(dropout_rate)
        self.use_batch_norm = bool(use_batch_norm)
        self.l2 = float(l2)

        self.mlp = MLP(self.hidden_units, dropout_rate=dropout_rate, use_batch_norm=use_batch_norm, l2=l2, name="mlp")
        self.output_dense = keras.layers.Dense(1, name="output_dense")

    def call(self, ids: Any, training: bool | None = None) -> Any:
        _, flat = self.flat_embeddings(ids)
        return probability_from_logit(self.output_dense(self.mlp(flat, training=training)))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "hidden_units": list(self.hidden_units),
                "dropout_rate": self.dropout_rate,
                "use_batch_norm": self.use_batch_norm,
                "l2": self.l2,
            }
        )
        return config
