"""LazyAdam against a NumPy implementation of its rule, and inside a trained model.

Oracle: the lazy Adam rule written out in NumPy (per-id summed gradient rows, moments
and values updated on those rows only), and Keras's own Adam for dense gradients.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from ada_keras.optimizers import LazyAdam
from baselines.registry import build_model

LEARNING_RATE = 0.01
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7


def _lazy_adam_numpy(table, steps, amsgrad=False):
    """Apply LazyAdam's rule to `table` for each (ids, upstream gradient rows) step."""
    table = table.copy()
    m = np.zeros_like(table)
    v = np.zeros_like(table)
    v_hat = np.zeros_like(table)
    for t, (ids, upstream) in enumerate(steps, start=1):
        gradient = np.zeros_like(table)
        np.add.at(gradient, ids, upstream)
        rows = np.unique(ids)
        m[rows] = BETA_1 * m[rows] + (1 - BETA_1) * gradient[rows]
        v[rows] = BETA_2 * v[rows] + (1 - BETA_2) * gradient[rows] ** 2
        second = v
        if amsgrad:
            v_hat[rows] = np.maximum(v_hat[rows], v[rows])
            second = v_hat
        alpha = LEARNING_RATE * np.sqrt(1 - BETA_2**t) / (1 - BETA_1**t)
        table[rows] -= alpha * m[rows] / (np.sqrt(second[rows]) + EPSILON)
    return table, m, v


def _steps(seed=0):
    rng = np.random.default_rng(seed)
    # Ids repeat within a batch (3 appears twice in the first), and rows 7 to 9 never
    # appear, so they must keep their initial values.
    ids = [np.array([3, 1, 3, 5]), np.array([0, 1, 2, 6]), np.array([5, 5, 5, 4])]
    return [(i, rng.normal(size=(len(i), 3)).astype(np.float32)) for i in ids]


def _apply_sparse(optimizer, table, steps):
    variable = keras.Variable(table, name="table")
    for ids, upstream in steps:
        with tf.GradientTape() as tape:
            rows = tf.gather(variable.value, ids)
            loss = tf.reduce_sum(rows * upstream)
        (gradient,) = tape.gradient(loss, [variable.value])
        assert isinstance(gradient, tf.IndexedSlices)
        optimizer.apply([gradient], [variable])
    return variable


@pytest.mark.parametrize("amsgrad", [False, True])
def test_lazy_adam_matches_numpy_rule(amsgrad):
    table = np.random.default_rng(1).normal(size=(10, 3)).astype(np.float32)
    steps = _steps()
    optimizer = LazyAdam(LEARNING_RATE, epsilon=EPSILON, amsgrad=amsgrad)
    variable = _apply_sparse(optimizer, table, steps)
    expected, m, v = _lazy_adam_numpy(table, steps, amsgrad=amsgrad)

    np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(optimizer._momentums[0].numpy(), m, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(optimizer._velocities[0].numpy(), v, rtol=1e-4, atol=1e-9)


def test_lazy_adam_one_step_by_hand():
    table = tf.Variable(np.ones((5, 2), np.float32))
    optimizer = LazyAdam(learning_rate=0.1)
    optimizer.build([table])
    # Row 2 appears twice, so its gradient is the sum 0.5 + 0.25.
    gradient = tf.IndexedSlices(
        tf.constant([[0.5, 0.5], [1.0, -1.0], [0.25, 0.25]]), tf.constant([2, 0, 2]), tf.constant([5, 2])
    )
    optimizer.apply([gradient], [table])

    # One Adam step from zero moments moves each touched entry by lr * sign(g) (up to epsilon).
    expected = np.ones((5, 2), np.float32)
    expected[0] = [1.0 - 0.1, 1.0 + 0.1]
    expected[2] = [1.0 - 0.1, 1.0 - 0.1]
    np.testing.assert_allclose(table.numpy(), expected, atol=1e-5)
    momentum = optimizer._momentums[0].numpy()
    np.testing.assert_allclose(momentum[2], [0.1 * 0.75, 0.1 * 0.75], rtol=1e-5)
    np.testing.assert_array_equal(momentum[[1, 3, 4]], 0.0)


def test_lazy_adam_leaves_absent_rows():
    table = np.random.default_rng(2).normal(size=(10, 3)).astype(np.float32)
    optimizer = LazyAdam(LEARNING_RATE)
    variable = _apply_sparse(optimizer, table, _steps())

    np.testing.assert_array_equal(variable.numpy()[7:], table[7:])
    np.testing.assert_array_equal(optimizer._momentums[0].numpy()[7:], 0.0)
    # Dense Adam moves rows 0 to 6 differently: row 0 is absent from two of three steps.
    dense = _apply_sparse(keras.optimizers.Adam(LEARNING_RATE), table, _steps())
    assert not np.allclose(dense.numpy()[0], variable.numpy()[0])


def test_lazy_adam_dense_gradient_is_adam():
    rng = np.random.default_rng(3)
    kernel = rng.normal(size=(4, 2)).astype(np.float32)
    gradients = [rng.normal(size=(4, 2)).astype(np.float32) for _ in range(3)]
    results = []
    for optimizer in (LazyAdam(LEARNING_RATE), keras.optimizers.Adam(LEARNING_RATE)):
        variable = keras.Variable(kernel)
        for gradient in gradients:
            optimizer.apply([tf.constant(gradient)], [variable])
        results.append(variable.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)


def test_lazy_adam_rejects_weight_decay():
    with pytest.raises(ValueError, match="weight_decay"):
        LazyAdam(weight_decay=0.01)


def test_lazy_adam_config_round_trip():
    optimizer = LazyAdam(0.003, beta_1=0.8, amsgrad=True, clipnorm=1.0)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(optimizer)
    )
    assert isinstance(restored, LazyAdam)
    assert restored.get_config() == optimizer.get_config()


def test_model_trains_with_lazy_adam_embeddings(tmp_path):
    vocabulary = [50, 40, 30]
    rng = np.random.default_rng(4)
    # Ids 40 to 49 of field 0 never occur, so their embedding rows must stay untouched.
    ids = np.stack([rng.integers(0, 40, 512), rng.integers(0, 40, 512),
                    rng.integers(0, 30, 512)], axis=1).astype(np.int32)
    labels = ((ids[:, 0] + ids[:, 1]) % 2).astype(np.float32)[:, None]
    keras.utils.set_random_seed(0)
    model = build_model("deepfm", vocabulary, embedding_dim=4, hidden_units=(8,))
    model.compile(optimizer=keras.optimizers.Adam(0.01), embedding_optimizer=LazyAdam(0.05))
    model(ids[:1])
    tables_before = [v.numpy().copy() for v in model.embedding_variables]

    history = model.fit(ids, labels, batch_size=64, epochs=4, verbose=0).history

    assert history["loss"][-1] < history["loss"][0]
    # The field-0 rows of ids 40..49 sit at offsets 40..49 of each table (field 0 first).
    for before, variable in zip(tables_before, model.embedding_variables):
        after = variable.numpy()
        np.testing.assert_array_equal(after[40:50], before[40:50])
        assert not np.allclose(after[:40], before[:40])

    path = tmp_path / "deepfm.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored.embedding_optimizer, LazyAdam)
    np.testing.assert_allclose(restored.predict(ids, verbose=0), model.predict(ids, verbose=0),
                               rtol=1e-6)
