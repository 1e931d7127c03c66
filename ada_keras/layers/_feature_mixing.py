"""The linear map W X shared by the polynomial and cross layers, vector-wise or bit-wise.

* vector-wise: W in R^{F' x F'} mixes fields and is the same for every embedding
  coordinate, ``(W X)[i, :] = sum_j W[i, j] X[j, :]``. With ``num_subspaces = h`` the D
  coordinates are split into h blocks of D / h and treated as F' = h * F fields
  (xDeepInt's subspace crossing); h = 1 is plain vector-wise mixing.
* bit-wise: W in R^{FD x FD} acts on the flattened map, as in DCN V2's cross layer.

``rank = r`` replaces W by a product U V with inner dimension r (low-rank DCN V2 in the
bit-wise form). Shapes: ``[batch, F, D]`` -> ``[batch, F, D]``.
"""

from typing import Any

import keras
from keras import ops

from ada_keras.layers._shapes import feature_map_shape

MIXING_MODES = ("vector", "bit")


def validate_mixing(mode: str, num_subspaces: int, rank: int | None, layer_name: str) -> None:
    """Raise a ValueError for an unknown mode, a subspace count < 1 or a rank < 1."""
    if mode not in MIXING_MODES:
        raise ValueError(f"{layer_name}: mode = {mode!r} is invalid; use one of {MIXING_MODES}.")
    if int(num_subspaces) < 1:
        raise ValueError(f"{layer_name}: num_subspaces = {num_subspaces} is invalid; use >= 1.")
    if num_subspaces != 1 and mode != "vector":
        raise ValueError(f"{layer_name}: num_subspaces applies to mode='vector' only.")
    if rank is not None and int(rank) < 1:
        raise ValueError(f"{layer_name}: rank = {rank} is invalid; use None or >= 1.")


class FeatureMixing:
    """Weights and application of W for one layer; the layer owns the variables."""

    def __init__(
        self,
        layer: keras.layers.Layer,
        num_fields: int,
        embedding_dim: int,
        mode: str,
        num_subspaces: int,
        rank: int | None,
        kernel_initializer: keras.initializers.Initializer,
        kernel_regularizer: Any,
    ) -> None:
        if embedding_dim % num_subspaces:
            raise ValueError(
                f"{layer.name}: embedding dimension {embedding_dim} is not divisible by "
                f"num_subspaces = {num_subspaces}; choose a divisor of the dimension."
            )
        self.num_fields = num_fields
        self.embedding_dim = embedding_dim
        self.mode = mode
        self.num_subspaces = num_subspaces
        self.rank = rank
        # Size of the axis W acts on: F * h vector-wise, F * D bit-wise.
        if mode == "vector":
            self.size = num_fields * num_subspaces
        else:
            self.size = num_fields * embedding_dim

        def initializer():
            return keras.initializers.get(keras.initializers.serialize(kernel_initializer))

        if rank is None:
            self.kernels = [
                layer.add_weight(
                    name="kernel",
                    shape=(self.size, self.size),
                    initializer=initializer(),
                    regularizer=kernel_regularizer,
                )
            ]
        else:
            # W = U V: "kernel_u" is U (size x rank), "kernel_v" is V (rank x size).
            self.kernels = [
                layer.add_weight(
                    name="kernel_u",
                    shape=(self.size, rank),
                    initializer=initializer(),
                    regularizer=kernel_regularizer,
                ),
                layer.add_weight(
                    name="kernel_v",
                    shape=(rank, self.size),
                    initializer=initializer(),
                    regularizer=kernel_regularizer,
                ),
            ]

    def full_kernel(self) -> Any:
        """Return W, of shape (size, size)."""
        if len(self.kernels) == 1:
            return self.kernels[0]
        return ops.matmul(self.kernels[0], self.kernels[1])

    def __call__(self, inputs: Any) -> Any:
        fields, dim, subspaces = self.num_fields, self.embedding_dim, self.num_subspaces
        if self.mode == "vector":
            # [B, F, D] -> [B, F * h, D / h]: field i's block s becomes row i * h + s.
            x = ops.reshape(inputs, (-1, fields * subspaces, dim // subspaces))
            if len(self.kernels) == 1:
                mixed = ops.einsum("ij,bje->bie", self.kernels[0], x)
            else:
                low = ops.einsum("rj,bje->bre", self.kernels[1], x)
                mixed = ops.einsum("ir,bre->bie", self.kernels[0], low)
        else:
            x = ops.reshape(inputs, (-1, fields * dim))
            # Row-vector convention: (W x)^T = x^T W^T.
            if len(self.kernels) == 1:
                mixed = ops.matmul(x, ops.transpose(self.kernels[0]))
            else:
                low = ops.matmul(x, ops.transpose(self.kernels[1]))
                mixed = ops.matmul(low, ops.transpose(self.kernels[0]))
        return ops.reshape(mixed, (-1, fields, dim))


class MixingExpert(keras.layers.Layer):
    """Base of the polynomial and cross experts: their arguments, W, b and config.

    A subclass implements `call(inputs, x0=None)` from ``self.mixing`` (the map W) and
    ``self.bias`` (b in R^{F x D}, or None without ``use_bias``).
    """

    uses_x0 = True

    def __init__(
        self,
        mode: str = "vector",
        num_subspaces: int = 1,
        rank: int | None = None,
        residual: bool = False,
        use_bias: bool = False,
        kernel_initializer: Any = "glorot_uniform",
        kernel_regularizer: Any = None,
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        validate_mixing(mode, num_subspaces, rank, type(self).__name__)
        self.mode = mode
        self.num_subspaces = int(num_subspaces)
        self.rank = None if rank is None else int(rank)
        self.residual = bool(residual)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, inputs_shape: Any, x0_shape: Any = None) -> None:
        self.num_fields, self.embedding_dim = feature_map_shape(type(self).__name__, inputs_shape)
        self.mixing = FeatureMixing(
            self,
            self.num_fields,
            self.embedding_dim,
            self.mode,
            self.num_subspaces,
            self.rank,
            self.kernel_initializer,
            self.kernel_regularizer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.num_fields, self.embedding_dim),
                initializer=self.bias_initializer,
            )

    def compute_output_shape(self, inputs_shape: Any, x0_shape: Any = None) -> Any:
        return tuple(inputs_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "mode": self.mode,
                "num_subspaces": self.num_subspaces,
                "rank": self.rank,
                "residual": self.residual,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
