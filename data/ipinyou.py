"""iPinYou RTB (2013) click logs, in the forms that make-ipinyou-data writes.

Three file forms are read, all into the same 16 categorical fields (FIELD_NAMES):

1. Log form (`train.log.txt`, `test.log.txt`): tab-separated with a header, one column per
   raw log field (click, weekday, hour, bidid, timestamp, ..., useragent, IP, ...,
   slotprice, ...). Feature values are derived as make-ipinyou-data derives them.
   `useragent` becomes "<os>_<browser>" from the lower-cased user agent, and `slotprice`
   one of the buckets 0, 1-10, 11-50, 51-100, 101+. Every other field is used as it is
   (IP is already truncated to "a.b.c.*" in the logs).
2. Decoded form: the same header layout with the 16 fields already transformed (for
   example useragent "android_safari", slotprice "1-10"); values are used as they are.
   The form is detected from the header: a log has the raw `bidid` column.
3. Indexed form (`train.fm.txt`, `test.fm.txt` with `featindex.fm.txt`): each line is
   "click idx:1 idx:1 ..." with one index per field; `featindex.fm.txt` maps
   "field:value<TAB>index". The indices are turned back into (field, value), so every form
   gives the same keys and the same vocabulary files.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from data import textio
from data.reader import DelimitedReader, check_columns, first_data_line, wrong_dataset_message
from data.textio import BadRow, Field, InputFileError

LABEL_COLUMN = "click"
FIELD_NAMES = (
    "weekday", "hour", "IP", "region", "city", "adexchange", "domain", "slotid", "slotwidth",
    "slotheight", "slotvisibility", "slotformat", "creative", "advertiser", "useragent",
    "slotprice",
)
FIELDS = tuple(Field(name, "categorical") for name in FIELD_NAMES)
LOG_ONLY_COLUMN = "bidid"
FEATINDEX_NAME = "featindex.fm.txt"

# make-ipinyou-data's user-agent reduction: the first operating system and the first
# browser (in these orders) found in the lower-cased user agent, "other" when none is.
OPERATING_SYSTEMS = ("windows", "ios", "mac", "android", "linux")
BROWSERS = ("chrome", "sogou", "maxthon", "safari", "firefox", "theworld", "opera", "ie")


def reduce_useragent(useragent: str) -> str:
    """Reduce a raw user agent to "<os>_<browser>", e.g. "windows_ie"."""
    lowered = useragent.lower()
    system = next((name for name in OPERATING_SYSTEMS if name in lowered), "other")
    browser = next((name for name in BROWSERS if name in lowered), "other")
    return f"{system}_{browser}"


def bucket_slotprice(prices: np.ndarray) -> np.ndarray:
    """Bucket floor prices as make-ipinyou-data does: 0, 1-10, 11-50, 51-100, 101+."""
    prices = np.asarray(prices, dtype=np.int64)
    names = np.array(["0", "1-10", "11-50", "51-100", "101+"])
    return names[np.searchsorted(np.array([0, 10, 50, 100]), prices, side="left")]


class IPinYouTextReader(DelimitedReader):
    """Reader of the log form and the decoded form (tab-separated, with a header)."""

    name = "ipinyou"
    fields = FIELDS
    separator = "\t"
    label_column = LABEL_COLUMN
    has_header = True

    def __init__(self):
        self._columns: dict[str, tuple[str, ...]] = {}

    def column_names(self, path: str) -> tuple[str, ...]:
        if path not in self._columns:
            header = textio.read_header(path)
            self._columns[path] = tuple(
                check_columns(path, header, "\t", (LABEL_COLUMN,) + FIELD_NAMES, "ipinyou")
            )
        return self._columns[path]

    def is_log(self, path: str) -> bool:
        return LOG_ONLY_COLUMN in self.column_names(path)

    def integer_columns(self, path: str) -> tuple[str, ...]:
        if self.is_log(path):
            return (LABEL_COLUMN, "slotprice")
        return (LABEL_COLUMN,)

    def check_file(self, path: str) -> None:
        self.column_names(path)
        if first_data_line(path, has_header=True) is None:
            raise InputFileError(f"input file {path} contains a header line but no data rows")

    def encode(self, table, line_numbers: np.ndarray, path: str):
        import pyarrow as pa

        count = table.num_rows
        columns = {name: table.column(name) for name in FIELD_NAMES}
        if self.is_log(path):
            agents = [value.decode("utf-8", errors="replace") for value in columns["useragent"].to_pylist()]
            columns["useragent"] = pa.array([reduce_useragent(agent) for agent in agents], pa.binary())
            prices = textio.column_to_numpy(columns["slotprice"], null_value=0)
            columns["slotprice"] = pa.array(bucket_slotprice(prices).tolist(), pa.binary())
        keys = np.empty((len(FIELDS), count), np.int64).T
        for index, name in enumerate(FIELD_NAMES):
            keys[:, index] = textio.string_keys(columns[name])
        hashed = [textio.hashed_mask(columns[name]) for name in FIELD_NAMES]
        transformed = pa.table({name: columns[name] for name in FIELD_NAMES})
        no_bad = np.zeros(count, bool)
        return keys, no_bad, lambda mask: [], textio.names_from_table(transformed, FIELD_NAMES), hashed

    def describe(self) -> dict:
        return {"form": "log or decoded TSV", "useragent": "<os>_<browser>", "slotprice": "0, 1-10, 11-50, 51-100, 101+"}


class FeatureIndex:
    """The `featindex.fm.txt` map of make-ipinyou-data: index -> (field, value)."""

    def __init__(self, path: str | os.PathLike):
        import pyarrow as pa

        path = os.fspath(path)
        size = 0
        entries = []
        with textio.open_binary(path) as stream:
            for number, raw in enumerate(stream, start=1):
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if not line:
                    continue
                feature, _, index = line.rpartition("\t")
                field, _, value = feature.partition(":")
                if not feature or not index.isdigit():
                    raise InputFileError(
                        f"{path}:{number}: expected 'field:value<TAB>index', got {textio.shorten(line)!r}"
                    )
                entries.append((int(index), field, value))
                size = max(size, int(index) + 1)
        if not entries:
            raise InputFileError(f"feature index file is empty: {path}")
        self.path = path
        # Field position per index (-1: not one of the 16 fields), key and value text.
        self.field_of = np.full(size, -1, np.int64)
        self.key_of = np.zeros(size, np.int64)
        self.value_of = [""] * size
        self.hashed_of = np.zeros(size, bool)
        position = {name: i for i, name in enumerate(FIELD_NAMES)}
        used = [(index, field, value) for index, field, value in entries if field in position]
        indices = np.array([index for index, _, _ in used], np.int64)
        values = pa.array([value.encode("utf-8") for _, _, value in used], pa.binary())
        self.field_of[indices] = [position[field] for _, field, _ in used]
        self.key_of[indices] = textio.string_keys(values)
        self.hashed_of[indices] = textio.hashed_mask(values)
        for index, _, value in used:
            self.value_of[index] = value

    @staticmethod
    def beside(path: str | os.PathLike) -> pathlib.Path:
        return pathlib.Path(path).resolve().parent / FEATINDEX_NAME


class IPinYouIndexedReader(DelimitedReader):
    """Reader of the indexed form: "click idx:1 ... idx:1", 16 indices per line."""

    name = "ipinyou"
    fields = FIELDS
    separator = " "
    label_column = LABEL_COLUMN
    has_header = False

    def __init__(self, featindex: str | os.PathLike | None = None):
        self._featindex_path = featindex
        self._featindex: FeatureIndex | None = None

    def feature_index(self, path: str) -> FeatureIndex:
        if self._featindex is None:
            location = self._featindex_path or FeatureIndex.beside(path)
            if not os.path.exists(location):
                raise InputFileError(
                    f"{path} is in the indexed iPinYou form, which needs {FEATINDEX_NAME}: "
                    f"not found at {location}. Place it beside the input or pass --featindex."
                )
            self._featindex = FeatureIndex(location)
        return self._featindex

    def column_names(self, path: str) -> tuple[str, ...]:
        return (LABEL_COLUMN,) + tuple(f"index{i + 1}" for i in range(len(FIELDS)))

    def check_file(self, path: str) -> None:
        line = first_data_line(path, has_header=False)
        if line is None:
            raise InputFileError(f"input file is empty: {path}")
        tokens = line.split(" ")
        if len(tokens) < 2 or tokens[0] not in ("0", "1") or not all(":" in t for t in tokens[1:]):
            raise InputFileError(
                wrong_dataset_message(path, "ipinyou (indexed)", "'click idx:1 idx:1 ...'", line)
            )
        self.feature_index(path)

    def encode(self, table, line_numbers: np.ndarray, path: str):
        import pyarrow as pa
        import pyarrow.compute as pc

        featindex = self.feature_index(path)
        count = table.num_rows
        names = self.column_names(path)[1:]
        indices = np.empty((count, len(names)), np.int64)
        bad = np.zeros(count, bool)
        bad_column = np.zeros(count, np.int64)
        for position, name in enumerate(names):
            column = pc.cast(table.column(name), pa.string())
            parts = pc.split_pattern(column, ":")
            well_formed = pc.and_(
                pc.equal(pc.list_value_length(parts), 2),
                pc.match_substring_regex(column, r"^[0-9]{1,9}:1$"),
            )
            good = np.asarray(well_formed.to_numpy(zero_copy_only=False), bool)
            digits = pc.if_else(well_formed, pc.list_element(parts, 0), "0")
            values = np.asarray(pc.cast(digits, pa.int64()).to_numpy(zero_copy_only=False), np.int64)
            known = values < len(featindex.field_of)
            values = np.where(known, values, 0)
            good &= known & (featindex.field_of[values] >= 0)
            newly_bad = ~good & ~bad
            bad_column[newly_bad] = position
            bad |= ~good
            indices[:, position] = values

        fields = featindex.field_of[indices]
        # Each of the 16 fields must appear exactly once per line.
        complete = np.all(np.sort(fields, axis=1) == np.arange(len(FIELDS)), axis=1)
        incomplete = complete == False  # noqa: E712 (elementwise)
        keys = np.zeros((len(FIELDS), count), np.int64).T
        value_index = np.zeros((count, len(FIELDS)), np.int64)
        ok = ~bad & complete
        rows = np.flatnonzero(ok)
        keys[rows[:, None], fields[rows]] = featindex.key_of[indices[rows]]
        value_index[rows[:, None], fields[rows]] = indices[rows]

        def make_bad_rows(mask: np.ndarray) -> list[BadRow]:
            result = []
            for row in np.flatnonzero(mask):
                line = int(line_numbers[row])
                if bad[row]:
                    name = names[bad_column[row]]
                    value = table.column(name)[int(row)].as_py().decode("utf-8", errors="replace")
                    result.append(BadRow(path, line, name, textio.shorten(value), textio.REASON_VALUE,
                                         f"expected 'index:1' with an index of {featindex.path}"))
                else:
                    counts = np.bincount(fields[row], minlength=len(FIELDS))
                    missing = [FIELD_NAMES[f] for f in np.flatnonzero(counts == 0)]
                    repeated = [FIELD_NAMES[f] for f in np.flatnonzero(counts > 1)]
                    summary = f"missing: {' '.join(missing) or '-'}; repeated: {' '.join(repeated) or '-'}"
                    result.append(BadRow(path, line, "-", textio.shorten(summary), textio.REASON_VALUE,
                                         "expected exactly one index for each of the 16 fields"))
            return result

        def value_names(field: int, rows: np.ndarray) -> list[str]:
            return [featindex.value_of[index] for index in value_index[rows, field]]

        hashed = [featindex.hashed_of[value_index[:, field]] for field in range(len(FIELDS))]
        return keys, bad | incomplete, make_bad_rows, value_names, hashed

    def describe(self) -> dict:
        return {"form": "indexed (fm.txt + featindex.fm.txt)"}


def reader_for(path: str | os.PathLike, featindex: str | os.PathLike | None = None) -> DelimitedReader:
    """Pick the reader for an iPinYou file from its first line (header or indexed row)."""
    line = first_data_line(os.fspath(path), has_header=False)
    if line is None:
        raise InputFileError(f"input file is empty: {os.fspath(path)}")
    if line.split("\t")[0] == LABEL_COLUMN or "\t" in line:
        return IPinYouTextReader()
    return IPinYouIndexedReader(featindex)
