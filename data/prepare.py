"""Prepare a raw CTR dataset: split, count levels, encode to int32 shards plus metadata.json.

Usage:
    python -m data.prepare --dataset criteo --input train.txt.gz --output prepared/criteo
    python -m data.prepare --dataset ipinyou --input train.fm.txt --input test.fm.txt \
        --output prepared/ipinyou

Two streaming passes over the input, memory bounded by the number of distinct levels:

1. Count: validate every row, assign it to train/validation/test (seeded per row), count
   every field's levels on the training rows.
2. Encode: keep the levels seen at least `min_count` times in the training split (ids 1..
   by decreasing count, id 0 for everything else), encode every row, write it to one of
   the split's shards chosen by a seeded row hash, then permute each training shard.

The output folder is built under a temporary name beside it and renamed at the end, so a
failed run never leaves a complete-looking folder. The format is described in
WORKSPACE.md ("Prepared dataset format").
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import math
import os
import pathlib
import queue
import shutil
import sys
import threading
import time
from typing import Sequence

import numpy as np

from data import avazu, criteo, ipinyou, textio
from data.preprocess import (
    DEFAULT_SPLIT_FRACTIONS,
    DEFAULT_VALIDATION_FRACTION,
    SPLIT_NAMES,
    TRAIN,
    KeyCounter,
    Vocabulary,
    assign_given_split,
    assign_random_split,
    escape_vocabulary_value,
    row_hashes,
)
from data.reader import DelimitedReader
from data.textio import BadRow, BadRowError, InputFileError

FORMAT_VERSION = 1
DATASETS = ("criteo", "avazu", "ipinyou")
ON_BAD_ROW = ("error", "skip")
DEFAULT_ROWS_PER_SHARD = 1_000_000
# metadata.json keeps this many rejected rows as examples.
MAX_BAD_ROW_EXAMPLES = 20
VOCABULARY_DIR = "vocabularies"
# Pass 1 stores every valid row's keys (int64, field-major per chunk) and its label, split
# and shard hash here, inside the temporary output folder, so pass 2 needs no parsing.
KEYS_FILE = "pass1-keys.bin"
ROWS_FILE = "pass1-rows.bin"

logger = logging.getLogger(__name__)


def make_reader(dataset: str, path: str, featindex: str | None = None) -> DelimitedReader:
    """Return the reader for one input file of `dataset`."""
    if dataset == "criteo":
        return criteo.CriteoReader()
    if dataset == "avazu":
        return avazu.AvazuReader()
    if dataset == "ipinyou":
        return ipinyou.reader_for(path, featindex)
    raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")


class BadRowReport:
    """Counts of rejected rows by reason, with the first few as examples."""

    def __init__(self):
        self.count = 0
        self.by_reason: dict[str, int] = {}
        self.examples: list[BadRow] = []

    def add(self, rows: Sequence[BadRow]) -> None:
        for row in rows:
            self.count += 1
            self.by_reason[row.reason] = self.by_reason.get(row.reason, 0) + 1
            if len(self.examples) < MAX_BAD_ROW_EXAMPLES:
                self.examples.append(row)

    def to_json(self) -> dict:
        return {
            "count": self.count,
            "by_reason": dict(sorted(self.by_reason.items())),
            "examples": [row.to_json() for row in self.examples],
        }


def _progress_bar(total: int, description: str, enabled: bool, unit: str = "B"):
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, unit_scale=True, desc=description, disable=not enabled)


def _read_all(readers, inputs, block_bytes):
    for file_index, (reader, path) in enumerate(zip(readers, inputs)):
        yield from reader.read(path, file_index, block_bytes=block_bytes)


def _iterate_chunks(readers, inputs, block_bytes, bar):
    """Yield the chunks of all inputs, read and parsed one chunk ahead in a background thread.

    Parsing (pyarrow, GIL released) then overlaps the caller's counting of the previous
    chunk. Reader exceptions are raised here, in the caller's thread.
    """
    results: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    finished = object()

    def produce() -> None:
        try:
            for chunk in _read_all(readers, inputs, block_bytes):
                if stop.is_set():
                    return
                results.put(chunk)
            results.put(finished)
        except BaseException as error:  # handed to the consumer, which re-raises it
            results.put(error)

    thread = threading.Thread(target=produce, name="prepare-reader", daemon=True)
    thread.start()
    try:
        consumed = {}
        while True:
            item = results.get()
            if item is finished:
                return
            if isinstance(item, BaseException):
                raise item
            bar.update(item.file_bytes - consumed.get(item.file_index, 0))
            consumed[item.file_index] = item.file_bytes
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                results.get(timeout=0.1)
            except queue.Empty:
                pass


def prepare(
    dataset: str,
    inputs: Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    *,
    min_count: int = 20,
    seed: int = 0,
    on_bad_row: str = "error",
    featindex: str | os.PathLike | None = None,
    split_fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    rows_per_shard: int = DEFAULT_ROWS_PER_SHARD,
    block_bytes: int = textio.DEFAULT_BLOCK_BYTES,
    overwrite: bool = False,
    progress: bool = False,
) -> dict:
    """Prepare `inputs` of `dataset` into `output_dir`; return the metadata written.

    Args:
        dataset: "criteo", "avazu" or "ipinyou".
        inputs: one file (split at random by `split_fractions`) or a train and a test file
            (the validation split is `validation_fraction` of the train file's rows).
        output_dir: folder to create; it must not exist unless `overwrite`.
        min_count: levels seen fewer times in the training split map to id 0.
        seed: seeds the split, the shard assignment and the shard permutation.
        on_bad_row: "error" stops at the first malformed row (BadRowError naming file,
            line, column and value); "skip" counts it in metadata["bad_rows"].
        featindex: the `featindex.fm.txt` of indexed iPinYou input (default: beside it).
        rows_per_shard: approximate rows per shard file.
        block_bytes: bytes read per chunk; memory is a small multiple of this plus the
            level counts.
        overwrite: replace an existing `output_dir` (only after the new one is complete).
        progress: show tqdm progress bars on stderr.

    Raises:
        InputFileError: an input is missing, empty, header only or another dataset's.
        BadRowError: a malformed row while on_bad_row="error".
        FileExistsError: `output_dir` exists and `overwrite` is False.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    if on_bad_row not in ON_BAD_ROW:
        raise ValueError(f"on_bad_row must be 'error' or 'skip', got {on_bad_row!r}")
    if not 1 <= len(inputs) <= 2:
        raise ValueError(f"expected one input file or a train and a test file, got {len(inputs)} inputs")
    if min_count < 1:
        raise ValueError(f"min_count must be at least 1, got {min_count}")
    if len(split_fractions) != 3 or min(split_fractions) < 0 or abs(sum(split_fractions) - 1) > 1e-9:
        raise ValueError(f"split_fractions must be three non-negative numbers summing to 1, got {split_fractions}")
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    if rows_per_shard < 1:
        raise ValueError(f"rows_per_shard must be positive, got {rows_per_shard}")

    inputs = [os.fspath(path) for path in inputs]
    for path in inputs:
        textio.open_binary(path).close()  # missing file: one clear error before any work
    readers = [make_reader(dataset, path, featindex) for path in inputs]
    fields = readers[0].fields
    output_dir = pathlib.Path(output_dir)
    if output_dir.exists() and not overwrite:
        raise FileExistsError(f"output folder already exists: {output_dir}; remove it or pass --overwrite")

    given_split = len(inputs) == 2

    # A row's split and shard depend on (seed, file index, physical line number), the
    # header line counted, so other code can recompute them from the raw file.
    def assign(chunk: textio.Chunk) -> np.ndarray:
        if given_split:
            return assign_given_split(seed, chunk.file_index, chunk.line_numbers, validation_fraction)
        return assign_random_split(seed, chunk.file_index, chunk.line_numbers, split_fractions)

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    temporary = output_dir.parent / f".{output_dir.name}.incomplete-{os.getpid()}"
    if temporary.exists():
        shutil.rmtree(temporary)
    temporary.mkdir()
    total_bytes = sum(os.path.getsize(path) for path in inputs)
    started = time.monotonic()
    logger.info("preparing %s from %s into %s", dataset, ", ".join(inputs), output_dir)
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2))
    try:
        # Pass 1: validate, split, count, and store the keys for pass 2.
        report = BadRowReport()
        counters = [KeyCounter() for _ in fields]
        hashed_names: list[dict[int, str]] = [{} for _ in fields]
        rows = np.zeros(3, np.int64)
        positives = np.zeros(3, np.int64)
        rows_read = 0
        blank_lines = 0
        chunk_rows: list[int] = []
        with _progress_bar(total_bytes, "pass 1/2 count", progress) as bar, \
                open(temporary / KEYS_FILE, "wb") as keys_file, \
                open(temporary / ROWS_FILE, "wb") as rows_file:
            for chunk in _iterate_chunks(readers, inputs, block_bytes, bar):
                if chunk.bad_rows and on_bad_row == "error":
                    raise BadRowError(chunk.bad_rows[0])
                report.add(chunk.bad_rows)
                rows_read += len(chunk.labels) + len(chunk.bad_rows)
                blank_lines += chunk.blank_lines
                if len(chunk.labels) == 0:
                    continue
                split = assign(chunk)
                rows += np.bincount(split, minlength=3)
                positives += np.bincount(split, weights=chunk.labels, minlength=3).astype(np.int64)
                _count_chunk(chunk, split, counters, hashed_names, executor)
                shard_hash = row_hashes(seed, chunk.file_index, chunk.line_numbers, stream=1) >> np.uint64(33)
                row_info = np.stack([chunk.labels.astype(np.int32) + 2 * split, shard_hash.astype(np.int32)], axis=1)
                rows_file.write(np.ascontiguousarray(row_info, dtype="<i4").data)
                # Field-major, so pass 2 encodes each field from a contiguous array.
                keys_file.write(np.ascontiguousarray(chunk.keys.T, dtype="<i8").data)
                chunk_rows.append(len(chunk.labels))
        if rows.sum() == 0:
            raise InputFileError(
                f"no valid rows in {', '.join(inputs)}: all {rows_read} rows were rejected "
                f"({report.by_reason}); check the --dataset choice and the file format"
            )
        vocabularies = [Vocabulary.from_counts(*counter.totals(), min_count) for counter in counters]
        del counters
        # Value text per id: kept aside for hashed keys, recovered from the key otherwise.
        names = [
            [hashed[key] if key in hashed else readers[0].key_text(index, key) for key in vocabulary.keys_by_id.tolist()]
            for index, (vocabulary, hashed) in enumerate(zip(vocabularies, hashed_names))
        ]
        del hashed_names

        # Pass 2: encode the stored keys and write the shards.
        num_shards = [math.ceil(count / rows_per_shard) if count else 0 for count in rows]
        shard_paths = [
            [f"{SPLIT_NAMES[split]}-{index:05d}-of-{num_shards[split]:05d}.bin" for index in range(num_shards[split])]
            for split in range(3)
        ]
        written = np.zeros(3, np.int64)
        writers = [[open(temporary / name, "wb", buffering=1 << 20) for name in paths] for paths in shard_paths]
        try:
            with _progress_bar(int(sum(chunk_rows)), "pass 2/2 encode", progress, unit=" rows") as bar, \
                    open(temporary / KEYS_FILE, "rb") as keys_file, \
                    open(temporary / ROWS_FILE, "rb") as rows_file:
                for count in chunk_rows:
                    row_info = np.fromfile(rows_file, dtype="<i4", count=2 * count).reshape(count, 2)
                    keys = np.fromfile(keys_file, dtype="<i8", count=len(fields) * count).reshape(len(fields), count)
                    _encode_chunk(row_info, keys, vocabularies, writers, num_shards, written, executor)
                    bar.update(count)
        finally:
            for split_writers in writers:
                for writer in split_writers:
                    writer.close()
        (temporary / KEYS_FILE).unlink()
        (temporary / ROWS_FILE).unlink()
        if not np.array_equal(written, rows):
            raise RuntimeError(f"pass 1 counted {rows.tolist()} rows per split, pass 2 wrote {written.tolist()}")

        num_columns = len(fields) + 1
        for index, name in enumerate(shard_paths[TRAIN]):
            _permute_shard(temporary / name, num_columns, seed, index)
        for split in range(3):
            kept = [name for name in shard_paths[split] if (temporary / name).stat().st_size > 0]
            for name in set(shard_paths[split]) - set(kept):
                (temporary / name).unlink()
            shard_paths[split] = kept

        field_entries = _write_vocabularies(temporary, fields, vocabularies, names)
        metadata = {
            "format_version": FORMAT_VERSION,
            "dataset": dataset,
            "fields": field_entries,
            "vocabulary_sizes": [vocabulary.size for vocabulary in vocabularies],
            "num_fields": len(fields),
            "splits": {
                SPLIT_NAMES[split]: {
                    "rows": int(rows[split]),
                    "positives": int(positives[split]),
                    "shards": shard_paths[split],
                }
                for split in range(3)
            },
            "seed": seed,
            "min_count": min_count,
            "split_mode": "given_train_test" if given_split else "random",
            "split_fractions": None if given_split else [float(f) for f in split_fractions],
            "validation_fraction_of_train_file": validation_fraction if given_split else None,
            "inputs": [os.path.abspath(path) for path in inputs],
            "rows_read": int(rows_read),
            "rows_rejected": report.count,
            "blank_lines_skipped": int(blank_lines),
            "bad_rows": report.to_json(),
            "on_bad_row": on_bad_row,
            "record_format": "little-endian int32 records of num_fields + 1 values: label, then one id per field",
            "oov_id": 0,
            "preprocessing": readers[0].describe(),
        }
        with open(temporary / "metadata.json", "w") as stream:
            json.dump(metadata, stream, indent=2)
        _publish(temporary, output_dir, overwrite)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    finally:
        executor.shutdown()
    elapsed = time.monotonic() - started
    logger.info("prepared %d rows in %.1f s (%.0f rows/s)", rows_read, elapsed, rows_read / max(elapsed, 1e-9))
    return metadata


def _count_chunk(chunk, split, counters, hashed_names, executor) -> None:
    """Count the training rows' keys per field; keep the text of new hashed keys."""
    train_rows = np.flatnonzero(split == TRAIN)

    def count_field(index: int) -> None:
        keys = chunk.keys[:, index][train_rows]
        counters[index].add(keys)
        hashed = chunk.hashed[index]
        if hashed is None:
            return
        rows = train_rows[hashed[train_rows]]
        if len(rows) == 0:
            return
        unique, first = np.unique(chunk.keys[rows, index], return_index=True)
        known = hashed_names[index]
        new = [position for position, key in enumerate(unique.tolist()) if key not in known]
        if new:
            texts = chunk.value_names(index, rows[first[new]])
            for key, text in zip(unique[new].tolist(), texts):
                known[key] = text

    list(executor.map(count_field, range(len(counters))))


def _encode_chunk(row_info, keys, vocabularies, writers, num_shards, written, executor) -> None:
    """Encode one stored chunk and append its records to the shards of their splits."""
    count = len(row_info)
    records = np.empty((count, len(vocabularies) + 1), "<i4")
    records[:, 0] = row_info[:, 0] & 1
    split = row_info[:, 0] >> 1
    shard_hash = row_info[:, 1].astype(np.int64)

    def encode_field(index: int) -> None:
        records[:, index + 1] = vocabularies[index].encode(keys[index])

    list(executor.map(encode_field, range(len(vocabularies))))
    for split_index in range(3):
        mask = split == split_index
        if not mask.any():
            continue
        split_records = records[mask]
        shards = shard_hash[mask] % num_shards[split_index]
        order = np.argsort(shards, kind="stable")
        boundaries = np.searchsorted(shards[order], np.arange(num_shards[split_index] + 1))
        for shard in range(num_shards[split_index]):
            start, stop = boundaries[shard], boundaries[shard + 1]
            if stop > start:
                writers[split_index][shard].write(split_records[order[start:stop]].tobytes())
        written[split_index] += int(mask.sum())


def _permute_shard(path: pathlib.Path, num_columns: int, seed: int, index: int) -> None:
    """Shuffle a training shard's records in place (seeded), so file order carries no time."""
    records = np.fromfile(path, dtype="<i4").reshape(-1, num_columns)
    permutation = np.random.default_rng([seed, index]).permutation(len(records))
    records[permutation].tofile(path)


def _write_vocabularies(folder: pathlib.Path, fields, vocabularies, names: list[list[str]]) -> list[dict]:
    """Write one TSV per field (id, value, train_count); return the metadata field entries."""
    (folder / VOCABULARY_DIR).mkdir()
    entries = []
    for field, vocabulary, field_names in zip(fields, vocabularies, names):
        relative = f"{VOCABULARY_DIR}/{field.name}.tsv"
        with open(folder / relative, "w", encoding="utf-8") as stream:
            stream.write("id\tvalue\ttrain_count\n")
            for index in range(1, vocabulary.size):
                value = field_names[index - 1]
                stream.write(f"{index}\t{escape_vocabulary_value(value)}\t{vocabulary.counts_by_id[index - 1]}\n")
        entries.append(
            {
                "name": field.name,
                "kind": field.kind,
                "vocabulary_size": vocabulary.size,
                "vocabulary_file": relative,
                "oov_train_count": vocabulary.oov_count,
            }
        )
    return entries


def _publish(temporary: pathlib.Path, output_dir: pathlib.Path, overwrite: bool) -> None:
    if output_dir.exists():
        if not overwrite:
            raise FileExistsError(f"output folder already exists: {output_dir}; remove it or pass --overwrite")
        retired = output_dir.parent / f".{output_dir.name}.replaced-{os.getpid()}"
        output_dir.rename(retired)
        temporary.rename(output_dir)
        shutil.rmtree(retired)
    else:
        temporary.rename(output_dir)


def format_accounting(metadata: dict) -> str:
    """Format a short text summary: rows per split, rejected rows, and the identity check."""
    splits = metadata["splits"]
    accounted = sum(splits[name]["rows"] for name in SPLIT_NAMES) + metadata["rows_rejected"]
    lines = [f"dataset {metadata['dataset']}: {metadata['num_fields']} fields, vocabulary sizes {metadata['vocabulary_sizes']}"]
    for name in SPLIT_NAMES:
        split = splits[name]
        rate = split["positives"] / split["rows"] if split["rows"] else float("nan")
        lines.append(f"  {name:<10} {split['rows']:>12,} rows  {split['positives']:>10,} positives ({rate:.2%})  {len(split['shards'])} shards")
    lines.append(f"  {'rejected':<10} {metadata['rows_rejected']:>12,} rows  {metadata['bad_rows']['by_reason']}")
    status = "OK" if accounted == metadata["rows_read"] else "MISMATCH"
    lines.append(f"  {'read':<10} {metadata['rows_read']:>12,} rows = train + validation + test + rejected: {status}")
    if metadata.get("blank_lines_skipped"):
        lines.append(f"  blank lines skipped: {metadata['blank_lines_skipped']}")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
    from absl import flags

    del argv
    values = flags.FLAGS
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        metadata = prepare(
            values.dataset,
            values.input,
            values.output,
            min_count=values.min_count,
            seed=values.seed,
            on_bad_row=values.on_bad_row,
            featindex=values.featindex,
            rows_per_shard=values.rows_per_shard,
            overwrite=values.overwrite,
            progress=True,
        )
    except (InputFileError, BadRowError, FileExistsError) as error:
        sys.exit(f"error: {error}")
    print(f"wrote {values.output}")
    print(format_accounting(metadata))


def define_flags() -> None:
    from absl import flags

    flags.DEFINE_enum("dataset", None, list(DATASETS), "Dataset format of the input files.")
    flags.DEFINE_multi_string(
        "input", None,
        "Input file (plain or .gz). Give one to split it at random 70/10/20, or two (train, then test).",
    )
    flags.DEFINE_string("output", None, "Folder to write the prepared dataset to (must not exist).")
    flags.DEFINE_integer("min_count", 20, "Levels seen fewer times in the training split map to id 0.", lower_bound=1)
    flags.DEFINE_integer("seed", 0, "Seed of the split, the shard assignment and the shuffling.")
    flags.DEFINE_enum("on_bad_row", "error", list(ON_BAD_ROW), "error: stop at the first malformed row; skip: count it.")
    flags.DEFINE_string("featindex", None, "featindex.fm.txt for indexed iPinYou input (default: beside the input).")
    flags.DEFINE_integer("rows_per_shard", DEFAULT_ROWS_PER_SHARD, "Approximate rows per shard file.", lower_bound=1)
    flags.DEFINE_bool("overwrite", False, "Replace the output folder if it exists.")
    flags.mark_flags_as_required(["dataset", "input", "output"])


if __name__ == "__main__":
    from absl import app

    define_flags()
    app.run(main)
