"""Field embedding: one embedding table shared by all fields, with per-field offsets.

Every CTR model in this package starts with this layer. Field ``i`` has its own
vocabulary ``[0, vocabulary_sizes[i])``, where id 0 is the field's out-of-vocabulary (OOV)
id. The rows of all fields live in one table of ``sum(vocabulary_sizes)`` rows, and field
``i`` starts at row ``offsets[i] = sum(vocabulary_sizes[:i])``:

    e_i = V[offsets[i] + ids[:, i]]            X0 = [e_1, ..., e_F]

Shapes: ids int ``[batch, F]`` -> embeddings ``[batch, F, D]`` in the layer's compute dtype.

One table means one ``tf.gather`` per batch, and its gradient is a ``tf.IndexedSlices``
that touches only the looked-up rows, so sparse-aware optimisers (Adagrad, FTRL) update
only those rows.
"""

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="ada_keras")
class FieldEmbedding(keras.layers.Layer):
    """Embed F categorical fields with one table and per-field offsets.

    Out-of-range ids: in eager mode, an id outside ``[0, vocabulary_sizes[i])`` raises a
    ``ValueError`` naming the field, the row and the value. Inside a ``tf.function``
    (``model.fit``, ``model.predict``, an exported SavedModel) raising would stop
    serving, so such ids are replaced by the field's OOV id 0 instead, and the
    non-trainable variable ``out_of_range_count`` counts them per field.

    Args:
        vocabulary_sizes: number of ids of each field, including the OOV id 0; each >= 1.
        embedding_dim: D, the length of every field's embedding vector.
        embeddings_initializer: initialiser of the table.
        embeddings_regularizer: optional regularizer applied to the whole table.
        embeddings_constraint: optional constraint on the table.
        **kwargs: standard `keras.layers.Layer` arguments (name, dtype, ...).

    Example:

    ```python
    embedding = FieldEmbedding([10, 5, 7], embedding_dim=4)
    x0 = embedding(np.array([[1, 0, 6], [9, 4, 0]]))  # shape (2, 3, 4)
    ```
    """

    def __init__(
        self,
        vocabulary_sizes: Sequence[int],
        embedding_dim: int,
        embeddings_initializer: str | keras.initializers.Initializer = "uniform",
        embeddings_regularizer: str | keras.regularizers.Regularizer | None = None,
        embeddings_constraint: str | keras.constraints.Constraint | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        vocabulary_sizes = [int(size) for size in vocabulary_sizes]
        if not vocabulary_sizes:
            raise ValueError("vocabulary_sizes is empty; pass one vocabulary size per field.")
        for field, size in enumerate(vocabulary_sizes):
            if size < 1:
                raise ValueError(
                    f"vocabulary_sizes[{field}] = {size} is invalid; every field needs at "
                    "least one id (the out-of-vocabulary id 0)."
                )
        if int(embedding_dim) < 1:
            raise ValueError(f"embedding_dim = {embedding_dim} is invalid; it must be >= 1.")

        self.vocabulary_sizes = vocabulary_sizes
        self.embedding_dim = int(embedding_dim)
        self.num_fields = len(vocabulary_sizes)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.embeddings_regularizer = keras.regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = keras.constraints.get(embeddings_constraint)

        # Row of the shared table where each field's vocabulary starts.
        self.offsets = np.concatenate([[0], np.cumsum(vocabulary_sizes)[:-1]]).astype(np.int64)
        # The table stays float32 under mixed precision; call() casts the gathered rows,
        # so the gradient stays an IndexedSlices over the float32 table.
        self.autocast = False

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        if len(input_shape) != 2 or (
            input_shape[-1] is not None and input_shape[-1] != self.num_fields
        ):
            raise ValueError(
                f"FieldEmbedding expects ids of shape [batch, {self.num_fields}], "
                f"got shape {tuple(input_shape)}."
            )
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(int(sum(self.vocabulary_sizes)), self.embedding_dim),
            initializer=self.embeddings_initializer,
            regularizer=self.embeddings_regularizer,
            constraint=self.embeddings_constraint,
            trainable=True,
        )
        self.out_of_range_count = self.add_weight(
            name="out_of_range_count",
            shape=(self.num_fields,),
            dtype="int64",
            initializer="zeros",
            trainable=False,
        )

    def call(self, ids: Any) -> Any:
        ids = tf.cast(ids, tf.int64)
        vocabulary_sizes = tf.constant(self.vocabulary_sizes, dtype=tf.int64)
        in_range = tf.logical_and(ids >= 0, ids < vocabulary_sizes)

        if tf.executing_eagerly():
            if not bool(tf.reduce_all(in_range)):
                row, field = (int(v) for v in tf.where(tf.logical_not(in_range))[0])
                raise ValueError(
                    f"FieldEmbedding: id {int(ids[row, field])} at batch row {row}, field "
                    f"{field} is outside [0, {self.vocabulary_sizes[field]}). Encode ids per "
                    "field with 0 as the out-of-vocabulary id, or rebuild the model with "
                    "the vocabulary sizes of the prepared dataset."
                )
        else:
            out_of_range = tf.reduce_sum(tf.cast(tf.logical_not(in_range), tf.int64), axis=0)
            self.out_of_range_count.assign_add(out_of_range)
            ids = tf.where(in_range, ids, tf.zeros_like(ids))

        rows = ids + tf.constant(self.offsets, dtype=tf.int64)
        # tf.gather on the variable (not a converted tensor) keeps the gradient sparse.
        embeddings = tf.gather(self.embeddings.value, rows)
        return ops.cast(embeddings, self.compute_dtype)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], self.num_fields, self.embedding_dim)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "vocabulary_sizes": list(self.vocabulary_sizes),
                "embedding_dim": self.embedding_dim,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
                "embeddings_regularizer": keras.regularizers.serialize(
                    self.embeddings_regularizer
                ),
                "embeddings_constraint": keras.constraints.serialize(self.embeddings_constraint),
            }
        )
        return config
