"""Synthetic data: shapes, click rates, and planted interactions that a linear model misses."""

import numpy as np
import pytest
import scipy.sparse
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import OneHotEncoder

from data import synthetic
from data.pipeline import load_split
from data.prepare import prepare

EXPECTED_FIELDS = {"criteo": 39, "avazu": 21, "ipinyou": 16}


@pytest.mark.parametrize("shape", synthetic.SHAPES)
def test_write_prepared_contract(tmp_path, shape):
    metadata = synthetic.write_prepared(tmp_path / shape, shape, rows=20_000, seed=0)
    assert metadata["num_fields"] == EXPECTED_FIELDS[shape]
    assert metadata["dataset"] == f"synthetic-{shape}"
    total = 0
    positives = 0
    for split in ("train", "validation", "test"):
        ids, labels = load_split(tmp_path / shape, split)
        assert ids.shape == (metadata["splits"][split]["rows"], EXPECTED_FIELDS[shape])
        assert ids.min() >= 0
        assert np.all(ids < np.array(metadata["vocabulary_sizes"]))
        total += len(labels)
        positives += labels.sum()
    assert total == 20_000
    assert abs(positives / total - synthetic.CLICK_RATES[shape]) < 0.02
    orders = sorted({len(group) for group in metadata["synthetic"]["interactions"]})
    assert orders == [2, 3, 4]


def test_same_seed_same_data(tmp_path):
    synthetic.write_prepared(tmp_path / "a", "ipinyou", rows=3_000, seed=4)
    synthetic.write_prepared(tmp_path / "b", "ipinyou", rows=3_000, seed=4)
    synthetic.write_prepared(tmp_path / "c", "ipinyou", rows=3_000, seed=5)
    assert np.array_equal(load_split(tmp_path / "a", "train")[0], load_split(tmp_path / "b", "train")[0])
    assert not np.array_equal(load_split(tmp_path / "a", "train")[0], load_split(tmp_path / "c", "train")[0])


def test_signs_are_balanced():
    world = synthetic.make_world("criteo", 0)
    for probabilities, signs in zip(world.id_probabilities, world.signs):
        assert abs(np.dot(probabilities, signs)) <= probabilities.max() + 1e-9


def fit_auc(train_inputs, train_labels, test_inputs, test_labels) -> float:
    model = LogisticRegression(C=0.5, solver="liblinear", tol=1e-3, max_iter=100)
    model.fit(train_inputs, train_labels)
    return roc_auc_score(test_labels, model.predict_proba(test_inputs)[:, 1])


@pytest.mark.parametrize("shape", synthetic.SHAPES)
def test_linear_model_misses_planted_interactions(shape):
    world = synthetic.make_world(shape, 0)
    ids, labels = synthetic.sample(world, 28_000, 0)
    train, test = slice(0, 20_000), slice(20_000, None)
    # Ids seen fewer than 5 times share one column, as rare levels share the OOV id.
    encoder = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5)
    one_hot_train = encoder.fit_transform(ids[train])
    one_hot_test = encoder.transform(ids[test])
    linear_auc = fit_auc(one_hot_train, labels[train], one_hot_test, labels[test])

    # The same model given the planted products as extra inputs.
    products = world.interaction_features(ids)
    informed_auc = fit_auc(
        scipy.sparse.hstack([one_hot_train, products[train]]).tocsr(), labels[train],
        scipy.sparse.hstack([one_hot_test, products[test]]).tocsr(), labels[test],
    )

    assert informed_auc > linear_auc + 0.08
    assert linear_auc > 0.55  # the first-order part is learnable too


def test_raw_file_goes_through_prepare(tmp_path):
    for shape in synthetic.SHAPES:
        path = tmp_path / f"{shape}.txt"
        synthetic.write_raw(path, shape, rows=5_000, seed=0)
        metadata = prepare(shape, [path], tmp_path / f"{shape}_prepared", min_count=1)
        assert metadata["rows_read"] == 5_000
        assert metadata["rows_rejected"] == 0
        assert metadata["num_fields"] == EXPECTED_FIELDS[shape]


def test_raw_criteo_numeric_tokens_hit_distinct_buckets():
    tokens = synthetic._criteo_numeric_tokens(60)
    assert tokens[1] == ""
    values = [int(token) for index, token in enumerate(tokens) if index != 1]
    buckets = synthetic.criteo.transform_numeric(np.array(values)).tolist()
    assert len(set(buckets)) == len(buckets)
