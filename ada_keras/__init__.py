"""ada-keras: AdaEnsemble and the CTR-model base class for TensorFlow / Keras 3.

`CTRModel` (ada_keras.training) is the base class of every model in this repository.
`AdaEnsemble` (ada_keras.model) is Yan and Li's sparsely gated mixture of
feature-interaction experts with learned early exits. Reusable layers live in
`ada_keras.layers`, and `ada_keras.optimizers.LazyAdam` trains embedding tables.
"""

from ada_keras import optimizers
from ada_keras.model import AdaEnsemble
from ada_keras.training import CTRModel, with_alpha_batches

__all__ = ["AdaEnsemble", "CTRModel", "with_alpha_batches"]
