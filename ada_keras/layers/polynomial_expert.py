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

from ada_keras.layers._feature_mixing import MixingExpert


@keras.saving.register_keras_serializable(package="ada_keras")
class PolynomialExpert(MixingExpert):
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

    def call(self, inputs: Any, x0: Any = None) -> Any:
        if x0 is None:
            x0 = inputs
        interaction = self.mixing(x0)
        if self.bias is not None:
            interaction = interaction + self.bias
        if self.residual:
            interaction = interaction + ops.ones_like(interaction)
        return inputs * interaction
