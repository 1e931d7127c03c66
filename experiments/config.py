"""Per-dataset, per-profile experiment settings, read from `experiments/configs/PROFILE/DATASET.json`.

A configuration file has these sections:

- `data`: `min_count` (levels seen fewer times in the training split map to the
  out-of-vocabulary id) and `split_seed` (seed of the random 70/10/20 split, the same
  for every training seed). For synthetic data, `split_seed` also seeds the generator
  and `synthetic_rows` sets the row count. `on_bad_row` ("skip", the default, counts and
  reports malformed rows; "error" stops at the first) is optional.
- `training`: `batch_size`, `max_epochs` (passes over the training split) or `max_steps`,
  `eval_every_steps` (steps between two validation evaluations; null means once per pass),
  `patience` (evaluations without a better validation AUC before stopping), `optimizer`
  ("adam", "ftrl", "adagrad" or "sgd"), `learning_rate`, `jit_compile`,
  `evaluation_batch_size`.
- `training_by_model`: per-model overrides of `training` (LR and FM use FTRL).
- `model_hyperparameters`: keyword arguments of `baselines.registry.build_model`; the
  `"*"` entry applies to every model and a model's own entry overrides it.
- `tune_grid`: the `--tune` grid per model (`"*"` for the rest), mapping a dotted path
  (`training.learning_rate`, `model_hyperparameters.num_layers`) to candidate values.

`cell_configuration` merges these into the flat settings of one model, which the runner
stores next to every result.
"""

from __future__ import annotations

import copy
import itertools
import json
import pathlib
from typing import Any, Mapping, Sequence

CONFIG_DIR = pathlib.Path(__file__).resolve().parent / "configs"
PROFILES = ("smoke", "sample", "paper")
# "lazy_adam" is `ada_keras.optimizers.LazyAdam`: Adam that updates only the embedding
# rows a batch looks up, for the optional training.embedding_optimizer.
OPTIMIZERS = ("adam", "lazy_adam", "ftrl", "adagrad", "sgd")

_REQUIRED_SECTIONS = ("data", "training", "training_by_model", "model_hyperparameters", "tune_grid")
_REQUIRED_TRAINING_KEYS = ("batch_size", "patience", "optimizer", "learning_rate")


def config_path(profile: str, dataset: str) -> pathlib.Path:
    return CONFIG_DIR / profile / f"{dataset}.json"


def load_config(profile: str, dataset: str) -> dict[str, Any]:
    """Read and check the configuration of `dataset` under `profile`.

    Raises:
        ValueError: for an unknown profile, a missing file or a missing or invalid setting.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    path = config_path(profile, dataset)
    if not path.exists():
        available = sorted(p.stem for p in (CONFIG_DIR / profile).glob("*.json"))
        raise ValueError(
            f"no configuration for dataset {dataset!r} under profile {profile!r}: {path} is "
            f"missing. Configured datasets: {', '.join(available)}"
        )
    with path.open(encoding="utf-8") as stream:
        config = json.load(stream)

    missing = [section for section in _REQUIRED_SECTIONS if section not in config]
    if missing:
        raise ValueError(f"{path}: missing sections {missing}")
    missing = [key for key in _REQUIRED_TRAINING_KEYS if key not in config["training"]]
    if missing:
        raise ValueError(f"{path}: section 'training' lacks {missing}")
    training = config["training"]
    if not training.get("max_epochs") and not training.get("max_steps"):
        raise ValueError(f"{path}: set training.max_epochs or training.max_steps")
    for model, overrides in [("*", training)] + list(config["training_by_model"].items()):
        optimizer = overrides.get("optimizer", training["optimizer"])
        if optimizer not in OPTIMIZERS:
            raise ValueError(
                f"{path}: optimizer {optimizer!r} for model {model!r} is not one of {OPTIMIZERS}"
            )
        # None (or no key) leaves the embedding tables to the model's optimizer.
        embedding_optimizer = overrides.get(
            "embedding_optimizer", training.get("embedding_optimizer")
        )
        if embedding_optimizer is not None and embedding_optimizer not in OPTIMIZERS:
            raise ValueError(
                f"{path}: embedding_optimizer {embedding_optimizer!r} for model {model!r} is "
                f"not one of {OPTIMIZERS} or null"
            )
        alpha_every = overrides.get("alpha_every", training.get("alpha_every", 1))
        if not isinstance(alpha_every, int) or alpha_every < 1:
            raise ValueError(
                f"{path}: alpha_every {alpha_every!r} for model {model!r} is invalid; use an "
                "integer >= 1 (W steps per alpha step of AdaEnsemble)"
            )
    config["path"] = str(path)
    return config


def cell_configuration(
    config: Mapping[str, Any], model: str, accepted_hyperparameters: Sequence[str] | None = None
) -> dict[str, Any]:
    """Return the settings of one model under `config`, with the per-model overrides applied.

    Args:
        config: from `load_config`.
        model: a model name.
        accepted_hyperparameters: the keyword arguments the model takes
            (`baselines.registry.hyperparameter_names`). Entries of the `"*"` defaults that
            the model does not take are left out, because LR has no `embedding_dim`. The
            model's own entries are always kept, so a misspelt one fails in `build_model`.
    """
    training = dict(config["training"])
    training.update(config["training_by_model"].get(model, {}))

    hyperparameters = dict(config["model_hyperparameters"].get("*", {}))
    if accepted_hyperparameters is not None:
        hyperparameters = {
            key: value for key, value in hyperparameters.items() if key in accepted_hyperparameters
        }
    hyperparameters.update(config["model_hyperparameters"].get(model, {}))

    return {
        "profile": config["profile"],
        "dataset": config["dataset"],
        "config_file": pathlib.Path(config["path"]).relative_to(CONFIG_DIR.parents[1]).as_posix(),
        "data": dict(config["data"]),
        "training": training,
        "model_hyperparameters": hyperparameters,
    }


def tune_tolerance(config: Mapping[str, Any], model: str) -> float:
    """Return the relative validation-AUC tolerance of `--tune` for `model` (default 0).

    `--tune` keeps the grid point with the fewest FLOPs among those within this fraction
    of the best validation AUC (see `cell_training.train_with_grid_search`).
    """
    tolerances = config.get("tune_tolerance", {})
    tolerance = float(tolerances.get(model, tolerances.get("*", 0.0)))
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(
            f"{config.get('path', 'configuration')}: tune_tolerance {tolerance} for model "
            f"{model!r} is invalid; use a fraction in [0, 1), for example 0.0002 for 0.02 %"
        )
    return tolerance


def tune_grid(config: Mapping[str, Any], model: str) -> dict[str, list[Any]]:
    """Return the grid of `--tune` for `model`: dotted setting path -> candidate values."""
    grids = config["tune_grid"]
    return dict(grids.get(model, grids.get("*", {})))


def grid_points(
    configuration: Mapping[str, Any], grid: Mapping[str, list[Any]]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Expand `grid` over `configuration`.

    Returns:
        `(assignment, configuration)` pairs, one per grid point in row-major order, where
        `assignment` maps each dotted path to its value and `configuration` is a deep copy
        with those values set. An empty grid gives the configuration alone.
    """
    paths = sorted(grid)
    points = []
    for values in itertools.product(*(grid[path] for path in paths)):
        assignment = dict(zip(paths, values))
        point = copy.deepcopy(dict(configuration))
        for path, value in assignment.items():
            section, _, key = path.partition(".")
            if section not in ("training", "model_hyperparameters", "data") or not key:
                raise ValueError(
                    f"tune_grid path {path!r} is invalid; use training.KEY, "
                    "model_hyperparameters.KEY or data.KEY"
                )
            point[section][key] = value
        points.append((assignment, point))
    return points
