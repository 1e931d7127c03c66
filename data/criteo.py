"""Criteo Kaggle Display Advertising Challenge `train.txt` (plain or gzip).

Each line: label, 13 integer columns I1..I13 (may be negative or blank), 26 categorical
columns C1..C26 (8-digit hex hashes, may be blank), tab-separated, no header.

All 39 columns become fields. The integer columns are bucketised with the rule of the
Criteo Kaggle winners (the "3 Idiots" team, 2014), which the AdaEnsemble paper by Yan
and Li uses as well:

    v -> floor(ln(v) ** 2)   for v > 2
    v -> v                   for v <= 2 (negative values included)
    blank -> its own level

The bucket is then a categorical level like any other (counted, thresholded, encoded).
"""

from __future__ import annotations

import numpy as np

from data import textio
from data.reader import DelimitedReader, first_data_line, wrong_dataset_message
from data.textio import Field, InputFileError

LABEL_COLUMN = "label"
NUMERIC_COLUMNS = tuple(f"I{i}" for i in range(1, 14))
CATEGORICAL_COLUMNS = tuple(f"C{i}" for i in range(1, 27))
COLUMNS = (LABEL_COLUMN,) + NUMERIC_COLUMNS + CATEGORICAL_COLUMNS
FIELDS = tuple(Field(name, "numeric") for name in NUMERIC_COLUMNS) + tuple(
    Field(name, "categorical") for name in CATEGORICAL_COLUMNS
)

# Key of a blank integer value. Buckets are small integers, so this never collides.
BLANK_NUMERIC_KEY = np.iinfo(np.int64).min
# Vocabulary files write a blank value as the empty string.
BLANK_NAME = ""

NUMERIC_TRANSFORM = "v -> floor(ln(v)^2) if v > 2 else v; blank -> its own level"


def transform_numeric(values: np.ndarray) -> np.ndarray:
    """Bucketise Criteo integer values: floor(ln(v)^2) for v > 2, v otherwise.

    Args:
        values: int64 array of any shape (blank values must be handled by the caller).

    Returns:
        int64 array of the same shape.

    Example:
        >>> transform_numeric(np.array([-3, 0, 2, 3, 100]))
        array([-3,  0,  2,  1, 21])
    """
    values = np.asarray(values, dtype=np.int64)
    result = values.copy()
    large = values > 2
    result[large] = np.floor(np.log(values[large].astype(np.float64)) ** 2).astype(np.int64)
    return result


def numeric_name(key: int) -> str:
    """Vocabulary entry of a numeric bucket key: the bucket as decimal text, "" for blank."""
    return BLANK_NAME if key == BLANK_NUMERIC_KEY else str(int(key))


class CriteoReader(DelimitedReader):
    """Reader of Criteo `train.txt` rows into 39 keyed fields."""

    name = "criteo"
    fields = FIELDS
    separator = "\t"
    label_column = LABEL_COLUMN
    has_header = False

    def column_names(self, path: str) -> tuple[str, ...]:
        return COLUMNS

    def integer_columns(self, path: str) -> tuple[str, ...]:
        return (LABEL_COLUMN,) + NUMERIC_COLUMNS

    def check_file(self, path: str) -> None:
        line = first_data_line(path, has_header=False)
        if line is None:
            raise InputFileError(f"input file is empty: {path}")
        fields = line.split("\t")
        if fields and fields[-1] == "" and len(fields) == len(COLUMNS) + 1:
            fields = fields[:-1]
        looks_right = len(fields) == len(COLUMNS) and fields[0] in ("0", "1")
        if not looks_right:
            raise InputFileError(
                wrong_dataset_message(
                    path, "criteo", "40 tab-separated columns (label, I1..I13, C1..C26) and no header", line
                )
            )

    def encode(self, table, line_numbers: np.ndarray, path: str):
        count = table.num_rows
        # Field-major memory: each field's column is contiguous for counting and encoding.
        keys = np.empty((len(FIELDS), count), np.int64).T
        hashed = [None] * len(NUMERIC_COLUMNS)
        for index, column in enumerate(NUMERIC_COLUMNS):
            array = table.column(column)
            values = textio.column_to_numpy(array, null_value=0)
            bucket = transform_numeric(values)
            if array.null_count:
                blank = np.asarray(array.is_null().to_numpy(zero_copy_only=False), bool)
                bucket[blank] = BLANK_NUMERIC_KEY
            keys[:, index] = bucket
        for offset, column in enumerate(CATEGORICAL_COLUMNS):
            keys[:, len(NUMERIC_COLUMNS) + offset] = textio.string_keys(table.column(column))
            hashed.append(textio.hashed_mask(table.column(column)))

        def value_names(field: int, rows: np.ndarray) -> list[str]:
            if field < len(NUMERIC_COLUMNS):
                return [numeric_name(key) for key in keys[rows, field]]
            return textio.names_from_table(table, COLUMNS[1:])(field, rows)

        no_bad = np.zeros(count, bool)
        return keys, no_bad, lambda mask: [], value_names, hashed

    def key_text(self, field_index: int, key: int) -> str:
        if field_index < len(NUMERIC_COLUMNS):
            return numeric_name(key)
        return textio.key_bytes_text(key)

    def describe(self) -> dict:
        return {
            "numeric_transform": NUMERIC_TRANSFORM,
            "numeric_transform_source": "Criteo Kaggle winners (3 Idiots team), as used by Yan and Li",
            "blank_categorical": "the empty string is a level of its own",
        }
