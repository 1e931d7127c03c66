"""DCN V2 (Wang et al., 2021): matrix cross layers, stacked or in parallel with a DNN."""

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from ada_keras.layers.cross_expert import CrossExpert
from ada_keras.layers.mixture_of_low_rank_cross import MixtureOfLowRankCross
from ada_keras.layers.mlp import MLP
from baselines.base import EmbeddingBaseline, probability_from_logit, validate_units

CROSS_TYPES = ("full_rank", "low_rank", "mixture")
STRUCTURES = ("stacked", "parallel")


@keras.saving.register_keras_serializable(package="baselines")
class DCNV2(EmbeddingBaseline):
    """Cross network `x_{l+1} = x_0 o (W_l x_l + b_l) + x_l` on `x_0 = [e_1; ...; e_F]`.

    `cross_type` sets `W_l`: "full_rank" is a `d x d` matrix (d = F * D), "low_rank" is
    `U_l V_l^T` with inner dimension `rank`, and "mixture" is a gated mixture of
    `num_experts` low-rank experts (`MixtureOfLowRankCross`). `structure` combines the
    cross network with the DNN: "stacked" feeds the cross output into the DNN,
    "parallel" concatenates the two outputs. Empty `hidden_units` gives the cross network
    alone.

    Args:
        vocabulary_sizes, embedding_dim, embedding_l2: See `EmbeddingBaseline`.
        cross_layers: Number of cross layers.
        cross_type: "full_rank", "low_rank" or "mixture".
        rank: Inner dimension of the low-rank and mixture forms.
        num_experts: Experts per layer of the mixture form.
        structure: "stacked" or "parallel".
        hidden_units, dropout_rate, use_batch_norm, l2: The DNN, as in `DNN`. `l2` also
            penalises the cross kernels.
    """

    def __init__(
        self,
        vocabulary_sizes: Sequence[int],
        cross_layers: int = 3,
        cross_type: str = "full_rank",
        rank: int = 64,
        num_experts: int = 4,
        structure: str = "stacked",
        hidden_units: Sequence[int] = (400, 400),
        dropout_rate: float = 0.0,
        use_batch_norm: bool = False,
        l2: float = 1e-4,
        **kwargs: Any,
    ) -> None:
        super().__init__(vocabulary_sizes, **kwargs)

        if int(cross_layers) < 1:
            raise ValueError(f"`cross_layers` must be at least 1, got {cross_layers}.")
        if cross_type not in CROSS_TYPES:
            raise ValueError(f"`cross_type` must be one of {CROSS_TYPES}, got {cross_type!r}.")
        if structure not in STRUCTURES:
            raise ValueError(f"`structure` must be one of {STRUCTURES}, got {structure!r}.")

        self.cross_layers = int(cross_layers)
        self.cross_type = cross_type
        self.rank = int(rank)
        self.num_experts = int(num_experts)
        self.structure = structure
        self.hidden_units = validate_units("hidden_units", hidden_units, allow_empty=True)
        self.dropout_rate = float(dropout_rate)
        self.use_batch_norm = bool(use_batch_norm)
        self.l2 = float(l2)

        regularizer = keras.regularizers.L2(self.l2) if self.l2 > 0.0 else None
        self.cross_network = []
        for index in range(self.cross_layers):
            if cross_type == "mixture":
                layer = MixtureOfLowRankCross(
                    self.rank, self.num_experts, kernel_regularizer=regularizer, name=f"cross_{index}"
                )
            else:
                # Bit-wise W on the flattened map with the bias inside the product: the
                # DCN V2 cross layer.
                layer = CrossExpert(
                    mode="bit",
                    rank=self.rank if cross_type == "low_rank" else None,
                    residual=True,
                    bias_placement="inside",
                    kernel_regularizer=regularizer,
                    name=f"cross_{index}",
                )
            self.cross_network.append(layer)
        if self.hidden_units:
            self.mlp = MLP(self.hidden_units, dropout_rate=dropout_rate, use_batch_norm=use_batch_norm, l2=l2, name="mlp")
        self.output_dense = keras.layers.Dense(1, name="output_dense")

    def call(self, ids: Any, training: bool | None = None) -> Any:
        embeddings, flat = self.flat_embeddings(ids)

        # CrossExpert takes the [batch, F, D] map, the mixture layer its flattened view.
        x0 = flat if self.cross_type == "mixture" else embeddings
        crossed = x0
        for layer in self.cross_network:
            crossed = layer(crossed, x0=x0)
        crossed = ops.reshape(crossed, (-1, self.num_fields * self.embedding_dim))

        if not self.hidden_units:
            hidden = crossed
        elif self.structure == "stacked":
            hidden = self.mlp(crossed, training=training)
        else:
            hidden = ops.concatenate([crossed, self.mlp(flat, training=training)], axis=1)
        return probability_from_logit(self.output_dense(hidden))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "cross_layers": self.cross_layers,
                "cross_type": self.cross_type,
                "rank": self.rank,
                "num_experts": self.num_experts,
                "structure": self.structure,
                "hidden_units": list(self.hidden_units),
                "dropout_rate": self.dropout_rate,
                "use_batch_norm": self.use_batch_norm,
                "l2": self.l2,
            }
        )
        return config
