"""Training under tf.distribute equals training on one device.

The scenarios run in fresh Python processes (this file run as a script), because the
logical CPU devices and the multi-worker cluster must be set before TensorFlow starts,
and the pytest process may have started it already.

Oracle: the same model, from the same initial weights, trained on the same global
batches on one device. The model is AdaEnsemble with the router jitter and the
batch-level load losses off (their per-replica values differ from the global batch's by
design) and an L2 embedding regularizer on, so the scaling of added losses is checked too.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from ada_keras.distribute import make_strategy, worker_info

SCRIPT = os.path.abspath(__file__)
REPOSITORY = os.path.dirname(os.path.dirname(SCRIPT))
VOCABULARY_SIZES = [13, 7, 5, 11, 3]
BATCH = 16
STEPS = 4


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = BATCH * STEPS
    ids = np.stack([rng.integers(0, size, rows) for size in VOCABULARY_SIZES], axis=1)
    labels = (ids[:, 0] % 2 == ids[:, 1] % 2).astype(np.float32)
    return ids.astype(np.int32), labels[:, None]


def _build_model(alpha_every: int, embedding_optimizer: str = "adam"):
    import keras
    import tensorflow as tf

    from ada_keras.model import AdaEnsemble
    from ada_keras.optimizers import LazyAdam

    keras.utils.set_random_seed(7)
    model = AdaEnsemble(
        VOCABULARY_SIZES, embedding_dim=4, num_layers=2, experts=("dense", "cross"),
        top_k=1, anneal_steps=3, jitter_eps=0.0, lambda_1=0.0, lambda_2=0.0,
        embeddings_regularizer=keras.regularizers.L2(0.01), seed=3,
    )
    model(tf.zeros((1, len(VOCABULARY_SIZES)), tf.int32))
    model.compile(
        optimizer=keras.optimizers.Adam(0.05),
        alpha_optimizer=keras.optimizers.Adam(0.05),
        embedding_optimizer=LazyAdam(0.05) if embedding_optimizer == "lazy_adam" else None,
        alpha_every=alpha_every,
    )
    return model


def _train(strategy, alpha_every: int, initial_weights=None, embedding_optimizer="adam"):
    """Train STEPS steps under `strategy`; return (model, history, evaluation)."""
    import tensorflow as tf

    from ada_keras.distribute import shard_by_data
    from ada_keras.training import with_alpha_batches

    ids, labels = _data()
    alpha_ids, alpha_labels = _data(seed=1)
    with strategy.scope():
        model = _build_model(alpha_every, embedding_optimizer)
        if initial_weights is not None:
            model.set_weights(initial_weights)
    train = tf.data.Dataset.from_tensor_slices((ids, labels)).batch(BATCH)
    alpha = tf.data.Dataset.from_tensor_slices((alpha_ids, alpha_labels)).batch(BATCH)
    train = shard_by_data(with_alpha_batches(train, alpha))
    history = model.fit(train, epochs=1, verbose=0).history
    evaluation = model.evaluate(
        shard_by_data(tf.data.Dataset.from_tensor_slices((ids, labels)).batch(BATCH)),
        verbose=0, return_dict=True,
    )
    return model, history, evaluation


def _summary(model, history, evaluation) -> dict:
    # Float weights only: the int64 routing counters of AdaEnsemble are per-replica
    # statistics (see WORKSPACE.md), not trained state.
    weights = [np.asarray(w) for w in model.get_weights()]
    return {
        "weights": [w.tolist() for w in weights if w.dtype.kind == "f"],
        "history": {k: [float(x) for x in v] for k, v in history.items()},
        "evaluation": {k: float(v) for k, v in evaluation.items()},
        "gate_steps": [int(np.asarray(moe.gate.step)) for moe in model.moe_layers],
    }


def run_mirrored(output: str, alpha_every: int, embedding_optimizer: str) -> None:
    """Scenario: one device, then MirroredStrategy over two logical CPUs, same start."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    initial = _build_model(alpha_every).get_weights()
    single = _train(
        make_strategy("default"), alpha_every, initial, embedding_optimizer=embedding_optimizer
    )
    mirrored_strategy = make_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    mirrored = _train(
        mirrored_strategy, alpha_every, initial, embedding_optimizer=embedding_optimizer
    )
    result = {
        "replicas": mirrored_strategy.num_replicas_in_sync,
        "single": _summary(*single),
        "mirrored": _summary(*mirrored),
    }
    with open(output, "w") as stream:
        json.dump(result, stream)


def run_worker(output: str) -> None:
    """Scenario: one worker of a MultiWorkerMirroredStrategy cluster (TF_CONFIG set)."""
    strategy = make_strategy("multi_worker")
    model, history, evaluation = _train(strategy, alpha_every=1)
    result = _summary(model, history, evaluation)
    result["replicas"] = strategy.num_replicas_in_sync
    result["initial"] = [
        w.tolist() for w in map(np.asarray, _build_model(1).get_weights()) if w.dtype.kind == "f"
    ]
    with open(output, "w") as stream:
        json.dump(result, stream)


def _python_environment() -> dict:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        [REPOSITORY] + [p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    environment["CUDA_VISIBLE_DEVICES"] = ""
    environment["TF_CPP_MIN_LOG_LEVEL"] = "2"
    environment.pop("TF_CONFIG", None)
    return environment


def _run_script(arguments, timeout: float, environment=None) -> None:
    completed = subprocess.run(
        [sys.executable, SCRIPT, *arguments], env=environment or _python_environment(),
        capture_output=True, text=True, timeout=timeout,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]


def _assert_same_weights(actual, expected, atol: float) -> None:
    assert len(actual) == len(expected)
    for index, (a, e) in enumerate(zip(actual, expected)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), atol=atol, rtol=1e-4,
                                   err_msg=f"weight {index}")


def _check_mirrored(tmp_path, alpha_every: int, embedding_optimizer: str = "adam") -> None:
    output = tmp_path / "mirrored.json"
    _run_script(
        ["mirrored", str(output), str(alpha_every), embedding_optimizer], timeout=240
    )
    result = json.loads(output.read_text())
    single, mirrored = result["single"], result["mirrored"]
    assert result["replicas"] == 2

    _assert_same_weights(mirrored["weights"], single["weights"], atol=2e-5)
    for name in ("loss", "alpha_loss", "auxiliary_loss"):
        np.testing.assert_allclose(
            mirrored["history"][name], single["history"][name], rtol=1e-4, err_msg=name
        )
    np.testing.assert_allclose(
        mirrored["evaluation"]["loss"], single["evaluation"]["loss"], rtol=1e-4
    )
    # The gates' annealing counters advance once per global step, not once per replica.
    assert mirrored["gate_steps"] == single["gate_steps"] == [STEPS] * 2


def test_mirrored_matches_one_device(tmp_path):
    _check_mirrored(tmp_path, alpha_every=1)


@pytest.mark.slow
def test_mirrored_alpha_every_two(tmp_path):
    _check_mirrored(tmp_path, alpha_every=2)


def test_mirrored_lazy_adam_matches_one_device(tmp_path):
    # The replicas' IndexedSlices gradients of the embedding table are concatenated, so
    # LazyAdam must sum rows per id across replicas as it does within one batch.
    _check_mirrored(tmp_path, alpha_every=1, embedding_optimizer="lazy_adam")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_multi_worker_workers_agree(tmp_path):
    addresses = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    workers = []
    try:
        for index in range(2):
            environment = _python_environment()
            environment["TF_CONFIG"] = json.dumps(
                {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
            )
            workers.append(subprocess.Popen(
                [sys.executable, SCRIPT, "worker", str(tmp_path / f"worker{index}.json")],
                env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            ))
        for worker in workers:
            _, stderr = worker.communicate(timeout=180)
            assert worker.returncode == 0, stderr[-4000:]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()

    results = [json.loads((tmp_path / f"worker{i}.json").read_text()) for i in range(2)]
    assert [r["replicas"] for r in results] == [2, 2]
    _assert_same_weights(results[1]["weights"], results[0]["weights"], atol=0.0)
    changed = [
        not np.allclose(np.asarray(w), np.asarray(w0))
        for w, w0 in zip(results[0]["weights"], results[0]["initial"])
    ]
    assert any(changed), "training left every weight at its initial value"
    assert results[0]["history"]["loss"] == results[1]["history"]["loss"]
    assert np.isfinite(results[0]["history"]["loss"]).all()


def test_worker_info_reads_tf_config():
    config = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    info = worker_info({"TF_CONFIG": json.dumps(config)})
    assert (info.task_type, info.task_index, info.num_workers, info.is_chief) == (
        "worker", 1, 2, False
    )
    assert worker_info({}).is_chief
    with pytest.raises(ValueError, match="does not list"):
        worker_info({"TF_CONFIG": json.dumps({**config, "task": {"type": "worker", "index": 5}})})
    with pytest.raises(ValueError, match="not a valid cluster description"):
        worker_info({"TF_CONFIG": "{not json"})


def test_make_strategy_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown strategy"):
        make_strategy("parameter_server")


if __name__ == "__main__":
    sys.path.insert(0, REPOSITORY)
    if sys.argv[1] == "mirrored":
        run_mirrored(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "worker":
        run_worker(sys.argv[2])
    else:
        raise SystemExit(f"unknown scenario {sys.argv[1]!r}; expected mirrored or worker")
