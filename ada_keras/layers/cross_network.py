"""Cross network of DCN (Wang et al., 2017): explicit bounded-degree feature crossing."""

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ada_keras")
class CrossNetwork(keras.layers.Layer):
    """Stack of vector cross layers, `x_{l+1} = x_0 (x_l^T w_l) + b_l + x_l`.

    Each layer adds one degree of interaction with only `2 d` parameters: `w_l` and `b_l`
    are vectors of the input width `d`. This is the cross layer of the first DCN. DCN V2's
    matrix form is `CrossExpert(mode="bit", residual=True, bias_placement="inside")`.

    Input shape: `[batch, d]` (the concatenated field embeddings).
    Output shape: `[batch, d]`.

    Args:
        num_layers: Number of stacked cross layers, at least 1.
        l2: L2 penalty factor on the cross weights `w_l`. 0 disables it.
        kernel_initializer: Initialiser of the `w_l`.
        bias_initializer: Initialiser of the `b_l`.

    Example:

    ```python
    cross = CrossNetwork(num_layers=3)
    crossed = cross(keras.random.normal((4, 48)))  # [4, 48]
    ```
    """

    def __init__(
        self,
        num_layers: int = 3,
        l2: float = 0.0,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

        if int(num_layers) < 1:
            raise ValueError(f"`num_layers` must be at least 1, got {num_layers}.")
        if l2 < 0.0:
            raise ValueError(f"`l2` must be non-negative, got {l2}.")

        self.num_layers = int(num_layers)
        self.l2 = float(l2)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(
                f"CrossNetwork expects inputs of shape [batch, d] with known d, got {input_shape}."
            )

        width = int(input_shape[-1])
        regularizer = keras.regularizers.L2(self.l2) if self.l2 > 0.0 else None
        self.cross_kernels = []
        self.cross_biases = []
        for index in range(self.num_layers):
            self.cross_kernels.append(
                self.add_weight(
                    name=f"kernel_{index}",
                    shape=(width, 1),
                    initializer=self.kernel_initializer.from_config(self.kernel_initializer.get_config()),
                    regularizer=regularizer,
                )
            )
            self.cross_biases.append(
                self.add_weight(
                    name=f"bias_{index}",
                    shape=(width,),
                    initializer=self.bias_initializer.from_config(self.bias_initializer.get_config()),
                )
            )

    def call(self, inputs: Any) -> Any:
        x0 = ops.cast(inputs, self.compute_dtype)
        x = x0
        for kernel, bias in zip(self.cross_kernels, self.cross_biases):
            # x_l^T w_l is one scalar per example: [batch, 1].
            projection = ops.matmul(x, ops.cast(kernel, self.compute_dtype))
            x = x0 * projection + ops.cast(bias, self.compute_dtype) + x
        return x

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_layers": self.num_layers,
                "l2": self.l2,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
