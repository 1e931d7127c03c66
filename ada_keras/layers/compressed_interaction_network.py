"""Compressed interaction network (CIN) of xDeepFM (Lian et al., 2018)."""

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ada_keras")
class CompressedInteractionNetwork(keras.layers.Layer):
    """Vector-wise explicit interactions of bounded degree, sum-pooled per feature map.

    Layer k maps the previous feature maps `X^{k-1}` (`H_{k-1} x D`) and the input `X^0`
    (`F x D`) to `H_k` new maps:

        X^k_{h,*} = activation(sum_{i,j} W^{k,h}_{i,j} (X^{k-1}_{i,*} o X^0_{j,*}) + b^{k,h})

    where `o` is the Hadamard product over the D embedding coordinates, so layer k contains
    interactions of degree k + 1. Each layer's maps that go to the output are sum-pooled over
    D and concatenated. With `split_half` (the xDeepFM split-half option), every layer but
    the last passes only half of its maps to the next layer and sends the other half to the
    output, which halves the cost of the following layer.

    Input shape: `[batch, F, D]`.
    Output shape: `[batch, P]`, P the number of output maps (`sum(layer_sizes)`, or with
    `split_half` `sum(layer_sizes[:-1]) / 2 + layer_sizes[-1]`).

    Args:
        layer_sizes: Number of feature maps `H_k` of each layer. Even numbers when
            `split_half` is on (except the last).
        activation: Activation of the feature maps. The xDeepFM paper's formula has none,
            so the default is the identity.
        split_half: Whether to split the maps of every non-final layer between the next
            layer and the output.
        l2: L2 penalty factor on the `W^k`. 0 disables it.
        kernel_initializer: Initialiser of the `W^k`.

    Example:

    ```python
    cin = CompressedInteractionNetwork(layer_sizes=(16, 16))
    pooled = cin(keras.random.normal((4, 5, 8)))  # [4, 24]
    ```
    """

    def __init__(
        self,
        layer_sizes: Sequence[int] = (128, 128),
        activation: Any = None,
        split_half: bool = True,
        l2: float = 0.0,
        kernel_initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

        layer_sizes = tuple(int(size) for size in layer_sizes)
        if not layer_sizes:
            raise ValueError("`layer_sizes` must contain at least one layer, got an empty sequence.")
        if any(size <= 0 for size in layer_sizes):
            raise ValueError(f"Every entry of `layer_sizes` must be positive, got {layer_sizes}.")
        if split_half and any(size % 2 for size in layer_sizes[:-1]):
            raise ValueError(
                "With `split_half=True` every layer size but the last must be even, got "
                f"{layer_sizes}; use even sizes or set split_half=False."
            )
        if l2 < 0.0:
            raise ValueError(f"`l2` must be non-negative, got {l2}.")

        self.layer_sizes = layer_sizes
        self.activation = keras.activations.get(activation)
        self.split_half = bool(split_half)
        self.l2 = float(l2)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 3 or input_shape[1] is None:
            raise ValueError(
                f"CompressedInteractionNetwork expects inputs of shape [batch, F, D] with known F, "
                f"got {input_shape}."
            )

        num_fields = int(input_shape[1])
        regularizer = keras.regularizers.L2(self.l2) if self.l2 > 0.0 else None
        self.cin_kernels = []
        self.cin_biases = []
        previous_maps = num_fields
        for index, size in enumerate(self.layer_sizes):
            # W^k flattened over (i, j): [H_{k-1} * F, H_k], a 1x1 convolution over pairs.
            self.cin_kernels.append(
                self.add_weight(
                    name=f"kernel_{index}",
                    shape=(previous_maps * num_fields, size),
                    initializer=self.kernel_initializer.from_config(self.kernel_initializer.get_config()),
                    regularizer=regularizer,
                )
            )
            self.cin_biases.append(self.add_weight(name=f"bias_{index}", shape=(size,), initializer="zeros"))
            is_last = index == len(self.layer_sizes) - 1
            previous_maps = size // 2 if self.split_half and not is_last else size

    def call(self, inputs: Any) -> Any:
        # The embedding axis goes first, so each layer's Hadamard products form a
        # [batch * D, H_{k-1} * F] matrix without transposing that large tensor, and one
        # matmul with the flattened W^k gives all H_k maps.
        x0 = ops.transpose(ops.cast(inputs, self.compute_dtype), (0, 2, 1))  # [batch, D, F]
        batch_size = ops.shape(x0)[0]
        embedding_dim = ops.shape(x0)[1]
        num_fields = x0.shape[2]

        hidden = x0  # [batch, D, H_{k-1}]
        pooled_outputs = []
        for index, (kernel, bias) in enumerate(zip(self.cin_kernels, self.cin_biases)):
            # All Hadamard products X^{k-1}_i o X^0_j, flattened over (i, j) in the order
            # of W^k's rows: [batch * D, H_{k-1} * F].
            products = hidden[:, :, :, None] * x0[:, :, None, :]
            products = ops.reshape(products, (-1, hidden.shape[2] * num_fields))

            feature_maps = ops.matmul(products, ops.cast(kernel, self.compute_dtype))
            feature_maps = ops.reshape(
                feature_maps, (batch_size, embedding_dim, self.layer_sizes[index])
            )
            feature_maps = self.activation(feature_maps + ops.cast(bias, self.compute_dtype))

            is_last = index == len(self.cin_kernels) - 1
            if self.split_half and not is_last:
                half = self.layer_sizes[index] // 2
                hidden = feature_maps[:, :, :half]
                output_maps = feature_maps[:, :, half:]
            else:
                hidden = feature_maps
                output_maps = feature_maps
            pooled_outputs.append(ops.sum(output_maps, axis=1))  # [batch, maps]

        return ops.concatenate(pooled_outputs, axis=1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        if self.split_half:
            width = sum(size // 2 for size in self.layer_sizes[:-1]) + self.layer_sizes[-1]
        else:
            width = sum(self.layer_sizes)
        return (input_shape[0], width)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "layer_sizes": list(self.layer_sizes),
                "activation": keras.activations.serialize(self.activation),
                "split_half": self.split_half,
                "l2": self.l2,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
