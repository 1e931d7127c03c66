"""Train one model on one prepared dataset and evaluate it with the exact metrics.

This is the body of an experiment cell. It builds the model from `baselines.registry`,
compiles it with the profile's optimiser and fits it on the training split, computing the
exact validation AUC after every evaluation period. Training stops early on that AUC and
restores the best weights. Last come exact AUC and LogLoss on the validation and test
splits.
"""

from __future__ import annotations

import importlib.util
import math
import os
import pathlib
import time
from typing import Any, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from ada_keras import distribute
from ada_keras import training as ada_training
from ada_keras.flops import model_flops
from ada_keras.metrics import exact_auc, log_loss
from ada_keras.optimizers import LazyAdam
from baselines import registry
from data import pipeline

from experiments import config as experiment_config

VALIDATION_AUC = "val_auc"
VALIDATION_LOGLOSS = "val_logloss"


def tensorboard_available() -> bool:
    """Return whether the `tensorboard` package, which writes the summaries, is installed.

    TensorFlow 2.21 does not depend on it, and without it Keras's TensorBoard callback
    fails at the first summary, so cells skip their logs then (with one warning).
    """
    global _TENSORBOARD_WARNED
    if importlib.util.find_spec("tensorboard") is not None:
        return True
    if not _TENSORBOARD_WARNED:
        logging.warning(
            "TensorBoard logs are skipped because the tensorboard package is not installed; "
            "run `pip install tensorboard` to get them."
        )
        _TENSORBOARD_WARNED = True
    return False


_TENSORBOARD_WARNED = False


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """Return a fresh Keras optimiser by its configuration name."""
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    if name == "lazy_adam":
        return LazyAdam(learning_rate=learning_rate)
    if name == "ftrl":
        return keras.optimizers.Ftrl(learning_rate=learning_rate)
    if name == "adagrad":
        return keras.optimizers.Adagrad(learning_rate=learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate)
    raise ValueError(
        f"unknown optimizer {name!r}; choose one of {', '.join(experiment_config.OPTIMIZERS)}"
    )


def compile_model(model: Any, training: Mapping[str, Any]) -> None:
    """Compile `model` with the optimisers and schedule of a `training` config section.

    ``embedding_optimizer`` (optional) updates the embedding tables instead of
    ``optimizer``; ``alpha_every`` (default 1) sets AdaEnsemble's W steps per alpha step.
    """
    learning_rate = float(training["learning_rate"])
    embedding_optimizer = training.get("embedding_optimizer")
    model.compile(
        optimizer=make_optimizer(training["optimizer"], learning_rate),
        embedding_optimizer=(
            None if embedding_optimizer is None else make_optimizer(embedding_optimizer, learning_rate)
        ),
        alpha_every=int(training.get("alpha_every", 1)),
        jit_compile=bool(training.get("jit_compile", False)),
    )


def labels_of(dataset: tf.data.Dataset) -> np.ndarray:
    """Return the labels of an `(ids, label)` dataset as one float32 vector."""
    batches = list(dataset.map(lambda ids, label: label).as_numpy_iterator())
    return np.concatenate(batches).reshape(-1).astype(np.float32)


class SplitEvaluator:
    """Exact AUC and LogLoss of a model on one split, predicted batch by batch."""

    def __init__(self, data_dir: str | os.PathLike, split: str, batch_size: int):
        self.split = split
        rows = int(pipeline.load_metadata(data_dir)["splits"][split]["rows"])
        dataset = pipeline.make_dataset(data_dir, split, batch_size)
        # A known length lets Keras's predict stop without an "input ran out of data" warning.
        self.dataset = dataset.apply(
            tf.data.experimental.assert_cardinality(math.ceil(rows / batch_size))
        )
        self.labels = labels_of(self.dataset)

    def evaluate(self, model: keras.Model) -> dict[str, float]:
        # NOTE: with tf.data autotuning on, a pass over this finite dataset can end only
        # at the autotuner's next wake-up: on the Criteo sample a validation pass took
        # 0.075 s, 0.036 s with autotuning off. Not measured on full-size splits.
        probabilities = model.predict(self.dataset, verbose=0).reshape(-1)
        return {
            "auc": exact_auc(self.labels, probabilities),
            "logloss": log_loss(self.labels, probabilities),
            "rows": int(self.labels.size),
            "positives": int(self.labels.sum()),
        }


class ExactValidationMetrics(keras.callbacks.Callback):
    """Add the exact validation AUC and LogLoss to the logs at the end of every epoch.

    Placed before `keras.callbacks.EarlyStopping` and `TensorBoard` in the callback list,
    so both see `val_auc` and `val_logloss` (Keras passes one logs dict through the list).
    """

    def __init__(self, evaluator: SplitEvaluator):
        super().__init__()
        self.evaluator = evaluator
        self.history: list[dict[str, float]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        metrics = self.evaluator.evaluate(self.model)
        if logs is not None:
            logs[VALIDATION_AUC] = metrics["auc"]
            logs[VALIDATION_LOGLOSS] = metrics["logloss"]
        self.history.append(
            {"epoch": epoch + 1, "auc": metrics["auc"], "logloss": metrics["logloss"]}
        )


def training_schedule(training: Mapping[str, Any], train_rows: int) -> dict[str, int]:
    """Convert the profile's limits to Keras epochs of `steps_per_epoch` steps each.

    One Keras epoch is one evaluation period: `eval_every_steps` steps, or one pass over
    the training split when that is null.
    """
    batch_size = int(training["batch_size"])
    steps_per_pass = max(1, math.ceil(int(train_rows) / batch_size))
    steps_per_epoch = int(training.get("eval_every_steps") or steps_per_pass)
    if training.get("max_steps"):
        total_steps = int(training["max_steps"])
    else:
        total_steps = int(training["max_epochs"]) * steps_per_pass
    epochs = max(1, math.ceil(total_steps / steps_per_epoch))
    return {
        "steps_per_pass": steps_per_pass,
        "steps_per_epoch": steps_per_epoch,
        "epochs": epochs,
        "total_steps": total_steps,
    }


def train_and_evaluate(
    model_name: str,
    data_dir: str | os.PathLike,
    configuration: Mapping[str, Any],
    seed: int,
    *,
    tensorboard_dir: str | os.PathLike | None = None,
    verbose: int | str = "auto",
    strategy: tf.distribute.Strategy | None = None,
    model_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Train `model_name` on the prepared dataset in `data_dir` and evaluate it.

    Args:
        model_name: a name in `baselines.registry.MODEL_NAMES`.
        data_dir: a folder written by `data.prepare.prepare`.
        configuration: the cell's settings from `experiments.config.cell_configuration`;
            `training` and `model_hyperparameters` are read here.
        seed: seeds Python, NumPy, TensorFlow and Keras, and the shuffling order, so a
            cell gives the same result in a fresh process and after other cells.
        tensorboard_dir: where to write TensorBoard logs; None writes none.
        verbose: Keras's `fit` verbosity (0 silent, 1 progress bar, 2 one line per epoch).
        strategy: the tf.distribute strategy to train under (`ada_keras.distribute.
            make_strategy`); the profile's batch size is the global batch. None trains
            on one device.
        model_dir: where to save the trained model as `model.keras` with `data_dir.txt`
            (the prepared folder), the run folder `experiments.export --run` reads. Only
            the chief worker writes it. None saves nothing.

    Returns:
        A JSON-serialisable record: `test` and `validation` metrics (exact AUC, LogLoss,
        rows, positives) at the restored best epoch, `epochs`, `best_epoch`, `steps`,
        `validation_history`, `parameters`, `training_seconds`.
    """
    training = configuration["training"]
    hyperparameters = configuration["model_hyperparameters"]

    # Reset Keras's global state (layer name counters, graph caches) and every random
    # generator, so the cell's result does not depend on the cells before it.
    keras.backend.clear_session(free_memory=True)
    keras.utils.set_random_seed(seed)

    metadata = pipeline.load_metadata(data_dir)
    train_rows = int(metadata["splits"]["train"]["rows"])
    schedule = training_schedule(training, train_rows)
    batch_size = int(training["batch_size"])

    # The variables and optimiser slots are mirrored when created inside the scope.
    with (strategy or tf.distribute.get_strategy()).scope():
        model = registry.build_model(model_name, metadata["vocabulary_sizes"], **hyperparameters)
        # Build the variables now: `alpha_variables` is empty until the model is built.
        model(tf.zeros([1, int(metadata["num_fields"])], dtype=tf.int32))
        compile_model(model, training)

    train_ds = pipeline.make_dataset(
        data_dir, "train", batch_size, shuffle=True, seed=seed, repeat=True
    )
    if model.alpha_variables:
        # AdaEnsemble's routing networks learn from validation batches (bi-level step).
        alpha_ds = pipeline.make_dataset(
            data_dir, "validation", batch_size, shuffle=True, seed=seed + 1, repeat=True
        )
        train_ds = ada_training.with_alpha_batches(train_ds, alpha_ds)

    evaluation_batch_size = int(training.get("evaluation_batch_size", batch_size))
    validation = SplitEvaluator(data_dir, "validation", evaluation_batch_size)
    test = SplitEvaluator(data_dir, "test", evaluation_batch_size)

    validation_callback = ExactValidationMetrics(validation)
    early_stopping = keras.callbacks.EarlyStopping(
        monitor=VALIDATION_AUC,
        mode="max",
        patience=int(training["patience"]),
        min_delta=float(training.get("min_delta", 0.0)),
        restore_best_weights=True,
    )
    callbacks = [validation_callback, early_stopping]
    if tensorboard_dir is not None and tensorboard_available():
        callbacks.append(
            keras.callbacks.TensorBoard(
                log_dir=str(tensorboard_dir), write_graph=False, update_freq="epoch",
                profile_batch=0,
            )
        )

    start = time.monotonic()
    history = model.fit(
        train_ds,
        epochs=schedule["epochs"],
        steps_per_epoch=schedule["steps_per_epoch"],
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # the dataset is shuffled with the cell's seed already
    )
    training_seconds = time.monotonic() - start

    epochs_run = len(history.history.get("loss", []))
    best_epoch = int(early_stopping.best_epoch) + 1
    validation_metrics = validation.evaluate(model)
    test_metrics = test.evaluate(model)
    logging.info(
        "%s: test AUC %.4f, LogLoss %.4f (validation AUC %.4f) after %d of %d epochs, best %d",
        model_name, test_metrics["auc"], test_metrics["logloss"], validation_metrics["auc"],
        epochs_run, schedule["epochs"], best_epoch,
    )
    if model_dir is not None and distribute.worker_info().is_chief:
        save_run(model, data_dir, model_dir)
    return {
        "model": model_name,
        "test": test_metrics,
        "validation": validation_metrics,
        "epochs": epochs_run,
        "best_epoch": best_epoch,
        "steps": epochs_run * schedule["steps_per_epoch"],
        "schedule": schedule,
        "validation_history": validation_callback.history,
        "train_loss_history": [float(v) for v in history.history.get("loss", [])],
        "parameters": int(model.count_params()),
        # Nominal forward FLOPs: AdaEnsemble at k of n experts and full depth.
        "flops_per_example": float(model_flops(model).flops),
        "training_seconds": training_seconds,
        "data": {
            "directory": str(pathlib.Path(data_dir)),
            "dataset": metadata.get("dataset"),
            "rows": {split: metadata["splits"][split]["rows"] for split in metadata["splits"]},
            "num_fields": metadata["num_fields"],
        },
    }


def save_run(model: keras.Model, data_dir: str | os.PathLike, model_dir: str | os.PathLike) -> None:
    """Save `model` and the path of its prepared data as a run folder for experiments.export."""
    model_dir = pathlib.Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    # Written under temporary names and renamed, so a killed run leaves no partial file.
    temporary_model = model_dir / "model.partial.keras"
    model.save(temporary_model)
    os.replace(temporary_model, model_dir / "model.keras")
    temporary_data = model_dir / "data_dir.txt.partial"
    temporary_data.write_text(str(pathlib.Path(data_dir).resolve()) + "\n")
    os.replace(temporary_data, model_dir / "data_dir.txt")


def train_with_grid_search(
    model_name: str,
    data_dir: str | os.PathLike,
    configuration: Mapping[str, Any],
    grid: Mapping[str, list[Any]],
    seed: int,
    *,
    tolerance: float = 0.0,
    tensorboard_dir: str | os.PathLike | None = None,
    verbose: int | str = "auto",
) -> dict[str, Any]:
    """Train every grid point and keep the cheapest one within `tolerance` of the best.

    The chosen point is the one with the fewest forward FLOPs per example among those
    whose validation AUC is at least ``(1 - tolerance)`` times the best validation AUC;
    ties in FLOPs go to the higher AUC. With ``tolerance=0`` that is the best point. Yan
    and Li pick AdaEnsemble's configuration this way with a tolerance of 0.02 %
    (0.0002), so a larger configuration must earn its cost. The test metrics of the
    returned record are those of the chosen point; the test split plays no part in the
    choice. `tuning` lists every point with its validation metrics and FLOPs.
    """
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(f"tolerance = {tolerance} is invalid; use a fraction in [0, 1).")
    trials = []
    records = []
    points = experiment_config.grid_points(configuration, grid)
    for number, (assignment, point_configuration) in enumerate(points, start=1):
        logging.info("grid point %d of %d: %s", number, len(points), assignment)
        trial_dir = None
        if tensorboard_dir is not None:
            trial_dir = pathlib.Path(tensorboard_dir) / f"grid{number}"
        record = train_and_evaluate(
            model_name, data_dir, point_configuration, seed,
            tensorboard_dir=trial_dir, verbose=verbose,
        )
        trials.append(
            {
                "assignment": assignment,
                "validation": record["validation"],
                "flops_per_example": record["flops_per_example"],
            }
        )
        records.append((assignment, record, point_configuration))

    chosen = choose_grid_point(trials, tolerance)
    assignment, record, point_configuration = records[chosen]
    logging.info(
        "%s: chose grid point %d of %d, %s (validation AUC %.5f, %.3g FLOPs per example)",
        model_name, chosen + 1, len(points), assignment, record["validation"]["auc"],
        record["flops_per_example"],
    )
    record = dict(record)
    record["tuning"] = {
        "grid": dict(grid),
        "trials": trials,
        "chosen": assignment,
        "tolerance": tolerance,
    }
    record["tuned_configuration"] = point_configuration
    return record


def choose_grid_point(trials: Sequence[Mapping[str, Any]], tolerance: float) -> int:
    """Return the index of the cheapest trial within `tolerance` of the best validation AUC.

    Each trial has ``validation["auc"]`` and ``flops_per_example``; see
    `train_with_grid_search` for the rule.
    """
    best_auc = max(float(trial["validation"]["auc"]) for trial in trials)
    threshold = best_auc * (1.0 - tolerance)
    eligible = [
        index for index, trial in enumerate(trials)
        if float(trial["validation"]["auc"]) >= threshold
    ]
    return min(
        eligible,
        key=lambda index: (
            float(trials[index]["flops_per_example"]),
            -float(trials[index]["validation"]["auc"]),
        ),
    )
