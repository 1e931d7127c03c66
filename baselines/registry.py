"""Model names used on every command line, and `build_model` to construct any of them.

`MODEL_NAMES` lists the thirteen baselines and AdaEnsemble in the order of Yan and Li's
comparison table; experiments iterate over it.

Example:

```python
from baselines.registry import MODEL_NAMES, build_model

model = build_model("deepfm", vocabulary_sizes=[1000, 50, 7], hidden_units=(256, 128))
model.compile(optimizer="adam")
```
"""

import inspect
from collections.abc import Sequence
from typing import Any

from ada_keras.training import CTRModel
from baselines.autoint import AutoInt
from baselines.base import EmbeddingBaseline
from baselines.dcn import DCN
from baselines.dcn_v2 import DCNV2
from baselines.deep_crossing import DeepCrossing
from baselines.deepfm import DeepFM
from baselines.dnn import DNN
from baselines.fibinet import FiBiNET
from baselines.fm import FM
from baselines.lr import LogisticRegression
from baselines.pnn import PNN
from baselines.wide_deep import WideDeep
from baselines.xdeepfm import XDeepFM
from baselines.xdeepint import XDeepInt

MODEL_NAMES = (
    "lr",
    "fm",
    "dnn",
    "wide_deep",
    "deepfm",
    "deep_crossing",
    "dcn",
    "pnn",
    "xdeepfm",
    "autoint",
    "fibinet",
    "xdeepint",
    "dcn_v2",
    "adaensemble",
)

BASELINE_CLASSES: dict[str, type[CTRModel]] = {
    "lr": LogisticRegression,
    "fm": FM,
    "dnn": DNN,
    "wide_deep": WideDeep,
    "deepfm": DeepFM,
    "deep_crossing": DeepCrossing,
    "dcn": DCN,
    "pnn": PNN,
    "xdeepfm": XDeepFM,
    "autoint": AutoInt,
    "fibinet": FiBiNET,
    "xdeepint": XDeepInt,
    "dcn_v2": DCNV2,
}


def model_class(name: str) -> type[CTRModel]:
    """Return the `CTRModel` subclass registered under `name`."""
    if name not in MODEL_NAMES:
        raise ValueError(f"Unknown model name {name!r}; valid names are {', '.join(MODEL_NAMES)}.")
    if name == "adaensemble":
        try:
            from ada_keras import AdaEnsemble
        except ImportError as error:
            raise ImportError(
                "Model 'adaensemble' needs ada_keras.AdaEnsemble, which could not be imported "
                f"({error}). Check that the ada_keras package is complete and installed."
            ) from error
        return AdaEnsemble
    return BASELINE_CLASSES[name]


def hyperparameter_names(name: str) -> tuple[str, ...]:
    """Return the keyword arguments `build_model(name, ...)` accepts besides vocabulary_sizes."""
    cls = model_class(name)
    names: list[str] = []
    classes = [cls] + ([EmbeddingBaseline] if issubclass(cls, EmbeddingBaseline) else [])
    for current in classes:
        for parameter in inspect.signature(current.__init__).parameters.values():
            if parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD) and parameter.name not in (
                "self",
                "vocabulary_sizes",
            ):
                if parameter.name not in names:
                    names.append(parameter.name)
    return tuple(names)


def build_model(name: str, vocabulary_sizes: Sequence[int], **hyperparameters: Any) -> CTRModel:
    """Construct the model `name` for fields with the given vocabulary sizes.

    Args:
        name: One of `MODEL_NAMES`.
        vocabulary_sizes: Number of ids of each field, as in the prepared dataset's
            metadata ("vocabulary_sizes").
        **hyperparameters: Constructor arguments of that model (see
            `hyperparameter_names(name)`). Omitted ones keep their defaults, among them
            embedding_dim=16.

    Raises:
        ValueError: For an unknown name or a hyper-parameter the model does not take.
    """
    cls = model_class(name)
    accepted = hyperparameter_names(name)
    unknown = sorted(set(hyperparameters) - set(accepted))
    # Keras layer arguments such as `name` and `dtype` pass through to keras.Model.
    unknown = [key for key in unknown if key not in ("name", "dtype")]
    if unknown:
        raise ValueError(
            f"Model {name!r} does not take the hyper-parameter(s) {unknown}; it accepts "
            f"{', '.join(accepted)}."
        )
    return cls(vocabulary_sizes=list(vocabulary_sizes), **hyperparameters)
