"""Numeric transform, split, level counting, OOV mapping and the prepared output contract."""

import collections
import json
import math
import pathlib

import numpy as np
import pytest

from data import criteo, preprocess
from data.pipeline import load_metadata, load_split, load_vocabulary
from data.prepare import prepare


def test_numeric_transform_against_math():
    values = [-3, -2, -1, 0, 1, 2, 3, 4, 7, 8, 100, 1382, 10**6, 2**31 - 1, 10**15]
    expected = [v if v <= 2 else math.floor(math.log(v) ** 2) for v in values]
    assert criteo.transform_numeric(np.array(values)).tolist() == expected
    # Spot values: 3 -> floor(1.0986^2) = 1, 1382 -> floor(7.2313^2) = 52.
    assert criteo.transform_numeric(np.array([3, 1382])).tolist() == [1, 52]


def test_numeric_transform_wide_range():
    values = np.unique(np.round(np.exp(np.linspace(1.0, 30.0, 3000)))).astype(np.int64)
    expected = [math.floor(math.log(int(v)) ** 2) for v in values]
    assert criteo.transform_numeric(values).tolist() == expected


def test_blank_numeric_gets_own_level(shared_data, tmp_path):
    # I12 (field 11) is blank in most rows of the sample; the blank level is "" in the vocabulary.
    prepare("criteo", [shared_data / "criteo" / "criteo_train_head10k.txt"], tmp_path / "out")
    vocabulary = load_vocabulary(tmp_path / "out", "I12")
    assert "" in vocabulary
    assert vocabulary[""] >= 1
    assert "0" in vocabulary


def test_split_fractions_and_determinism():
    lines = np.arange(1, 200_001)
    split = preprocess.assign_random_split(0, 0, lines)
    fractions = np.bincount(split, minlength=3) / len(lines)
    assert np.allclose(fractions, [0.7, 0.1, 0.2], atol=0.005)
    assert np.array_equal(split, preprocess.assign_random_split(0, 0, lines))
    other = preprocess.assign_random_split(1, 0, lines)
    assert np.mean(split != other) > 0.3
    # The split of a row depends on its line only, not on how lines are grouped.
    pieces = np.concatenate([preprocess.assign_random_split(0, 0, part) for part in np.array_split(lines, 7)])
    assert np.array_equal(split, pieces)


def test_given_split_fractions():
    lines = np.arange(1, 100_001)
    train_file = preprocess.assign_given_split(0, 0, lines)
    assert abs(np.mean(train_file == preprocess.VALIDATION) - 0.125) < 0.005
    assert not np.any(train_file == preprocess.TEST)
    assert np.all(preprocess.assign_given_split(0, 1, lines) == preprocess.TEST)


def test_key_counter_matches_counter():
    rng = np.random.default_rng(0)
    counter = preprocess.KeyCounter(merge_entries=50)
    oracle = collections.Counter()
    for _ in range(40):
        keys = rng.zipf(1.5, size=300).astype(np.int64) * 7 - 1000
        counter.add(keys)
        oracle.update(keys.tolist())
    keys, counts = counter.totals()
    assert np.all(np.diff(keys) > 0)
    assert dict(zip(keys.tolist(), counts.tolist())) == dict(oracle)


def test_vocabulary_encode_maps_rare_and_unseen_to_oov():
    keys = np.array([10, 20, 30, 40], np.int64)
    counts = np.array([5, 25, 20, 100], np.int64)
    vocabulary = preprocess.Vocabulary.from_counts(keys, counts, min_count=20)
    assert vocabulary.size == 4
    assert vocabulary.keys_by_id.tolist() == [40, 20, 30]  # by decreasing count
    assert vocabulary.oov_count == 5
    encoded = vocabulary.encode(np.array([40, 20, 30, 10, 99, -5], np.int64))
    assert encoded.tolist() == [1, 2, 3, 0, 0, 0]


def criteo_oracle(path, seed, min_count):
    """Prepare the Criteo sample in plain Python: per split, the sorted encoded records."""
    with open(path) as stream:
        rows = [line.rstrip("\n").split("\t") for line in stream]
    lines = np.arange(1, len(rows) + 1)
    split = preprocess.assign_random_split(seed, 0, lines)

    def level(column, raw):
        if column <= 13:
            if raw == "":
                return ""
            value = int(raw)
            return str(math.floor(math.log(value) ** 2) if value > 2 else value)
        return raw

    values = [[level(column, raw) for column, raw in enumerate(row) if column > 0] for row in rows]
    vocabularies = []
    for field in range(39):
        counts = collections.Counter(values[i][field] for i in range(len(rows)) if split[i] == preprocess.TRAIN)
        kept = {value for value, count in counts.items() if count >= min_count}
        vocabularies.append(kept)
    return rows, values, split, vocabularies


def test_prepare_matches_python_oracle(shared_data, tmp_path):
    path = shared_data / "criteo" / "criteo_train_head10k.txt"
    seed, min_count = 3, 20
    metadata = prepare("criteo", [path], tmp_path / "out", seed=seed, min_count=min_count)
    rows, values, split, kept = criteo_oracle(path, seed, min_count)

    names = [field.name for field in criteo.FIELDS]
    vocabularies = [load_vocabulary(tmp_path / "out", name) for name in names]
    for field, name in enumerate(names):
        assert set(vocabularies[field]) == kept[field], name
        assert metadata["vocabulary_sizes"][field] == len(kept[field]) + 1
        assert sorted(vocabularies[field].values()) == list(range(1, len(kept[field]) + 1))

    for split_index, split_name in enumerate(preprocess.SPLIT_NAMES):
        expected = np.array(
            [[int(rows[i][0])] + [vocabularies[f].get(values[i][f], 0) for f in range(39)]
             for i in range(len(rows)) if split[i] == split_index],
            np.int32,
        )
        ids, labels = load_split(tmp_path / "out", split_name)
        actual = np.concatenate([labels[:, None].astype(np.int32), ids], axis=1)
        assert metadata["splits"][split_name]["rows"] == len(expected)
        assert metadata["splits"][split_name]["positives"] == int(expected[:, 0].sum())
        assert np.array_equal(np.unique(actual, axis=0), np.unique(expected, axis=0)), split_name
        assert len(actual) == len(expected)


def test_unseen_levels_map_to_oov(shared_data, tmp_path):
    path = shared_data / "criteo" / "criteo_train_head10k.txt"
    metadata = prepare("criteo", [path], tmp_path / "out", min_count=20)
    sizes = np.array(metadata["vocabulary_sizes"])
    rows, values, split, _ = criteo_oracle(path, 0, 1)
    train_levels = [set(values[i][f] for i in range(len(rows)) if split[i] == preprocess.TRAIN) for f in range(39)]
    unseen = 0
    test_rows = [i for i in range(len(rows)) if split[i] == preprocess.TEST]
    ids, _ = load_split(tmp_path / "out", "test")
    assert len(ids) == len(test_rows)
    for split_name in preprocess.SPLIT_NAMES:
        split_ids, _ = load_split(tmp_path / "out", split_name)
        assert split_ids.min() >= 0
        assert np.all(split_ids < sizes[None, :])
    # Values never seen in training must be encoded as 0 in the test split.
    for f in range(39):
        test_unseen = sum(values[i][f] not in train_levels[f] for i in test_rows)
        unseen += test_unseen
        assert np.sum(ids[:, f] == 0) >= test_unseen
    assert unseen > 0


def test_accounting_identity_and_contract(shared_data, tmp_path):
    metadata = prepare("avazu", [shared_data / "avazu" / "avazu_train_head9k.csv"], tmp_path / "out", seed=5)
    on_disk = load_metadata(tmp_path / "out")
    assert on_disk == json.loads(json.dumps(metadata))
    splits = metadata["splits"]
    assert sum(splits[name]["rows"] for name in preprocess.SPLIT_NAMES) + metadata["rows_rejected"] == metadata["rows_read"]
    assert metadata["rows_read"] == 8_999
    for key in ("format_version", "dataset", "fields", "vocabulary_sizes", "num_fields", "splits", "seed",
                "min_count", "split_fractions", "inputs", "rows_read", "rows_rejected", "bad_rows"):
        assert key in metadata, key
    assert metadata["num_fields"] == 21 == len(metadata["fields"])
    assert [field["vocabulary_size"] for field in metadata["fields"]] == metadata["vocabulary_sizes"]
    assert set(metadata["bad_rows"]) == {"count", "by_reason", "examples"}
    for name in preprocess.SPLIT_NAMES:
        shard_rows = sum((tmp_path / "out" / shard).stat().st_size for shard in splits[name]["shards"]) // (4 * 22)
        assert shard_rows == splits[name]["rows"]


def test_prepare_is_deterministic_under_seed(shared_data, tmp_path):
    path = shared_data / "criteo" / "criteo_train_head10k.txt"
    prepare("criteo", [path], tmp_path / "a", seed=7, rows_per_shard=3_000)
    prepare("criteo", [path], tmp_path / "b", seed=7, rows_per_shard=3_000, block_bytes=300_000)
    prepare("criteo", [path], tmp_path / "c", seed=8, rows_per_shard=3_000)
    for split in preprocess.SPLIT_NAMES:
        a = load_split(tmp_path / "a", split)
        b = load_split(tmp_path / "b", split)
        assert np.array_equal(a[0], b[0])
        assert np.array_equal(a[1], b[1])
    assert not np.array_equal(load_split(tmp_path / "a", "train")[0][:100], load_split(tmp_path / "c", "train")[0][:100])
    assert len(load_metadata(tmp_path / "a")["splits"]["train"]["shards"]) == 3


def test_given_train_test_pair(shared_data, tmp_path):
    folder = shared_data / "ipinyou"
    metadata = prepare("ipinyou", [folder / "train.fm.txt", folder / "test.fm.txt"], tmp_path / "out")
    splits = metadata["splits"]
    assert splits["test"]["rows"] == 21_150
    assert splits["train"]["rows"] + splits["validation"]["rows"] == 26_773
    assert abs(splits["validation"]["rows"] / 26_773 - 0.125) < 0.01
    assert metadata["split_mode"] == "given_train_test"
    assert metadata["num_fields"] == 16
    vocabulary = load_vocabulary(tmp_path / "out", "useragent")
    assert vocabulary["android_safari"] == 1


def test_ipinyou_forms_give_same_test_split(shared_data, tmp_path):
    folder = shared_data / "ipinyou"
    indexed = prepare("ipinyou", [folder / "train.fm.txt", folder / "test.fm.txt"], tmp_path / "indexed")
    decoded = prepare("ipinyou", [folder / "train.decoded.tsv", folder / "test.decoded.tsv"], tmp_path / "decoded")
    assert indexed["splits"]["test"] == decoded["splits"]["test"]
    for metadata in (indexed, decoded):
        assert metadata["splits"]["train"]["rows"] + metadata["splits"]["validation"]["rows"] == 26_773
    # The same rows and keys, but the decoded form's header shifts every line number by
    # one, so the seeded validation carve picks other rows.
    assert indexed["splits"]["validation"] != decoded["splits"]["validation"]


def test_invalid_arguments_are_rejected(shared_data, tmp_path):
    path = shared_data / "criteo" / "criteo_train_head10k.txt"
    with pytest.raises(ValueError, match="unknown dataset"):
        prepare("kdd", [path], tmp_path / "out")
    with pytest.raises(ValueError, match="on_bad_row"):
        prepare("criteo", [path], tmp_path / "out", on_bad_row="ignore")
    with pytest.raises(ValueError, match="min_count"):
        prepare("criteo", [path], tmp_path / "out", min_count=0)
    with pytest.raises(ValueError, match="one input file or a train and a test file"):
        prepare("criteo", [path, path, path], tmp_path / "out")


def run_prepare_command(*arguments):
    import subprocess
    import sys

    repository = pathlib.Path(__file__).resolve().parents[1]
    return subprocess.run(
        [sys.executable, "-m", "data.prepare", *map(str, arguments)],
        cwd=repository, capture_output=True, text=True, timeout=300,
    )


def test_command_prints_accounting(shared_data, tmp_path):
    result = run_prepare_command(
        "--dataset", "avazu", "--input", shared_data / "avazu" / "avazu_train_head9k.csv",
        "--output", tmp_path / "out", "--min_count", "5", "--seed", "2",
    )
    assert result.returncode == 0, result.stderr
    assert "8,999 rows = train + validation + test + rejected: OK" in result.stdout
    metadata = load_metadata(tmp_path / "out")
    assert metadata["min_count"] == 5
    assert metadata["seed"] == 2


def test_command_reports_bad_row(shared_data, tmp_path):
    lines = (shared_data / "criteo" / "criteo_train_head10k.txt").read_text().splitlines()[:30]
    lines[9] = "\t".join(["7"] + lines[9].split("\t")[1:])
    path = tmp_path / "train.txt"
    path.write_text("\n".join(lines) + "\n")
    result = run_prepare_command("--dataset", "criteo", "--input", path, "--output", tmp_path / "out")
    assert result.returncode != 0
    assert f"{path}:10: column label" in result.stderr
    assert "'7'" in result.stderr
    assert not (tmp_path / "out").exists()
