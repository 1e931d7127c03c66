"""tf.data pipeline over prepared shards, against load_split."""

import numpy as np
import pytest

from data import synthetic
from data.pipeline import load_metadata, load_split, make_dataset
from data.prepare import prepare


@pytest.fixture(scope="module")
def prepared(shared_data, tmp_path_factory):
    output = tmp_path_factory.mktemp("pipeline") / "criteo"
    prepare("criteo", [shared_data / "criteo" / "criteo_train_head10k.txt"], output, rows_per_shard=2_000)
    return output


def collect(dataset):
    ids, labels = [], []
    for batch_ids, batch_labels in dataset:
        ids.append(batch_ids.numpy())
        labels.append(batch_labels.numpy())
    return np.concatenate(ids), np.concatenate(labels)


def test_round_trip_equals_load_split(prepared):
    for split in ("train", "validation", "test"):
        expected_ids, expected_labels = load_split(prepared, split)
        ids, labels = collect(make_dataset(prepared, split, 512))
        assert ids.dtype == np.int32
        assert labels.dtype == np.float32
        assert labels.shape == (len(expected_labels), 1)
        assert np.array_equal(ids, expected_ids)
        assert np.array_equal(labels[:, 0], expected_labels)


def test_batch_shapes_and_drop_remainder(prepared):
    rows = load_metadata(prepared)["splits"]["validation"]["rows"]
    batches = list(make_dataset(prepared, "validation", 300, drop_remainder=True))
    assert len(batches) == rows // 300
    assert all(ids.shape == (300, 39) for ids, _ in batches)


def test_shuffle_is_seeded_and_complete(prepared):
    expected_ids, _ = load_split(prepared, "train")
    first, _ = collect(make_dataset(prepared, "train", 1000, shuffle=True, seed=1))
    again, _ = collect(make_dataset(prepared, "train", 1000, shuffle=True, seed=1))
    other, _ = collect(make_dataset(prepared, "train", 1000, shuffle=True, seed=2))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert not np.array_equal(first, expected_ids)
    assert np.array_equal(np.unique(first, axis=0), np.unique(expected_ids, axis=0))


def test_repeat_yields_more_than_one_epoch(prepared):
    rows = load_metadata(prepared)["splits"]["test"]["rows"]
    dataset = make_dataset(prepared, "test", 256, repeat=True)
    seen = sum(ids.shape[0] for ids, _ in dataset.take(rows // 256 + 5))
    assert seen > rows


def test_worker_shards_partition_the_split(prepared):
    expected_ids, _ = load_split(prepared, "train")
    assert len(load_metadata(prepared)["splits"]["train"]["shards"]) >= 2
    parts = [collect(make_dataset(prepared, "train", 700, num_workers=2, worker_index=i))[0] for i in range(2)]
    assert sum(len(part) for part in parts) == len(expected_ids)
    combined = np.concatenate(parts)
    assert np.array_equal(np.unique(combined, axis=0), np.unique(expected_ids, axis=0))


def test_synthetic_dataset_through_pipeline(tmp_path):
    metadata = synthetic.write_prepared(tmp_path / "synthetic", "avazu", rows=5_000, seed=1)
    ids, labels = collect(make_dataset(tmp_path / "synthetic", "train", 1024))
    assert ids.shape == (metadata["splits"]["train"]["rows"], 21)
    assert np.all(ids < np.array(metadata["vocabulary_sizes"]))


def test_missing_metadata_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a prepared dataset"):
        load_metadata(tmp_path)


def test_unknown_split_is_rejected(prepared):
    with pytest.raises(ValueError, match="unknown split"):
        load_split(prepared, "dev")
