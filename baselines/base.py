"""Parts shared by the embedding-based baselines: vocabulary sizes, field embedding, output."""

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from ada_keras.layers.field_embedding import FieldEmbedding
from ada_keras.training import CTRModel


def validate_units(name: str, units: Sequence[int], allow_empty: bool = False) -> tuple[int, ...]:
    """Return `units` as a tuple of ints, raising ValueError if an entry is not positive."""
    units = tuple(int(width) for width in units)
    if not units and not allow_empty:
        raise ValueError(f"`{name}` must contain at least one layer width, got an empty sequence.")
    if any(width <= 0 for width in units):
        raise ValueError(f"Every entry of `{name}` must be a positive integer, got {units}.")
    return units


def probability_from_logit(logit: Any) -> Any:
    """Apply the sigmoid in float32, so mixed-float16 models still output float32 [batch, 1]."""
    return ops.sigmoid(ops.cast(logit, "float32"))


class EmbeddingBaseline(CTRModel):
    """Base class of the baselines that start from one `FieldEmbedding` of dimension D.

    Subclasses create their interaction layers in `__init__`, implement `call(ids,
    training=None)` on `self.field_embedding(ids)` (`[batch, F, D]`) and return
    `probability_from_logit(logit)`. Their `get_config` adds their own arguments to this
    one's.

    Args:
        vocabulary_sizes: Number of ids of each field (id 0 is the field's out-of-vocabulary
            id), in field order.
        embedding_dim: D, the length of every field embedding.
        embedding_l2: L2 penalty factor on the whole embedding table. 0 disables it.
            NOTE: the penalty covers every row in every step, so the table's gradient is
            dense; keep it 0 for large vocabularies.
    """

    def __init__(
        self,
        vocabulary_sizes: Sequence[int],
        embedding_dim: int = 16,
        embedding_l2: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

        if int(embedding_dim) < 1:
            raise ValueError(f"`embedding_dim` must be at least 1, got {embedding_dim}.")
        if embedding_l2 < 0.0:
            raise ValueError(f"`embedding_l2` must be non-negative, got {embedding_l2}.")

        self.vocabulary_sizes = [int(size) for size in vocabulary_sizes]
        self.num_fields = len(self.vocabulary_sizes)
        self.embedding_dim = int(embedding_dim)
        self.embedding_l2 = float(embedding_l2)
        self.field_embedding = FieldEmbedding(
            self.vocabulary_sizes,
            self.embedding_dim,
            embeddings_regularizer=keras.regularizers.L2(self.embedding_l2) if self.embedding_l2 > 0.0 else None,
            name="field_embedding",
        )

    def flat_embeddings(self, ids: Any) -> tuple[Any, Any]:
        """Embed `ids`; return `[batch, F, D]` and its flattened `[batch, F * D]` view."""
        embeddings = self.field_embedding(ids)
        flat = ops.reshape(embeddings, (-1, self.num_fields * self.embedding_dim))
        return embeddings, flat

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "vocabulary_sizes": list(self.vocabulary_sizes),
                "embedding_dim": self.embedding_dim,
                "embedding_l2": self.embedding_l2,
            }
        )
        return config
