"""Export a trained model as a SavedModel that serves raw Criteo, Avazu or iPinYou rows.

Usage:
    python -m experiments.export --model model.keras --data PREPARED_DIR --output DIR
    python -m experiments.export --run RUN_DIR --output DIR

``--data`` is the folder `data.prepare` wrote for the training data (its metadata.json
and vocabularies/ give the dataset, the fields and the value text of every id).
``--run RUN_DIR`` is a folder holding ``model.keras`` and ``data_dir.txt`` (one line: the
prepared data folder), the layout a training run saves its model in.

The SavedModel repeats data.prepare's encoding in TensorFlow ops, then runs the model
(AdaEnsemble with its early exit). Its endpoints, all returning ``{"probability":
float32 [batch, 1], "ids": int32 [batch, F]}``:

* ``serve`` (also ``serving_default``): one string tensor ``[batch]`` per raw column.
  - Criteo: ``I1``..``I13`` as decimal text ("" is a blank value), ``C1``..``C26``.
  - Avazu: ``hour`` (YYMMDDHH text) and the 19 copied columns (see data/avazu.py);
    hour of day and weekday are derived in the graph.
  - iPinYou: the 16 fields (see data/ipinyou.py) in the log form: raw ``useragent``
    (reduced to "<os>_<browser>") and integer ``slotprice`` (bucketed), or, with
    ``--ipinyou_form decoded``, the already transformed values.
* ``serve_lines``: raw text lines as in the dataset's file.
  - Criteo: tab-separated, with or without the leading label.
  - Avazu: the 24 comma-separated columns of train.csv, ``click`` included.
  - iPinYou: tab-separated, the label then the 16 fields, or the columns given to
    `export_model` as ``ipinyou_columns``.
* Criteo only, ``serve_int64``: ``I1``..``I13`` as int64, `MISSING_INTEGER`
  (-2**63) meaning blank, and ``C1``..``C26`` as strings.

Values the training data never showed (or showed less than min_count times) map to the
out-of-vocabulary id 0; so do malformed values (a numeric column that is not an integer,
an impossible Avazu hour), which data.prepare would have rejected.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf
from absl import app, flags, logging

from ada_keras import serving
from data import avazu, criteo, ipinyou, textio
from data.preprocess import unescape_vocabulary_value

MISSING_INTEGER = np.iinfo(np.int64).min
RUN_MODEL_FILE = "model.keras"
RUN_DATA_FILE = "data_dir.txt"
IPINYOU_FORMS = ("log", "decoded")


# ------------------------------------------------------------------- shared pieces


def _strings(features: Mapping[str, tf.Tensor], name: str) -> tf.Tensor:
    return tf.reshape(tf.convert_to_tensor(features[name], tf.string), [-1])


def _parse_integers(text: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(int64 values, valid mask) of decimal text; invalid text gives value 0."""
    # data.prepare rejects a row whose integer column does not match this pattern.
    valid = tf.strings.regex_full_match(text, textio.INTEGER_PATTERN)
    values = tf.strings.to_number(tf.where(valid, text, "0"), tf.int64)
    return values, valid


def read_vocabularies(data_dir: str | os.PathLike) -> tuple[dict, list[str], list[list[str]]]:
    """Return (metadata, field names, per-field value text of ids 1..) of a prepared folder."""
    data_dir = pathlib.Path(data_dir)
    metadata_path = data_dir / "metadata.json"
    if not metadata_path.exists():
        raise FileNotFoundError(
            f"{metadata_path} not found: --data must be a folder written by data.prepare."
        )
    metadata = json.loads(metadata_path.read_text())
    names, vocabularies = [], []
    for field in metadata["fields"]:
        path = data_dir / field["vocabulary_file"]
        values = [""] * (int(field["vocabulary_size"]) - 1)
        with open(path, encoding="utf-8") as stream:
            header = stream.readline()
            if not header.startswith("id\tvalue"):
                raise ValueError(f"{path}:1: expected the header 'id<TAB>value<TAB>...'.")
            for number, line in enumerate(stream, start=2):
                identifier, value = line.rstrip("\n").split("\t")[:2]
                index = int(identifier)
                if not 1 <= index <= len(values):
                    raise ValueError(
                        f"{path}:{number}: id {index} is outside 1..{len(values)}, the "
                        "vocabulary size in metadata.json; the folder is inconsistent."
                    )
                values[index - 1] = unescape_vocabulary_value(value)
        names.append(field["name"])
        vocabularies.append(values)
    return metadata, names, vocabularies


# ------------------------------------------------------------------------- Criteo


def criteo_bucket_text(text: tf.Tensor) -> tf.Tensor:
    """Criteo integer text -> bucket text as in the vocabularies ("" stays "").

    v -> floor(ln(v)^2) for v > 2, v otherwise (data.criteo.transform_numeric).
    """
    values, valid = _parse_integers(text)
    large = values > 2
    logarithm = tf.math.log(tf.cast(tf.where(large, values, 3), tf.float64))
    bucket = tf.where(large, tf.cast(tf.floor(logarithm * logarithm), tf.int64), values)
    named = tf.where(valid, tf.strings.as_string(bucket), serving.NO_VALUE)
    return tf.where(tf.equal(text, ""), criteo.BLANK_NAME, named)


def criteo_field_values(features: Mapping[str, tf.Tensor]) -> list[tf.Tensor]:
    values = [criteo_bucket_text(_strings(features, name)) for name in criteo.NUMERIC_COLUMNS]
    values += [_strings(features, name) for name in criteo.CATEGORICAL_COLUMNS]
    return values


def criteo_int64_features(features: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """int64 numeric columns (MISSING_INTEGER = blank) -> the text columns of `serve`."""
    result = dict(features)
    for name in criteo.NUMERIC_COLUMNS:
        values = tf.reshape(features[name], [-1])
        result[name] = tf.where(
            tf.equal(values, MISSING_INTEGER), "", tf.strings.as_string(values)
        )
    return result


def _split_lines(lines: tf.Tensor, separator: str, columns: Sequence[str], optional_first: int):
    """Split text lines into named columns; `optional_first` leading columns may be absent."""
    lines = tf.strings.regex_replace(tf.reshape(lines, [-1]), "\r$", "")
    parts = tf.strings.split(lines, separator)
    width = len(columns)
    # One trailing separator is allowed, as data.prepare allows it.
    dense = parts.to_tensor(default_value="", shape=[None, width + 1])
    lengths = parts.row_lengths()
    trailing = tf.equal(dense[:, -1], "") & tf.equal(lengths, width + 1)
    count = tf.where(trailing, lengths - 1, lengths)
    shifted = tf.where(
        tf.equal(count, width)[:, None], dense[:, :width],
        tf.pad(dense[:, : width - optional_first], [[0, 0], [optional_first, 0]]),
    )
    return {name: shifted[:, index] for index, name in enumerate(columns)}


def criteo_lines(lines: tf.Tensor) -> dict[str, tf.Tensor]:
    """Raw Criteo lines (label first, or without the label) -> column dict."""
    return _split_lines(lines, "\t", criteo.COLUMNS, optional_first=1)


# -------------------------------------------------------------------------- Avazu


def avazu_hour_fields(text: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """YYMMDDHH text -> (hour-of-day text, weekday text with Monday = 0), as data.avazu.

    An invalid hour (data.prepare rejects its row) gives `serving.NO_VALUE` for both.
    """
    hour, parsed = _parse_integers(text)
    year = 2000 + hour // 1_000_000
    month = (hour // 10_000) % 100
    day = (hour // 100) % 100
    hour_of_day = hour % 100
    leap = (tf.equal(year % 4, 0) & tf.not_equal(year % 100, 0)) | tf.equal(year % 400, 0)
    month_lengths = tf.constant([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], tf.int64)
    safe_month = tf.clip_by_value(month, 1, 12)
    length = tf.gather(month_lengths, safe_month - 1) + tf.cast(
        leap & tf.equal(safe_month, 2), tf.int64
    )
    valid = parsed & (hour >= 0) & (hour < 100_000_000) & (month >= 1) & (month <= 12)
    valid &= (day >= 1) & (day <= length) & (hour_of_day <= 23)
    # Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    shifted_year = year - tf.cast(safe_month <= 2, tf.int64)
    era = shifted_year // 400
    year_of_era = shifted_year - era * 400
    month_from_march = safe_month + tf.where(safe_month > 2, tf.constant(-3, tf.int64), 9)
    day_of_year = (153 * month_from_march + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146097 + day_of_era - 719468
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday (3 with Monday = 0)
    as_text = lambda values: tf.where(valid, tf.strings.as_string(values), serving.NO_VALUE)
    return as_text(hour_of_day), as_text(weekday)


def avazu_field_values(features: Mapping[str, tf.Tensor]) -> list[tf.Tensor]:
    hour_of_day, weekday = avazu_hour_fields(_strings(features, "hour"))
    return [hour_of_day, weekday] + [_strings(features, name) for name in avazu.COPIED_COLUMNS]


def avazu_lines(lines: tf.Tensor) -> dict[str, tf.Tensor]:
    """Raw Avazu train.csv lines (all 24 columns) -> column dict."""
    return _split_lines(lines, ",", avazu.RAW_COLUMNS, optional_first=0)


# ------------------------------------------------------------------------ iPinYou


def ipinyou_useragent(text: tf.Tensor) -> tf.Tensor:
    """Raw user agent -> "<os>_<browser>", as data.ipinyou.reduce_useragent."""
    lowered = tf.strings.lower(text, encoding="utf-8")

    def first_found(names: Sequence[str]) -> tf.Tensor:
        result = tf.fill(tf.shape(lowered), "other")
        for name in reversed(names):
            found = tf.strings.regex_full_match(lowered, f"(?s).*{re.escape(name)}.*")
            result = tf.where(found, name, result)
        return result

    return tf.strings.join(
        [first_found(ipinyou.OPERATING_SYSTEMS), first_found(ipinyou.BROWSERS)], "_"
    )


def ipinyou_slotprice(text: tf.Tensor) -> tf.Tensor:
    """Integer floor price text -> "0", "1-10", "11-50", "51-100" or "101+" (blank: "0")."""
    prices, valid = _parse_integers(text)
    names = tf.constant(["0", "1-10", "11-50", "51-100", "101+"])
    bucket = tf.searchsorted(
        tf.constant([0, 10, 50, 100], tf.int64), prices, side="left"
    )
    named = tf.where(valid, tf.gather(names, bucket), serving.NO_VALUE)
    return tf.where(tf.equal(text, ""), "0", named)


def ipinyou_field_values(form: str):
    if form not in IPINYOU_FORMS:
        raise ValueError(f"unknown iPinYou form {form!r}; choose one of {IPINYOU_FORMS}.")

    def field_values(features: Mapping[str, tf.Tensor]) -> list[tf.Tensor]:
        values = []
        for name in ipinyou.FIELD_NAMES:
            text = _strings(features, name)
            if form == "log" and name == "useragent":
                text = ipinyou_useragent(text)
            elif form == "log" and name == "slotprice":
                text = ipinyou_slotprice(text)
            values.append(text)
        return values

    return field_values


def ipinyou_lines(columns: Sequence[str]):
    def to_features(lines: tf.Tensor) -> dict[str, tf.Tensor]:
        return _split_lines(lines, "\t", columns, optional_first=0)

    return to_features


# ------------------------------------------------------------------------- export


def _string_spec(names: Sequence[str]) -> dict[str, tf.TensorSpec]:
    return {name: tf.TensorSpec([None], tf.string, name=name) for name in names}


def export_model(
    model,
    data_dir: str | os.PathLike,
    export_dir: str | os.PathLike,
    *,
    ipinyou_form: str = "log",
    ipinyou_columns: Sequence[str] | None = None,
) -> dict:
    """Export `model`, trained on the prepared folder `data_dir`, to `export_dir`.

    Args:
        model: a CTR model built for the folder's vocabulary sizes.
        data_dir: the data.prepare output the model was trained on.
        export_dir: the SavedModel folder to write.
        ipinyou_form: "log" (raw user agent and slot price) or "decoded".
        ipinyou_columns: column order of iPinYou lines for ``serve_lines``; by default
            the label then the 16 fields.

    Returns:
        {"dataset": name, "endpoints": {endpoint: its input names, space-separated}}.
    """
    metadata, names, vocabularies = read_vocabularies(data_dir)
    dataset = metadata["dataset"]
    line_spec = tf.TensorSpec([None], tf.string, name="lines")
    if dataset == "criteo":
        to_values = criteo_field_values
        signature = _string_spec(criteo.NUMERIC_COLUMNS + criteo.CATEGORICAL_COLUMNS)
        int64_signature = dict(signature)
        for name in criteo.NUMERIC_COLUMNS:
            int64_signature[name] = tf.TensorSpec([None], tf.int64, name=name)
        extra = {
            "serve_lines": (criteo_lines, line_spec),
            "serve_int64": (criteo_int64_features, int64_signature),
        }
    elif dataset == "avazu":
        to_values = avazu_field_values
        signature = _string_spec(("hour",) + avazu.COPIED_COLUMNS)
        extra = {"serve_lines": (avazu_lines, line_spec)}
    elif dataset == "ipinyou":
        to_values = ipinyou_field_values(ipinyou_form)
        signature = _string_spec(ipinyou.FIELD_NAMES)
        columns = tuple(ipinyou_columns or (ipinyou.LABEL_COLUMN,) + ipinyou.FIELD_NAMES)
        extra = {"serve_lines": (ipinyou_lines(columns), line_spec)}
    else:
        raise ValueError(
            f"{data_dir}: dataset {dataset!r} has no raw-value encoding; raw-value export "
            "supports criteo, avazu and ipinyou (synthetic data has no raw form)."
        )
    if names != [field.name for field in _fields(dataset)]:
        raise ValueError(f"{data_dir}: fields {names} differ from the {dataset} reader's.")
    encoder = serving.RawFeatureEncoder(names, vocabularies, to_values)
    serving.export_raw_serving_model(
        model, encoder, signature, export_dir, extra_endpoints=extra
    )
    endpoints = {"serve": " ".join(signature)}
    for name, (_, spec) in extra.items():
        endpoints[name] = "lines" if name == "serve_lines" else " ".join(spec)
    return {"dataset": dataset, "endpoints": endpoints}


def _fields(dataset: str):
    return {"criteo": criteo.FIELDS, "avazu": avazu.FIELDS, "ipinyou": ipinyou.FIELDS}[dataset]


def resolve_run(run_dir: str | os.PathLike) -> tuple[pathlib.Path, pathlib.Path]:
    """Return (model path, prepared data folder) of a run folder."""
    run_dir = pathlib.Path(run_dir)
    model_path = run_dir / RUN_MODEL_FILE
    data_file = run_dir / RUN_DATA_FILE
    for path in (model_path, data_file):
        if not path.exists():
            raise FileNotFoundError(
                f"{path} not found: a run folder contains {RUN_MODEL_FILE} and {RUN_DATA_FILE} "
                "(the prepared data folder). Otherwise pass --model and --data."
            )
    return model_path, pathlib.Path(data_file.read_text().strip())


FLAGS = flags.FLAGS


def define_flags() -> None:
    """Define the command's flags (only when run as a command, so importing is free)."""
    flags.DEFINE_string("run", None, f"Run folder with {RUN_MODEL_FILE} and {RUN_DATA_FILE}.")
    flags.DEFINE_string("model", None, "A .keras model file (instead of --run).")
    flags.DEFINE_string("data", None, "The prepared data folder the model was trained on.")
    flags.DEFINE_string("output", None, "SavedModel folder to write.")
    flags.DEFINE_enum(
        "ipinyou_form", "log", list(IPINYOU_FORMS),
        "iPinYou raw form: log (raw user agent, integer slot price) or decoded.",
    )


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.output is None:
        raise app.UsageError("--output is required.")
    if FLAGS.run:
        model_path, data_dir = resolve_run(FLAGS.run)
    elif FLAGS.model and FLAGS.data:
        model_path, data_dir = pathlib.Path(FLAGS.model), pathlib.Path(FLAGS.data)
    else:
        raise app.UsageError("give --run DIR, or --model FILE.keras and --data DIR.")

    import baselines.registry  # noqa: F401  (registers every model class for loading)

    model = serving.load_model_safely(model_path)
    description = export_model(model, data_dir, FLAGS.output, ipinyou_form=FLAGS.ipinyou_form)
    logging.info("exported %s (%s) to %s", model_path, description["dataset"], FLAGS.output)
    print(json.dumps({"output": FLAGS.output, **description}, indent=2))


if __name__ == "__main__":
    define_flags()
    app.run(main)
