"""Polynomial interaction expert (xDeepInt's polynomial interaction layer).

    X_l = X_{l-1} o (W X0 + b)              (residual=False, the expert form)
    X_l = X_{l-1} o (1 + W X0 + b)          (residual=True, xDeepInt's layer)

o is the Hadamard product, b in R^{F x D} is present only with ``use_bias=True``. W is
vector-wise by default (W in R^{F x F} mixing fields, the same for every embedding
coordinate, optionally with subspace crossing) or bit-wise (W on the flattened F*D
vector); ``rank`` factorises it. Stacking l layers gives interactions up to degree l + 1.

Inside SparseMoE the residual form is left out because the MoE layer adds its own
residual connection and normalisation.

Shapes: inputs X_{l-1} ``[batch, F, D]`` and ``x0`` ``[batch, F, D]`` -> ``[batch, F, D]``.
Without ``x0`` the inputs are X0 (the first layer).
"""

from typing import Any

import keras
from keras import ops

from ada_keras.layers._feature_mixing import FeatureMixing, validate_mixing
from ada_keras.layers._shapes import feature_map_shape


@keras.saving.register_keras_serializable(package="ada_keras")
class PolynomialExpert(keras.layers.Layer):
    """Polynomial interaction: X_{l-1} o (W X0) (+ X_{l-1} when residual).

    Args:
        mode: "vector" (W in R^{F' x F'}, F' = F * num_subspaces) or "bit" (W in
            R^{FD x FD}).
        num_subspaces: h, number of blocks the D coordinates are split into
            ("vector" only; D must be divisible by h).
        rank: None for a full W, else the inner dimension r of W = U V.
        residual: add X_{l-1}, giving X_{l-1} o (1 + W X0).
        use_bias: add a bias b in R^{F x D} to W X0.
        kernel_initializer: initialiser of W (or U and V).
        kernel_regularizer: optional regularizer of W (or U and V).
        bias_initializer: initialiser of b.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    ```python
    x0 = keras.random.normal((8, 5, 4))
    layer = PolynomialExpert(residual=True, num_subspaces=2)
    x1 = layer(x0)
    x2 = PolynomialExpert(residual=True)(x1, x0=x0)  # degree 3
    ```
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
        validate_mixing(mode, num_subspaces, rank, "PolynomialExpert")
        self.mode = mode
        self.num_subspaces = int(num_subspaces)
        self.rank = None if rank is None else int(rank)
        self.residual = bool(residual)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, inputs_shape: Any, x0_shape: Any = None) -> None:
        self.num_fields, self.embedding_dim = feature_map_shape("PolynomialExpert", inputs_shape)
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

    def call(self, inputs: Any, x0: Any = None) -> Any:
        if x0 is None:
            x0 = inputs
        interaction = self.mixing(x0)
        if self.bias is not None:
            interaction = interaction + self.bias
        if self.residual:
            interaction = interaction + ops.ones_like(interaction)
        return inputs * interaction

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
