"""Every baseline on the Criteo sample: builds from its metadata, trains, reloads, runs in float16."""

import keras
import numpy as np
import pytest

from baselines.registry import BASELINE_CLASSES, MODEL_NAMES, build_model, hyperparameter_names
from data.pipeline import load_metadata, load_split, make_dataset
from data.prepare import prepare

VOCABULARY_SIZES = [6, 9, 4, 7, 5]
TRAIN_STEPS = 12

# Tiny widths keep the whole parametrised file within a few seconds per model.
SMALL_HYPERPARAMETERS = {
    "embedding_dim": 4,
    "hidden_units": (16,),
    "residual_hidden_units": (16,),
    "cin_layer_sizes": (8, 6),
    "head_dim": 4,
    "rank": 4,
}

# (name, extra hyper-parameters): every model, plus the variants a model offers.
CASES = [(name, {}) for name in MODEL_NAMES if name != "adaensemble"] + [
    ("dcn_v2", {"cross_type": "low_rank"}),
    ("dcn_v2", {"cross_type": "mixture", "structure": "parallel"}),
    ("dcn_v2", {"hidden_units": ()}),
    ("pnn", {"product_type": "inner"}),
    ("pnn", {"product_type": "outer", "outer_kernel_type": "vec"}),
    ("fibinet", {"bilinear_type": "field_each"}),
    ("xdeepint", {"num_subspaces": 2}),
    ("autoint", {"hidden_units": (16,)}),
    ("dnn", {"use_batch_norm": True, "dropout_rate": 0.1}),
]


def case_id(case):
    name, extra = case
    return name + "".join(f"-{key}={value}" for key, value in extra.items())


def small_model(name, vocabulary_sizes=VOCABULARY_SIZES, extra=None):
    accepted = hyperparameter_names(name)
    hyperparameters = {key: value for key, value in SMALL_HYPERPARAMETERS.items() if key in accepted}
    hyperparameters.update(extra or {})
    return build_model(name, vocabulary_sizes, **hyperparameters)


def random_ids(rows, seed):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, size, rows) for size in VOCABULARY_SIZES], axis=1).astype("int32")


@pytest.fixture(scope="module")
def criteo_sample(shared_data, tmp_path_factory):
    """The Criteo sample prepared by data.prepare: (folder, metadata, train ids, train labels)."""
    folder = tmp_path_factory.mktemp("criteo") / "prepared"
    prepare("criteo", [shared_data / "criteo" / "criteo_train_head10k.txt"], folder)
    ids, labels = load_split(folder, "train")
    return folder, load_metadata(folder), ids[:1024], labels[:1024, None]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_baseline_trains_and_reloads(case, criteo_sample, tmp_path):
    name, extra = case
    folder, metadata, ids, labels = criteo_sample
    keras.utils.set_random_seed(0)
    model = small_model(name, metadata["vocabulary_sizes"], extra)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01))

    loss_before = model.evaluate(ids, labels, batch_size=1024, verbose=0, return_dict=True)["loss"]
    train = make_dataset(folder, "train", batch_size=128, shuffle=True, seed=0).take(TRAIN_STEPS)
    model.fit(train, epochs=1, verbose=0)
    loss_after = model.evaluate(ids, labels, batch_size=1024, verbose=0, return_dict=True)["loss"]
    assert loss_after < loss_before

    predictions = model.predict(ids, batch_size=1024, verbose=0)
    assert predictions.shape == (len(ids), 1)
    assert predictions.dtype == np.float32
    assert np.all((predictions >= 0.0) & (predictions <= 1.0))

    path = tmp_path / f"{name}.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert type(reloaded) is type(model)
    assert reloaded.get_config() == model.get_config()
    np.testing.assert_array_equal(reloaded.predict(ids, batch_size=1024, verbose=0), predictions)


@pytest.mark.parametrize("name", [name for name in MODEL_NAMES if name != "adaensemble"])
def test_baseline_mixed_float16(name, criteo_sample):
    keras.utils.set_random_seed(0)
    _, metadata, ids, labels = criteo_sample
    ids, labels = ids[:256], labels[:256]
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = small_model(name, metadata["vocabulary_sizes"])
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01))
        history = model.fit(ids, labels, batch_size=64, epochs=1, verbose=0)
        predictions = model.predict(ids, batch_size=64, verbose=0)
        raw = model(ids[:8], training=False)
    finally:
        keras.config.set_dtype_policy(previous_policy)

    assert np.isfinite(history.history["loss"][-1])
    assert predictions.dtype == np.float32
    assert np.all(np.isfinite(predictions))
    assert keras.backend.standardize_dtype(raw.dtype) == "float32"


def test_registry_names_follow_table_order():
    assert MODEL_NAMES == (
        "lr", "fm", "dnn", "wide_deep", "deepfm", "deep_crossing", "dcn", "pnn", "xdeepfm",
        "autoint", "fibinet", "xdeepint", "dcn_v2", "adaensemble",
    )
    assert set(BASELINE_CLASSES) == set(MODEL_NAMES) - {"adaensemble"}


def test_registry_rejects_unknown_name():
    with pytest.raises(ValueError, match="valid names"):
        build_model("deep_fm", VOCABULARY_SIZES)


def test_registry_rejects_unknown_hyperparameter():
    with pytest.raises(ValueError, match="hidden_layers"):
        build_model("dnn", VOCABULARY_SIZES, hidden_layers=(8,))


def test_registry_default_embedding_dim():
    model = build_model("fm", VOCABULARY_SIZES)
    assert model.embedding_dim == 16
    assert model.field_embedding.embedding_dim == 16


def test_baselines_have_no_alpha_variables():
    model = small_model("deepfm")
    model(random_ids(4, seed=3))
    assert model.alpha_variables == []
    table = model.field_embedding.embeddings
    linear_table = model.linear.id_weights.embeddings
    assert {id(table), id(linear_table)} == {id(v) for v in model.embedding_variables}


def test_registry_builds_adaensemble():
    from ada_keras import AdaEnsemble

    model = build_model("adaensemble", VOCABULARY_SIZES, embedding_dim=4, num_layers=1, top_k=1)
    assert isinstance(model, AdaEnsemble)
    assert "top_k" in hyperparameter_names("adaensemble")
    probabilities = model(random_ids(4, seed=4))
    assert tuple(probabilities.shape) == (4, 1)
