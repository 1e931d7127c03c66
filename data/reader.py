"""The common base of the dataset readers: blocks -> scanned lines -> parsed, keyed chunks."""

from __future__ import annotations

import os
from typing import Iterator, Sequence

import numpy as np

from data import textio
from data.textio import BadRow, Chunk, Field, InputFileError


class DelimitedReader:
    """Read one dataset's delimited text files as `Chunk`s of per-field int64 keys.

    Subclasses set the class attributes and implement `encode`; `check_file` may reject a
    file that belongs to another dataset before any row is read.
    """

    name: str = ""
    fields: tuple[Field, ...] = ()
    separator: str = "\t"
    label_column: str = "label"
    has_header: bool = False

    def column_names(self, path: str) -> tuple[str, ...]:
        """Raw columns of `path`, in file order."""
        raise NotImplementedError

    def integer_columns(self, path: str) -> tuple[str, ...]:
        """Columns parsed as int64 (the label included); a bad value rejects the row."""
        return (self.label_column,)

    def check_file(self, path: str) -> None:
        """Raise InputFileError if `path` is empty or does not look like this dataset."""
        textio.read_header(path)

    def encode(self, table, line_numbers: np.ndarray, path: str):
        """Turn a parsed table into keys.

        Returns (keys int64 [n, F], bad mask [n] of rows with an invalid value,
        make_bad_rows(mask) -> list[BadRow], value_names(field, rows) -> list[str],
        hashed: per field a bool mask [n] of hashed keys or None, see `Chunk.hashed`).
        """
        raise NotImplementedError

    def key_text(self, field_index: int, key: int) -> str:
        """Text of a key that is not a hash (see `Chunk.hashed`): by default an 8-byte value."""
        return textio.key_bytes_text(key)

    def describe(self) -> dict:
        """Preprocessing facts recorded in metadata.json."""
        return {}

    def read(
        self,
        path: str | os.PathLike,
        file_index: int = 0,
        *,
        block_bytes: int = textio.DEFAULT_BLOCK_BYTES,
    ) -> Iterator[Chunk]:
        """Yield the rows of one file as chunks, with every rejected row in `bad_rows`.

        Raises:
            InputFileError: the file is missing, empty, header only, or another format.
        """
        path = os.fspath(path)
        self.check_file(path)
        column_names = self.column_names(path)
        integer_columns = self.integer_columns(path)
        lines_seen = 0
        for block in textio.read_blocks(path, skip_lines=int(self.has_header), block_bytes=block_bytes):
            chunk = self._fast_chunk(path, file_index, block, column_names, integer_columns)
            if chunk is None:
                scanned = textio.scan_block(
                    block, path=path, separator=self.separator.encode(), column_names=column_names
                )
                table, invalid = textio.parse_text(
                    scanned.data,
                    separator=self.separator,
                    column_names=column_names,
                    integer_columns=integer_columns,
                ) if len(scanned.line_numbers) else (None, {})
                chunk = self._chunk(path, file_index, block, scanned, table, invalid, integer_columns)
            lines_seen += len(chunk.labels) + len(chunk.bad_rows) + chunk.blank_lines
            yield chunk
        if lines_seen == 0:
            if self.has_header:
                raise InputFileError(
                    f"input file {path} contains a header line but no data rows"
                )
            raise InputFileError(f"input file is empty: {path}")

    def _fast_chunk(self, path, file_index, block, column_names, integer_columns) -> Chunk | None:
        """Parse a block without the line scan; None when the block needs `scan_block`.

        pyarrow rejects a block with a wrong field count (trailing separators included) or
        a bad integer. A block is only tried when, after CRLF endings become LF, it has no
        CR, quote, NUL byte or blank line, so a parsed block has exactly the file's lines.
        """
        import pyarrow as pa

        data = block.data
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        if b"\r" in data or b'"' in data or b"\x00" in data:
            return None
        # pyarrow reads a blank line as a row of nulls, but blank lines are skipped here.
        if data.startswith(b"\n") or b"\n\n" in data:
            return None
        try:
            table, invalid = textio.parse_text(
                data, separator=self.separator, column_names=column_names,
                integer_columns=integer_columns, strict=True,
            )
        except pa.ArrowInvalid:
            return None
        line_count = block.line_count
        if table.num_rows != line_count:
            return None
        line_numbers = block.first_line + np.arange(line_count, dtype=np.int64)
        scanned = textio.ScannedBlock(data, line_numbers, [], 0)
        return self._chunk(path, file_index, block, scanned, table, invalid, integer_columns)

    def _chunk(self, path, file_index, block, scanned, table, invalid, integer_columns) -> Chunk:
        num_fields = len(self.fields)
        line_numbers = scanned.line_numbers
        bad_rows = list(scanned.bad_rows)
        if len(line_numbers) == 0:
            return Chunk(
                path, file_index, line_numbers, np.zeros(0, np.int8), np.zeros((0, num_fields), np.int64),
                bad_rows, scanned.blank_lines, block.file_bytes, lambda field, rows: [],
                [None] * num_fields,
            )

        bad = np.zeros(len(line_numbers), bool)

        def reject(mask: np.ndarray, make_rows) -> None:
            new = mask & ~bad
            if new.any():
                bad_rows.extend(make_rows(new))
                bad[new] = True

        for column in integer_columns:
            if column not in invalid:
                continue
            mask, raw_values = invalid[column]
            raw_by_row = dict(zip(np.flatnonzero(mask).tolist(), raw_values))
            reject(
                mask,
                lambda new, column=column, raw_by_row=raw_by_row: [
                    BadRow(path, int(line_numbers[row]), column, textio.shorten(raw_by_row[row]),
                           textio.REASON_NOT_INTEGER, "expected an integer or a blank value")
                    for row in np.flatnonzero(new)
                ],
            )

        labels = textio.column_to_numpy(table.column(self.label_column), null_value=-1)
        reject(
            (labels != 0) & (labels != 1),
            lambda new: textio.value_bad_rows(
                path, line_numbers, table, new, self.label_column, textio.REASON_LABEL,
                "the label must be 0 or 1",
            ),
        )

        keys, value_bad, make_value_rows, value_names, hashed = self.encode(table, line_numbers, path)
        reject(value_bad, make_value_rows)

        if not bad.any():
            return Chunk(
                path, file_index, line_numbers, labels.astype(np.int8), keys, bad_rows,
                scanned.blank_lines, block.file_bytes, value_names, hashed,
            )
        keep = ~bad
        kept_rows = np.flatnonzero(keep)
        bad_rows.sort(key=lambda row: row.line)
        return Chunk(
            path=path,
            file_index=file_index,
            line_numbers=line_numbers[keep],
            labels=labels[keep].astype(np.int8),
            keys=keys[keep],
            bad_rows=bad_rows,
            blank_lines=scanned.blank_lines,
            file_bytes=block.file_bytes,
            value_names=lambda field, rows: value_names(field, kept_rows[rows]),
            hashed=[mask[keep] if mask is not None else None for mask in hashed],
        )


def first_data_line(path: str, has_header: bool) -> str | None:
    """Return the first data line of a file (after the header), or None when there is none."""
    with textio.open_binary(path) as stream:
        lines = [stream.readline() for _ in range(2)]
    line = lines[int(has_header)].rstrip(b"\r\n")
    if line.startswith(textio.UTF8_BOM):
        line = line[len(textio.UTF8_BOM):]
    return line.decode("utf-8", errors="replace") if line else None


def guess_dataset(line: str) -> str | None:
    """Name the dataset whose raw format the line looks like, for wrong-dataset errors."""
    lowered = line.lower()
    if lowered.startswith("id,click,hour") or line.count(",") == 23:
        return "avazu"
    if lowered.startswith("click\t") or "\tclick\t" in lowered:
        return "ipinyou"
    tokens = line.split(" ")
    if len(tokens) > 1 and all(":" in token for token in tokens[1:]):
        return "ipinyou"
    if line.count("\t") == 39:
        return "criteo"
    return None


def wrong_dataset_message(path: str, dataset: str, expected: str, line: str) -> str:
    guess = guess_dataset(line)
    hint = f" It looks like {guess} data: rerun with --dataset {guess}." if guess and guess != dataset else ""
    return (
        f"{path} is not in the {dataset} format: expected {expected}, but line 1 is "
        f"{textio.shorten(line)!r}.{hint}"
    )


def check_columns(path: str, header: str, separator: str, required: Sequence[str], dataset: str) -> list[str]:
    """Parse a header line and raise InputFileError unless it has every required column."""
    columns = header.split(separator)
    if columns and columns[-1] == "":
        columns = columns[:-1]
    missing = [name for name in required if name not in columns]
    if missing:
        raise InputFileError(
            wrong_dataset_message(path, dataset, f"a header with the columns {', '.join(required)}", header)
            + f" Missing columns: {', '.join(missing)}."
        )
    return columns
