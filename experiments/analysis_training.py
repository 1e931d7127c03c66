"""Train one AdaEnsemble variant and measure what the analyses read from the trained model.

The training and the exact metrics are those of the Table 1 cells
(`experiments.cell_training`): the same optimiser, bi-level batches, early stopping on the
exact validation AUC with the best weights restored. On top, `train_variant` keeps the
trained model long enough to record its routing on the test split, its executed FLOPs
and its test probabilities.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
from collections import Counter
from typing import Any, Mapping

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from ada_keras import training as ada_training
from ada_keras.flops import model_flops
from ada_keras.metrics import exact_auc, log_loss
from baselines import registry
from data import pipeline

from experiments import analyses, cell_training

# Marks a layer that an example did not reach because it exited earlier.
EXITED = "exited"


def save_predictions(path: pathlib.Path, probabilities: np.ndarray) -> None:
    """Write float32 probabilities to `path` (.npy) through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npy", dir=path.parent)
    os.close(descriptor)
    try:
        np.save(temporary, probabilities.astype(np.float32))
        os.replace(temporary, path)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise


def expert_names(model: Any) -> list[str]:
    """Return the expert names of an AdaEnsemble (class names for experts given as layers)."""
    return [spec if isinstance(spec, str) else spec["class_name"] for spec in model.expert_specs]


def routing_paths(model: Any, dataset: tf.data.Dataset) -> dict[str, dict[str, int]]:
    """Count the routing paths of the examples of `dataset` through the trained model.

    A path lists, per layer, the expert choice of one example: its top-1 expert
    ("top1") or its set of selected experts joined by "+" ("set"), and ``"exited"`` at
    the layers after its exit. The gates read X0 only, so the choice at layer l is the
    same whether or not the example reaches it. The exit depth decides where ``"exited"``
    starts.

    Returns:
        ``{"top1": {"dense|cross|exited": count, ...}, "set": {...}}``.
    """
    names = np.array(expert_names(model))
    counts = {"top1": Counter(), "set": Counter()}
    for ids, _ in dataset:
        x0 = model.embedding(ids)
        num_examples = int(ids.shape[0])
        if model.depth_controller is None:
            exit_depth = np.full(num_examples, model.num_layers - 1)
        else:
            logits = model.depth_controller.logits(x0, training=False)
            exit_depth = np.argmax(keras.ops.convert_to_numpy(logits), axis=1)
        top1_columns, set_columns = [], []
        for layer, moe in enumerate(model.moe_layers):
            logits = moe.gate.logits(x0, training=False)
            k = int(moe.gate.current_top_k())
            # [batch, k] expert indices, largest gate first.
            selected = tf.math.top_k(logits, k=k).indices.numpy()
            exited = layer > exit_depth
            top1_columns.append(np.where(exited, EXITED, names[selected[:, 0]]))
            sets = ["+".join(names[sorted(row)]) for row in selected.tolist()]
            set_columns.append(np.where(exited, EXITED, np.array(sets, dtype=object)))
        for choice, columns in (("top1", top1_columns), ("set", set_columns)):
            counts[choice].update("|".join(path) for path in zip(*columns))
    return {choice: dict(counter) for choice, counter in counts.items()}


def train_variant(
    data_dir: str | os.PathLike,
    configuration: Mapping[str, Any],
    seed: int,
    predictions_path: pathlib.Path,
    *,
    verbose: int | str = "auto",
) -> dict[str, Any]:
    """Train the AdaEnsemble of `configuration` and evaluate it on the test split.

    Returns:
        A JSON-serialisable record: `test` and `validation` metrics, `routing`
        (`exit_depth_shares` and per-layer `routed`/`top1` shares after
        ``model.evaluate`` on the test split), `routing_paths`, `flops` (executed and
        nominal, see `ada_keras.flops`), `expert_names`, epochs and parameters. The test
        probabilities go to `predictions_path`.
    """
    training = configuration["training"]
    hyperparameters = configuration["model_hyperparameters"]

    keras.backend.clear_session(free_memory=True)
    keras.utils.set_random_seed(seed)

    metadata = pipeline.load_metadata(data_dir)
    schedule = cell_training.training_schedule(training, metadata["splits"]["train"]["rows"])
    batch_size = int(training["batch_size"])

    model = registry.build_model(analyses.MODEL, metadata["vocabulary_sizes"], **hyperparameters)
    model(tf.zeros([1, int(metadata["num_fields"])], dtype=tf.int32))
    cell_training.compile_model(model, training)

    train_ds = pipeline.make_dataset(data_dir, "train", batch_size, shuffle=True, seed=seed, repeat=True)
    alpha_ds = pipeline.make_dataset(
        data_dir, "validation", batch_size, shuffle=True, seed=seed + 1, repeat=True
    )
    train_ds = ada_training.with_alpha_batches(train_ds, alpha_ds)

    evaluation_batch_size = int(training.get("evaluation_batch_size", batch_size))
    validation = cell_training.SplitEvaluator(data_dir, "validation", evaluation_batch_size)
    test = cell_training.SplitEvaluator(data_dir, "test", evaluation_batch_size)
    validation_callback = cell_training.ExactValidationMetrics(validation)
    early_stopping = keras.callbacks.EarlyStopping(
        monitor=cell_training.VALIDATION_AUC,
        mode="max",
        patience=int(training["patience"]),
        min_delta=float(training.get("min_delta", 0.0)),
        restore_best_weights=True,
    )
    history = model.fit(
        train_ds,
        epochs=schedule["epochs"],
        steps_per_epoch=schedule["steps_per_epoch"],
        callbacks=[validation_callback, early_stopping],
        verbose=verbose,
        shuffle=False,
    )

    validation_metrics = validation.evaluate(model)
    probabilities = model.predict(test.dataset, verbose=0).reshape(-1)
    test_metrics = {
        "auc": exact_auc(test.labels, probabilities),
        "logloss": log_loss(test.labels, probabilities),
        "rows": int(test.labels.size),
        "positives": int(test.labels.sum()),
    }
    save_predictions(predictions_path, probabilities)

    # evaluate() resets the routing counters first, so they describe the test split only.
    model.evaluate(test.dataset, verbose=0)
    statistics = model.routing_statistics()
    routed_shares = [[float(v) for v in layer["routed"]] for layer in statistics["layers"]]
    exit_shares = statistics["exit_depth_shares"]
    exit_shares = None if exit_shares is None else [float(v) for v in exit_shares]
    executed = model_flops(model, routed_shares=routed_shares, exit_shares=exit_shares)
    nominal = model_flops(model)

    logging.info(
        "%s: test AUC %.4f, LogLoss %.4f, %.3f MFLOPs per example executed",
        configuration.get("variant"), test_metrics["auc"], test_metrics["logloss"],
        executed.flops / 1e6,
    )
    return {
        "model": analyses.MODEL,
        "variant": configuration.get("variant"),
        "test": test_metrics,
        "validation": validation_metrics,
        "epochs": len(history.history.get("loss", [])),
        "best_epoch": int(early_stopping.best_epoch) + 1,
        "schedule": schedule,
        "validation_history": validation_callback.history,
        "parameters": int(model.count_params()),
        "expert_names": expert_names(model),
        "final_top_k": [int(moe.gate.current_top_k()) for moe in model.moe_layers],
        "routing": {
            "examples": int(statistics["examples"]),
            "exit_depth_shares": exit_shares,
            "routed": routed_shares,
            "top1": [[float(v) for v in layer["top1"]] for layer in statistics["layers"]],
            "layer_examples": [int(layer["examples"]) for layer in statistics["layers"]],
        },
        "routing_paths": routing_paths(model, test.dataset),
        "flops": {"executed": executed.as_dict(), "nominal": nominal.as_dict()},
        "predictions_file": str(predictions_path.name),
        "data": {
            "directory": str(pathlib.Path(data_dir)),
            "dataset": metadata.get("dataset"),
            "rows": {split: metadata["splits"][split]["rows"] for split in metadata["splits"]},
        },
    }
