"""The base class of every CTR model, with optimiser groups and first-order bi-level training.

`CTRModel` is a `keras.Model` whose subclasses implement ``call(ids, training=False)``:
ids int32 ``[batch, F]`` -> click probability float32 ``[batch, 1]``. It provides a
`train_step` that works with `model.fit`, `model.evaluate`, `model.predict` and Keras
callbacks, and that splits the trainable variables into three groups:

* alpha (``alpha_variables``): the routing networks of AdaEnsemble (expert gates and the
  depth controller), i.e. every variable of a sub-layer whose ``is_routing_layer``
  attribute is True. Baselines have none.
* embedding tables (``embedding_variables``): updated by ``embedding_optimizer`` when one is
  given (for example Adagrad or FTRL), else by ``optimizer``.
* W: everything else, updated by ``optimizer``.

Bi-level training (``compile(bilevel=True)``, the default) follows the first-order DARTS
scheme that Yan and Li use for AdaEnsemble. Every ``alpha_every`` W-steps, one alpha step
updates alpha by the gradient of the validation loss at the current W. Every step, one W
step updates W (embeddings included) by the gradient of the training loss at the current
alpha. The alpha step comes first, so steps 0, t, 2t, ... (counted by
``optimizer.iterations``) each start with an alpha step. The validation batches come
inside each training element, built by `with_alpha_batches`:

```python
train = with_alpha_batches(train_ds, validation_ds)   # both yield (ids, label)
model.compile(optimizer="adam", alpha_optimizer=keras.optimizers.Adam(1e-3))
model.fit(train, epochs=2)
```

With ``bilevel=False`` (joint training, for ablations) one loss updates all variables in
every step, alpha included (by ``alpha_optimizer`` if given, else by ``optimizer``), and the
validation part of an element, if present, is ignored. For a model without alpha
variables both modes are the same plain training step.

Under a tf.distribute strategy (MirroredStrategy, MultiWorkerMirroredStrategy; see
`ada_keras.distribute`) build and compile the model inside ``strategy.scope()``. Keras
divides each replica's loss by the number of replicas, so the summed gradients are those
of the global batch. An alpha step every ``alpha_every`` > 1 steps cannot sit inside a
tf.cond there, because the optimiser's cross-replica gradient sum is not allowed inside
a conditional; `make_train_function` then chooses between a step with and a step
without the alpha step in Python, which needs ``steps_per_execution=1``.

The loss is binary cross-entropy on the probabilities, computed in float32, plus every
loss the layers add with ``add_loss`` (regularizers, load-distribution losses). Under a
``mixed_float16`` policy each optimiser is wrapped in a `keras.optimizers.LossScaleOptimizer`
with its own loss scale.
"""

import logging
from typing import Any

import keras
import tensorflow as tf
from keras import ops

logger = logging.getLogger(__name__)

IDS_KEY = "ids"
ALPHA_IDS_KEY = "alpha_ids"
ALPHA_LABEL_KEY = "alpha_label"


def with_alpha_batches(train_ds: tf.data.Dataset, alpha_ds: tf.data.Dataset) -> tf.data.Dataset:
    """Pair every training batch with a validation batch for the alpha step.

    Both datasets yield ``(ids, label)`` batches. The validation dataset is repeated, so
    the result has as many elements as ``train_ds``. Shuffle ``alpha_ds`` yourself (with
    ``reshuffle_each_iteration=True``) if the alpha steps should see its batches in a new
    order on every pass.

    Returns:
        A dataset of ``({"ids": ids, "alpha_ids": val_ids, "alpha_label": val_label},
        label)``, the input `CTRModel.train_step` expects for bi-level training.
    """
    for name, dataset in (("train_ds", train_ds), ("alpha_ds", alpha_ds)):
        spec = dataset.element_spec
        if not isinstance(spec, tuple) or len(spec) != 2:
            raise ValueError(
                f"with_alpha_batches: {name} must yield (ids, label) pairs, but its "
                f"element_spec is {spec}. Drop sample weights or other components first."
            )

    def merge(train_batch, alpha_batch):
        ids, label = train_batch
        alpha_ids, alpha_label = alpha_batch
        inputs = {IDS_KEY: ids, ALPHA_IDS_KEY: alpha_ids, ALPHA_LABEL_KEY: alpha_label}
        return inputs, label

    paired = tf.data.Dataset.zip((train_ds, alpha_ds.repeat()))
    return paired.map(merge, num_parallel_calls=tf.data.AUTOTUNE)


def _wrap_for_mixed_precision(model: keras.Model, optimizer: Any) -> Any:
    if optimizer is None:
        return None
    optimizer = keras.optimizers.get(optimizer)
    if model.dtype_policy.name == "mixed_float16" and not isinstance(
        optimizer, keras.optimizers.LossScaleOptimizer
    ):
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def _zeros_for_missing(gradients: list[Any], variables: list[Any]) -> list[Any]:
    """Replace None gradients by zeros.

    A variable that took no part in a batch has no gradient, for example an expert that
    received no example or an estimator where no example exited.
    """
    return [ops.zeros_like(v) if g is None else g for g, v in zip(gradients, variables)]


def _split_inputs(inputs: Any) -> tuple[Any, Any, Any]:
    """Return ``(ids, alpha_ids, alpha_label)``; the last two are None for plain ids."""
    if isinstance(inputs, dict):
        if IDS_KEY not in inputs:
            raise ValueError(
                f"CTRModel input dict has keys {sorted(inputs)} but no {IDS_KEY!r}; build "
                "bi-level batches with ada_keras.training.with_alpha_batches."
            )
        return inputs[IDS_KEY], inputs.get(ALPHA_IDS_KEY), inputs.get(ALPHA_LABEL_KEY)
    return inputs, None, None


@keras.saving.register_keras_serializable(package="ada_keras")
class CTRModel(keras.Model):
    """Base class of the CTR models: ids ``[batch, F]`` -> probability ``[batch, 1]``.

    Subclasses implement ``call(ids, training=False)``. A subclass whose forward pass
    during the alpha step differs from its training forward pass (AdaEnsemble mixes
    its exits softly there) overrides `alpha_call`.

    The model also accepts the dict input of `with_alpha_batches` in ``__call__``,
    ``predict`` and ``evaluate``; only its ``"ids"`` entry is used there.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.embedding_optimizer = None
        self.alpha_optimizer = None
        self.alpha_every = 1
        self.bilevel = True
        self.alpha_loss_tracker = keras.metrics.Mean(name="alpha_loss")
        self.auxiliary_loss_tracker = keras.metrics.Mean(name="auxiliary_loss")

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        ids, _, _ = _split_inputs(inputs)
        return super().__call__(ids, *args, **kwargs)

    def compile(
        self,
        optimizer: Any = "adam",
        loss: Any = None,
        metrics: Any = None,
        *,
        embedding_optimizer: Any = None,
        alpha_optimizer: Any = None,
        alpha_every: int = 1,
        bilevel: bool = True,
        **kwargs: Any,
    ) -> None:
        """Configure training.

        Args:
            optimizer: optimiser of W (and of every group without its own optimiser).
            loss: defaults to binary cross-entropy on probabilities.
            metrics: Keras metrics, computed on training and evaluation batches.
            embedding_optimizer: optional optimiser of ``embedding_variables``.
            alpha_optimizer: optimiser of ``alpha_variables``; defaults to a fresh Adam
                with learning rate 1e-3 for bi-level training.
            alpha_every: t, the number of W steps per alpha step; >= 1.
            bilevel: True for alternating alpha and W steps, False for joint training.
            **kwargs: other `keras.Model.compile` arguments (``jit_compile``, ...).
        """
        alpha_every = int(alpha_every)
        if alpha_every < 1:
            raise ValueError(f"alpha_every = {alpha_every} is invalid; it must be >= 1.")
        if loss is None:
            loss = keras.losses.BinaryCrossentropy(name="log_loss")
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

        if bilevel and alpha_optimizer is None:
            alpha_optimizer = keras.optimizers.Adam(learning_rate=1e-3)
        self.embedding_optimizer = _wrap_for_mixed_precision(self, embedding_optimizer)
        self.alpha_optimizer = _wrap_for_mixed_precision(self, alpha_optimizer)
        self.alpha_every = alpha_every
        self.bilevel = bool(bilevel)

    def get_compile_config(self) -> dict[str, Any]:
        """Return `keras.Model`'s compile config plus this class's `compile` arguments.

        `keras.saving.save_model` stores it, so a reloaded `.keras` model comes back
        compiled with the same optimisers, loss, metrics and bi-level schedule.
        """
        config = super().get_compile_config()
        if not config:
            return config
        config.update(
            {
                "embedding_optimizer": keras.saving.serialize_keras_object(
                    self.embedding_optimizer
                ),
                "alpha_optimizer": keras.saving.serialize_keras_object(self.alpha_optimizer),
                "alpha_every": self.alpha_every,
                "bilevel": self.bilevel,
            }
        )
        return config

    def compile_from_config(self, config: dict[str, Any]) -> None:
        """Compile from `get_compile_config` output and build the optimisers' slots.

        Keras loads the saved optimiser variables after this call, which needs every
        optimiser built on the same variables as during training (`_build_optimizers`).
        A config that cannot be deserialised, such as one naming an optimiser class that
        is not registered with Keras, is logged and skipped, and the model must then be
        compiled by hand.
        """
        try:
            config = keras.saving.deserialize_keras_object(config)
        except (TypeError, ValueError) as error:
            logger.warning(
                "Model %r was loaded without compiling it because its compile config could "
                "not be deserialised (%s). Call compile() on it before training.",
                self.name, error,
            )
            return
        self.compile(**config)
        if self.built:
            self._build_optimizers()

    def _build_optimizers(self) -> None:
        """Create every optimiser's slots for its variable group, if not created yet."""
        groups = self._optimizer_groups(include_alpha=True)
        if self.alpha_optimizer is not None and self.alpha_variables:
            groups.append((self.alpha_optimizer, self.alpha_variables))
        # Under a distribution strategy the slots must be mirrored like the variables.
        with self.distribute_strategy.scope():
            for optimizer, variables in groups:
                if not optimizer.built and variables:
                    optimizer.build(variables)

    # ------------------------------------------------------------- weights and state

    @property
    def training_progress_variables(self) -> list[keras.Variable]:
        """Counters of training progress, such as the expert gates' annealing steps.

        Sub-layers list theirs in a ``training_progress_variables`` property. They are
        saved with the model but left out of `get_weights` and `set_weights`.
        """
        variables = []
        for layer in self._flatten_layers(include_self=False):
            variables.extend(getattr(layer, "training_progress_variables", ()))
        return _unique(variables)

    def _weights_without_progress(self) -> list[keras.Variable]:
        progress = {id(v) for v in self.training_progress_variables}
        return [v for v in self.weights if id(v) not in progress]

    def get_weights(self) -> list[Any]:
        """Return the values of `weights` as NumPy arrays, without the progress counters.

        Like ``optimizer.iterations``, which `get_weights` never contained, the counters
        in `training_progress_variables` measure how far training has gone. Leaving them
        out means `keras.callbacks.EarlyStopping(restore_best_weights=True)` restores
        the best epoch's parameters but not its annealing step, so the expert gates keep
        the k reached at the end of training instead of a larger k of an earlier epoch.
        """
        return [ops.convert_to_numpy(v) for v in self._weights_without_progress()]

    def set_weights(self, weights: list[Any]) -> None:
        """Set the variables that `get_weights` returns, in the same order."""
        variables = self._weights_without_progress()
        if len(variables) != len(weights):
            raise ValueError(
                f"set_weights on model {self.name!r} got {len(weights)} arrays, but the model "
                f"has {len(variables)} weights besides its training progress counters. Pass "
                "the list that get_weights returns."
            )
        for variable, value in zip(variables, weights):
            if tuple(variable.shape) != tuple(ops.shape(value)):
                raise ValueError(
                    f"set_weights on model {self.name!r}: weight {variable.path} has shape "
                    f"{tuple(variable.shape)}, but the array given for it has shape "
                    f"{tuple(ops.shape(value))}."
                )
            variable.assign(value)

    # ---------------------------------------------------------------- variable groups

    @property
    def alpha_variables(self) -> list[keras.Variable]:
        """Trainable variables of the routing layers (``is_routing_layer`` True)."""
        variables = []
        for layer in self._flatten_layers(include_self=False):
            if getattr(layer, "is_routing_layer", False):
                variables.extend(layer.trainable_variables)
        return _unique(variables)

    @property
    def embedding_variables(self) -> list[keras.Variable]:
        """Trainable embedding tables (`FieldEmbedding` and `keras.layers.Embedding`)."""
        from ada_keras.layers.field_embedding import FieldEmbedding

        variables = []
        for layer in self._flatten_layers(include_self=False):
            if isinstance(layer, (FieldEmbedding, keras.layers.Embedding)):
                variables.extend(layer.trainable_variables)
        return _unique(variables)

    def _optimizer_groups(self, include_alpha: bool) -> list[tuple[Any, list[keras.Variable]]]:
        """Return ``(optimizer, variables)`` pairs for one W step (or a joint step)."""
        alpha_ids = {id(v) for v in self.alpha_variables}
        embedding_ids = {id(v) for v in self.embedding_variables}
        groups: dict[int, tuple[Any, list[keras.Variable]]] = {}

        def add(optimizer, variable):
            groups.setdefault(id(optimizer), (optimizer, []))[1].append(variable)

        for variable in self.trainable_variables:
            if id(variable) in alpha_ids:
                if include_alpha:
                    add(self.alpha_optimizer or self.optimizer, variable)
            elif id(variable) in embedding_ids and self.embedding_optimizer is not None:
                add(self.embedding_optimizer, variable)
            else:
                add(self.optimizer, variable)
        return list(groups.values())

    # ------------------------------------------------------------------- the steps

    def alpha_call(self, ids: Any) -> tuple[Any, Any, Any]:
        """Run the forward pass of the alpha step; by default the training forward pass.

        Returns the same ``(probability, exit_probabilities, exit_weights)`` triple as
        `w_call`, and the alpha loss combines it in the same way.
        """
        return self(ids, training=True), None, None

    def w_call(self, ids: Any) -> tuple[Any, Any, Any]:
        """Run the forward pass of the W step (and of a joint step).

        Returns:
            ``(probability, exit_probabilities, exit_weights)``. ``probability`` float32
            ``[batch, 1]`` feeds the training metrics. By default the other two are None
            and the loss is that of ``probability``. A model with several outputs per
            example (AdaEnsemble's exits) returns them as ``exit_probabilities``
            ``[batch, m]`` with ``exit_weights`` ``[batch, m]`` (rows summing to 1), and
            the W loss becomes sum_j exit_weights[:, j] * LogLoss(label,
            exit_probabilities[:, j]), averaged over the batch.
        """
        return self(ids, training=True), None, None

    def _forward_loss(
        self, ids: Any, label: Any, outputs: tuple[Any, Any, Any], sample_weight: Any
    ) -> Any:
        """Return the loss of a `w_call` or `alpha_call` output triple."""
        probability, exit_probabilities, exit_weights = outputs
        if exit_probabilities is None:
            return self._loss(ids, label, probability, sample_weight)
        return self._weighted_exit_loss(
            ids, label, exit_probabilities, exit_weights, sample_weight
        )

    def _weighted_exit_loss(
        self, ids: Any, label: Any, exit_probabilities: Any, exit_weights: Any, sample_weight: Any
    ) -> Any:
        """Return the compiled loss of every exit, weighted per example by ``exit_weights``."""
        exit_probabilities = ops.cast(exit_probabilities, "float32")
        num_exits = ops.shape(exit_probabilities)[1]
        labels = ops.repeat(ops.reshape(ops.cast(label, "float32"), (-1, 1)), num_exits, axis=1)
        weights = ops.cast(exit_weights, "float32")
        if sample_weight is not None:
            weights = weights * ops.reshape(ops.cast(sample_weight, "float32"), (-1, 1))
        # The compiled loss averages over its batch*m rows; multiplying the weights by m
        # turns that average into the per-example weighted sum over exits.
        weights = weights * ops.cast(num_exits, "float32")
        return self._compute_loss(
            x=ids,
            y=ops.reshape(labels, (-1, 1)),
            y_pred=ops.reshape(exit_probabilities, (-1, 1)),
            sample_weight=ops.reshape(weights, (-1,)),
            training=True,
        )

    def _loss(self, ids: Any, label: Any, probability: Any, sample_weight: Any) -> Any:
        probability = ops.cast(probability, "float32")
        label = ops.cast(label, "float32")
        return self._compute_loss(
            x=ids, y=label, y_pred=probability, sample_weight=sample_weight, training=True
        )

    def _apply_gradients(self, tape, losses_by_optimizer, groups) -> None:
        if not any(
            isinstance(optimizer, keras.optimizers.LossScaleOptimizer) for optimizer, _ in groups
        ):
            # Without loss scaling every group differentiates the same loss, so one
            # backward pass serves all of them. A tape.gradient call per group would
            # repeat the whole backward pass through the network.
            variables = [v for _, group_variables in groups for v in group_variables]
            gradients = tape.gradient(losses_by_optimizer, variables)
            start = 0
            for optimizer, group_variables in groups:
                end = start + len(group_variables)
                optimizer.apply(
                    _zeros_for_missing(gradients[start:end], group_variables), group_variables
                )
                start = end
            return

        for optimizer, variables in groups:
            # Each LossScaleOptimizer scales the loss by its own factor.
            scaled_loss = optimizer.scale_loss(losses_by_optimizer)
            gradients = tape.gradient(scaled_loss, variables)
            optimizer.apply(_zeros_for_missing(gradients, variables), variables)

    def make_train_function(self, force: bool = False) -> Any:
        # Keras calls this eagerly before tracing train_step. The optimiser slots are
        # created here because tf.function rejects variables created on a later trace
        # or inside the alpha step's tf.cond. `fit` and `train_on_batch` build the model
        # first, so its variables exist by now.
        if self.built:
            self._build_optimizers()
        if not self._schedules_alpha_in_python():
            return super().make_train_function(force)
        if self.train_function is not None and not force:
            return self.train_function
        if self.steps_per_execution != 1:
            raise ValueError(
                f"alpha_every = {self.alpha_every} under a distribution strategy needs "
                f"steps_per_execution=1 (got {self.steps_per_execution}): the alpha steps are "
                "scheduled between steps. Use alpha_every=1 or steps_per_execution=1."
            )
        # A distribution strategy synchronises replicas inside optimizer.apply, and
        # tf.distribute rejects such a synchronisation inside tf.cond. So under a strategy
        # the alpha-step schedule is decided in Python, between two traced step functions.
        with_alpha = self._make_function(lambda data: self._train_step(data, "always"))
        without_alpha = self._make_function(lambda data: self._train_step(data, "never"))

        def train_function(*args: Any, **kwargs: Any) -> Any:
            iteration = int(keras.ops.convert_to_numpy(self.optimizer.iterations))
            step = with_alpha if iteration % self.alpha_every == 0 else without_alpha
            return step(*args, **kwargs)

        self.train_function = train_function
        return self.train_function

    def _schedules_alpha_in_python(self) -> bool:
        """Return whether alpha steps every `alpha_every` > 1 steps run under a strategy."""
        return (
            self.bilevel
            and self.alpha_every > 1
            and (self._distribute_strategy is not None or tf.distribute.has_strategy())
            and bool(self.alpha_variables)
        )

    def fit(self, x: Any = None, y: Any = None, *args: Any, **kwargs: Any) -> Any:
        self._build_from_example(x)
        return super().fit(x, y, *args, **kwargs)

    def train_on_batch(self, x: Any = None, y: Any = None, *args: Any, **kwargs: Any) -> Any:
        self._build_from_example(x)
        return super().train_on_batch(x, y, *args, **kwargs)

    def _maybe_symbolic_build(self, iterator: Any = None, data_batch: Any = None) -> None:
        # Under a strategy Keras averages the first distributed batch with
        # strategy.reduce before building the metrics, which MultiWorkerMirroredStrategy
        # rejects for the dict elements of bi-level training. The build needs only
        # shapes and dtypes, so the first replica's part of the batch serves as well.
        if self._distribute_strategy is None or iterator is None:
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        for _, _, batches in iterator:
            batch = next(batches)
            break
        strategy = self.distribute_strategy

        def first_replica(value):
            if isinstance(value, tf.distribute.DistributedValues):
                return strategy.experimental_local_results(value)[0]
            return value

        with strategy.scope():
            self._symbolic_build(data_batch=tf.nest.map_structure(first_replica, batch))

    def _build_from_example(self, x: Any) -> None:
        """Build the model eagerly on one all-OOV batch of ids shaped like ``x``'s ids."""
        if self.built:
            return
        if isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            spec = spec[0] if isinstance(spec, tuple) else spec
            ids_shape = _split_inputs(spec)[0].shape
        else:
            ids_shape = getattr(_split_inputs(x)[0], "shape", None)
        if ids_shape is None or len(ids_shape) != 2 or ids_shape[-1] is None:
            logger.warning(
                "CTRModel: cannot read the number of fields from the training input; the "
                "model is built while tracing train_step. If training fails with a "
                "tf.Variable error, call the model on a batch of ids before fit."
            )
            return
        self(tf.zeros((1, int(ids_shape[-1])), dtype=tf.int32), training=False)

    def _alpha_step(self, alpha_ids: Any, alpha_label: Any) -> Any:
        alpha_variables = self.alpha_variables
        with tf.GradientTape() as tape:
            loss = self._forward_loss(alpha_ids, alpha_label, self.alpha_call(alpha_ids), None)
        self._apply_gradients(tape, loss, [(self.alpha_optimizer, alpha_variables)])
        return loss

    def train_step(self, data: Any) -> dict[str, Any]:
        # alpha_every = 1 needs no tf.cond, which keeps the step valid under tf.distribute.
        return self._train_step(data, "always" if self.alpha_every == 1 else "scheduled")

    def _train_step(self, data: Any, alpha_mode: str) -> dict[str, Any]:
        """Run one W step, preceded by an alpha step as ``alpha_mode`` selects.

        ``alpha_mode`` is "always", "never" or "scheduled" (a tf.cond on
        ``optimizer.iterations % alpha_every``, for single-device training).
        """
        inputs, label, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        ids, alpha_ids, alpha_label = _split_inputs(inputs)
        alpha_variables = self.alpha_variables
        run_alpha_steps = self.bilevel and bool(alpha_variables)

        if run_alpha_steps:
            if alpha_ids is None or alpha_label is None:
                raise ValueError(
                    "Bi-level training needs a validation batch in every element: wrap the "
                    "training dataset with ada_keras.training.with_alpha_batches(train_ds, "
                    "validation_ds), or compile with bilevel=False for joint training."
                )

            def run_alpha():
                loss = self._alpha_step(alpha_ids, alpha_label)
                self.alpha_loss_tracker.update_state(_unscale_for_distribution(loss))
                return ops.cast(loss, "float32")

            if alpha_mode == "always":
                run_alpha()
            elif alpha_mode == "scheduled":
                alpha_due = ops.equal(self.optimizer.iterations % self.alpha_every, 0)
                tf.cond(alpha_due, run_alpha, lambda: tf.constant(0.0))

        groups = self._optimizer_groups(include_alpha=not run_alpha_steps)
        with tf.GradientTape(persistent=len(groups) > 1) as tape:
            outputs = self.w_call(ids)
            probability = outputs[0]
            loss = self._forward_loss(ids, label, outputs, sample_weight)
            auxiliary_loss = self._sum_added_losses()
        self._apply_gradients(tape, loss, groups)
        del tape

        batch_size = ops.shape(ids)[0]
        self._loss_tracker.update_state(_unscale_for_distribution(loss), sample_weight=batch_size)
        self.auxiliary_loss_tracker.update_state(auxiliary_loss)
        return self._loggable(
            self.compute_metrics(ids, label, probability, sample_weight=sample_weight)
        )

    def test_step(self, data: Any) -> dict[str, Any]:
        inputs, label, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        ids, _, _ = _split_inputs(inputs)
        probability = ops.cast(self(ids, training=False), "float32")
        loss = self._compute_loss(
            x=ids,
            y=ops.cast(label, "float32"),
            y_pred=probability,
            sample_weight=sample_weight,
            training=False,
        )
        self._loss_tracker.update_state(
            _unscale_for_distribution(loss), sample_weight=ops.shape(ids)[0]
        )
        self.auxiliary_loss_tracker.update_state(self._sum_added_losses())
        return self._loggable(
            self.compute_metrics(ids, label, probability, sample_weight=sample_weight)
        )

    def _loggable(self, logs: dict[str, Any]) -> dict[str, Any]:
        # Under MultiWorkerMirroredStrategy Keras averages every log over the replicas
        # with strategy.reduce(..., axis=0), which fails on scalars; shape [1] reduces
        # to the scalar mean.
        if isinstance(self.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return {name: ops.reshape(value, (1,)) for name, value in logs.items()}
        return logs

    def predict_step(self, data: Any) -> Any:
        inputs, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        ids, _, _ = _split_inputs(inputs)
        return ops.cast(self(ids, training=False), "float32")

    def export(self, filepath: Any, format: str = "tf_saved_model", verbose: Any = None,
               input_signature: Any = None, **kwargs: Any) -> Any:
        """Export for serving; the default signature takes int32 ids ``[batch, F]``.

        F is read from the model's `FieldEmbedding`; pass ``input_signature`` for a model
        without one. The serving function runs ``call(ids, training=False)``.
        """
        if input_signature is None:
            from ada_keras.layers.field_embedding import FieldEmbedding

            embeddings = [
                layer for layer in self._flatten_layers(include_self=False)
                if isinstance(layer, FieldEmbedding)
            ]
            if embeddings:
                num_fields = embeddings[0].num_fields
                input_signature = [tf.TensorSpec((None, num_fields), tf.int32, name="ids")]
        return super().export(
            filepath, format=format, verbose=verbose, input_signature=input_signature, **kwargs
        )

    def _sum_added_losses(self) -> Any:
        total = ops.zeros((), dtype="float32")
        for loss in self.losses:
            total = total + ops.cast(ops.sum(loss), "float32")
        return total


def _replicas() -> int:
    return tf.distribute.get_strategy().num_replicas_in_sync


def _unscale_for_distribution(loss: Any) -> Any:
    """Multiply a replica's loss by the number of replicas, for the loss metrics.

    Keras divides each replica's loss by the number of replicas, so that the summed
    gradients are those of the global batch. The metrics should show the undivided loss.
    """
    replicas = _replicas()
    return loss if replicas == 1 else loss * ops.cast(replicas, loss.dtype)


def _unique(variables: list[keras.Variable]) -> list[keras.Variable]:
    seen: set[int] = set()
    result = []
    for variable in variables:
        if id(variable) not in seen:
            seen.add(id(variable))
            result.append(variable)
    return result
