"""Split assignment, level counting and vocabulary encoding for prepared datasets.

All three work on the int64 keys that the readers produce, chunk by chunk, so memory is
bounded by the number of distinct levels, never by the number of rows.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from data.textio import splitmix64

TRAIN, VALIDATION, TEST = 0, 1, 2
SPLIT_NAMES = ("train", "validation", "test")
DEFAULT_SPLIT_FRACTIONS = (0.7, 0.1, 0.2)
# With a given train/test file pair, this fraction of the train file becomes the
# validation split, so train:validation keeps the 7:1 ratio of the random split.
DEFAULT_VALIDATION_FRACTION = 0.125

OOV_ID = 0


def row_hashes(seed: int, file_index: int, line_numbers: np.ndarray, stream: int = 0) -> np.ndarray:
    """Hash (seed, file, line, stream) to uint64: the same row gets the same hash in every run.

    `line_numbers` are the rows' physical line numbers in their file (a header is line 1),
    so the hash depends neither on how the file is cut into chunks nor on which other rows
    were rejected.
    """
    base = splitmix64(np.array([seed * 4 + stream], dtype=np.uint64))[0]
    base = splitmix64(np.array([base ^ np.uint64(file_index)], dtype=np.uint64))[0]
    return splitmix64(np.asarray(line_numbers, dtype=np.uint64) ^ base)


def uniform_from_hashes(hashes: np.ndarray) -> np.ndarray:
    """Map uint64 hashes to float64 in [0, 1) using their top 53 bits."""
    return (hashes >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def assign_random_split(
    seed: int,
    file_index: int,
    line_numbers: np.ndarray,
    fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS,
) -> np.ndarray:
    """Return the split (TRAIN, VALIDATION or TEST, int8 [n]) of each row, seeded per row."""
    uniform = uniform_from_hashes(row_hashes(seed, file_index, line_numbers))
    bounds = np.cumsum(np.asarray(fractions, dtype=np.float64))
    return np.searchsorted(bounds[:-1], uniform, side="right").astype(np.int8)


def assign_given_split(
    seed: int,
    file_index: int,
    line_numbers: np.ndarray,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
) -> np.ndarray:
    """Split for a given train/test pair: file 0 is train with a seeded validation part, file 1 is test."""
    if file_index > 0:
        return np.full(len(line_numbers), TEST, np.int8)
    uniform = uniform_from_hashes(row_hashes(seed, file_index, line_numbers))
    return np.where(uniform < validation_fraction, VALIDATION, TRAIN).astype(np.int8)


class KeyCounter:
    """Exact occurrence counts of int64 keys, added chunk by chunk.

    Each chunk is reduced to (unique keys, counts) at once. The reduced chunks are merged
    into the sorted totals when they add up to as many entries as the totals contain (at
    least `merge_entries`), so each entry is merged O(log n) times.
    """

    def __init__(self, merge_entries: int = 1 << 21):
        self.keys = np.zeros(0, np.int64)
        self.counts = np.zeros(0, np.int64)
        self._pending_keys: list[np.ndarray] = []
        self._pending_counts: list[np.ndarray] = []
        self._pending_entries = 0
        self._merge_entries = merge_entries

    def add(self, keys: np.ndarray) -> None:
        if len(keys) == 0:
            return
        unique, counts = np.unique(keys, return_counts=True)
        self._pending_keys.append(unique)
        self._pending_counts.append(counts.astype(np.int64))
        self._pending_entries += len(unique)
        if self._pending_entries >= max(self._merge_entries, len(self.keys)):
            self._merge()

    def _merge(self) -> None:
        if not self._pending_keys:
            return
        keys = np.concatenate([self.keys] + self._pending_keys)
        counts = np.concatenate([self.counts] + self._pending_counts)
        self._pending_keys, self._pending_counts, self._pending_entries = [], [], 0
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        counts = counts[order]
        starts = np.concatenate([[0], np.flatnonzero(np.diff(keys)) + 1])
        self.keys = keys[starts]
        self.counts = np.add.reduceat(counts, starts)

    def totals(self) -> tuple[np.ndarray, np.ndarray]:
        """(sorted unique keys, counts) of everything added so far."""
        self._merge()
        return self.keys, self.counts


@dataclasses.dataclass
class Vocabulary:
    """The ids of one field's kept levels: id 0 is out of vocabulary, ids 1.. by count."""

    keys_by_id: np.ndarray  # int64 [size - 1], key of id 1, 2, ...
    counts_by_id: np.ndarray  # int64 [size - 1], training-split count of each id
    oov_count: int  # training rows of this field that map to OOV_ID
    _sorted_keys: np.ndarray = dataclasses.field(repr=False, default=None)
    _sorted_ids: np.ndarray = dataclasses.field(repr=False, default=None)

    def __post_init__(self):
        order = np.argsort(self.keys_by_id, kind="stable")
        self._sorted_keys = self.keys_by_id[order]
        self._sorted_ids = (order + 1).astype(np.int32)

    @property
    def size(self) -> int:
        """Number of ids, the OOV id included."""
        return len(self.keys_by_id) + 1

    @classmethod
    def from_counts(cls, keys: np.ndarray, counts: np.ndarray, min_count: int) -> "Vocabulary":
        """Keep the levels seen at least `min_count` times; order ids by count, then key."""
        kept = counts >= min_count
        kept_keys = keys[kept]
        kept_counts = counts[kept]
        order = np.lexsort((kept_keys, -kept_counts))
        return cls(kept_keys[order], kept_counts[order], int(counts[~kept].sum()))

    def encode(self, keys: np.ndarray) -> np.ndarray:
        """Map keys to ids (int32, same shape); keys not in the vocabulary map to OOV_ID."""
        if len(self._sorted_keys) == 0:
            return np.zeros(keys.shape, np.int32)
        position = np.searchsorted(self._sorted_keys, keys)
        position = np.minimum(position, len(self._sorted_keys) - 1)
        found = self._sorted_keys[position] == keys
        return np.where(found, self._sorted_ids[position], OOV_ID).astype(np.int32)


def escape_vocabulary_value(value: str) -> str:
    """Escape backslash, tab, CR and LF so a value fits one TSV cell."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def unescape_vocabulary_value(text: str) -> str:
    """Inverse of `escape_vocabulary_value`."""
    result = []
    index = 0
    while index < len(text):
        character = text[index]
        if character == "\\" and index + 1 < len(text):
            result.append({"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}.get(text[index + 1], text[index + 1]))
            index += 2
        else:
            result.append(character)
            index += 1
    return "".join(result)
