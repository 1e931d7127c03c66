"""Training and inference throughput of one CTR model on ids read from an .npz file.

The input file contains ``ids`` (int32 [N, F]), ``label`` (float32 [N]) and ``vocab``
(int64 [F], the vocabulary size of each field). The benchmark builds the model with
`baselines.registry.build_model` and compiles it with Adam, the embedding tables with
LazyAdam unless --embedding_optimizer selects another. A few warm-up steps trace the step
(and compile it with --jit_compile). Then it times --repeats epochs of `fit` over all full
batches (the rates use the fastest) and one `predict` over the same batches. It prints
one JSON line:

    {"model", "train_examples_per_sec", "predict_examples_per_sec", "flops_per_example",
     "batch_size", "devices", ...}

followed by the examples and seconds behind each rate and the 1-minute load average
before and after, because a shared machine slows every figure.

`flops_per_example` is `ada_keras.flops.model_flops(model).flops` (2 per multiply-add of
the forward pass). For AdaEnsemble it assumes balanced routing and every example at full
depth unless --exit_shares is given.

Examples:
    python -m experiments.bench --generate 200000 --output /tmp/criteo_1m.npz
    python -m experiments.bench --generate 200000 --vocabulary_total 10000000 \\
        --output /tmp/criteo_10m.npz
    python -m experiments.bench --model deepfm --input /tmp/criteo_1m.npz --jit_compile
    python -m experiments.bench --model adaensemble --input /tmp/criteo_1m.npz \\
        --compare_dense_moe

--compare_dense_moe times the inference of AdaEnsemble with sparse dispatch of the top
k experts and early exit at fixed exit shares against the same architecture with all
experts run densely at full depth, and reports the time ratio next to the ratio of
executed FLOPs.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from typing import Any

from absl import app, flags, logging

FLAGS = flags.FLAGS


def _define(define: Any, name: str, *args: Any, **kwargs: Any) -> None:
    """Define a flag unless an experiment module imported in this process already did.

    The tests import several experiment modules into one process, and absl rejects a
    second definition of `model`, `output`, `seed`, `strategy` or `top_k`. The flags of
    those names have the same types in every module.
    """
    if name not in FLAGS:
        define(name, *args, **kwargs)


_define(flags.DEFINE_string, "model", None, "Model name from baselines.registry.MODEL_NAMES.")
_define(flags.DEFINE_string, "input", None, "The .npz file with ids, label and vocab to train on.")
_define(flags.DEFINE_integer, "batch_size", 4096, "Examples per training and prediction batch.")
_define(flags.DEFINE_integer, "embedding_dim", 16, "Embedding dimension D of every field.")
_define(flags.DEFINE_string, "hidden", "400,400,400",
    "Comma-separated units of the DNN part of dnn, deepfm, dcn_v2 and xdeepfm.",
)
_define(flags.DEFINE_float, "learning_rate", 1e-3, "Learning rate of Adam.")
_define(flags.DEFINE_bool, "jit_compile", False, "Compile the train and predict steps with XLA.")
_define(flags.DEFINE_integer, "warmup_steps", 5, "Training steps run before the timed epoch.")
_define(flags.DEFINE_integer, "steps_per_execution", 1, "Keras steps_per_execution of compile.")
_define(flags.DEFINE_integer, "repeats", 1,
    "Timed training epochs (with --compare_dense_moe: prediction passes of each model, at "
    "least 2); the rates come from the fastest, and epoch_seconds lists all.",
)
_define(flags.DEFINE_enum, "embedding_optimizer", "lazy_adam", ["adam", "lazy_adam", "sgd", "adagrad", "frozen"],
    "Optimiser of the embedding tables: lazy_adam (ada_keras.optimizers.LazyAdam, Adam on "
    "the rows in the batch only), adam (Keras's Adam, which updates the whole table in "
    "every step), sgd or adagrad, or frozen (tables not trained), for measuring what the "
    "embedding updates cost.",
)
_define(flags.DEFINE_integer, "alpha_every", 1,
    "AdaEnsemble: W steps per alpha step of bi-level training (t of Yan and Li).",
)
_define(flags.DEFINE_enum, "dtype_policy", "float32", ["float32", "mixed_bfloat16", "mixed_float16"],
    "Keras dtype policy of the model: float32, or mixed precision with bfloat16 or float16 "
    "computations and float32 variables.",
)
_define(flags.DEFINE_integer, "top_k", 3, "AdaEnsemble: experts per example.")
_define(flags.DEFINE_integer, "anneal_steps", 0,
    "AdaEnsemble: steps over which k falls from the number of experts to --top_k. The "
    "default 0 times the steady state at k = --top_k; a full training run spends its first "
    "anneal_steps steps (1,000 by default in the model) at larger k.",
)
_define(flags.DEFINE_list, "exit_shares", None,
    "AdaEnsemble: share of examples exiting after each layer, e.g. 0.065,0.194,0.664,0.077. "
    "The exit depths are then drawn at these shares instead of by the depth controller.",
)
_define(flags.DEFINE_bool, "compare_dense_moe", False,
    "AdaEnsemble: time inference with top_k and --exit_shares (default 0.065,0.194,0.664,"
    "0.077) against all experts at full depth, instead of the training benchmark.",
)
_define(flags.DEFINE_bool, "measure_matmul", False,
    "Print the FLOP/s of a 4096 x 1024 x 1024 matmul in float32 and in bfloat16, the "
    "bounds for achieved FLOP/s.",
)
_define(flags.DEFINE_enum, "strategy", "default", ["default", "mirrored", "multi_worker"],
    "tf.distribute strategy: default (one device), mirrored (all GPUs of this machine) or "
    "multi_worker (every worker runs this command with its own TF_CONFIG). --batch_size is "
    "the global batch.",
)
_define(flags.DEFINE_integer, "seed", 0, "Seed of the model initialisation and of --generate.")
_define(flags.DEFINE_integer, "generate", None, "Write N generated rows to --output instead of benchmarking.")
_define(flags.DEFINE_string, "output", None, "Output .npz file of --generate.")
_define(flags.DEFINE_integer, "vocabulary_total", 1_000_000,
    "--generate: total vocabulary over the 39 fields (about 1 M for Criteo at min_count 10).",
)

# Exit shares after layers 1-4 reported by Yan and Li for AdaEnsemble on Criteo.
PAPER_EXIT_SHARES = (0.065, 0.194, 0.664, 0.077)

# Distinct values of Criteo's categorical columns C1..C26 in the Kaggle train.txt, as counted
# by DLRM's Criteo Kaggle preprocessing (approximate). Only their proportions are used.
CRITEO_CATEGORICAL_CARDINALITIES = (
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194,
    27, 14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572,
)
# Estimated bucket counts of the integer columns I1..I13 after the floor(ln(v)^2) rule.
CRITEO_NUMERIC_BUCKETS = (50, 100, 120, 50, 250, 130, 100, 50, 140, 6, 40, 50, 50)


# ---------------------------------------------------------------------- data


def criteo_like_vocabulary(total: int) -> list[int]:
    """Return 39 field sizes shaped like Criteo's and summing to about `total`.

    The integer fields keep their bucket counts. The categorical cardinalities are scaled
    down by one factor, so the large fields shrink and the small ones stay, and each
    field keeps at least its small size (capped at its real cardinality).
    """
    numeric = list(CRITEO_NUMERIC_BUCKETS)
    budget = total - sum(numeric)
    if budget < len(CRITEO_CATEGORICAL_CARDINALITIES) * 2:
        raise ValueError(f"vocabulary_total = {total} is too small; use at least 1000.")

    def categorical(scale: float) -> list[int]:
        return [max(2, min(size, 100), int(size * scale)) for size in CRITEO_CATEGORICAL_CARDINALITIES]

    low, high = 0.0, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        if sum(categorical(middle)) > budget:
            high = middle
        else:
            low = middle
    return numeric + categorical(low)


def generate(rows: int, vocabulary_total: int, seed: int) -> dict[str, Any]:
    """Return ids, labels and vocabulary sizes of `rows` generated Criteo-like examples.

    Ids follow a 1/x law per field (P(id < x) = ln(x + 1) / ln(size)), so a batch touches
    many rows of the large tables, as real data does. Labels are Bernoulli(0.25) and do not
    depend on the ids: the file is for timing, not for learning.
    """
    import numpy as np

    vocabulary = np.array(criteo_like_vocabulary(vocabulary_total), dtype=np.int64)
    rng = np.random.default_rng(seed)
    uniform = rng.random((rows, vocabulary.size))
    ids = np.floor(np.power(vocabulary.astype(np.float64), uniform)) - 1.0
    ids = np.minimum(ids, vocabulary - 1).astype(np.int32)
    label = (rng.random(rows) < 0.25).astype(np.float32)
    return {"ids": ids, "label": label, "vocab": vocabulary}


def load_input(path: str) -> tuple[Any, Any, list[int]]:
    """Read and check ids, label and vocab from an .npz file."""
    import numpy as np

    with np.load(path) as data:
        missing = {"ids", "label", "vocab"} - set(data.files)
        if missing:
            raise ValueError(f"{path} has no array(s) {sorted(missing)}; it needs ids, label and vocab.")
        ids = data["ids"].astype(np.int32, copy=False)
        label = data["label"].astype(np.float32, copy=False).reshape(-1)
        vocabulary = [int(size) for size in data["vocab"]]
    if ids.ndim != 2 or ids.shape[1] != len(vocabulary):
        raise ValueError(f"{path}: ids has shape {ids.shape}, expected [N, {len(vocabulary)}] for {len(vocabulary)} vocab entries.")
    if label.shape[0] != ids.shape[0]:
        raise ValueError(f"{path}: label has {label.shape[0]} rows but ids has {ids.shape[0]}.")
    out_of_range = (ids < 0) | (ids >= np.array(vocabulary)[None, :])
    if out_of_range.any():
        row, field = np.argwhere(out_of_range)[0]
        raise ValueError(
            f"{path}: id {ids[row, field]} at row {row}, field {field} is outside "
            f"[0, {vocabulary[field]})."
        )
    return ids, label, vocabulary


def batched_dataset(ids: Any, label: Any, batch_size: int, reverse: bool = False) -> Any:
    """Return a tf.data.Dataset of the full batches, cut in NumPy so each element is a copy-free slice."""
    import tensorflow as tf

    steps = ids.shape[0] // batch_size
    used = steps * batch_size
    batch_ids = ids[:used].reshape(steps, batch_size, ids.shape[1])
    batch_label = label[:used].reshape(steps, batch_size, 1)
    if reverse:
        batch_ids, batch_label = batch_ids[::-1].copy(), batch_label[::-1].copy()
    dataset = tf.data.Dataset.from_tensor_slices((batch_ids, batch_label))
    return without_autotune(dataset.prefetch(2))


def without_autotune(dataset: Any) -> Any:
    """Return `dataset` with tf.data autotuning off.

    With autotuning on, an epoch over a finite dataset sometimes ended only at the
    autotuner's next wake-up, whose period starts at 10 ms and doubles. Epochs then
    took 20.48 or 40.96 s (measured with TensorFlow 2.21 on 2 cores) instead of
    the 12.8 s of compute, with the same CPU time. Fixed buffer sizes time the model.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


# ---------------------------------------------------------------------- models


def parse_units(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def model_hyperparameters(name: str, embedding_dim: int, hidden: Sequence[int]) -> dict[str, Any]:
    """Return the settings of the throughput comparison for `name`.

    DNN and DeepFM get the `hidden` DNN; DCN V2 three full-rank cross layers in parallel
    with that DNN; xDeepFM a 200-200-200 CIN beside it; AutoInt three attention layers of
    two heads of width D / 2 and no DNN. Other models keep their defaults apart from D.
    """
    settings: dict[str, Any] = {"embedding_dim": embedding_dim}
    if name in ("dnn", "deepfm"):
        settings["hidden_units"] = tuple(hidden)
    elif name == "dcn_v2":
        settings.update(
            cross_layers=3, cross_type="full_rank", structure="parallel", hidden_units=tuple(hidden)
        )
    elif name == "xdeepfm":
        settings.update(cin_layer_sizes=(200, 200, 200), hidden_units=tuple(hidden))
    elif name == "autoint":
        # Heads of width D / 2, the width DeepCTR-Torch 0.3.0 fixes and DeepCTR 0.9.3's default.
        settings.update(attention_layers=3, num_heads=2, head_dim=max(1, embedding_dim // 2))
    return settings


def fix_exit_shares(model: Any, shares: Sequence[float], seed: int) -> None:
    """Make AdaEnsemble's depth controller send examples to exits at the given shares.

    The controller's logits still run, so their cost stays in the timing. Only the chosen
    depth is replaced by a seeded draw from `shares`.
    """
    import numpy as np
    import tensorflow as tf

    shares = np.asarray(shares, dtype=np.float64)
    if shares.size != model.num_layers or abs(shares.sum() - 1.0) > 1e-3 or (shares < 0).any():
        raise ValueError(
            f"exit shares {shares.tolist()} are invalid: give {model.num_layers} "
            "non-negative shares summing to 1."
        )
    boundaries = tf.constant(np.cumsum(shares)[:-1], tf.float32)
    controller = model.depth_controller
    original_call = controller.call

    def call(x0: Any, training: Any = None) -> tuple[Any, Any]:
        exit_probabilities, _ = original_call(x0, training=training)
        uniform = tf.random.stateless_uniform([tf.shape(x0)[0]], seed=[seed, 1])
        depth = tf.searchsorted(boundaries, uniform, side="right")
        return exit_probabilities, tf.cast(depth, tf.int32)

    controller.call = call


def build_compiled_model(name: str, vocabulary: Sequence[int], settings: dict[str, Any],
                         jit_compile: bool, embedding_optimizer: str) -> Any:
    """Build `name`, call it once so its variables exist, and compile it with Adam."""
    from ada_keras import distribute

    # Variables and optimiser slots created inside the scope are mirrored across replicas.
    with distribute.make_strategy(FLAGS.strategy).scope():
        return _build_and_compile(name, vocabulary, settings, jit_compile, embedding_optimizer)


def _build_and_compile(name: str, vocabulary: Sequence[int], settings: dict[str, Any],
                       jit_compile: bool, embedding_optimizer: str) -> Any:
    import keras
    import tensorflow as tf

    from baselines import registry
    from experiments.cell_training import make_optimizer

    model = registry.build_model(name, vocabulary, **settings)
    model(tf.zeros((1, len(vocabulary)), tf.int32))
    if jit_compile and not getattr(model, "supports_jit", True):
        raise app.UsageError(
            f"{name} with these settings cannot be compiled with XLA (supports_jit is False); "
            "run it without --jit_compile."
        )
    if embedding_optimizer == "frozen":
        for layer in model._flatten_layers(include_self=False):
            if any(id(v) in {id(e) for e in model.embedding_variables} for v in layer.trainable_variables):
                layer.trainable = False
        embedding = None
    elif embedding_optimizer == "adam":
        embedding = None
    else:
        embedding = make_optimizer(embedding_optimizer, FLAGS.learning_rate)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=FLAGS.learning_rate),
        embedding_optimizer=embedding,
        alpha_every=FLAGS.alpha_every,
        jit_compile=jit_compile,
        steps_per_execution=FLAGS.steps_per_execution,
    )
    return model


def device_names() -> list[str]:
    """Return the accelerators TensorFlow lists, or the CPU with its core count."""
    import tensorflow as tf

    accelerators = [
        device.name for device in tf.config.list_logical_devices()
        if device.device_type in ("GPU", "TPU")
    ]
    return accelerators or [f"/device:CPU:0 ({os.cpu_count()} cores)"]


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


# ---------------------------------------------------------------------- measurements


def training_data(model: Any, ids: Any, label: Any, batch_size: int) -> Any:
    """Return the training dataset; AdaEnsemble gets the batches in reverse order as alpha batches."""
    from ada_keras.training import with_alpha_batches

    train = batched_dataset(ids, label, batch_size)
    if model.alpha_variables:
        train = with_alpha_batches(train, batched_dataset(ids, label, batch_size, reverse=True))
        train = without_autotune(train)
    return train


def time_predict(model: Any, dataset: Any) -> tuple[float, int]:
    """Trace `predict` on the first batch, then time one pass; return (seconds, rows)."""
    model.predict(dataset.take(1), verbose=0)
    started = time.perf_counter()
    predictions = model.predict(dataset, verbose=0)
    return time.perf_counter() - started, int(predictions.shape[0])


def measure_matmul_rate(size: int = 1024, repeats: int = 20, dtype: str = "float32") -> float:
    """Return the FLOP/s of a [4 size, size] x [size, size] matmul, best of `repeats`."""
    import tensorflow as tf

    left = tf.cast(tf.random.uniform((4 * size, size)), dtype)
    right = tf.cast(tf.random.uniform((size, size)), dtype)
    matmul = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))
    matmul(left, right).numpy()
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        matmul(left, right).numpy()
        best = min(best, time.perf_counter() - started)
    return 2.0 * 4 * size * size * size / best


def benchmark(name: str, path: str) -> dict[str, Any]:
    """Train --repeats epochs and predict once; return the JSON record."""
    import keras

    from ada_keras.flops import model_flops

    ids, label, vocabulary = load_input(path)
    batch_size = FLAGS.batch_size
    steps = ids.shape[0] // batch_size
    if FLAGS.repeats < 1:
        raise app.UsageError(f"--repeats = {FLAGS.repeats} is invalid; give at least 1.")
    if steps <= FLAGS.warmup_steps:
        # SystemExit prints only this message; a UsageError would bury it under the help.
        raise SystemExit(
            f"error: {path} has {ids.shape[0]} rows, {steps} full batches of {batch_size}; "
            f"the benchmark needs more than --warmup_steps = {FLAGS.warmup_steps} full "
            "batches. Generate more rows (--generate 200000), or lower --batch_size or "
            "--warmup_steps."
        )

    keras.utils.set_random_seed(FLAGS.seed)
    keras.config.set_dtype_policy(FLAGS.dtype_policy)
    settings = model_hyperparameters(name, FLAGS.embedding_dim, parse_units(FLAGS.hidden))
    if name == "adaensemble":
        settings.update(top_k=FLAGS.top_k, anneal_steps=FLAGS.anneal_steps, seed=FLAGS.seed)
    model = build_compiled_model(name, vocabulary, settings, FLAGS.jit_compile, FLAGS.embedding_optimizer)
    exit_shares = [float(share) for share in FLAGS.exit_shares] if FLAGS.exit_shares else None
    if exit_shares is not None:
        if name != "adaensemble":
            raise app.UsageError("--exit_shares applies to --model adaensemble only.")
        fix_exit_shares(model, exit_shares, FLAGS.seed)

    train = training_data(model, ids, label, batch_size)
    load_before = load_average()
    model.fit(train.take(FLAGS.warmup_steps), epochs=1, verbose=0, shuffle=False)
    # The fastest of --repeats epochs: on a shared or virtual machine other work only
    # ever slows an epoch down, so the minimum is the least disturbed measurement.
    epoch_seconds, epoch_cpu_seconds = [], []
    for _ in range(FLAGS.repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        history = model.fit(train, epochs=1, verbose=0, shuffle=False)
        epoch_seconds.append(time.perf_counter() - started)
        epoch_cpu_seconds.append(time.process_time() - cpu_started)
    fastest = min(range(FLAGS.repeats), key=lambda index: epoch_seconds[index])
    train_seconds = epoch_seconds[fastest]
    train_cpu_seconds = epoch_cpu_seconds[fastest]
    train_examples = steps * batch_size

    predict_seconds, predict_examples = time_predict(model, batched_dataset(ids, label, batch_size).map(lambda x, y: x))
    load_after = load_average()

    flop_arguments = {"exit_shares": exit_shares} if exit_shares is not None else {}
    return {
        "model": name,
        "train_examples_per_sec": round(train_examples / train_seconds, 1),
        "predict_examples_per_sec": round(predict_examples / predict_seconds, 1),
        "flops_per_example": model_flops(model, **flop_arguments).flops,
        "batch_size": batch_size,
        "devices": device_names(),
        "train_examples": train_examples,
        "train_seconds": round(train_seconds, 6),
        "predict_examples": predict_examples,
        "predict_seconds": round(predict_seconds, 6),
        # CPU seconds of this process, all threads: less sensitive to other jobs than wall time.
        "train_cpu_seconds": round(train_cpu_seconds, 3),
        "epoch_seconds": [round(seconds, 3) for seconds in epoch_seconds],
        "final_loss": float(history.history["loss"][-1]),
        "jit_compile": FLAGS.jit_compile,
        "embedding_optimizer": FLAGS.embedding_optimizer,
        "alpha_every": FLAGS.alpha_every if name == "adaensemble" else None,
        "dtype_policy": FLAGS.dtype_policy,
        "vocabulary_total": int(sum(vocabulary)),
        "parameters": int(model.count_params()),
        "load_average_before": load_before,
        "load_average_after": load_after,
    }


def compare_dense_moe(path: str) -> dict[str, Any]:
    """Time AdaEnsemble inference, sparse top-k with fixed exits against dense at full depth."""
    import keras

    from ada_keras.flops import model_flops

    ids, label, vocabulary = load_input(path)
    batch_size = FLAGS.batch_size
    shares = [float(share) for share in FLAGS.exit_shares] if FLAGS.exit_shares else list(PAPER_EXIT_SHARES)
    dataset = batched_dataset(ids, label, batch_size).map(lambda x, y: x)
    base = {"embedding_dim": FLAGS.embedding_dim, "seed": FLAGS.seed, "anneal_steps": 0}

    keras.utils.set_random_seed(FLAGS.seed)
    sparse = build_compiled_model(
        "adaensemble", vocabulary, {**base, "top_k": FLAGS.top_k}, False, "adam"
    )
    fix_exit_shares(sparse, shares, FLAGS.seed)
    num_experts = len(sparse.moe_layers[0].experts)
    keras.utils.set_random_seed(FLAGS.seed)
    dense = build_compiled_model(
        "adaensemble", vocabulary,
        {**base, "top_k": num_experts, "dispatch": "dense", "early_exit": False},
        FLAGS.jit_compile, "adam",
    )

    load_before = load_average()
    # Alternate the two models so that a change in machine load hits both, and compare
    # the fastest pass of each.
    sparse_seconds, dense_seconds = [], []
    for _ in range(max(2, FLAGS.repeats)):
        sparse.reset_routing_statistics()
        seconds, examples = time_predict(sparse, dataset)
        sparse_seconds.append(seconds)
        dense_seconds.append(time_predict(dense, dataset)[0])
    load_after = load_average()

    statistics = sparse.routing_statistics()
    sparse_flops = model_flops(
        sparse,
        routed_shares=[layer["routed"] for layer in statistics["layers"]],
        exit_shares=statistics["exit_depth_shares"],
    ).flops
    dense_flops = model_flops(dense).flops
    return {
        "model": "adaensemble",
        "batch_size": batch_size,
        "devices": device_names(),
        "top_k": FLAGS.top_k,
        "num_experts": num_experts,
        "exit_shares_requested": shares,
        "exit_shares_measured": [round(float(s), 4) for s in statistics["exit_depth_shares"]],
        "predict_examples": examples,
        "sparse_predict_seconds": [round(s, 3) for s in sparse_seconds],
        "dense_predict_seconds": [round(s, 3) for s in dense_seconds],
        "sparse_flops_per_example": sparse_flops,
        "dense_flops_per_example": dense_flops,
        "flops_ratio": round(sparse_flops / dense_flops, 4),
        "time_ratio": round(min(sparse_seconds) / min(dense_seconds), 4),
        "dense_jit_compile": FLAGS.jit_compile,
        "load_average_before": load_before,
        "load_average_after": load_after,
    }


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    if FLAGS.generate is not None:
        import numpy as np

        if FLAGS.output is None:
            raise app.UsageError("--generate needs --output FILE.npz.")
        if FLAGS.generate < 1:
            raise app.UsageError(f"--generate = {FLAGS.generate} is invalid; give at least 1 row.")
        arrays = generate(FLAGS.generate, FLAGS.vocabulary_total, FLAGS.seed)
        np.savez(FLAGS.output, **arrays)
        logging.info(
            "wrote %s: %d rows, %d fields, total vocabulary %d",
            FLAGS.output, FLAGS.generate, arrays["vocab"].size, int(arrays["vocab"].sum()),
        )
        return
    if FLAGS.measure_matmul:
        record = {
            "matmul_flops_per_sec": measure_matmul_rate(),
            "bfloat16_matmul_flops_per_sec": measure_matmul_rate(dtype="bfloat16"),
            "devices": device_names(),
            "load_average": load_average(),
        }
        print(json.dumps(record), flush=True)
        return
    if FLAGS.input is None:
        raise app.UsageError("give --input FILE.npz (or --generate N --output FILE.npz).")
    if FLAGS.compare_dense_moe:
        record = compare_dense_moe(FLAGS.input)
    else:
        if FLAGS.model is None:
            raise app.UsageError("give --model NAME (one of baselines.registry.MODEL_NAMES).")
        record = benchmark(FLAGS.model, FLAGS.input)
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    app.run(main)
