"""The TFDS builder on the Criteo sample placed in a manual folder."""

import shutil

import numpy as np
import tensorflow_datasets as tfds

import data.tfds_builders  # noqa: F401  (registers the builders)
from data.pipeline import load_metadata, load_split
from data.prepare import prepare


def test_criteo_builder_matches_prepare(shared_data, tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    source = shared_data / "criteo" / "criteo_train_head10k.txt"
    shutil.copy(source, manual / "train.txt")
    dataset, info = tfds.load(
        "criteo_ctr",
        split="validation",
        data_dir=str(tmp_path / "tfds"),
        with_info=True,
        download_and_prepare_kwargs={"download_config": tfds.download.DownloadConfig(manual_dir=str(manual))},
    )
    prepare("criteo", [source], tmp_path / "prepared")
    expected_ids, expected_labels = load_split(tmp_path / "prepared", "validation")

    rows = list(tfds.as_numpy(dataset))
    ids = np.stack([row["ids"] for row in rows])
    labels = np.array([row["label"] for row in rows])
    assert info.splits["validation"].num_examples == len(expected_labels)
    assert list(info.metadata["vocabulary_sizes"]) == load_metadata(tmp_path / "prepared")["vocabulary_sizes"]
    assert np.array_equal(np.unique(ids, axis=0), np.unique(expected_ids, axis=0))
    assert labels.sum() == expected_labels.sum()
