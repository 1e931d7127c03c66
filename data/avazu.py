"""Avazu CTR Prediction (Kaggle, 2014) `train.csv` (plain or gzip), with its header.

Raw columns: id, click, hour, C1, banner_pos, site_id, site_domain, site_category, app_id,
app_domain, app_category, device_id, device_ip, device_model, device_type,
device_conn_type, C14..C21 (24 in all, comma-separated, unquoted).

The AdaEnsemble paper (Yan and Li) uses 21 Avazu features without listing them. Besides
`id` and `click` the file has 22 candidate columns; this module uses these 21 fields:

- hour_of_day (0..23) and weekday (0 = Monday .. 6 = Sunday), both derived from `hour`
  (YYMMDDHH, UTC). The raw `hour` names one of the 240 hours of the 10-day collection
  period, so it is a timestamp rather than a context feature. Hour of day and weekday
  keep its daily and weekly cycles and generalise to other days.
- C1, banner_pos, site_id, site_domain, site_category, app_id, app_domain, app_category,
  device_model, device_type, device_conn_type, C14..C21 (19 columns, unchanged).

Dropped: `id` (a row identifier), `device_id` and `device_ip`. The last two identify a
user or device rather than the ad context. They have millions of levels (about 2.7 M and
6.7 M in the full file), so under the frequency threshold of 20 most of their rows would
fall to the out-of-vocabulary id anyway.

All 21 fields are categorical. A value is used as the text it has in the file.
"""

from __future__ import annotations

import numpy as np

from data import textio
from data.reader import DelimitedReader, check_columns, first_data_line
from data.textio import BadRow, Field, InputFileError

LABEL_COLUMN = "click"
RAW_COLUMNS = (
    "id", "click", "hour", "C1", "banner_pos", "site_id", "site_domain", "site_category",
    "app_id", "app_domain", "app_category", "device_id", "device_ip", "device_model",
    "device_type", "device_conn_type", "C14", "C15", "C16", "C17", "C18", "C19", "C20", "C21",
)
DROPPED_COLUMNS = ("id", "device_id", "device_ip")
DERIVED_FIELDS = ("hour_of_day", "weekday")
COPIED_COLUMNS = tuple(
    name for name in RAW_COLUMNS if name not in DROPPED_COLUMNS + ("click", "hour")
)
FIELDS = tuple(Field(name, "categorical") for name in DERIVED_FIELDS + COPIED_COLUMNS)
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def split_hour(hour: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split YYMMDDHH integers into (hour of day, weekday with Monday = 0, valid mask).

    Years are 20YY. A value with a month, day or hour out of range is invalid (its hour
    and weekday are then 0).

    Example:
        >>> split_hour(np.array([14102100, 14103023]))[:2]
        (array([ 0, 23]), array([1, 3]))
    """
    hour = np.asarray(hour, dtype=np.int64)
    year = 2000 + hour // 1_000_000
    month = (hour // 10_000) % 100
    day = (hour // 100) % 100
    hour_of_day = hour % 100
    valid = (hour >= 0) & (hour < 100_000_000) & (month >= 1) & (month <= 12)
    valid &= (day >= 1) & (day <= 31) & (hour_of_day <= 23)
    safe_month = np.where(valid, month, 1)
    safe_day = np.where(valid, day, 1)
    months = (year - 1970) * 12 + (safe_month - 1)
    first_of_month = months.astype("datetime64[M]").astype("datetime64[D]")
    date = first_of_month + (safe_day - 1).astype("timedelta64[D]")
    # A day past the end of its month (e.g. 31 April) rolls into the next month.
    valid &= date.astype("datetime64[M]") == first_of_month.astype("datetime64[M]")
    days = date.astype(np.int64)  # days since 1970-01-01, a Thursday
    weekday = (days + 3) % 7
    return np.where(valid, hour_of_day, 0), np.where(valid, weekday, 0), valid


class AvazuReader(DelimitedReader):
    """Reader of Avazu `train.csv` rows into the 21 fields listed in the module docstring."""

    name = "avazu"
    fields = FIELDS
    separator = ","
    label_column = LABEL_COLUMN
    has_header = True

    def column_names(self, path: str) -> tuple[str, ...]:
        return RAW_COLUMNS

    def integer_columns(self, path: str) -> tuple[str, ...]:
        return (LABEL_COLUMN, "hour")

    def check_file(self, path: str) -> None:
        header = textio.read_header(path)
        columns = check_columns(path, header, ",", RAW_COLUMNS, "avazu")
        if tuple(columns) != RAW_COLUMNS:
            raise InputFileError(
                f"{path}: the header has the Avazu columns in another order or extra columns "
                f"({','.join(columns)}); expected exactly {','.join(RAW_COLUMNS)}."
            )
        if first_data_line(path, has_header=True) is None:
            raise InputFileError(f"input file {path} contains a header line but no data rows")

    def encode(self, table, line_numbers: np.ndarray, path: str):
        count = table.num_rows
        hour_column = table.column("hour")
        hours = textio.column_to_numpy(hour_column, null_value=-1)
        hour_of_day, weekday, valid = split_hour(hours)
        keys = np.empty((len(FIELDS), count), np.int64).T
        keys[:, 0] = hour_of_day
        keys[:, 1] = weekday
        hashed = [None, None]
        for offset, column in enumerate(COPIED_COLUMNS):
            keys[:, 2 + offset] = textio.string_keys(table.column(column))
            hashed.append(textio.hashed_mask(table.column(column)))

        def make_bad_rows(mask: np.ndarray) -> list[BadRow]:
            return textio.value_bad_rows(
                path, line_numbers, table, mask, "hour", textio.REASON_VALUE,
                "expected YYMMDDHH, e.g. 14102100 for 2014-10-21 00:00",
            )

        def value_names(field: int, rows: np.ndarray) -> list[str]:
            if field < len(DERIVED_FIELDS):
                return [str(int(key)) for key in keys[rows, field]]
            return textio.names_from_table(table, ("hour_of_day", "weekday") + COPIED_COLUMNS)(field, rows)

        return keys, ~valid, make_bad_rows, value_names, hashed

    def key_text(self, field_index: int, key: int) -> str:
        if field_index < len(DERIVED_FIELDS):
            return str(int(key))
        return textio.key_bytes_text(key)

    def describe(self) -> dict:
        return {
            "derived_fields": {
                "hour_of_day": "hour % 100 (hour is YYMMDDHH)",
                "weekday": "day of week of 20YY-MM-DD, Monday = 0",
            },
            "dropped_columns": list(DROPPED_COLUMNS) + ["hour (replaced by hour_of_day, weekday)"],
        }
