"""The raw-feature SavedModel encodes raw rows exactly as data.prepare does.

Oracle: data.prepare's own output. With a single input file and fewer rows than one
shard holds, the test split's shard lists the test rows in file order (only training
shards are permuted), and `data.preprocess.assign_random_split` returns the split of
each raw line; the labels of both sides must agree, which checks the alignment. The
exported model must then give exactly the shard's ids and the in-process model's
probabilities on them.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from ada_keras import serving
from ada_keras.model import AdaEnsemble
from data import avazu, criteo, ipinyou
from data.prepare import prepare
from data.preprocess import TEST, assign_random_split
from experiments import export

CRITEO_ROWS = 3000  # of the 10,000-row sample: keeps preparing fast
SERVED_ROWS = 300


def _test_shard(directory):
    """(ids [N, F], labels [N]) of the test split, read as the shard format defines it."""
    metadata = json.loads((directory / "metadata.json").read_text())
    records = [
        np.fromfile(directory / name, dtype="<i4").reshape(-1, metadata["num_fields"] + 1)
        for name in metadata["splits"]["test"]["shards"]
    ]
    assert len(records) == 1, "the oracle needs the whole test split in one shard"
    return records[0][:, 1:], records[0][:, 0], metadata


def _test_lines(lines, seed=0):
    split = assign_random_split(seed, 0, np.arange(1, len(lines) + 1))
    return [line for line, part in zip(lines, split) if part == TEST]


def _tiny_model(vocabulary_sizes):
    keras.utils.set_random_seed(0)
    model = AdaEnsemble(vocabulary_sizes, embedding_dim=4, num_layers=2,
                        experts=("dense", "cross"), top_k=1, seed=0)
    model(tf.zeros((1, len(vocabulary_sizes)), tf.int32))
    return model


def _saved_and_reloaded(model, tmp_path):
    path = tmp_path / "model.keras"
    model.save(path)
    return serving.load_model_safely(path)


@pytest.fixture(scope="module")
def criteo_export(shared_data, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("criteo_export")
    source = shared_data / "criteo" / "criteo_train_head10k.txt"
    with open(source, encoding="utf-8") as stream:
        lines = [next(stream).rstrip("\n") for _ in range(CRITEO_ROWS)]
    raw = tmp_path / "criteo.txt"
    raw.write_text("\n".join(lines) + "\n", encoding="utf-8")
    prepared = tmp_path / "prepared"
    prepare("criteo", [raw], prepared, min_count=3, seed=0)
    ids, labels, metadata = _test_shard(prepared)

    model = _saved_and_reloaded(_tiny_model(metadata["vocabulary_sizes"]), tmp_path)
    exported = tmp_path / "saved_model"
    export.export_model(model, prepared, exported)
    return {
        "lines": _test_lines(lines), "ids": ids, "labels": labels, "model": model,
        "served": tf.saved_model.load(str(exported)), "metadata": metadata,
        "prepared": prepared, "vocabularies": export.read_vocabularies(prepared)[2],
    }


def _criteo_columns(lines):
    columns = {name: [] for name in criteo.COLUMNS}
    for line in lines:
        for name, value in zip(criteo.COLUMNS, line.split("\t")):
            columns[name].append(value)
    return columns


def test_criteo_raw_rows_match_prepared(criteo_export):
    lines, ids = criteo_export["lines"], criteo_export["ids"]
    assert len(lines) == len(ids)
    columns = _criteo_columns(lines)
    np.testing.assert_array_equal(np.array(columns["label"], int), criteo_export["labels"])

    lines, ids = lines[:SERVED_ROWS], ids[:SERVED_ROWS]
    expected = criteo_export["model"].predict(ids, verbose=0)
    served = criteo_export["served"]

    features = {name: tf.constant(values[:SERVED_ROWS])
                for name, values in columns.items() if name != "label"}
    result = served.serve(features)
    np.testing.assert_array_equal(result["ids"].numpy(), ids)
    np.testing.assert_allclose(result["probability"].numpy(), expected, rtol=1e-5, atol=1e-6)

    # Whole lines, with and without the label column, and the default signature.
    with_label = served.serve_lines(tf.constant(lines))
    without_label = served.serve_lines(tf.constant([line.split("\t", 1)[1] for line in lines]))
    np.testing.assert_array_equal(with_label["ids"].numpy(), ids)
    np.testing.assert_array_equal(without_label["ids"].numpy(), ids)
    default = served.signatures["serving_default"](**features)
    np.testing.assert_allclose(default["probability"].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_criteo_int64_endpoint_with_missing_values(criteo_export):
    lines, ids = criteo_export["lines"][:50], criteo_export["ids"][:50]
    columns = _criteo_columns(lines)
    features = {}
    for name in criteo.NUMERIC_COLUMNS:
        values = [int(v) if v else export.MISSING_INTEGER for v in columns[name]]
        features[name] = tf.constant(values, tf.int64)
    for name in criteo.CATEGORICAL_COLUMNS:
        features[name] = tf.constant(columns[name])
    result = criteo_export["served"].serve_int64(features)
    np.testing.assert_array_equal(result["ids"].numpy(), ids)


def test_unseen_categories_and_blank_numerics_serve(criteo_export):
    metadata = criteo_export["metadata"]
    numeric_fields = len(criteo.NUMERIC_COLUMNS)
    features = {name: tf.constant(["", "not-a-number"]) for name in criteo.NUMERIC_COLUMNS}
    features.update({name: tf.constant(["never-seen-value", "0123abcd"])
                     for name in criteo.CATEGORICAL_COLUMNS})
    result = criteo_export["served"].serve(features)
    ids = result["ids"].numpy()
    probability = result["probability"].numpy()
    assert probability.shape == (2, 1)
    assert np.all((probability > 0) & (probability < 1))
    # Unseen categories and malformed numbers map to the OOV id 0.
    assert np.all(ids[:, numeric_fields:] == 0)
    assert np.all(ids[1, :numeric_fields] == 0)
    # A blank numeric value has its own level when the training rows had enough blanks.
    for field, vocabulary in enumerate(criteo_export["vocabularies"][:numeric_fields]):
        expected = vocabulary.index("") + 1 if "" in vocabulary else 0
        assert ids[0, field] == expected, metadata["fields"][field]["name"]


def test_criteo_bucketing_in_graph_matches_numpy():
    values = np.concatenate([np.arange(-5, 2000), np.array([10**6, 10**9, 2**40, 10**18 - 1])])
    text = tf.constant([str(v) for v in values])
    in_graph = export.criteo_bucket_text(text).numpy().astype(str)
    np.testing.assert_array_equal(in_graph, criteo.transform_numeric(values).astype(str))


def test_avazu_hour_fields_match_reader():
    hours = np.array([14102100, 14103023, 14022812, 16022923, 14022923, 14043100,
                      14123123, 14000112, 14130112, 14010124, 99123123, 0])
    hour_of_day, weekday, valid = avazu.split_hour(hours)
    got_hour, got_weekday = export.avazu_hour_fields(tf.constant([str(h) for h in hours]))
    got_hour, got_weekday = got_hour.numpy().astype(str), got_weekday.numpy().astype(str)
    np.testing.assert_array_equal(got_hour[valid], hour_of_day[valid].astype(str))
    np.testing.assert_array_equal(got_weekday[valid], weekday[valid].astype(str))
    assert not valid.all()
    assert np.all(got_hour[~valid] == serving.NO_VALUE)


def test_ipinyou_useragent_and_slotprice_match_reader():
    agents = ["Mozilla/5.0 (Windows NT 6.1) Chrome/27", "Mozilla (iPhone; iOS 6) Safari",
              "Opera/9.80 (Linux)", "curl/7.1", "MSIE 8.0; WINDOWS; ie", ""]
    got = export.ipinyou_useragent(tf.constant(agents)).numpy().astype(str)
    assert list(got) == [ipinyou.reduce_useragent(agent) for agent in agents]
    prices = np.array([-1, 0, 1, 10, 11, 50, 51, 100, 101, 300])
    got = export.ipinyou_slotprice(tf.constant([str(p) for p in prices])).numpy().astype(str)
    np.testing.assert_array_equal(got, ipinyou.bucket_slotprice(prices))


def test_avazu_raw_rows_give_prepared_ids(shared_data, tmp_path):
    source = shared_data / "avazu" / "avazu_train_head9k.csv"
    with open(source, encoding="utf-8") as stream:
        header = next(stream)
        lines = [next(stream).rstrip("\n") for _ in range(2000)]
    raw = tmp_path / "avazu.csv"
    raw.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    prepare("avazu", [raw], tmp_path / "prepared", min_count=2, seed=0)
    ids, labels, metadata = _test_shard(tmp_path / "prepared")
    # Line 1 is the header, so data line i is physical line i + 1.
    split = assign_random_split(0, 0, np.arange(2, len(lines) + 2))
    test_lines = [line for line, part in zip(lines, split) if part == TEST]
    np.testing.assert_array_equal([int(line.split(",")[1]) for line in test_lines], labels)

    model = _tiny_model(metadata["vocabulary_sizes"])
    export.export_model(model, tmp_path / "prepared", tmp_path / "saved_model")
    served = tf.saved_model.load(str(tmp_path / "saved_model"))
    result = served.serve_lines(tf.constant(test_lines[:SERVED_ROWS]))
    np.testing.assert_array_equal(result["ids"].numpy(), ids[:SERVED_ROWS])


def test_ipinyou_decoded_rows_give_prepared_ids(shared_data, tmp_path):
    folder = shared_data / "ipinyou"
    prepare("ipinyou", [folder / "train.decoded.tsv", folder / "test.decoded.tsv"],
            tmp_path / "prepared", min_count=2, seed=0)
    ids, labels, metadata = _test_shard(tmp_path / "prepared")
    with open(folder / "test.decoded.tsv", encoding="utf-8") as stream:
        columns = next(stream).rstrip("\n").split("\t")
        lines = [line.rstrip("\n") for line in stream if line.strip()]
    np.testing.assert_array_equal([int(line.split("\t")[0]) for line in lines], labels)

    model = _tiny_model(metadata["vocabulary_sizes"])
    export.export_model(model, tmp_path / "prepared", tmp_path / "saved_model",
                        ipinyou_form="decoded", ipinyou_columns=columns)
    served = tf.saved_model.load(str(tmp_path / "saved_model"))
    result = served.serve_lines(tf.constant(lines[:SERVED_ROWS]))
    np.testing.assert_array_equal(result["ids"].numpy(), ids[:SERVED_ROWS])


def test_loading_uses_safe_mode(tmp_path):
    inputs = keras.Input((3,))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ValueError, match="safe_mode"):
        serving.load_model_safely(path)


def test_export_rejects_vocabulary_size_mismatch(criteo_export, tmp_path):
    sizes = list(criteo_export["metadata"]["vocabulary_sizes"])
    sizes[0] += 1
    with pytest.raises(ValueError, match="vocabulary sizes"):
        export.export_model(_tiny_model(sizes), criteo_export["prepared"], tmp_path / "x")
