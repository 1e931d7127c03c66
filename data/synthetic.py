"""Synthetic Criteo-, Avazu- and iPinYou-shaped CTR data with planted feature interactions.

This is the embedded default: models can be trained, compared and tested without any
licensed data. A "world" (vocabulary sizes, id distributions, weights) is drawn from a seed;
rows are then sampled from it:

- Fields and kinds are those of the real prepared datasets: 39 (13 numeric + 26
  categorical) for Criteo, 21 for Avazu, 16 for iPinYou, with the same field names.
- Ids follow a power law (Zipf, exponent 1.1 to 1.5) over a vocabulary of 3 to 20,000 ids
  per field, drawn log-uniformly. In fields of more than 50 ids, up to 5 % of the rows
  have id 0, the out-of-vocabulary id of prepared data.
- The click logit is bias + first-order weights + planted interaction terms of orders 2
  to 4. A term over fields (f1, ..., fk) is amplitude * s_f1(id) * ... * s_fk(id), with
  signs s_f(id) in {-1, +1} balanced so that E[s_f] is about 0 under the field's id
  distribution. Each such product is therefore about uncorrelated with every single
  field's one-hot encoding: a linear model cannot represent it, while a model of feature
  interactions can.
- The bias is calibrated so the click rate is near the real one: 25 % (Criteo), 17 %
  (Avazu) and 3 % for iPinYou. Real iPinYou campaigns have 0.08 % to 1 %; 3 % keeps enough
  positives in small samples for AUC to be measured.

`write_prepared` writes the prepared-dataset format (the same as `data.prepare`);
`write_raw` writes a raw file in the dataset's own text format, to go through the real
reader and `data.prepare` (used by the prepare benchmark and by raw-feature export).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import shutil

import numpy as np

from data import avazu, criteo, ipinyou
from data.preprocess import SPLIT_NAMES
from data.textio import Field

SHAPES = ("criteo", "avazu", "ipinyou")
CLICK_RATES = {"criteo": 0.25, "avazu": 0.17, "ipinyou": 0.03}
# Number of planted interaction terms of order 2, 3 and 4.
INTERACTION_TERMS = {"criteo": (6, 3, 2), "avazu": (5, 3, 1), "ipinyou": (4, 2, 1)}
# Standard deviations of the summed first-order part and of the summed interaction part
# of the logit. With these, the AUC of the true logit is 0.78 to 0.80 on 20,000 test rows
# (measured for seed 0), close to the AUCs reported on the real datasets.
FIRST_ORDER_STD = 0.8
INTERACTION_STD = 1.0
MIN_VOCABULARY = 3
MAX_VOCABULARY = 20_000
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)
# Fields with a natural range keep it (ids 1.. are the values 0.., id 0 is never drawn).
FIELD_VOCABULARY_CAPS = {"hour_of_day": 25, "weekday": 8, "hour": 25}
# Raw files are written in pieces of this many rows.
RAW_ROWS_PER_PIECE = 250_000


def shape_fields(shape: str) -> tuple[Field, ...]:
    """Return the fields of the real prepared dataset that `shape` imitates."""
    if shape == "criteo":
        return criteo.FIELDS
    if shape == "avazu":
        return avazu.FIELDS
    if shape == "ipinyou":
        return ipinyou.FIELDS
    raise ValueError(f"unknown synthetic shape {shape!r}; expected one of {', '.join(SHAPES)}")


@dataclasses.dataclass
class World:
    """The generative model of one synthetic dataset (everything but the sampled rows)."""

    shape: str
    fields: tuple[Field, ...]
    vocabulary_sizes: list[int]
    id_probabilities: list[np.ndarray]  # per field, float64 [size], sums to 1
    first_order: list[np.ndarray]  # per field, float64 [size]
    signs: list[np.ndarray]  # per field, float64 [size] of -1 / +1
    interactions: list[tuple[int, ...]]  # field indices of each planted term
    amplitudes: np.ndarray  # float64 [terms]
    bias: float

    def sample_ids(self, rows: int, rng: np.random.Generator) -> np.ndarray:
        """Sample ids int32 [rows, F], each field independently from its distribution."""
        ids = np.empty((rows, len(self.fields)), np.int32)
        for index, probabilities in enumerate(self.id_probabilities):
            cumulative = np.cumsum(probabilities)
            cumulative[-1] = 1.0
            ids[:, index] = np.searchsorted(cumulative, rng.random(rows), side="right")
        return ids

    def interaction_features(self, ids: np.ndarray) -> np.ndarray:
        """Compute the planted products s_f1 * ... * s_fk, float64 [rows, terms] (an oracle's inputs)."""
        features = np.ones((len(ids), len(self.interactions)))
        for term, group in enumerate(self.interactions):
            for field in group:
                features[:, term] *= self.signs[field][ids[:, field]]
        return features

    def logits(self, ids: np.ndarray) -> np.ndarray:
        """Click logits float64 [rows] of ids [rows, F]."""
        logit = np.full(len(ids), self.bias)
        for index, weights in enumerate(self.first_order):
            logit += weights[ids[:, index]]
        return logit + self.interaction_features(ids) @ self.amplitudes


def _balanced_signs(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Signs in {-1, +1} with sum(p * s) near 0: greedy, most probable id first."""
    signs = np.empty(len(probabilities))
    balance = 0.0
    for index in np.argsort(-probabilities, kind="stable"):
        if abs(balance) < 1e-12:
            sign = 1.0 if rng.random() < 0.5 else -1.0
        else:
            sign = -math.copysign(1.0, balance)
        signs[index] = sign
        balance += sign * probabilities[index]
    return signs


def make_world(shape: str, seed: int = 0) -> World:
    """Draw the generative model of a `shape`-like dataset from `seed`."""
    fields = shape_fields(shape)
    rng = np.random.default_rng([seed, SHAPES.index(shape), 1])
    sizes, probabilities, first_order, signs = [], [], [], []
    for field in fields:
        upper = 200 if field.kind == "numeric" else MAX_VOCABULARY
        size = int(round(math.exp(rng.uniform(math.log(MIN_VOCABULARY), math.log(upper)))))
        size = min(max(size, MIN_VOCABULARY), FIELD_VOCABULARY_CAPS.get(field.name, MAX_VOCABULARY))
        exponent = rng.uniform(1.1, 1.5)
        weights = np.arange(1, size, dtype=np.float64) ** -exponent
        rng.shuffle(weights)  # frequent ids are not always the small ones
        oov_share = rng.uniform(0.0, 0.05) if size > 50 else 0.0
        field_probabilities = np.concatenate([[oov_share], (1 - oov_share) * weights / weights.sum()])
        sizes.append(size)
        probabilities.append(field_probabilities)
        first_order.append(rng.normal(0.0, FIRST_ORDER_STD / math.sqrt(len(fields)), size))
        signs.append(_balanced_signs(field_probabilities, rng))

    interactions = []
    for order, terms in zip((2, 3, 4), INTERACTION_TERMS[shape]):
        for _ in range(terms):
            interactions.append(tuple(sorted(rng.choice(len(fields), size=order, replace=False).tolist())))
    amplitude = INTERACTION_STD / math.sqrt(len(interactions))
    amplitudes = amplitude * rng.choice([-1.0, 1.0], size=len(interactions))
    world = World(shape, fields, sizes, probabilities, first_order, signs, interactions, amplitudes, 0.0)
    world.bias = _calibrate_bias(world, CLICK_RATES[shape], np.random.default_rng([seed, 99]))
    return world


def _calibrate_bias(world: World, click_rate: float, rng: np.random.Generator) -> float:
    """Bias that gives the target mean click probability (bisection on a 20,000-row sample)."""
    logits = world.logits(world.sample_ids(20_000, rng))
    low, high = -20.0, 20.0
    for _ in range(60):
        middle = (low + high) / 2
        rate = np.mean(1 / (1 + np.exp(-(logits + middle))))
        low, high = (middle, high) if rate < click_rate else (low, middle)
    return (low + high) / 2


def sample(world: World, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample (ids int32 [rows, F], labels int32 [rows]) from `world`."""
    rng = np.random.default_rng([seed, 2])
    ids = world.sample_ids(rows, rng)
    probability = 1 / (1 + np.exp(-world.logits(ids)))
    labels = (rng.random(rows) < probability).astype(np.int32)
    return ids, labels


def write_prepared(
    output_dir: str | os.PathLike,
    shape: str = "criteo",
    rows: int = 100_000,
    seed: int = 0,
    *,
    overwrite: bool = False,
) -> dict:
    """Write a synthetic dataset in the prepared format (shards + metadata.json); return the metadata.

    Rows are split 70/10/20 in order (they are independent draws, so order carries nothing).
    Each split is one shard. The folder is written under a temporary name, then renamed.
    """
    output_dir = pathlib.Path(output_dir)
    if output_dir.exists():
        if not overwrite:
            raise FileExistsError(f"output folder already exists: {output_dir}; remove it or pass overwrite=True")
    world = make_world(shape, seed)
    ids, labels = sample(world, rows, seed)
    bounds = np.round(np.cumsum(SPLIT_FRACTIONS) * rows).astype(int)
    starts = np.concatenate([[0], bounds[:-1]])
    temporary = output_dir.parent / f".{output_dir.name}.incomplete-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    try:
        splits = {}
        for name, start, stop in zip(SPLIT_NAMES, starts, bounds):
            records = np.concatenate([labels[start:stop, None], ids[start:stop]], axis=1).astype("<i4")
            shard = f"{name}-00000-of-00001.bin"
            records.tofile(temporary / shard)
            splits[name] = {"rows": int(stop - start), "positives": int(labels[start:stop].sum()), "shards": [shard]}
        metadata = {
            "format_version": 1,
            "dataset": f"synthetic-{shape}",
            "fields": [
                {"name": field.name, "kind": field.kind, "vocabulary_size": size}
                for field, size in zip(world.fields, world.vocabulary_sizes)
            ],
            "vocabulary_sizes": list(world.vocabulary_sizes),
            "num_fields": len(world.fields),
            "splits": splits,
            "seed": seed,
            "min_count": 0,
            "split_mode": "random",
            "split_fractions": list(SPLIT_FRACTIONS),
            "inputs": [],
            "rows_read": rows,
            "rows_rejected": 0,
            "bad_rows": {"count": 0, "by_reason": {}, "examples": []},
            "record_format": "little-endian int32 records of num_fields + 1 values: label, then one id per field",
            "oov_id": 0,
            "synthetic": {
                "click_rate_target": CLICK_RATES[shape],
                "interactions": [list(group) for group in world.interactions],
                "interaction_amplitudes": world.amplitudes.tolist(),
            },
        }
        with open(temporary / "metadata.json", "w") as stream:
            json.dump(metadata, stream, indent=2)
        if output_dir.exists():
            shutil.rmtree(output_dir)
        temporary.rename(output_dir)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return metadata


# --- Raw files ---------------------------------------------------------------------------


def _hex_tokens(values: np.ndarray) -> np.ndarray:
    """8-digit lower-case hex text (numpy 'S8') of the low 32 bits of uint64 values."""
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    shifts = np.arange(28, -4, -4, dtype=np.uint64)
    nibbles = (values.astype(np.uint64)[:, None] >> shifts[None, :]) & np.uint64(15)
    return np.ascontiguousarray(digits[nibbles.astype(np.int64)]).view("S8").ravel()


def _criteo_numeric_tokens(size: int) -> list[str]:
    """Raw text of each numeric id: 1 -> blank, 2 -> -1, 3 -> 0, k >= 4 -> a value of bucket k - 3.

    Id 0 (out of vocabulary) gets a value of a bucket beyond the field's vocabulary.
    """
    tokens = []
    for index in range(size):
        if index == 1:
            tokens.append("")
            continue
        if index in (2, 3):
            tokens.append(str(index - 3))
            continue
        bucket = index - 3 if index >= 4 else size + 50
        value = math.ceil(math.exp(math.sqrt(bucket)))
        while criteo.transform_numeric(np.array([value]))[0] < bucket:
            value += 1
        tokens.append(str(value))
    return tokens


def _category_tokens(world_seed: int, field_index: int, size: int) -> np.ndarray:
    keys = np.arange(size, dtype=np.uint64) + np.uint64((world_seed * 1000 + field_index) << 32)
    from data.textio import splitmix64

    return _hex_tokens(splitmix64(keys))


def _raw_piece(world: World, shape: str, ids: np.ndarray, labels: np.ndarray, first_row: int, rng, seed: int):
    """Build a pyarrow table of raw text columns for one piece of rows."""
    import pyarrow as pa

    rows = len(ids)
    columns: dict[str, pa.Array] = {}
    label_name = "label" if shape == "criteo" else "click"
    if shape == "avazu":
        columns["id"] = pa.array((np.arange(rows, dtype=np.uint64) + np.uint64(first_row)).astype(str))
    columns[label_name] = pa.array(labels.astype(str))
    if shape == "avazu":
        hour_of_day = ids[:, 0] - 1
        weekday = ids[:, 1] - 1
        # 2014-10-20 is a Monday, so day 20 + weekday has that weekday.
        hours = 14_000_000 + 10_000 * 10 + (20 + weekday) * 100 + hour_of_day
        columns["hour"] = pa.array(hours.astype(str))
    for index, field in enumerate(world.fields):
        column = ids[:, index]
        if shape == "avazu" and field.name in ("hour_of_day", "weekday"):
            continue
        if shape == "ipinyou" and field.name in ("weekday", "hour"):
            columns[field.name] = pa.array((column - 1).astype(str))
            continue
        if field.kind == "numeric":
            tokens = pa.array(_criteo_numeric_tokens(world.vocabulary_sizes[index]))
            columns[field.name] = tokens.take(pa.array(column))
            continue
        tokens = _category_tokens(seed, index, world.vocabulary_sizes[index])
        values = tokens[column]
        oov = column == 0
        if oov.any():
            # Out-of-vocabulary ids become values that are (almost always) seen once.
            values[oov] = _hex_tokens(rng.integers(0, 1 << 32, int(oov.sum()), dtype=np.uint64))
        columns[field.name] = pa.array(values.astype(str))
    if shape == "avazu":
        for name in ("device_id", "device_ip"):
            columns[name] = pa.array(_hex_tokens(rng.integers(0, 1 << 32, rows, dtype=np.uint64)).astype(str))
        return pa.table({name: columns[name] for name in avazu.RAW_COLUMNS})
    order = [label_name] + [field.name for field in world.fields]
    return pa.table({name: columns[name] for name in order})


def write_raw(
    path: str | os.PathLike,
    shape: str = "criteo",
    rows: int = 100_000,
    seed: int = 0,
) -> None:
    """Write `rows` synthetic rows in the raw text format of `shape` (".gz" paths are gzipped).

    criteo: Kaggle train.txt (tab-separated, no header); avazu: Kaggle train.csv (with
    header); ipinyou: the decoded TSV form with header. `data.prepare` reads the file like
    real data. Numeric Criteo ids become values of distinct buckets and hour fields their
    natural values, so after preparation the planted interactions are the same up to a
    renumbering of ids.
    """
    import pyarrow as pa
    from pyarrow import csv

    world = make_world(shape, seed)
    rng = np.random.default_rng([seed, 3])
    path = os.fspath(path)
    separator = "," if shape == "avazu" else "\t"
    options = csv.WriteOptions(
        include_header=shape != "criteo", delimiter=separator, quoting_style="none", quoting_header="none"
    )
    sink = pa.CompressedOutputStream(path, "gzip") if path.endswith(".gz") else pa.OSFile(path, "wb")
    with sink:
        writer = None
        for first_row in range(0, rows, RAW_ROWS_PER_PIECE):
            count = min(RAW_ROWS_PER_PIECE, rows - first_row)
            ids = world.sample_ids(count, rng)
            probability = 1 / (1 + np.exp(-world.logits(ids)))
            labels = (rng.random(count) < probability).astype(np.int32)
            table = _raw_piece(world, shape, ids, labels, first_row, rng, seed)
            if writer is None:
                writer = csv.CSVWriter(sink, table.schema, write_options=options)
            writer.write_table(table)
        if writer is not None:
            writer.close()
