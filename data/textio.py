"""Streaming, validating reads of delimited text files (plain or gzip) in large blocks.

Every dataset reader in this package goes through the same steps:

1. `read_blocks` yields blocks of whole lines (about `block_bytes` each), with the 1-based
   physical line number of each block's first line. A UTF-8 byte-order mark at the start of
   the file is removed, gzip input is detected by its magic bytes, and a last line without
   a newline is completed.
2. `scan_block` checks every line of a block with NumPy, without a Python loop over lines:
   field count, stray double quote and NUL byte. It drops blank lines (counted), converts
   CRLF endings, strips one trailing separator, and returns a cleaned block of good lines
   with their line numbers and a `BadRow` for every rejected line.
3. The dataset module parses the cleaned block with `pyarrow.csv` (multi-threaded C++),
   validates values column by column, and turns each field into int64 keys
   (`string_keys` for strings).

A rejected row either stops the run (`BadRowError`, naming file, line, column and value) or
is counted, depending on the caller's `on_bad_row` policy. Whole-file problems (missing,
empty, header only, another dataset's format) raise `InputFileError`.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
from typing import BinaryIO, Callable, Iterator, Sequence

import numpy as np

UTF8_BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"

# Bytes per block. Each block is parsed as one pyarrow table, so a block's memory is a
# small multiple of this; 16 MiB holds about 65,000 Criteo rows.
DEFAULT_BLOCK_BYTES = 16 << 20

# A value that is shown in an error message is cut to this many characters.
MAX_SHOWN_VALUE = 80

# Reasons a row is rejected; these are the keys of metadata["bad_rows"]["by_reason"].
REASON_FIELD_COUNT = "wrong_field_count"
REASON_QUOTE = "stray_quote"
REASON_NUL = "nul_byte"
REASON_NOT_INTEGER = "not_integer"
REASON_LABEL = "invalid_label"
REASON_VALUE = "invalid_value"


@dataclasses.dataclass(frozen=True)
class BadRow:
    """A rejected input row: where it is, which column failed, and why."""

    path: str
    line: int  # 1-based physical line number in the (decompressed) file
    column: str  # column name, or "-" when the row as a whole is malformed
    value: str  # offending value (or the start of the line), cut to MAX_SHOWN_VALUE chars
    reason: str  # one of the REASON_* constants
    detail: str = ""

    def location(self) -> str:
        return f"{self.path}:{self.line}"

    def describe(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.location()}: column {self.column}: {self.reason}{detail}: value {self.value!r}"

    def to_json(self) -> dict:
        return {
            "file": self.path,
            "line": self.line,
            "column": self.column,
            "value": self.value,
            "reason": self.reason,
            "detail": self.detail,
        }


class BadRowError(ValueError):
    """A malformed row was found while `on_bad_row="error"`."""

    def __init__(self, bad_row: BadRow):
        self.bad_row = bad_row
        super().__init__(
            f"{bad_row.describe()}. Fix or remove this row, or rerun with "
            "--on_bad_row=skip to count and skip malformed rows."
        )


class InputFileError(ValueError):
    """An input file as a whole cannot be used: missing, empty, header only, wrong format."""


def shorten(value: str) -> str:
    return value if len(value) <= MAX_SHOWN_VALUE else value[: MAX_SHOWN_VALUE - 3] + "..."


def open_binary(path: str | os.PathLike) -> BinaryIO:
    """Open a plain or gzip-compressed file for binary reading (gzip detected by content).

    Raises:
        InputFileError: the file does not exist or is not a regular file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputFileError(f"input file not found: {path}. Check the --input path.")
    if not os.path.isfile(path):
        raise InputFileError(f"input path is not a regular file: {path}")
    raw = open(path, "rb")
    magic = raw.read(2)
    raw.seek(0)
    if magic == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb")
    return raw


def compressed_position(stream: BinaryIO) -> int:
    """Bytes consumed from the file on disk (the compressed position for gzip)."""
    if isinstance(stream, gzip.GzipFile):
        return stream.fileobj.tell()  # type: ignore[union-attr]
    return stream.tell()


@dataclasses.dataclass
class Block:
    """Whole lines read from a file."""

    data: bytes
    first_line: int  # 1-based line number of the first line in `data`
    file_bytes: int  # bytes of the file on disk consumed so far (for progress bars)
    line_count: int  # number of lines in `data`


def read_header(path: str | os.PathLike) -> str:
    """Return the first line of a file without its line ending and byte-order mark.

    Raises:
        InputFileError: the file is missing or empty.
    """
    with open_binary(path) as stream:
        line = stream.readline()
    if line.startswith(UTF8_BOM):
        line = line[len(UTF8_BOM) :]
    if not line.strip():
        raise InputFileError(f"input file is empty: {os.fspath(path)}")
    return line.rstrip(b"\r\n").decode("utf-8", errors="replace")


def read_blocks(
    path: str | os.PathLike,
    *,
    skip_lines: int = 0,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> Iterator[Block]:
    """Yield blocks of whole lines from a plain or gzip file, after `skip_lines` lines.

    Raises:
        InputFileError: the file is missing.
    """
    with open_binary(path) as stream:
        first = stream.read(len(UTF8_BOM))
        carry = first[len(UTF8_BOM) :] if first == UTF8_BOM else first
        line_number = 1
        for _ in range(skip_lines):
            rest = stream.readline() if b"\n" not in carry else b""
            line = carry + rest
            cut = line.find(b"\n")
            carry = line[cut + 1 :] if cut >= 0 else b""
            line_number += 1
        while True:
            buffer = stream.read(block_bytes)
            if not buffer:
                break
            data = carry + buffer if carry else buffer
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            block, carry = data[: cut + 1], data[cut + 1 :]
            line_count = block.count(b"\n")
            yield Block(block, line_number, compressed_position(stream), line_count)
            line_number += line_count
        if carry:
            yield Block(carry + b"\n", line_number, compressed_position(stream), carry.count(b"\n") + 1)


@dataclasses.dataclass
class ScannedBlock:
    """Good lines of a block, ready for the CSV parser, and the rejected lines."""

    data: bytes  # good lines only, '\n'-terminated, trailing separators removed
    line_numbers: np.ndarray  # int64 [rows], physical line number of each good line
    bad_rows: list[BadRow]
    blank_lines: int


def _field_with(fields: Sequence[bytes], needle: bytes) -> int:
    for index, field in enumerate(fields):
        if needle in field:
            return index
    return 0


def scan_block(
    block: Block,
    *,
    path: str,
    separator: bytes,
    column_names: Sequence[str],
) -> ScannedBlock:
    """Validate the lines of `block` in a vectorised way and return only the good ones.

    A line is good when it has exactly len(column_names) fields, or one more field that is
    empty because the line ends in a separator (that separator is removed), and contains
    no double quote and no NUL byte. None of the supported datasets quotes its values, so
    any double quote is a stray one. CRLF line endings are converted to LF. Blank lines are
    dropped and counted, not rejected.
    """
    data = block.data
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    buffer = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buffer == 10)
    starts = np.empty_like(newlines)
    starts[0] = 0
    starts[1:] = newlines[:-1] + 1
    lengths = newlines - starts
    num_fields = len(column_names)
    separator_code = separator[0]

    # Each segment [start, next start) contains at least its newline, so the reduceat
    # segments never collapse.
    separator_counts = np.add.reduceat(buffer == separator_code, starts, dtype=np.int32)
    blank = lengths == 0
    last_byte = buffer[np.maximum(newlines - 1, 0)]
    trailing = (separator_counts == num_fields) & (last_byte == separator_code) & ~blank
    wrong_count = (separator_counts != num_fields - 1) & ~trailing & ~blank
    bad = wrong_count.copy()
    has_quote = np.zeros_like(bad)
    has_nul = np.zeros_like(bad)
    if b'"' in data:
        has_quote = np.add.reduceat(buffer == ord('"'), starts, dtype=np.int32) > 0
        bad |= has_quote
    if b"\x00" in data:
        has_nul = np.add.reduceat(buffer == 0, starts, dtype=np.int32) > 0
        bad |= has_nul
    line_numbers = block.first_line + np.arange(len(starts), dtype=np.int64)

    bad_rows = []
    for index in np.flatnonzero(bad):
        line = bytes(buffer[starts[index] : newlines[index]])
        fields = line.split(separator)
        number = int(line_numbers[index])
        if has_nul[index]:
            column_index = _field_with(fields, b"\x00")
            reason, detail = REASON_NUL, "NUL byte in value"
        elif has_quote[index]:
            column_index = _field_with(fields, b'"')
            reason, detail = REASON_QUOTE, "double quote in value; values are never quoted"
        else:
            bad_rows.append(
                BadRow(
                    path,
                    number,
                    "-",
                    shorten(line.decode("utf-8", errors="replace")),
                    REASON_FIELD_COUNT,
                    f"{len(fields)} fields separated by {separator.decode()!r}, expected {num_fields}",
                )
            )
            continue
        column = column_names[column_index] if column_index < num_fields else f"#{column_index + 1}"
        value = fields[column_index].decode("utf-8", errors="replace")
        bad_rows.append(BadRow(path, number, column, shorten(value), reason, detail))

    keep = ~bad & ~blank
    if keep.all() and not trailing.any():
        return ScannedBlock(data, line_numbers, bad_rows, 0)

    # Rebuild the block from the good lines, without trailing separators.
    line_of_byte = np.repeat(np.arange(len(starts)), lengths + 1)
    keep_byte = keep[line_of_byte]
    keep_byte[newlines[trailing] - 1] = False
    return ScannedBlock(
        buffer[keep_byte].tobytes(), line_numbers[keep], bad_rows, int(blank.sum())
    )


# --- Keys ------------------------------------------------------------------------------
# Categorical values are counted and encoded as 64-bit keys, not as Python strings, so
# that tens of millions of distinct levels fit in a few hundred MB. A key depends only on
# the value's bytes. A value of exactly 8 bytes (the hex hashes of Criteo and Avazu) is its
# own key: the bytes read as a little-endian int64, with no hashing. Any other value is
# hashed with splitmix64 over its zero-padded 8-byte words, seeded with its length. Two
# different values share a key with probability about 2**-64 per pair.

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def splitmix64(values: np.ndarray) -> np.ndarray:
    """Apply the splitmix64 finaliser elementwise to uint64 values (wrapping arithmetic)."""
    z = values.astype(np.uint64) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def _combine(lengths: np.ndarray, words: np.ndarray) -> np.ndarray:
    """Key from lengths [n] and zero-padded little-endian 8-byte words [n, w]."""
    key = splitmix64(lengths.astype(np.uint64))
    key = splitmix64(key ^ words[:, 0])
    # Only a value's own words are mixed in, so the key does not depend on the width of
    # the widest value in the same array.
    words_needed = (lengths.astype(np.int64) + 7) // 8
    for column in range(1, words.shape[1]):
        mixed = splitmix64(key ^ words[:, column])
        key = np.where(words_needed > column, mixed, key)
    key = np.where(lengths == 8, words[:, 0], key)
    return key.view(np.int64)


_EMPTY_KEY = int(_combine(np.zeros(1, np.int64), np.zeros((1, 1), np.uint64))[0])


def string_keys(array) -> np.ndarray:
    """Return int64 keys [n] for a pyarrow string array (one chunk), one per value.

    Equal strings get equal keys in every chunk, file and run. Null counts as "".
    """
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        if array.num_chunks == 0:
            return np.zeros(0, np.int64)
        return np.concatenate([string_keys(chunk) for chunk in array.chunks])
    if array.type == pa.large_string():
        array = array.cast(pa.string())
    count = len(array)
    if count == 0:
        return np.zeros(0, np.int64)
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[array.offset : array.offset + count + 1]
    data = (
        np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    )
    lengths = np.diff(offsets)
    if array.null_count:
        valid = np.asarray(array.is_valid())
        lengths = np.where(valid, lengths, 0)
    max_length = int(lengths.max())
    num_words = max(1, (max_length + 7) // 8)

    if max_length == 8 and np.all((lengths == 8) | (lengths == 0)):
        # Fast path (Criteo and Avazu hashes): the non-empty values are consecutive
        # 8-byte words in the data buffer, in row order, so no gather is needed.
        nonempty = lengths == 8
        chunk = data[offsets[0] : offsets[-1]]
        if array.null_count:
            chunk = np.concatenate([data[offsets[i] : offsets[i] + 8] for i in np.flatnonzero(nonempty)])
        keys = np.full(count, _EMPTY_KEY, np.int64)
        keys[nonempty] = np.frombuffer(chunk.tobytes(), dtype="<i8")
        return keys

    width = num_words * 8
    positions = offsets[:-1, None] + np.arange(width, dtype=np.int32)[None, :]
    inside = np.arange(width, dtype=np.int32)[None, :] < lengths[:, None]
    padded = np.zeros((count, width), np.uint8)
    if len(data):
        padded[inside] = data[positions[inside]]
    words = padded.view("<u8")
    return _combine(lengths, words)


def hashed_mask(array) -> np.ndarray:
    """Bool mask of the values of a pyarrow binary array whose key is a hash (length != 8)."""
    import pyarrow.compute as pc

    return np.asarray(pc.binary_length(array).to_numpy(zero_copy_only=False)) != 8


def key_bytes_text(key: int) -> str:
    """Text of an 8-byte value from its key (the inverse of the no-hash case)."""
    return int(key).to_bytes(8, "little", signed=True).decode("utf-8", errors="replace")


def python_string_key(value: str) -> int:
    """Key of one string, equal to `string_keys` on an array holding it (for lookups)."""
    raw = value.encode("utf-8")
    width = max(1, (len(raw) + 7) // 8) * 8
    words = np.frombuffer(raw.ljust(width, b"\0"), dtype="<u8")[None, :]
    return int(_combine(np.array([len(raw)]), words)[0])


@dataclasses.dataclass
class Chunk:
    """Parsed and validated rows of one block, as per-field int64 keys."""

    path: str
    file_index: int
    line_numbers: np.ndarray  # int64 [n]
    labels: np.ndarray  # int8 [n], 0 or 1
    keys: np.ndarray  # int64 [n, num_fields]
    bad_rows: list[BadRow]
    blank_lines: int
    file_bytes: int
    # value_names(field_index, row_indices) -> the raw value strings of those rows, used
    # to write the vocabulary files of the prepared dataset.
    value_names: Callable[[int, np.ndarray], list[str]]
    # Per field, a bool mask [n] of the rows whose key is a hash (so its text must be kept
    # aside), or None when every key of the field can be turned back into its text.
    hashed: list = dataclasses.field(default_factory=list)


def _as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def names_from_table(table, columns: Sequence[str]) -> Callable[[int, np.ndarray], list[str]]:
    """Return a `Chunk.value_names` function that reads the strings of `columns` from a table."""

    def value_names(field_index: int, rows: np.ndarray) -> list[str]:
        column = table.column(columns[field_index])
        return [_as_text(value) for value in column.take(rows).to_pylist()]

    return value_names


@dataclasses.dataclass(frozen=True)
class Field:
    """One model input field of a dataset."""

    name: str
    kind: str  # "categorical" or "numeric" (numeric fields are bucketised to ids too)


# Values that the slow path accepts as integers: what pyarrow's int64 conversion accepts,
# within int64 range (no plus sign, no spaces).
INTEGER_PATTERN = r"^-?[0-9]{1,18}$"


def parse_text(
    data: bytes,
    *,
    separator: str,
    column_names: Sequence[str],
    integer_columns: Sequence[str] = (),
    strict: bool = False,
):
    """Parse lines into a pyarrow table; return (table, invalid integer masks).

    Integer columns become int64 with blank values as null; the other columns stay binary
    (no UTF-8 check, values are only hashed). The second result maps each integer column
    with unparsable values to (bool mask [rows], raw values of the masked rows). Those
    entries are null in the table.

    Raises:
        pyarrow.ArrowInvalid: `strict` and any line or value is malformed (the caller then
            scans the block with `scan_block` and parses it again without `strict`).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import csv

    # pyarrow parses blocks of this many bytes in parallel threads.
    read_options = csv.ReadOptions(column_names=list(column_names), block_size=1 << 20)
    parse_options = csv.ParseOptions(
        delimiter=separator,
        quote_char=False,
        double_quote=False,
        escape_char=False,
        newlines_in_values=False,
        ignore_empty_lines=False,
    )

    def convert_options(types):
        return csv.ConvertOptions(
            column_types=types,
            null_values=[""],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )

    column_types = {name: pa.binary() for name in column_names}
    column_types.update({name: pa.int64() for name in integer_columns})
    source = pa.BufferReader(data)
    try:
        return csv.read_csv(source, read_options, parse_options, convert_options(column_types)), {}
    except pa.ArrowInvalid:
        if strict:
            raise

    # Slow path, only for blocks with a bad integer: find the bad values column by column.
    column_types = {name: pa.binary() for name in column_names}
    table = csv.read_csv(pa.BufferReader(data), read_options, parse_options, convert_options(column_types))
    invalid = {}
    for name in integer_columns:
        column = table.column(name)
        good = pc.or_(pc.match_substring_regex(column, INTEGER_PATTERN), pc.equal(pc.binary_length(column), 0))
        mask = ~np.asarray(good.to_numpy(zero_copy_only=False), dtype=bool)
        raw_values = [
            value.decode("utf-8", errors="replace")
            for value in column.take(np.flatnonzero(mask)).to_pylist()
        ]
        cleaned = pc.if_else(good, column, pa.scalar(None, pa.binary()))
        cleaned = pc.if_else(pc.equal(pc.binary_length(cleaned), 0), pa.scalar(None, pa.binary()), cleaned)
        table = table.set_column(
            table.column_names.index(name), name, pc.cast(pc.cast(cleaned, pa.string()), pa.int64())
        )
        if mask.any():
            invalid[name] = (mask, raw_values)
    return table, invalid


def column_to_numpy(column, *, null_value: int) -> np.ndarray:
    """int64 numpy copy of a pyarrow integer column, nulls replaced by `null_value`."""
    import pyarrow.compute as pc

    return np.asarray(pc.fill_null(column, null_value).to_numpy(zero_copy_only=False), dtype=np.int64)


def value_bad_rows(
    path: str,
    line_numbers: np.ndarray,
    table,
    mask: np.ndarray,
    column: str,
    reason: str,
    detail: str,
) -> list[BadRow]:
    """BadRow entries for the rows of `mask`, showing each row's raw value of `column`."""
    rows = np.flatnonzero(mask)
    values = table.column(column).take(rows).to_pylist()
    result = []
    for row, value in zip(rows, values):
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        result.append(BadRow(path, int(line_numbers[row]), column, shorten(str(value if value is not None else "")), reason, detail))
    return result
