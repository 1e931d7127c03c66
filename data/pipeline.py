"""Input pipelines over a prepared dataset folder (written by `data.prepare` or `data.synthetic`).

A prepared folder contains `metadata.json` and, per split, shard files of little-endian int32
records: the label (0 or 1) followed by one id per field. Field ids are per field, with 0
the out-of-vocabulary id, so every id of field f is in [0, vocabulary_sizes[f]).
"""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np

from data.preprocess import OOV_ID, SPLIT_NAMES, unescape_vocabulary_value

METADATA_FILE = "metadata.json"
SUPPORTED_FORMAT_VERSION = 1
# Records held by the shuffle buffer when the caller gives no size: about 16 MB of ids
# for Criteo's 40 int32 values per record.
DEFAULT_SHUFFLE_BUFFER = 100_000


def load_metadata(directory: str | os.PathLike) -> dict:
    """Read and check `metadata.json` of a prepared dataset folder.

    Raises:
        FileNotFoundError: the folder has no metadata.json (not prepared, or incomplete).
        ValueError: the format version is unknown or the metadata is inconsistent.
    """
    path = pathlib.Path(directory) / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {directory} is not a prepared dataset. Create it with "
            "`python -m data.prepare` or data.synthetic.write_prepared."
        )
    with open(path) as stream:
        metadata = json.load(stream)
    if metadata.get("format_version") != SUPPORTED_FORMAT_VERSION:
        raise ValueError(
            f"{path}: format_version {metadata.get('format_version')!r} is not supported "
            f"(expected {SUPPORTED_FORMAT_VERSION}); prepare the dataset again"
        )
    if len(metadata["vocabulary_sizes"]) != metadata["num_fields"]:
        raise ValueError(f"{path}: vocabulary_sizes has {len(metadata['vocabulary_sizes'])} entries, num_fields is {metadata['num_fields']}")
    return metadata


def _shard_paths(directory: str | os.PathLike, metadata: dict, split: str) -> list[str]:
    if split not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLIT_NAMES)}")
    return [str(pathlib.Path(directory) / name) for name in metadata["splits"][split]["shards"]]


def make_dataset(
    directory: str | os.PathLike,
    split: str,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    repeat: bool = False,
    drop_remainder: bool = False,
    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
    num_workers: int = 1,
    worker_index: int = 0,
):
    """Return a tf.data.Dataset of `(ids, label)` batches of one split.

    ids are int32 [batch, F] and labels float32 [batch, 1]. Records are read with
    FixedLengthRecordDataset, batched, then decoded with one vectorised decode_raw per
    batch, and prefetched. Without `shuffle` the order is that of `load_split`.

    Args:
        directory: prepared dataset folder.
        split: "train", "validation" or "test".
        batch_size: records per batch.
        shuffle: shuffle shard order and records (buffer of `shuffle_buffer` records),
            seeded by `seed`, with a new order every epoch. The training shards of
            `data.prepare` are already permuted on disk, so the buffer mixes shards.
        seed: shuffle seed.
        repeat: repeat the split indefinitely.
        drop_remainder: drop a last batch smaller than batch_size.
        shuffle_buffer: records held by the shuffle buffer.
        num_workers, worker_index: read only the shards i with i % num_workers ==
            worker_index (file-level sharding for distributed input); each worker
            needs at least one shard.
    """
    import tensorflow as tf

    metadata = load_metadata(directory)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if not 0 <= worker_index < num_workers:
        raise ValueError(f"worker_index must be in [0, {num_workers}), got {worker_index}")
    num_fields = metadata["num_fields"]
    record_bytes = 4 * (num_fields + 1)
    files = _shard_paths(directory, metadata, split)[worker_index::num_workers]
    if not files:
        if num_workers > 1 and metadata["splits"][split]["shards"]:
            raise ValueError(
                f"split {split!r} has {len(metadata['splits'][split]['shards'])} shards, too few for "
                f"{num_workers} workers; prepare it with a smaller --rows_per_shard"
            )
        empty = (np.zeros((0, num_fields), np.int32), np.zeros((0, 1), np.float32))
        return tf.data.Dataset.from_tensor_slices(empty).batch(batch_size, drop_remainder=drop_remainder)

    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    def read_shard(path):
        return tf.data.FixedLengthRecordDataset(path, record_bytes, buffer_size=1 << 20)

    if shuffle:
        # Read up to 4 shards at once, so the buffer mixes records of several shards.
        dataset = dataset.interleave(
            read_shard, cycle_length=min(len(files), 4), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    else:
        # Shard after shard: the order of load_split.
        dataset = dataset.flat_map(read_shard)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)

    def decode(records):
        values = tf.io.decode_raw(records, tf.int32, little_endian=True)  # [batch, F + 1]
        values = tf.reshape(values, [-1, num_fields + 1])
        return values[:, 1:], tf.cast(values[:, :1], tf.float32)

    return dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def load_split(directory: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Load a whole split in memory: (ids int32 [N, F], labels float32 [N]), in shard order."""
    metadata = load_metadata(directory)
    num_columns = metadata["num_fields"] + 1
    parts = [
        np.fromfile(path, dtype="<i4").reshape(-1, num_columns)
        for path in _shard_paths(directory, metadata, split)
    ]
    records = np.concatenate(parts) if parts else np.zeros((0, num_columns), np.int32)
    return records[:, 1:].astype(np.int32), records[:, 0].astype(np.float32)


def load_vocabulary(directory: str | os.PathLike, field: str) -> dict[str, int]:
    """Map raw value text to id for one field (ids >= 1; absent values map to 0, the OOV id).

    Numeric Criteo fields list bucketised values (see metadata["preprocessing"]); a blank
    value is the empty string.
    """
    metadata = load_metadata(directory)
    entries = {entry["name"]: entry for entry in metadata["fields"]}
    if field not in entries:
        raise KeyError(f"unknown field {field!r}; fields are {', '.join(entries)}")
    relative = entries[field].get("vocabulary_file")
    if relative is None:
        raise ValueError(f"{directory} has no vocabulary files (synthetic data has no raw values)")
    vocabulary = {}
    with open(pathlib.Path(directory) / relative, encoding="utf-8") as stream:
        next(stream)  # header: id, value, train_count
        for line in stream:
            index, value, _ = line.rstrip("\n").split("\t")
            vocabulary[unescape_vocabulary_value(value)] = int(index)
    return vocabulary


__all__ = ["OOV_ID", "load_metadata", "load_split", "load_vocabulary", "make_dataset"]
