"""Tests of CTRModel: plain fit/evaluate/predict, optimiser groups and bi-level steps."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import log_loss

from ada_keras.layers import FieldEmbedding
from ada_keras.training import CTRModel, with_alpha_batches

VOCABULARY_SIZES = [4, 6, 5]


class RoutingScale(keras.layers.Layer):
    """A one-weight routing layer: its variable belongs to alpha."""

    is_routing_layer = True

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

    def call(self, inputs):
        return inputs * self.scale


class TinyModel(CTRModel):
    """Logistic regression on field embeddings, with an optional routing scale."""

    def __init__(self, routed=False, added_loss=0.0, **kwargs):
        super().__init__(**kwargs)
        self.embedding = FieldEmbedding(VOCABULARY_SIZES, embedding_dim=2)
        self.logit = keras.layers.Dense(1)
        self.routing = RoutingScale() if routed else None
        self.added_loss = added_loss

    def call(self, ids, training=False):
        x = keras.ops.reshape(self.embedding(ids), (-1, 2 * len(VOCABULARY_SIZES)))
        logit = self.logit(x)
        if self.routing is not None:
            logit = self.routing(logit)
        if self.added_loss:
            self.add_loss(keras.ops.convert_to_tensor(self.added_loss))
        return keras.ops.sigmoid(logit)


def make_data(rows=64, seed=0):
    rng = np.random.default_rng(seed)
    ids = np.stack([rng.integers(0, size, rows) for size in VOCABULARY_SIZES], axis=1)
    ids = ids.astype(np.int32)
    labels = ((ids[:, 0] + ids[:, 1]) % 2).astype(np.float32)[:, None]
    return ids, labels


def weights_of(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def changed(before, variables):
    return [not np.array_equal(b, keras.ops.convert_to_numpy(v)) for b, v in zip(before, variables)]


def test_plain_fit_evaluate_predict():
    ids, labels = make_data()
    model = TinyModel()
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    history = model.fit(ids, labels, batch_size=16, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    probabilities = model.predict(ids, batch_size=16, verbose=0)
    assert probabilities.shape == (64, 1)
    assert probabilities.dtype == np.float32
    result = model.evaluate(ids, labels, batch_size=64, verbose=0, return_dict=True)
    expected = log_loss(labels[:, 0], probabilities[:, 0], labels=[0, 1])
    assert result["loss"] == pytest.approx(expected, rel=1e-4)


def test_added_losses_enter_the_loss():
    ids, labels = make_data()
    model = TinyModel(added_loss=0.25)
    model.compile(optimizer="sgd")
    result = model.evaluate(ids, labels, batch_size=64, verbose=0, return_dict=True)
    probabilities = model.predict(ids, batch_size=64, verbose=0)
    expected = log_loss(labels[:, 0], probabilities[:, 0], labels=[0, 1]) + 0.25
    assert result["loss"] == pytest.approx(expected, rel=1e-4)
    assert result["auxiliary_loss"] == pytest.approx(0.25)


def test_embedding_optimizer_updates_only_tables():
    ids, labels = make_data()
    model = TinyModel()
    model(ids)
    model.compile(
        optimizer=keras.optimizers.SGD(0.0), embedding_optimizer=keras.optimizers.Adagrad(0.5)
    )
    assert len(model.embedding_variables) == 1
    tables = weights_of(model.embedding_variables)
    dense = weights_of(model.logit.trainable_variables)
    model.fit(ids, labels, batch_size=32, epochs=1, verbose=0)
    assert changed(tables, model.embedding_variables) == [True]
    assert changed(dense, model.logit.trainable_variables) == [False, False]


def test_with_alpha_batches_structure():
    ids, labels = make_data()
    train = tf.data.Dataset.from_tensor_slices((ids, labels)).batch(16)
    validation = tf.data.Dataset.from_tensor_slices((ids[:20], labels[:20])).batch(8)
    paired = with_alpha_batches(train, validation)
    elements = list(paired)
    assert len(elements) == 4
    inputs, label = elements[3]
    assert sorted(inputs) == ["alpha_ids", "alpha_label", "ids"]
    np.testing.assert_array_equal(inputs["ids"].numpy(), ids[48:64])
    np.testing.assert_array_equal(label.numpy(), labels[48:64])
    # Validation has batches of 8, 8, 4; the fourth training batch meets the repeat.
    np.testing.assert_array_equal(inputs["alpha_ids"].numpy(), ids[:8])
    with pytest.raises(ValueError, match="pairs"):
        with_alpha_batches(tf.data.Dataset.from_tensor_slices(ids), validation)


def test_alpha_steps_follow_alpha_every():
    ids, labels = make_data()
    model = TinyModel(routed=True)
    model(ids)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        alpha_optimizer=keras.optimizers.SGD(0.1),
        alpha_every=3,
    )
    assert len(model.alpha_variables) == 1
    batch = {"ids": ids[:16], "alpha_ids": ids[16:32], "alpha_label": labels[16:32]}
    updates = []
    for _ in range(7):
        before = weights_of(model.alpha_variables)
        model.train_on_batch(batch, labels[:16])
        updates.append(changed(before, model.alpha_variables)[0])
    assert updates == [True, False, False, True, False, False, True]


def test_bilevel_w_step_leaves_alpha():
    ids, labels = make_data()
    model = TinyModel(routed=True)
    model(ids)
    model.compile(optimizer=keras.optimizers.SGD(0.1), alpha_optimizer=keras.optimizers.SGD(0.0))
    batch = {"ids": ids[:16], "alpha_ids": ids[16:32], "alpha_label": labels[16:32]}
    alpha = weights_of(model.alpha_variables)
    dense = weights_of(model.logit.trainable_variables)
    model.train_on_batch(batch, labels[:16])
    assert changed(alpha, model.alpha_variables) == [False]
    assert changed(dense, model.logit.trainable_variables) == [True, True]


def test_alpha_gradient_uses_validation_batch():
    """One SGD alpha step equals scale - lr * d(validation log loss)/d(scale)."""
    ids, labels = make_data()
    model = TinyModel(routed=True)
    model(ids)
    model.compile(optimizer=keras.optimizers.SGD(0.0), alpha_optimizer=keras.optimizers.SGD(0.5))
    validation_ids, validation_labels = ids[16:48], labels[16:48]
    logits = model.logit(
        keras.ops.reshape(model.embedding(validation_ids), (-1, 6))
    ).numpy()[:, 0]
    probabilities = 1 / (1 + np.exp(-logits))
    gradient = np.mean((probabilities - validation_labels[:, 0]) * logits)
    batch = {"ids": ids[:16], "alpha_ids": validation_ids, "alpha_label": validation_labels}
    model.train_on_batch(batch, labels[:16])
    scale = float(keras.ops.convert_to_numpy(model.routing.scale))
    assert scale == pytest.approx(1.0 - 0.5 * gradient, abs=1e-5)


def test_bilevel_without_validation_batch_raises():
    ids, labels = make_data()
    model = TinyModel(routed=True)
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="with_alpha_batches"):
        model.fit(ids, labels, batch_size=16, epochs=1, verbose=0)


def test_joint_training_updates_alpha_every_step():
    ids, labels = make_data()
    model = TinyModel(routed=True)
    model(ids)
    model.compile(optimizer=keras.optimizers.SGD(0.1), bilevel=False)
    for _ in range(3):
        before = weights_of(model.alpha_variables)
        model.train_on_batch(ids[:16], labels[:16])
        assert changed(before, model.alpha_variables) == [True]


def test_fit_on_paired_dataset_with_baseline():
    """A model without alpha variables trains on paired batches as on plain ones."""
    ids, labels = make_data()
    train = tf.data.Dataset.from_tensor_slices((ids, labels)).batch(16)
    paired = with_alpha_batches(train, train)
    model = TinyModel()
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    history = model.fit(paired, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert model.predict(paired, verbose=0).shape == (64, 1)
