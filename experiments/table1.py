r"""Reproduce Table 1 of the AdaEnsemble paper (Yan and Li): test AUC and LogLoss of 14 models.

Trains every model of `baselines.registry.MODEL_NAMES` on every dataset with every seed,
evaluates it with the exact AUC and LogLoss on the test split, and prints the table with
the published figures beside ours. Every (model, dataset, seed) cell is written to its own
JSON file as soon as it ends, so `--resume` continues an interrupted run.

Examples:

    # Smoke test on the embedded synthetic data (a few seconds per cell):
    python -m experiments.table1

    # The real samples, three seeds:
    python -m experiments.table1 --profile sample --data_dir /path/to/data --seeds 0,1,2

    # Continue after Ctrl-C or a crash:
    python -m experiments.table1 --profile sample --data_dir /path/to/data --seeds 0,1,2 --resume

Outputs under --output_dir: `table1.md`, `table1.csv`, `table1.json`, `cells/*.json` (one
per cell, with metrics, epochs, wall time, parameter count, configuration and package
versions), `tensorboard/<cell>/` and `run.json` (the flags of the last run).
"""

from __future__ import annotations

import os
import pathlib
import sys
import time
from typing import Any, Mapping, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging

from experiments import config as experiment_config
from experiments import data_sources, paper_results, runner, tables

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "data_dir", None,
    "Folder with one subfolder per dataset (criteo, avazu, ipinyou) holding the files as "
    "downloaded. Without it, the embedded synthetic data is used.",
)
flags.DEFINE_list("datasets", list(paper_results.DATASETS), "Datasets to run, comma-separated.")
flags.DEFINE_list(
    "models", None,
    "Models to run, comma-separated names from baselines.registry.MODEL_NAMES; all by default.",
)
flags.DEFINE_list("seeds", ["0"], "Training seeds, comma-separated integers; the table shows mean and std.")
flags.DEFINE_enum(
    "profile", "smoke", list(experiment_config.PROFILES),
    "Settings from experiments/configs/PROFILE/DATASET.json: smoke (seconds per cell), "
    "sample (the real samples), paper (full data, batch 4096, evaluation every 2000 steps).",
)
flags.DEFINE_string(
    "output_dir", None,
    "Where the cells and tables go; default runs/table1/PROFILE-SOURCE, where SOURCE is "
    "'synthetic' or 'data'.",
)
flags.DEFINE_bool("resume", False, "Reuse finished cells with the same configuration instead of rerunning them.")
flags.DEFINE_bool(
    "tune", False,
    "Grid-search each cell on the validation split (grid: tune_grid in the config file) "
    "and report the test metrics of the chosen point: the one with the fewest FLOPs per "
    "example among those within tune_tolerance (a fraction; 0.0002 for AdaEnsemble, as Yan "
    "and Li chose) of the best validation AUC.",
)
flags.DEFINE_string(
    "cache_dir", None,
    "Cache of prepared datasets; default $XDG_CACHE_HOME/ada_keras/prepared or "
    "~/.cache/ada_keras/prepared.",
)
flags.DEFINE_bool(
    "deterministic", True,
    "Enable TensorFlow's deterministic ops, so a resumed run reproduces an uninterrupted one.",
)
flags.DEFINE_integer(
    "keras_verbose", None,
    "Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch. Default: 1 on a "
    "terminal, 2 otherwise.",
)
flags.DEFINE_bool(
    "table_only", False,
    "Train nothing: build the table from the finished cells in --output_dir whose "
    "configuration matches; cells not finished yet show as missing.",
)
flags.DEFINE_bool("tensorboard", True, "Write TensorBoard logs per cell under OUTPUT_DIR/tensorboard.")
flags.DEFINE_enum(
    "strategy", "default", ["default", "mirrored", "multi_worker"],
    "tf.distribute strategy: default (one device), mirrored (all GPUs of this machine) or "
    "multi_worker (every worker runs this command with its own TF_CONFIG). Batch sizes "
    "in the configs are global batches.",
)
flags.DEFINE_bool(
    "save_models", True,
    "Save each cell's trained model under OUTPUT_DIR/models/CELL (model.keras and "
    "data_dir.txt), for `python -m experiments.export --run`. Not done with --tune.",
)


def parse_seeds(values: Sequence[str]) -> list[int]:
    seeds = []
    for value in values:
        try:
            seeds.append(int(value))
        except ValueError:
            raise app.UsageError(f"--seeds must be integers, got {value!r}") from None
    if len(set(seeds)) != len(seeds):
        raise app.UsageError(f"--seeds has duplicates: {values}")
    return seeds


def check_names(values: Sequence[str], allowed: Sequence[str], flag: str) -> list[str]:
    unknown = [value for value in values if value not in allowed]
    if unknown:
        raise app.UsageError(f"--{flag}: unknown {unknown}; choose from {', '.join(allowed)}")
    return list(values)


def prepare_datasets(
    datasets: Sequence[str], configs: Mapping[str, Mapping[str, Any]],
    data_dir: str | None, cache_dir: pathlib.Path,
) -> dict[str, data_sources.PreparedData]:
    prepared = {}
    for dataset in datasets:
        settings = configs[dataset]["data"]
        if data_dir is None:
            prepared[dataset] = data_sources.prepare_synthetic(dataset, cache_dir, settings)
        else:
            folder = pathlib.Path(data_dir) / dataset
            prepared[dataset] = data_sources.prepare_real(dataset, folder, cache_dir, settings)
        logging.info("%s: %s", dataset, prepared[dataset].describe())
    return prepared


def table_title(
    profile: str, prepared: Mapping[str, data_sources.PreparedData], seeds: Sequence[int]
) -> str:
    """Return a title naming the profile, the data source and size, and the seed count."""
    synthetic = any(data.synthetic for data in prepared.values())
    source = "embedded SYNTHETIC data" if synthetic else "real data"
    sizes = ", ".join(
        f"{dataset} {sum(data.rows().values()):,} rows" for dataset, data in prepared.items()
    )
    return (
        f"Table 1: test AUC and LogLoss, profile {profile}, {source} ({sizes}), "
        f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}"
    )


def table_notes(profile: str, synthetic: bool, tune: bool) -> list[str]:
    notes = []
    if synthetic:
        notes.append(
            "The data is synthetic (generated by data.synthetic with planted feature "
            "interactions), not Criteo, Avazu or iPinYou: the figures check that the "
            "pipeline works and are not comparable to the paper's."
        )
    elif profile != "paper":
        notes.append(
            f"Profile {profile} trains on small samples of the datasets, so the figures are "
            "not comparable to the paper's, which come from the full datasets."
        )
    notes.append(
        "AUC and LogLoss are mean ± sample standard deviation over seeds, on the test split; "
        "the best model per dataset (highest mean AUC) is in bold. Paper columns: Yan and "
        "Li, AdaEnsemble, Table 1 (full data)."
    )
    if tune:
        notes.append(
            "Each cell was grid-searched on the validation split (--tune); the chosen point "
            "is the one with the fewest FLOPs per example within the configured tolerance "
            "of the best validation AUC."
        )
    return notes


def run_all_cells(cells, run_cell, configuration_of, store, resume):
    """Run the cells; on Ctrl-C, say where the finished cells are and how to continue."""
    try:
        return runner.run_cells(cells, run_cell, configuration_of, store, resume=resume)
    except KeyboardInterrupt:
        finished = len(list(store.cells_dir.glob("*.json")))
        logging.warning(
            "Interrupted. %d finished cells are in %s; rerun the same command with --resume "
            "to continue from there.", finished, store.cells_dir,
        )
        sys.exit(130)  # 128 + SIGINT, the shell's convention


def finished_records(cells, configuration_of, store) -> list[dict[str, Any]]:
    """Return the stored records of `cells` whose configuration fingerprint matches."""
    records = []
    for cell in cells:
        record = store.load(cell)
        expected = runner.fingerprint(dict(configuration_of(cell)))
        if record is not None and record.get("configuration_fingerprint") == expected:
            records.append(record)
    return records


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected positional arguments {argv[1:]}; pass options as --flag=value")

    # Imported after flag parsing so that `--help` does not wait for TensorFlow.
    import tensorflow as tf

    from ada_keras import distribute
    from baselines import registry
    from experiments import cell_training

    strategy = distribute.make_strategy(FLAGS.strategy)

    models = check_names(FLAGS.models or list(registry.MODEL_NAMES), registry.MODEL_NAMES, "models")
    datasets = check_names(FLAGS.datasets, data_sources.DATASETS, "datasets")
    seeds = parse_seeds(FLAGS.seeds)
    synthetic = FLAGS.data_dir is None
    source = "synthetic" if synthetic else "data"
    output_dir = pathlib.Path(FLAGS.output_dir or f"runs/table1/{FLAGS.profile}-{source}")
    cache_dir = pathlib.Path(FLAGS.cache_dir) if FLAGS.cache_dir else data_sources.default_cache_dir()
    verbose = FLAGS.keras_verbose
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2

    if FLAGS.deterministic:
        tf.config.experimental.enable_op_determinism()
    if synthetic:
        logging.info(
            "No --data_dir given: using the embedded SYNTHETIC data (Criteo-, Avazu- and "
            "iPinYou-shaped, with planted interactions). Pass --data_dir for real data."
        )

    configs = {dataset: experiment_config.load_config(FLAGS.profile, dataset) for dataset in datasets}
    prepared = prepare_datasets(datasets, configs, FLAGS.data_dir, cache_dir)

    run_flags = {
        "argv": sys.argv, "profile": FLAGS.profile, "data_dir": FLAGS.data_dir,
        "datasets": datasets, "models": models, "seeds": seeds, "resume": FLAGS.resume,
        "tune": FLAGS.tune, "output_dir": str(output_dir), "cache_dir": str(cache_dir),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if not FLAGS.table_only:
        runner.write_json_atomically(output_dir / "run.json", run_flags)

    def configuration_of(cell: runner.Cell) -> dict[str, Any]:
        configuration = experiment_config.cell_configuration(
            configs[cell.dataset], cell.model, registry.hyperparameter_names(cell.model)
        )
        data = prepared[cell.dataset]
        configuration["data_source"] = {
            "synthetic": data.synthetic, "form": data.form, "inputs": list(data.inputs),
            "prepared_fingerprint": data.fingerprint,
        }
        if FLAGS.tune:
            configuration["tune_grid"] = experiment_config.tune_grid(configs[cell.dataset], cell.model)
            configuration["tune_tolerance"] = experiment_config.tune_tolerance(
                configs[cell.dataset], cell.model
            )
        return configuration

    def run_cell(cell: runner.Cell, configuration: Mapping[str, Any]) -> dict[str, Any]:
        directory = prepared[cell.dataset].directory
        tensorboard_dir = output_dir / "tensorboard" / cell.key if FLAGS.tensorboard else None
        if FLAGS.tune:
            return cell_training.train_with_grid_search(
                cell.model, directory, configuration, configuration["tune_grid"], cell.seed,
                tolerance=configuration["tune_tolerance"],
                tensorboard_dir=tensorboard_dir, verbose=verbose,
            )
        model_dir = output_dir / "models" / cell.key if FLAGS.save_models else None
        return cell_training.train_and_evaluate(
            cell.model, directory, configuration, cell.seed,
            tensorboard_dir=tensorboard_dir, verbose=verbose,
            strategy=strategy, model_dir=model_dir,
        )

    cells = runner.make_cells(models, datasets, seeds)
    logging.info("%d cells (%d models x %d datasets x %d seeds), results in %s",
                 len(cells), len(models), len(datasets), len(seeds), output_dir)
    start = time.monotonic()
    store = runner.CellStore(output_dir)
    if FLAGS.table_only:
        records = finished_records(cells, configuration_of, store)
        logging.info("--table_only: %d of %d cells are finished", len(records), len(cells))
    else:
        records = run_all_cells(cells, run_cell, configuration_of, store, FLAGS.resume)

    rows = tables.summarize(records, models, datasets)
    descriptions = {dataset: prepared[dataset].describe() for dataset in datasets}
    markdown = tables.write_tables(
        rows, output_dir, "table1",
        table_title(FLAGS.profile, prepared, seeds),
        table_notes(FLAGS.profile, synthetic, FLAGS.tune),
        descriptions,
    )
    # The table is this command's product, so it goes to stdout; progress went to the log.
    print(markdown)
    logging.info("Table 1 written to %s and %s in %.0f s",
                 output_dir / "table1.md", output_dir / "table1.csv", time.monotonic() - start)


if __name__ == "__main__":
    app.run(main)
