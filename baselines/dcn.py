"""DCN (Wang et al., 2017): a cross network in parallel with a DNN."""

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from ada_keras.layers.cross_network import CrossNetwork
from ada_keras.layers.mlp import MLP
from baselines.base import EmbeddingBaseline, probability_from_logit, validate_units


@keras.saving.register_keras_serializable(package="baselines")
class DCN(EmbeddingBaseline):
    """`p = sigmoid(w^T [CrossNetwork(x_0); MLP(x_0)] + b)`, `x_0 = [e_1; ...; e_F]`.

    The cross network stacks `x_{l+1} = x_0 (x_l^T w_l) + b_l + x_l`.

    Args:
        vocabulary_sizes, embedding_dim, embedding_l2: See `EmbeddingBaseline`.
        cross_layers: Number of cross layers.
        hidden_units, dropout_rate, use_batch_norm, l2: The deep part, as in `DNN`.
            `l2` also penalises the cross weights.
    """

    def __init__(
        self,
        vocabulary_sizes: Sequence[int],
        cross_layers: int = 3,
        hidden_units: Sequence[int] = (400, 400, 400),
        dropout_rate: float = 0.0,
        use_batch_norm: bool = False,
        l2: float = 1e-4,
        **kwargs: Any,
    ) -> None:
        super().__init__(vocabulary_sizes, **kwargs)
        self.cross_layers = int(cross_layers)
        self.hidden_units = validate_units("hidden_units", hidden_units)
        self.dropout_rate = float(dropout_rate)
        self.use_batch_norm = bool(use_batch_norm)
        self.l2 = float(l2)

        self.cross_network = CrossNetwork(self.cross_layers, l2=self.l2, name="cross_network")
        self.mlp = MLP(self.hidden_units, dropout_rate=dropout_rate, use_batch_norm=use_batch_norm, l2=l2, name="mlp")
        self.output_dense = keras.layers.Dense(1, name="output_dense")

    def call(self, ids: Any, training: bool | None = None) -> Any:
        _, x0 = self.flat_embeddings(ids)
        combined = ops.concatenate([self.cross_network(x0), self.mlp(x0, training=training)], axis=1)
        return probability_from_logit(self.output_dense(combined))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "cross_layers": self.cross_layers,
                "hidden_units": list(self.hidden_units),
                "dropout_rate": self.dropout_rate,
                "use_batch_norm": self.use_batch_norm,
                "l2": self.l2,
            }
        )
        return config
