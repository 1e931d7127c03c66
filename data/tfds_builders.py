"""TensorFlow Datasets builders for Criteo, Avazu and iPinYou (manual download).

The licences of the three datasets do not allow automatic download, so the user places the
raw files in the TFDS manual folder (default `~/tensorflow_datasets/downloads/manual/`,
or `download_config=tfds.download.DownloadConfig(manual_dir=...)`). The builder runs
`data.prepare.prepare` on them (same readers, split, thresholds and encoding as the
command line) and stores the result as a TFDS dataset with the features

    ids: int32 [F], one id per field (0 = out of vocabulary)
    label: int32, 0 or 1

and the vocabulary sizes in `info.metadata["vocabulary_sizes"]`. Importing this module
registers the builders, so that:

    import data.tfds_builders  # noqa: F401
    train = tfds.load("criteo_ctr", split="train", data_dir=..., download_and_prepare_kwargs=
        {"download_config": tfds.download.DownloadConfig(manual_dir=...)})
"""

from __future__ import annotations

import pathlib

import numpy as np
import tensorflow_datasets as tfds

from data import avazu, criteo, ipinyou
from data.pipeline import load_metadata, load_split
from data.prepare import prepare

# Builder configuration: the preprocessing settings of data.prepare.
MIN_COUNT = 20
SEED = 0


class _ManualCTRBuilder(tfds.core.GeneratorBasedBuilder):
    """Common code: find the manual files, prepare them, yield the encoded rows."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Split 70/10/20 (or the given train/test files), min_count 20, seed 0."}
    DATASET = ""
    FIELDS: tuple = ()
    # Each entry is a tuple of file names that together form one accepted input.
    MANUAL_FILE_SETS: tuple[tuple[str, ...], ...] = ()

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "ids": tfds.features.Tensor(shape=(len(self.FIELDS),), dtype=np.int32),
                    "label": tfds.features.Tensor(shape=(), dtype=np.int32),
                }
            ),
            supervised_keys=("ids", "label"),
            metadata=tfds.core.MetadataDict(),
        )

    def _manual_inputs(self, manual_dir: pathlib.Path) -> list[pathlib.Path]:
        for names in self.MANUAL_FILE_SETS:
            paths = [manual_dir / name for name in names]
            if all(path.exists() for path in paths):
                return paths
        accepted = " or ".join("+".join(names) for names in self.MANUAL_FILE_SETS)
        raise FileNotFoundError(
            f"no {self.DATASET} input in the manual folder {manual_dir}: place {accepted} there"
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        manual_dir = pathlib.Path(dl_manager.manual_dir)
        inputs = self._manual_inputs(manual_dir)
        # The prepared shards stay in the TFDS download folder, beside other downloads.
        prepared = pathlib.Path(dl_manager.download_dir) / f"{self.DATASET}_prepared"
        # The indexed iPinYou form passes featindex.fm.txt along; it is not a data input.
        data_inputs = [path for path in inputs if path.name != ipinyou.FEATINDEX_NAME]
        prepare(self.DATASET, data_inputs, prepared, min_count=MIN_COUNT, seed=SEED, overwrite=True)
        metadata = load_metadata(prepared)
        self.info.metadata["vocabulary_sizes"] = metadata["vocabulary_sizes"]
        self.info.metadata["field_names"] = [field["name"] for field in metadata["fields"]]
        self.info.metadata["rows_rejected"] = metadata["rows_rejected"]
        return {split: self._generate_examples(prepared, split) for split in ("train", "validation", "test")}

    def _generate_examples(self, prepared: pathlib.Path, split: str):
        ids, labels = load_split(prepared, split)
        for index in range(len(labels)):
            yield f"{split}-{index}", {"ids": ids[index], "label": int(labels[index])}


class CriteoCtr(_ManualCTRBuilder):
    """Criteo Kaggle Display Advertising Challenge, 39 fields."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = "Place the Kaggle train.txt (or train.txt.gz) in the manual folder."
    DATASET = "criteo"
    FIELDS = criteo.FIELDS
    MANUAL_FILE_SETS = (("train.txt",), ("train.txt.gz",))


class AvazuCtr(_ManualCTRBuilder):
    """Avazu CTR Prediction, 21 fields."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = "Place the Kaggle train.csv (or train.csv.gz, train.gz) in the manual folder."
    DATASET = "avazu"
    FIELDS = avazu.FIELDS
    MANUAL_FILE_SETS = (("train.csv",), ("train.csv.gz",), ("train.gz",))


class IpinyouCtr(_ManualCTRBuilder):
    """iPinYou RTB, 16 fields, from make-ipinyou-data output (its own train/test split)."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Place make-ipinyou-data output of one campaign in the manual folder: train.log.txt and "
        "test.log.txt, or train.fm.txt, test.fm.txt and featindex.fm.txt."
    )
    DATASET = "ipinyou"
    FIELDS = ipinyou.FIELDS
    MANUAL_FILE_SETS = (
        ("train.log.txt", "test.log.txt"),
        ("train.fm.txt", "test.fm.txt", ipinyou.FEATINDEX_NAME),
    )
