"""Cross expert (DCN V2's cross layer).

    X_l = X0 o (W X_{l-1}) + b              (bias_placement="outside", the expert form)
    X_l = X0 o (W X_{l-1} + b)              (bias_placement="inside", DCN V2's layer)
    ... + X_{l-1}                           (residual=True, DCN V2's layer)

o is the Hadamard product and b in R^{F x D}. W is vector-wise (W in R^{F x F} mixing
fields, the default for experts) or bit-wise (W in R^{FD x FD} on the flattened map, as
in DCN V2); ``rank`` gives DCN V2's low-rank W = U V.

Inside SparseMoE the residual form is left out because the MoE layer adds its own
residual connection and normalisation.

Shapes: inputs X_{l-1} ``[batch, F, D]`` and ``x0`` ``[batch, F, D]`` -> ``[batch, F, D]``.
Without ``x0`` the inputs are X0 (the first layer).
"""

from typing import Any

import keras

from ada_keras.layers._feature_mixing import MixingExpert

BIAS_PLACEMENTS = ("outside", "inside")


@keras.saving.register_keras_serializable(package="ada_keras")
class CrossExpert(MixingExpert):
    """Cross interaction: X0 o (W X_{l-1}) + b (+ X_{l-1} when residual).

    Args:
        mode: "vector" (W in R^{F' x F'}, F' = F * num_subspaces) or "bit" (W in
            R^{FD x FD}, DCN V2).
        num_subspaces: h, number of blocks the D coordinates are split into
            ("vector" only; D must be divisible by h).
        rank: None for a full W, else the inner dimension r of W = U V.
        residual: add X_{l-1}.
        use_bias: whether the layer has the bias b.
        bias_placement: "outside" (X0 o (W X) + b) or "inside" (X0 o (W X + b)).
        kernel_initializer: initialiser of W (or U and V).
        kernel_regularizer: optional regularizer of W (or U and V).
        bias_initializer: initialiser of b.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    ```python
    x0 = keras.random.normal((8, 5, 4))
    dcn_v2_layer = CrossExpert(mode="bit", rank=8, residual=True, bias_placement="inside")
    x1 = dcn_v2_layer(x0)
    x2 = CrossExpert(mode="bit", residual=True, bias_placement="inside")(x1, x0=x0)
    ```
    """

    def __init__(
        self,
        mode: str = "vector",
        num_subspaces: int = 1,
        rank: int | None = None,
        residual: bool = False,
        use_bias: bool = True,
        bias_placement: str = "outside",
        kernel_initializer: Any = "glorot_uniform",
        kernel_regularizer: Any = None,
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            mode=mode,
            num_subspaces=num_subspaces,
            rank=rank,
            residual=residual,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_initializer=bias_initializer,
            **kwargs,
        )
        if bias_placement not in BIAS_PLACEMENTS:
            raise ValueError(
                f"CrossExpert: bias_placement = {bias_placement!r} is invalid; use one of "
                f"{BIAS_PLACEMENTS}."
            )
        self.bias_placement = bias_placement

    def call(self, inputs: Any, x0: Any = None) -> Any:
        if x0 is None:
            x0 = inputs
        mixed = self.mixing(inputs)
        if self.bias is not None and self.bias_placement == "inside":
            mixed = mixed + self.bias
        outputs = x0 * mixed
        if self.bias is not None and self.bias_placement == "outside":
            outputs = outputs + self.bias
        if self.residual:
            outputs = outputs + inputs
        return outputs

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["bias_placement"] = self.bias_placement
        return config
