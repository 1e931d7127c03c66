"""LazyAdam: Adam whose sparse updates touch only the embedding rows in the batch.

Keras 3's `keras.optimizers.Adam` (3.15) computes ``gradient - m`` with the
`tf.IndexedSlices` gradient of an embedding table, which densifies it: every step reads
and writes the whole table and both moment tables, so a step costs what the table contains
(3 x 640 MB at 10 M ids and D = 16) instead of what the batch touches.

For a sparse gradient with unique ids ``r`` and per-id summed rows ``g_r``, LazyAdam
updates those rows only, at step t:

    m_r     = beta_1 * m_r + (1 - beta_1) * g_r
    v_r     = beta_2 * v_r + (1 - beta_2) * g_r^2
    v_hat_r = max(v_hat_r, v_r)                           (amsgrad only)
    theta_r = theta_r - lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m_r / (sqrt(v_r) + eps)

Rows absent from the batch keep their moments and values. This is the rule of TensorFlow
Addons' ``LazyAdam`` and of PyTorch's ``SparseAdam``. It differs from dense Adam, where
the moments of absent rows decay and those rows still move by the decayed momentum, so
a model trained with it is not the one dense Adam gives. Dense gradients take Keras's
Adam step unchanged.

Use it for embedding tables, through `ada_keras.training.CTRModel.compile`'s
``embedding_optimizer`` argument:

```python
model.compile(optimizer="adam", embedding_optimizer=LazyAdam(learning_rate=1e-3))
```
"""

from typing import Any

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="ada_keras")
class LazyAdam(keras.optimizers.Adam):
    """Adam that applies a `tf.IndexedSlices` gradient to the rows it names only.

    Args:
        learning_rate: step size, a float or a `keras.optimizers.schedules` schedule.
        beta_1: decay rate of the first moment.
        beta_2: decay rate of the second moment.
        epsilon: constant added to sqrt(v) for numerical stability.
        amsgrad: use the maximum of past second moments (AMSGrad).
        **kwargs: other `keras.optimizers.Optimizer` arguments (``clipnorm``,
            ``global_clipnorm``, ``name``, ...). ``weight_decay`` is rejected, because
            decoupled weight decay rewrites the whole table in every step.
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("weight_decay") is not None:
            raise ValueError(
                f"weight_decay = {kwargs['weight_decay']} is not supported by LazyAdam, "
                "because it would update every row of the table in every step; use an "
                "embeddings_regularizer (L2 on the looked-up rows) instead."
            )
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=amsgrad,
            **kwargs,
        )

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if not isinstance(gradient, tf.IndexedSlices):
            super().update_step(gradient, variable, learning_rate)
            return

        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        alpha = (
            tf.cast(learning_rate, dtype)
            * tf.sqrt(1 - tf.pow(beta_2, step))
            / (1 - tf.pow(beta_1, step))
        )

        # A batch repeats ids, and a scatter with repeated indices keeps one of them,
        # so the gradient rows are summed per id first. rows: [u], values: [u, D].
        rows, position = tf.unique(gradient.indices)
        values = tf.math.unsorted_segment_sum(
            tf.cast(gradient.values, dtype), position, tf.shape(rows)[0]
        )

        index = self._get_variable_index(variable)
        m = self._momentums[index]
        v = self._velocities[index]
        m_rows = beta_1 * tf.gather(m.value, rows) + (1 - beta_1) * values
        v_rows = beta_2 * tf.gather(v.value, rows) + (1 - beta_2) * tf.square(values)
        self.assign(m, tf.IndexedSlices(m_rows, rows))
        self.assign(v, tf.IndexedSlices(v_rows, rows))

        if self.amsgrad:
            v_hat = self._velocity_hats[index]
            v_rows = tf.maximum(tf.gather(v_hat.value, rows), v_rows)
            self.assign(v_hat, tf.IndexedSlices(v_rows, rows))

        update = alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon)
        self.assign_sub(variable, tf.IndexedSlices(update, rows))
