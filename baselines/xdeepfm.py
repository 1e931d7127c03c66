"""xDeepFM (Lian et al., 2018): CIN plus DNN plus the linear part."""

from collections.abc import Sequence
from typing import Any

import keras

from ada_keras.layers.compressed_interaction_network import CompressedInteractionNetwork
from ada_keras.layers.linear_term import LinearTerm
from ada_keras.layers.mlp import MLP
from baselines.base import EmbeddingBaseline, probability_from_logit, validate_units


@keras.saving.register_keras_serializable(package="baselines")
class XDeepFM(EmbeddingBaseline):
    """`p = sigmoid(LR(ids) + w_c^T CIN(X_0) + w_d^T MLP([e_1; ...; e_F]) + b)`.

    Args:
        vocabulary_sizes, embedding_dim, embedding_l2: See `EmbeddingBaseline`.
        cin_layer_sizes: Feature maps per CIN layer.
        cin_split_half: Whether each non-final CIN layer sends half its maps to the output.
        cin_activation: Activation of the CIN feature maps (None for the identity).
        hidden_units, dropout_rate, use_batch_norm, l2: The deep part, as in `DNN`. `l2`
            also penalises the CIN kernels.
        linear_l2: L2 penalty factor on the first-order weights of the ids in each batch.
    """

    def __init__(
        self,
        vocabulary_sizes: Sequence[int],
        cin_layer_sizes: Sequence[int] = (200, 200, 200),
        cin_split_half: bool = True,
        cin_activation: Any = None,
        hidden_units: Sequence[int] = (400, 400),
        dropout_rate: float = 0.0,
        use_batch_norm: bool = False,
        l2: float = 1e-4,
        linear_l2: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(vocabulary_sizes, **kwargs)
        self.cin_layer_sizes = validate_units("cin_layer_sizes", cin_layer_sizes)
        self.cin_split_half = bool(cin_split_half)
        self.hidden_units = validate_units("hidden_units", hidden_units)
        self.dropout_rate = float(dropout_rate)
        self.use_batch_norm = bool(use_batch_norm)
        self.l2 = float(l2)
        self.linear_l2 = float(linear_l2)

        self.linear = LinearTerm(self.vocabulary_sizes, l2=self.linear_l2, name="linear")
        self.cin = CompressedInteractionNetwork(
            self.cin_layer_sizes, activation=cin_activation, split_half=self.cin_split_half, l2=self.l2, name="cin"
        )
        self.cin_activation = self.cin.activation
        self.cin_dense = keras.layers.Dense(1, name="cin_dense")
        self.mlp = MLP(self.hidden_units, dropout_rate=dropout_rate, use_batch_norm=use_batch_norm, l2=l2, name="mlp")
        self.output_dense = keras.layers.Dense(1, name="output_dense")

    def call(self, ids: Any, training: bool | None = None) -> Any:
        embeddings, flat = self.flat_embeddings(ids)
        logit = (
            self.linear(ids)
            + self.cin_dense(self.cin(embeddings))
            + self.output_dense(self.mlp(flat, training=training))
        )
        return probability_from_logit(logit)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "cin_layer_sizes": list(self.cin_layer_sizes),
                "cin_split_half": self.cin_split_half,
                "cin_activation": keras.activations.serialize(self.cin_activation),
                "hidden_units": list(self.hidden_units),
                "dropout_rate": self.dropout_rate,
                "use_batch_norm": self.use_batch_norm,
                "l2": self.l2,
                "linear_l2": self.linear_l2,
            }
        )
        return config
