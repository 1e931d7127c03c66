"""Shape checks shared by the layers that map a feature map [batch, F, D] to [batch, F, D]."""

from typing import Any


def feature_map_shape(layer_name: str, input_shape: Any) -> tuple[int, int]:
    """Return ``(F, D)`` of a ``[batch, F, D]`` shape, or raise a ValueError naming the layer."""
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[1] is None or shape[2] is None:
        raise ValueError(
            f"{layer_name} expects a feature map of shape [batch, F, D] with known F and D, "
            f"got shape {shape}."
        )
    return int(shape[1]), int(shape[2])
