"""Export a trained CTR model as a SavedModel that takes raw feature values.

A model trained on prepared data takes field ids ``[batch, F]``. Serving systems have raw
values instead, so the exported graph repeats the preparation step in TensorFlow ops:

    raw columns --to_field_values--> one string per field  [batch] x F
                --vocabulary tables--> ids int32 [batch, F] (unknown value -> id 0)
                --model--> click probability float32 [batch, 1]

This module contains no dataset-specific code. The caller gives, per field, the vocabulary (the value text
of ids 1, 2, ... in order, id 0 being out of vocabulary) and a function that turns the
raw input columns into the per-field value text the vocabularies use; the dataset
specific functions live in ``experiments.export``.

The model runs with ``training=False``, so AdaEnsemble's early exit (dynamic
propagation) is active in the exported graph.

```python
encoder = RawFeatureEncoder(field_names, vocabularies, to_field_values)
export_raw_serving_model(model, encoder, {"C1": tf.TensorSpec([None], tf.string), ...}, out)
served = tf.saved_model.load(out)
served.serve({"C1": tf.constant(["68fd1e64"]), ...})["probability"]
```
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf

logger = logging.getLogger(__name__)

OOV_ID = 0
# A value text no raw input produces (raw text never contains NUL): the key of an otherwise
# empty vocabulary table, and the value text of invalid inputs, which therefore map to
# the OOV id.
NO_VALUE = "\x00"

FieldValues = Callable[[Mapping[str, tf.Tensor]], Sequence[tf.Tensor]]


def load_model_safely(path: str | os.PathLike) -> keras.Model:
    """Load a ``.keras`` file with Keras safe mode on.

    Safe mode refuses to deserialise Python code (``Lambda`` layers), so loading a file
    from elsewhere cannot run arbitrary code. The classes of the model (AdaEnsemble, the
    baselines) must be registered, i.e. their modules imported, before the call.
    """
    return keras.saving.load_model(os.fspath(path), compile=False, safe_mode=True)


def vocabulary_table(values: Sequence[str], name: str) -> tf.lookup.StaticHashTable:
    """Build a table that maps ``values[i]`` to id ``i + 1`` and every other string to id 0.

    Raises:
        ValueError: a value occurs twice (the prepared vocabulary would be ambiguous).
    """
    values = list(values)
    if len(set(values)) != len(values):
        seen: set[str] = set()
        duplicate = next(v for v in values if v in seen or seen.add(v))
        raise ValueError(f"vocabulary of field {name!r} lists the value {duplicate!r} twice.")
    if values:
        keys = tf.constant(values, tf.string)
        ids = tf.range(1, len(values) + 1, dtype=tf.int64)
    else:
        # StaticHashTable rejects empty tables.
        keys = tf.constant([NO_VALUE], tf.string)
        ids = tf.constant([OOV_ID], tf.int64)
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(keys, ids), default_value=OOV_ID, name=f"{name}_ids"
    )


class RawFeatureEncoder:
    """Raw input columns -> field ids ``[batch, F]``, inside the TensorFlow graph.

    Args:
        field_names: the model's fields, in input order.
        vocabularies: per field, the value text of ids 1, 2, ... (id 0 is OOV).
        to_field_values: maps the dict of raw input tensors (each ``[batch]``) to one
            string tensor ``[batch]`` per field, in field order, holding the text the
            vocabularies use (for example the bucket of a numeric value). Invalid input
            should become `NO_VALUE`, which maps to the OOV id.
    """

    def __init__(
        self,
        field_names: Sequence[str],
        vocabularies: Sequence[Sequence[str]],
        to_field_values: FieldValues,
    ) -> None:
        if len(field_names) != len(vocabularies):
            raise ValueError(
                f"{len(field_names)} field names but {len(vocabularies)} vocabularies."
            )
        self.field_names = list(field_names)
        self.vocabulary_sizes = [len(values) + 1 for values in vocabularies]
        self.tables = [
            vocabulary_table(values, name) for name, values in zip(field_names, vocabularies)
        ]
        self.to_field_values = to_field_values

    def __call__(self, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
        values = list(self.to_field_values(features))
        if len(values) != len(self.tables):
            raise ValueError(
                f"to_field_values returned {len(values)} fields; the model has "
                f"{len(self.tables)} ({', '.join(self.field_names)})."
            )
        ids = [table.lookup(value) for table, value in zip(self.tables, values)]
        return tf.cast(tf.stack(ids, axis=1), tf.int32)


def export_raw_serving_model(
    model: keras.Model,
    encoder: RawFeatureEncoder,
    input_signature: Mapping[str, tf.TensorSpec],
    export_dir: str | os.PathLike,
    *,
    extra_endpoints: Mapping[str, tuple[Callable[[Any], Mapping[str, tf.Tensor]], Any]]
    | None = None,
) -> None:
    """Write a SavedModel whose endpoints take raw values and return probabilities.

    Endpoints (each also a signature of the SavedModel):

    * ``serve`` (the default signature, ``serving_default``): the dict of raw columns
      described by `input_signature`; returns ``{"probability": float32 [batch, 1],
      "ids": int32 [batch, F]}`` (the ids are the model's input, for debugging).
    * one per entry of `extra_endpoints`: ``name -> (to_features, signature)``, where
      ``to_features`` turns that endpoint's input (for example raw text lines) into the
      dict of raw columns, and ``signature`` is its input's `tf.TensorSpec` structure.

    Args:
        model: a CTR model taking ids ``[batch, F]``.
        encoder: the raw-value encoder; its vocabulary sizes must equal the model's.
        input_signature: name -> `tf.TensorSpec` ``[None]`` of every raw column.
        export_dir: folder to write; replaced if it exists.
        extra_endpoints: further endpoints, see above.
    """
    model_sizes = getattr(model, "vocabulary_sizes", None)
    if model_sizes is not None and list(model_sizes) != encoder.vocabulary_sizes:
        raise ValueError(
            f"the model was built for vocabulary sizes {list(model_sizes)}, but the "
            f"vocabularies give {encoder.vocabulary_sizes}: export with the prepared "
            "data directory the model was trained on."
        )

    def predict(features: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        ids = encoder(features)
        probability = tf.cast(model(ids, training=False), tf.float32)
        return {"probability": probability, "ids": ids}

    archive = keras.export.ExportArchive()
    archive.track(model)
    for table in encoder.tables:
        archive.track(table)
    archive.add_endpoint("serve", predict, input_signature=[dict(input_signature)])
    def predict_from(to_features):
        return lambda inputs: predict(to_features(inputs))

    for name, (to_features, signature) in (extra_endpoints or {}).items():
        archive.add_endpoint(name, predict_from(to_features), input_signature=[signature])
    archive.write_out(os.fspath(export_dir), verbose=False)
    logger.info("wrote a raw-feature SavedModel to %s", os.fspath(export_dir))
