"""AutoInt (Song et al., 2019): stacked interacting self-attention layers over the fields."""

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from ada_keras.layers.interacting_attention import InteractingAttention
from ada_keras.layers.mlp import MLP
from baselines.base import EmbeddingBaseline, probability_from_logit, validate_units


@keras.saving.register_keras_serializable(package="baselines")
class AutoInt(EmbeddingBaseline):
    """`p = sigmoid(w^T flatten(A_L(... A_1(X_0))) + b)`, A_l an `InteractingAttention` layer.

    Each layer is multi-head self-attention across the fields with a projected residual
    and a ReLU. Non-empty `hidden_units` adds a parallel DNN whose logit is summed in
    (AutoInt+); the default is plain AutoInt.

    Args:
        vocabulary_sizes, embedding_dim, embedding_l2: See `EmbeddingBaseline`.
        attention_layers: Number of stacked interacting layers.
        num_heads: Attention heads per layer.
        head_dim: Width of each head; each layer outputs `num_heads * head_dim` per field.
        use_residual: Whether each layer adds its projected residual.
        hidden_units, dropout_rate, use_batch_norm, l2: The optional parallel DNN.
    """

    def __init__(
        self,
        vocabulary_sizes: Sequence[int],
        attention_layers: int = 3,
        num_heads: int = 2,
        head_dim: int = 32,
        use_residual: bool = True,
        hidden_units: Sequence[int] = (),
        dropout_rate: float = 0.0,
        use_batch_norm: bool = False,
        l2: float = 1e-4,
        **kwargs: Any,
    ) -> None:
        super().__init__(vocabulary_sizes, **kwargs)

        if int(attention_layers) < 1:
            raise ValueError(f"`attention_layers` must be at least 1, got {attention_layers}.")

        self.attention_layers = int(attention_layers)
        self.num_heads = int(num_heads)
        self.head_dim = int(head_dim)
        self.use_residual = bool(use_residual)
        self.hidden_units = validate_units("hidden_units", hidden_units, allow_empty=True)
        self.dropout_rate = float(dropout_rate)
        self.use_batch_norm = bool(use_batch_norm)
        self.l2 = float(l2)

        self.interacting_layers = [
            InteractingAttention(self.num_heads, self.head_dim, use_residual=self.use_residual, name=f"interacting_{index}")
            for index in range(self.attention_layers)
        ]
        self.attention_dense = keras.layers.Dense(1, name="attention_dense")
        if self.hidden_units:
            self.mlp = MLP(self.hidden_units, dropout_rate=dropout_rate, use_batch_norm=use_batch_norm, l2=l2, name="mlp")
            self.output_dense = keras.layers.Dense(1, name="output_dense")

    def call(self, ids: Any, training: bool | None = None) -> Any:
        embeddings, flat = self.flat_embeddings(ids)
        fields = embeddings
        for layer in self.interacting_layers:
            fields = layer(fields)
        attended = ops.reshape(fields, (-1, self.num_fields * self.num_heads * self.head_dim))
        logit = self.attention_dense(attended)
        if self.hidden_units:
            logit = logit + self.output_dense(self.mlp(flat, training=training))
        return probability_from_logit(logit)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "attention_layers": self.attention_layers,
                "num_heads": self.num_heads,
                "head_dim": self.head_dim,
                "use_residual": self.use_residual,
                "hidden_units": list(self.hidden_units),
                "dropout_rate": self.dropout_rate,
                "use_batch_norm": self.use_batch_norm,
                "l2": self.l2,
            }
        )
        return config
