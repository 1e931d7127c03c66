"""Distribution strategies by name, and the cluster description in TF_CONFIG.

Every CTR model trains under TensorFlow's own distribution engine with the usual Keras
calls: build and compile the model inside ``strategy.scope()``, then ``fit`` as on one
device. The batch size of the dataset is the global batch, and each of the R replicas
gets ``batch / R`` examples. Keras divides each replica's mean loss by R before the
replicas' gradients are summed, so one step equals a step on the global batch.

```python
strategy = make_strategy("mirrored")          # every local GPU (or the CPU)
with strategy.scope():
    model = build_model(...)
    model.compile(optimizer="adam")
model.fit(dataset, epochs=1)
```

Strategy names:

* ``default``: no distribution, one device.
* ``mirrored``: `tf.distribute.MirroredStrategy`, synchronous data parallelism over the
  devices of one machine (all GPUs, or the devices given).
* ``multi_worker``: `tf.distribute.MultiWorkerMirroredStrategy`, synchronous data
  parallelism over several machines with collective all-reduce. Every worker runs the same
  program with its own ``TF_CONFIG`` environment variable, for example on worker 0 of two:
  ``{"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker",
  "index": 0}}``. Worker 0 is the chief: only it should write checkpoints and results.

The models keep their embedding tables whole on every replica; see WORKSPACE.md
("Scaling out and serving") for tables that outgrow one device.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence

import tensorflow as tf

logger = logging.getLogger(__name__)

STRATEGY_NAMES = ("default", "mirrored", "multi_worker")


@dataclasses.dataclass(frozen=True)
class WorkerInfo:
    """This process's place in the cluster described by TF_CONFIG."""

    task_type: str  # "worker", "chief", ... ("worker" without TF_CONFIG)
    task_index: int
    num_workers: int  # workers and chief together; 1 without TF_CONFIG
    has_chief: bool = False  # the cluster lists a separate "chief" task

    @property
    def is_chief(self) -> bool:
        """True for the task that writes checkpoints and results."""
        if self.task_type == "chief":
            return True
        return self.task_type == "worker" and self.task_index == 0 and not self.has_chief


def worker_info(environ: dict[str, str] | None = None) -> WorkerInfo:
    """Read this process's task from the ``TF_CONFIG`` environment variable.

    Without TF_CONFIG the process is the only worker. A malformed TF_CONFIG raises a
    ValueError that shows the value and the expected form.
    """
    environ = os.environ if environ is None else environ
    text = environ.get("TF_CONFIG", "").strip()
    if not text:
        return WorkerInfo("worker", 0, 1)
    example = (
        '{"cluster": {"worker": ["host0:port", "host1:port"]}, '
        '"task": {"type": "worker", "index": 0}}'
    )
    try:
        config = json.loads(text)
        cluster = config["cluster"]
        task = config["task"]
        task_type = str(task["type"])
        task_index = int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"TF_CONFIG is not a valid cluster description ({error}): {text!r}. "
            f"Expected JSON like {example}."
        ) from error
    workers = list(cluster.get("worker", []))
    chiefs = list(cluster.get("chief", []))
    members = cluster.get(task_type)
    if members is None or not 0 <= task_index < len(members):
        raise ValueError(
            f"TF_CONFIG names task {task_type}:{task_index}, which its cluster {cluster} does "
            f"not list. Expected JSON like {example}."
        )
    return WorkerInfo(task_type, task_index, len(workers) + len(chiefs), bool(chiefs))


def make_strategy(
    name: str = "default", devices: Sequence[str] | None = None
) -> tf.distribute.Strategy:
    """Return the distribution strategy called `name` (one of `STRATEGY_NAMES`).

    Args:
        name: "default", "mirrored" or "multi_worker".
        devices: for "mirrored" only, the devices to replicate over (for example
            ["/cpu:0", "/cpu:1"]); all local GPUs, else the CPU, when None.

    Raises:
        ValueError: an unknown name, or devices given for another strategy.
    """
    if name not in STRATEGY_NAMES:
        raise ValueError(
            f"unknown strategy {name!r}; choose one of {', '.join(STRATEGY_NAMES)}."
        )
    if devices is not None and name != "mirrored":
        raise ValueError(f"devices are chosen by the {name!r} strategy itself; pass None.")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        strategy = tf.distribute.MirroredStrategy(devices=list(devices) if devices else None)
    else:
        info = worker_info()
        if info.num_workers == 1:
            logger.warning(
                "multi_worker strategy without TF_CONFIG: this process is the only worker."
            )
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    logger.info(
        "%s strategy with %d replicas in sync", name, strategy.num_replicas_in_sync
    )
    return strategy


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Let tf.distribute split every global batch of `dataset` among the workers.

    For in-memory datasets (``from_tensor_slices``), which have no files to hand out per
    worker. A dataset read from several shard files should instead give each worker its
    own files, with ``AutoShardPolicy.FILE`` (TensorFlow's default when it finds files).
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
