"""Tests of AdaEnsemble: dynamic propagation, bi-level training, saving and export."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import roc_auc_score

from ada_keras.layers import DenseExpert
from ada_keras.model import AdaEnsemble
from ada_keras.training import with_alpha_batches

VOCABULARY_SIZES = [6, 5, 4, 7]
SMALL = dict(embedding_dim=4, num_layers=3, experts=("dense", "polynomial", "cross"),
             top_k=2, anneal_steps=0, gate_dim=4)


@pytest.fixture(autouse=True)
def seeded_initializers():
    """Seed Keras' initialisers, so every run builds the same weights."""
    keras.utils.set_random_seed(0)


def make_ids(rows=24, seed=0):
    rng = np.random.default_rng(seed)
    ids = np.stack([rng.integers(0, size, rows) for size in VOCABULARY_SIZES], axis=1)
    return ids.astype(np.int32)


def make_labels(ids):
    return ((ids[:, 0] % 2) ^ (ids[:, 1] % 2)).astype(np.float32)[:, None]


def spread_exits(model, ids):
    """Set the depth controller so that the examples exit at several depths.

    Random kernels, and a projection bias that centres h over the batch, so the cosine
    scores of different examples point in different directions.
    """
    controller = model.depth_controller
    rng = np.random.default_rng(5)
    for dense in (controller.hidden, controller.projection):
        kernel, bias = dense.get_weights()
        dense.set_weights([rng.normal(size=kernel.shape).astype(np.float32), np.zeros_like(bias)])
    controller.expert_embeddings.assign(
        rng.normal(size=controller.expert_embeddings.shape).astype(np.float32)
    )
    x0 = model.embedding(ids)
    flat = keras.ops.reshape(x0, (len(ids), -1))
    h = keras.ops.convert_to_numpy(controller.projection(controller.hidden(flat)))
    kernel, _ = controller.projection.get_weights()
    controller.projection.set_weights([kernel, -h.mean(axis=0)])
    _, depth = controller(x0)
    return keras.ops.convert_to_numpy(depth)


def numpy_of(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def any_changed(before, variables):
    return any(not np.array_equal(b, keras.ops.convert_to_numpy(v))
               for b, v in zip(before, variables))


def test_dynamic_propagation_equals_per_example_loop():
    ids = make_ids()
    model = AdaEnsemble(VOCABULARY_SIZES, **SMALL)
    model(ids)
    depth = spread_exits(model, ids)
    assert len(set(depth.tolist())) >= 2, "precondition: exits at several depths"
    output = keras.ops.convert_to_numpy(model(ids))

    expected = np.zeros((len(ids), 1), np.float32)
    for row in range(len(ids)):
        x0 = model.embedding(ids[row:row + 1])
        x = x0
        for layer in range(depth[row] + 1):
            x = model.moe_layers[layer](x, x0=x0)
        expected[row] = keras.ops.convert_to_numpy(model.estimators[depth[row]](x))
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-6)


def test_exited_examples_skip_deeper_layers():
    ids = make_ids()
    model = AdaEnsemble(VOCABULARY_SIZES, **SMALL)
    model(ids)
    depth = spread_exits(model, ids)
    rows_entering = {layer: [] for layer in range(3)}
    for layer, moe in enumerate(model.moe_layers):
        original_call = moe.call

        def counting_call(inputs, *args, _layer=layer, _call=original_call, **kwargs):
            rows_entering[_layer].append(int(inputs.shape[0]))
            return _call(inputs, *args, **kwargs)

        moe.call = counting_call
    model(ids)
    assert rows_entering[0] == [len(ids)]
    assert rows_entering[1] == [int((depth > 0).sum())]
    assert rows_entering[2] == [int((depth > 1).sum())]


def test_routing_statistics_after_evaluate():
    ids = make_ids()
    model = AdaEnsemble(VOCABULARY_SIZES, **SMALL)
    model(ids)
    depth = spread_exits(model, ids)
    model.compile(optimizer="adam", bilevel=False)
    model.evaluate(ids, make_labels(ids), batch_size=8, verbose=0)
    model.evaluate(ids, make_labels(ids), batch_size=8, verbose=0)  # counters reset
    statistics = model.routing_statistics()
    np.testing.assert_allclose(statistics["exit_depth_shares"],
                               np.bincount(depth, minlength=3) / len(ids))
    assert statistics["examples"] == len(ids)
    assert [layer["examples"] for layer in statistics["layers"]] == [
        len(ids), int((depth > 0).sum()), int((depth > 1).sum())
    ]
    for layer in statistics["layers"]:
        if layer["examples"]:
            assert layer["top1"].sum() == pytest.approx(1.0)
            assert layer["routed"].sum() == pytest.approx(2.0)
    assert "DenseExpert" in model.format_routing_statistics()


def test_routing_paths_match_statistics():
    ids = make_ids()
    model = AdaEnsemble(VOCABULARY_SIZES, **SMALL)
    model(ids)
    depth = spread_exits(model, ids)
    paths = model.routing_paths(ids, batch_size=10)
    np.testing.assert_array_equal(paths["exit_depth"], depth)
    assert paths["top1"].shape == (len(ids), 3)
    for layer in range(3):
        reached = depth >= layer
        assert (paths["top1"][~reached, layer] == -1).all()
        assert (paths["top1"][reached, layer] >= 0).all()
    model.reset_routing_statistics()
    model.predict(ids, verbose=0)
    statistics = model.routing_statistics()
    for layer, shares in enumerate(statistics["layers"]):
        choices = paths["top1"][:, layer]
        counts = np.bincount(choices[choices >= 0], minlength=3)
        np.testing.assert_allclose(shares["top1"], counts / max(counts.sum(), 1))


def test_soft_exits_mix_all_estimators():
    ids = make_ids()
    model = AdaEnsemble(VOCABULARY_SIZES, **SMALL, jitter_eps=0.0)
    model(ids)
    mixed = keras.ops.convert_to_numpy(model(ids, training=True, soft_exits=True))
    x0 = model.embedding(ids)
    probabilities, _ = model.depth_controller(x0)
    per_layer = np.concatenate(
        [keras.ops.convert_to_numpy(p) for p in model._full_depth(x0, False)], axis=1
    )
    expected = (keras.ops.convert_to_numpy(probabilities) * per_layer).sum(1, keepdims=True)
    np.testing.assert_allclose(mixed, expected, rtol=1e-5, atol=1e-6)


def test_depth_network_learns_only_in_alpha_steps():
    ids = make_ids(32)
    labels = make_labels(ids)
    model = AdaEnsemble(VOCABULARY_SIZES, **SMALL, lambda_2=0.0, lambda_1=0.0)
    model(ids)
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  alpha_optimizer=keras.optimizers.Adam(0.01), alpha_every=2)
    depth_variables = model.depth_controller.trainable_variables
    gate_variables = model.moe_layers[0].gate.trainable_variables
    embedding_variables = model.embedding_variables
    assert {id(v) for v in depth_variables + gate_variables} <= {
        id(v) for v in model.alpha_variables
    }
    batch = {"ids": ids[:16], "alpha_ids": ids[16:], "alpha_label": labels[16:]}
    depth_changes, gate_changes, embedding_changes = [], [], []
    for _ in range(4):
        depth_before = numpy_of(depth_variables)
        gate_before = numpy_of(gate_variables)
        embedding_before = numpy_of(embedding_variables)
        model.train_on_batch(batch, labels[:16])
        depth_changes.append(any_changed(depth_before, depth_variables))
        gate_changes.append(any_changed(gate_before, gate_variables))
        embedding_changes.append(any_changed(embedding_before, embedding_variables))
    # Steps 0 and 2 start with an alpha step; with lambda_2 = 0 only the validation
    # log loss, through the soft mixture of exits, can move the depth network.
    assert depth_changes == [True, False, True, False]
    assert gate_changes == [True, False, True, False]
    assert embedding_changes == [True, True, True, True]


def test_bilevel_fit_learns_xor():
    """Labels are the XOR of two fields' parities, which no linear model can fit."""
    keras.utils.set_random_seed(0)
    ids = make_ids(640, seed=1)
    labels = make_labels(ids)
    train = tf.data.Dataset.from_tensor_slices((ids[:448], labels[:448])).batch(64)
    alpha = tf.data.Dataset.from_tensor_slices((ids[448:512], labels[448:512])).batch(64)
    model = AdaEnsemble(VOCABULARY_SIZES, **{**SMALL, "num_layers": 2,
                                             "experts": ("polynomial", "cross")}, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(0.02),
                  alpha_optimizer=keras.optimizers.Adam(0.01))
    model.fit(with_alpha_batches(train, alpha), epochs=8, verbose=0, shuffle=False)
    scores = model.predict(ids[512:], verbose=0)[:, 0]
    assert roc_auc_score(labels[512:, 0], scores) > 0.9


def test_mixed_precision_trains_with_all_experts():
    ids = make_ids(64)
    labels = make_labels(ids)
    model = AdaEnsemble(VOCABULARY_SIZES, **{**SMALL, "top_k": 3}, dtype="mixed_float16")
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    train = tf.data.Dataset.from_tensor_slices((ids, labels)).batch(16)
    history = model.fit(with_alpha_batches(train, train), epochs=2, verbose=0)
    assert model.moe_layers[0].experts[0].compute_dtype == "float16"
    assert np.isfinite(history.history["loss"]).all()
    assert np.isfinite(history.history["alpha_loss"]).all()
    assert all(np.isfinite(keras.ops.convert_to_numpy(v)).all() for v in model.weights
               if v.dtype != "int64")


def test_config_and_keras_file_round_trip(tmp_path):
    ids = make_ids()
    model = AdaEnsemble(VOCABULARY_SIZES, **{**SMALL, "experts": ("conv", DenseExpert(8))},
                        expected_depth_loads=[0.2, 0.5, 0.3], seed=3)
    model(ids)
    spread_exits(model, ids)
    expected = model.predict(ids, verbose=0)

    clone = AdaEnsemble.from_config(model.get_config())
    assert json.loads(json.dumps(clone.get_config())) == json.loads(
        json.dumps(model.get_config())
    )

    path = tmp_path / "ada.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, AdaEnsemble)
    np.testing.assert_allclose(restored.predict(ids, verbose=0), expected, rtol=1e-6)


def test_export_serving_applies_early_exit(tmp_path):
    ids = make_ids()
    model = AdaEnsemble(VOCABULARY_SIZES, **SMALL)
    model(ids)
    depth = spread_exits(model, ids)
    assert (depth < 2).any(), "precondition: some examples exit early"
    expected = model.predict(ids, verbose=0)
    last_layer_only = keras.ops.convert_to_numpy(
        model._full_depth(model.embedding(ids), False)[-1]
    )
    path = str(tmp_path / "served")
    model.export(path, verbose=False)
    served = tf.saved_model.load(path)
    output = served.serve(tf.constant(ids)).numpy()
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-6)
    early = depth < 2
    assert not np.allclose(output[early], last_layer_only[early])


def test_alpha_and_w_loss_weight_exits():
    """Both losses are sum_l exit probability * LogLoss of estimator l, per example."""
    ids = make_ids(32)
    labels = make_labels(ids)
    model = AdaEnsemble(VOCABULARY_SIZES, **SMALL, jitter_eps=0.0, lambda_1=0.0, lambda_2=0.0)
    model(ids)
    spread_exits(model, ids)
    x0 = model.embedding(ids)
    probabilities = keras.ops.convert_to_numpy(model.depth_controller(x0)[0])
    per_exit = np.concatenate(
        [keras.ops.convert_to_numpy(p) for p in model._full_depth(x0, False)], axis=1
    )
    per_exit = np.clip(per_exit, 1e-7, 1 - 1e-7)
    exit_losses = -(labels * np.log(per_exit) + (1 - labels) * np.log(1 - per_exit))
    expected = (probabilities * exit_losses).sum(axis=1).mean()

    model.compile(optimizer=keras.optimizers.SGD(0.0),
                  alpha_optimizer=keras.optimizers.SGD(0.0))
    batch = {"ids": ids, "alpha_ids": ids, "alpha_label": labels}
    logs = model.train_on_batch(batch, labels, return_dict=True)
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5)
    np.testing.assert_allclose(logs["alpha_loss"], expected, rtol=1e-5)


def test_w_step_trains_every_estimator():
    ids = make_ids(32)
    labels = make_labels(ids)
    model = AdaEnsemble(VOCABULARY_SIZES, **SMALL, jitter_eps=0.0)
    model(ids)
    depth = spread_exits(model, ids)
    assert (depth != 0).any(), "precondition: some examples do not exit at layer 1"
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    estimators_before = [numpy_of(e.trainable_variables) for e in model.estimators]
    batch = {"ids": ids, "alpha_ids": ids, "alpha_label": labels}
    model.train_on_batch(batch, labels)
    for before, estimator in zip(estimators_before, model.estimators):
        assert any_changed(before, estimator.trainable_variables), estimator.name


def test_set_weights_keeps_annealing_step():
    ids = make_ids(32)
    labels = make_labels(ids)
    model = AdaEnsemble(VOCABULARY_SIZES, **{**SMALL, "top_k": 1, "anneal_steps": 4})
    model(ids)
    model.compile(optimizer=keras.optimizers.Adam(0.01), bilevel=False)
    model.train_on_batch(ids, labels)
    gate = model.moe_layers[0].gate
    assert int(gate.current_top_k()) > 1, "precondition: the anneal has not ended"
    early_weights = model.get_weights()
    for _ in range(4):
        model.train_on_batch(ids, labels)
    assert int(gate.current_top_k()) == 1

    model.set_weights(early_weights)
    assert int(gate.current_top_k()) == 1
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.estimators[0].dense.kernel), early_weights_of(
            model, early_weights, model.estimators[0].dense.kernel
        )
    )


def early_weights_of(model, weights, variable):
    """Return the array of ``weights`` (a get_weights list) that belongs to ``variable``."""
    progress = {id(v) for v in model.training_progress_variables}
    restorable = [v for v in model.weights if id(v) not in progress]
    return weights[[id(v) for v in restorable].index(id(variable))]


def test_keras_file_reload_is_compiled(tmp_path, recwarn):
    ids = make_ids(32)
    labels = make_labels(ids)
    model = AdaEnsemble(VOCABULARY_SIZES, **SMALL)
    model(ids)
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  embedding_optimizer=keras.optimizers.Adagrad(0.05),
                  alpha_optimizer=keras.optimizers.SGD(0.02), alpha_every=2)
    batch = {"ids": ids, "alpha_ids": ids, "alpha_label": labels}
    model.train_on_batch(batch, labels)
    path = tmp_path / "compiled.keras"
    model.save(path)

    restored = keras.saving.load_model(path)
    assert not [w for w in recwarn.list if "compile()" in str(w.message)]
    assert restored.compiled
    assert restored.alpha_every == 2
    assert restored.bilevel
    assert isinstance(restored.optimizer, keras.optimizers.Adam)
    assert isinstance(restored.embedding_optimizer, keras.optimizers.Adagrad)
    assert isinstance(restored.alpha_optimizer, keras.optimizers.SGD)
    assert float(restored.alpha_optimizer.learning_rate) == pytest.approx(0.02)
    assert int(restored.optimizer.iterations) == 1
    logs = restored.train_on_batch(batch, labels, return_dict=True)
    assert np.isfinite(logs["loss"])


def test_keras_file_reload_with_unregistered_optimizer(tmp_path, caplog):
    class LocalAdam(keras.optimizers.Adam):
        """An optimiser class that Keras cannot find by name when loading."""

    ids = make_ids(32)
    model = AdaEnsemble(VOCABULARY_SIZES, **SMALL)
    model(ids)
    model.compile(optimizer=LocalAdam(0.01))
    expected = model.predict(ids, verbose=0)
    path = tmp_path / "local_optimizer.keras"
    model.save(path)

    with caplog.at_level("WARNING", logger="ada_keras.training"):
        restored = keras.saving.load_model(path)
    assert "could not be deserialised" in caplog.text
    np.testing.assert_allclose(restored.predict(ids, verbose=0), expected, rtol=1e-6)
