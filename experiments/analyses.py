r"""Shared parts of the AdaEnsemble analyses (Tables 2-4, Figures 4-5 of Yan and Li).

Every analysis trains AdaEnsemble variants: another k, another depth, no depth controller,
or a single expert. A variant is one runner cell ``(dataset, "adaensemble", seed,
variant)``, and all analysis commands share one output folder by default, so a cell that
two analyses need (k = 3 at depth 4 is in Tables 2, 3 and 4 and both figures) trains
once and ``--resume`` reuses it everywhere.

Beyond the exact test AUC and LogLoss, a cell records what the analyses read from the
trained model: the routing statistics after ``model.evaluate`` on the test split (exit
shares, per-layer expert shares), the executed multiply-adds per example
(`ada_keras.flops`), the routing paths of the test examples (Figure 4) and, in
``predictions/<cell>.npy``, the test probabilities that the ensemble row of Table 2
averages.

Annealing. AdaEnsemble lowers k from the number of experts to the target k over
``anneal_steps`` W steps. When the configuration gives no ``anneal_steps`` for
adaensemble, the analyses anneal over the first half of the profile's step budget, so
that k reaches its target on small data too (the model's default of 1000 steps is
longer than a whole smoke or sample run).
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from absl import app, flags, logging

from experiments import config as experiment_config
from experiments import data_sources, runner

MODEL = "adaensemble"

# Expert names of ada_keras.layers.sparse_moe.EXPERT_CLASSES, in Yan and Li's row order,
# with the row labels of Yan and Li's Table 2.
EXPERT_LABELS = {
    "dense": "Dense only",
    "cross": "Cross only",
    "polynomial": "Polynomial only",
    "conv": "CNN only",
    "attention": "MHSA only",
}
DEFAULT_EXPERTS = ("dense", "conv", "attention", "polynomial", "cross")

# Published Criteo figures of Yan and Li (full data): AUC, LogLoss, FLOPs per example.
PAPER_TABLE2 = {
    "SparseMoE k=1": (0.8096, 0.4423, 2.26e6),
    "SparseMoE k=2": (0.8121, 0.4400, 4.14e6),
    "SparseMoE k=3": (0.8132, 0.4394, 6.02e6),
    "SparseMoE k=4": (0.8133, 0.4393, 7.09e6),
    "DenseMoE": (0.8133, 0.4392, 9.78e6),
    "Ensemble": (0.8120, 0.4401, 12.15e6),
    "Dense only": (0.8050, 0.4463, 3.71e6),
    "Cross only": (0.8086, 0.4433, 3.36e6),
    "Polynomial only": (0.8111, 0.4408, 3.32e6),
    "CNN only": (0.8022, 0.4501, 1.11e6),
    "MHSA only": (0.8051, 0.4465, 2.17e6),
}
PAPER_TABLE3 = {
    "with controller": (0.8132, 0.4394, 6.02e6),
    "without controller (full depth)": (0.8128, 0.4396, 8.58e6),
}
PAPER_TABLE4 = (0.0653, 0.1936, 0.6643, 0.0768)

FLAGS = flags.FLAGS


def define_flags(default_datasets: Sequence[str] = ("criteo",)) -> None:
    """Define the flags every analysis command takes; the data flags match table1's.

    A flag that exists already is kept, because several commands may share a process
    (the tests import them all, and experiments.table1 defines the same data flags).
    """
    definitions = [
        (flags.DEFINE_string, "data_dir", None,
         "Folder with one subfolder per dataset (criteo, avazu, ipinyou) holding the files "
         "as downloaded. Without it, the embedded synthetic data is used."),
        (flags.DEFINE_list, "datasets", list(default_datasets), "Datasets to run, comma-separated."),
        (flags.DEFINE_list, "seeds", ["0"], "Training seeds, comma-separated integers."),
        (flags.DEFINE_string, "output_dir", None,
         "Where cells, tables and figures go; default runs/analyses/PROFILE-SOURCE, "
         "shared by all analysis commands so they reuse each other's cells."),
        (flags.DEFINE_bool, "resume", False, "Reuse finished cells with the same configuration."),
        (flags.DEFINE_string, "cache_dir", None,
         "Cache of prepared datasets; default $XDG_CACHE_HOME/ada_keras/prepared or "
         "~/.cache/ada_keras/prepared."),
        (flags.DEFINE_bool, "deterministic", True, "Enable TensorFlow's deterministic ops."),
        (flags.DEFINE_integer, "keras_verbose", None,
         "Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch. Default: 1 on "
         "a terminal, 2 otherwise."),
        (flags.DEFINE_integer, "num_layers", 4, "Depth L of the AdaEnsemble variants (Yan and Li's 4)."),
        (flags.DEFINE_integer, "top_k", 3, "Target k of the AdaEnsemble variants (Yan and Li's 3)."),
        (flags.DEFINE_list, "experts", list(DEFAULT_EXPERTS),
         "Experts of every SparseMoE layer, names from dense, conv, attention, polynomial, cross."),
    ]
    for define, name, default, help_text in definitions:
        if name not in FLAGS:
            define(name, default, help_text)
    if "profile" not in FLAGS:
        flags.DEFINE_enum(
            "profile", "smoke", list(experiment_config.PROFILES),
            "Settings from experiments/configs/PROFILE/DATASET.json (smoke, sample or paper).",
        )


@dataclasses.dataclass(frozen=True)
class Variant:
    """An AdaEnsemble configuration: depth, k, experts and whether it exits early."""

    num_layers: int
    top_k: int
    experts: tuple[str, ...]
    early_exit: bool = True

    def __post_init__(self) -> None:
        if self.num_layers < 1:
            raise ValueError(f"num_layers = {self.num_layers} is invalid; it must be >= 1.")
        if not 1 <= self.top_k <= len(self.experts):
            raise ValueError(
                f"top_k = {self.top_k} is invalid for {len(self.experts)} experts "
                f"({', '.join(self.experts)}); it must lie in [1, {len(self.experts)}]."
            )

    @property
    def name(self) -> str:
        """The cell's variant name, e.g. `L4-k3-conv.cross`; a file-name component."""
        parts = [f"L{self.num_layers}", f"k{self.top_k}", ".".join(self.experts)]
        if not self.early_exit:
            parts.append("full-depth")
        return "-".join(parts)

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "num_layers": self.num_layers,
            "top_k": self.top_k,
            "experts": list(self.experts),
            "early_exit": self.early_exit,
        }


def variant_from_flags(**changes: Any) -> Variant:
    """Return the flags' variant (L, k, experts) with `changes` applied."""
    experts = tuple(FLAGS.experts)
    unknown = [name for name in experts if name not in EXPERT_LABELS]
    if unknown:
        raise app.UsageError(
            f"--experts: unknown {unknown}; choose from {', '.join(EXPERT_LABELS)}"
        )
    settings = {"num_layers": FLAGS.num_layers, "top_k": FLAGS.top_k, "experts": experts}
    settings.update(changes)
    if settings["top_k"] > len(settings["experts"]):
        raise app.UsageError(
            f"--top_k={settings['top_k']} exceeds the {len(settings['experts'])} experts given"
        )
    return Variant(**settings)


@dataclasses.dataclass
class Session:
    """Everything a command needs to run cells: data, configurations, output folder."""

    output_dir: pathlib.Path
    datasets: list[str]
    seeds: list[int]
    synthetic: bool
    configs: dict[str, dict[str, Any]]
    prepared: dict[str, data_sources.PreparedData]
    verbose: int

    @property
    def store(self) -> runner.CellStore:
        return runner.CellStore(self.output_dir)

    def predictions_path(self, cell: runner.Cell) -> pathlib.Path:
        return self.output_dir / "predictions" / f"{cell.key}.npy"

    def data_note(self, dataset: str) -> str:
        """Return one line saying which data a table comes from and how comparable it is."""
        description = self.prepared[dataset].describe()
        if self.synthetic:
            return (
                f"Data: embedded SYNTHETIC {dataset}-shaped data, {description}. The figures "
                "check the pipeline and are not comparable to Yan and Li's."
            )
        profile = self.configs[dataset]["profile"]
        comparable = "" if profile == "paper" else (
            " This is a sample, so the figures are not comparable to Yan and Li's full-data ones."
        )
        return f"Data: {dataset}, {description}, profile {profile}.{comparable}"


def parse_seeds(values: Sequence[str]) -> list[int]:
    try:
        seeds = [int(value) for value in values]
    except ValueError:
        raise app.UsageError(f"--seeds must be integers, got {list(values)}") from None
    if len(set(seeds)) != len(seeds):
        raise app.UsageError(f"--seeds has duplicates: {list(values)}")
    return seeds


def start_session(command: str) -> Session:
    """Check the flags, prepare (or reuse) the data and return the command's session."""
    import tensorflow as tf

    unknown = [name for name in FLAGS.datasets if name not in data_sources.DATASETS]
    if unknown:
        raise app.UsageError(
            f"--datasets: unknown {unknown}; choose from {', '.join(data_sources.DATASETS)}"
        )
    seeds = parse_seeds(FLAGS.seeds)
    synthetic = FLAGS.data_dir is None
    source = "synthetic" if synthetic else "data"
    output_dir = pathlib.Path(FLAGS.output_dir or f"runs/analyses/{FLAGS.profile}-{source}")
    cache_dir = (
        pathlib.Path(FLAGS.cache_dir) if FLAGS.cache_dir else data_sources.default_cache_dir()
    )
    verbose = FLAGS.keras_verbose
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    if FLAGS.deterministic:
        tf.config.experimental.enable_op_determinism()
    if synthetic:
        logging.info(
            "No --data_dir given: using the embedded SYNTHETIC data. Pass --data_dir for "
            "real data."
        )

    configs, prepared = {}, {}
    for dataset in FLAGS.datasets:
        configs[dataset] = experiment_config.load_config(FLAGS.profile, dataset)
        settings = configs[dataset]["data"]
        if synthetic:
            prepared[dataset] = data_sources.prepare_synthetic(dataset, cache_dir, settings)
        else:
            folder = pathlib.Path(FLAGS.data_dir) / dataset
            prepared[dataset] = data_sources.prepare_real(dataset, folder, cache_dir, settings)
        logging.info("%s: %s", dataset, prepared[dataset].describe())

    runner.write_json_atomically(
        output_dir / f"{command}_run.json",
        {
            "argv": sys.argv, "profile": FLAGS.profile, "data_dir": FLAGS.data_dir,
            "datasets": list(FLAGS.datasets), "seeds": seeds, "resume": FLAGS.resume,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )
    return Session(output_dir, list(FLAGS.datasets), seeds, synthetic, configs, prepared, verbose)


def cell_configuration(session: Session, dataset: str, variant: Variant) -> dict[str, Any]:
    """Return the cell's configuration: table1's adaensemble settings with the variant's."""
    from baselines import registry
    from experiments import cell_training

    configuration = experiment_config.cell_configuration(
        session.configs[dataset], MODEL, registry.hyperparameter_names(MODEL)
    )
    hyperparameters = configuration["model_hyperparameters"]
    hyperparameters.update(variant.hyperparameters())
    if "anneal_steps" not in hyperparameters:
        metadata = session.prepared[dataset].metadata
        train_rows = metadata["splits"]["train"]["rows"]
        schedule = cell_training.training_schedule(configuration["training"], train_rows)
        hyperparameters["anneal_steps"] = max(1, schedule["total_steps"] // 2)
    data = session.prepared[dataset]
    configuration["data_source"] = {
        "synthetic": data.synthetic, "form": data.form, "inputs": list(data.inputs),
        "prepared_fingerprint": data.fingerprint,
    }
    configuration["variant"] = variant.name
    return configuration


def run_variants(
    session: Session, variants: Sequence[Variant], *, need_predictions: bool = False
) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Run (or resume) every variant on every dataset and seed.

    With `need_predictions`, a stored cell whose predictions file is missing runs again.

    Returns:
        The records keyed by ``(dataset, variant name, seed)``.
    """
    unique = list(dict.fromkeys(variants))
    by_name = {variant.name: variant for variant in unique}
    cells = [
        runner.Cell(dataset=dataset, model=MODEL, seed=seed, variant=variant.name)
        for dataset in session.datasets
        for variant in unique
        for seed in session.seeds
    ]

    def configuration_of(cell: runner.Cell) -> dict[str, Any]:
        return cell_configuration(session, cell.dataset, by_name[cell.variant])

    def run_cell(cell: runner.Cell, configuration: Mapping[str, Any]) -> dict[str, Any]:
        from experiments import analysis_training

        directory = session.prepared[cell.dataset].directory
        return analysis_training.train_variant(
            directory, configuration, cell.seed, session.predictions_path(cell),
            verbose=session.verbose,
        )

    resumable = [c for c in cells if not need_predictions or session.predictions_path(c).exists()]
    rerun = [c for c in cells if c not in resumable]
    if FLAGS.resume and rerun:
        logging.info(
            "%d cell(s) have no stored test predictions, which the ensemble needs; they run "
            "again", len(rerun),
        )
    records = runner.run_cells(
        resumable, run_cell, configuration_of, session.store, resume=FLAGS.resume
    )
    if rerun:
        records += runner.run_cells(rerun, run_cell, configuration_of, session.store, resume=False)
    return {
        (record["cell"]["dataset"], record["cell"]["variant"], record["cell"]["seed"]): record
        for record in records
    }


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (None with fewer than two values)."""
    if not values:
        return None, None
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), (float(array.std(ddof=1)) if array.size > 1 else None)


def format_number(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def format_mean_std(mean: float | None, std: float | None, digits: int = 4) -> str:
    if mean is None:
        return "missing"
    if std is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def format_mflops(flops: float | None) -> str:
    return "n/a" if flops is None else f"{flops / 1e6:.3f}M"


def write_text_atomically(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise


def write_table(
    session: Session, stem: str, title: str, notes: Sequence[str],
    header: Sequence[str], rows: Sequence[Sequence[str]], csv_rows: Sequence[Mapping[str, Any]],
) -> str:
    """Write `stem.md` (a Markdown table) and `stem.csv`; return the Markdown text."""
    import csv
    import io

    lines = [f"## {title}", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    lines.append("")
    lines.extend(notes)
    markdown = "\n".join(lines) + "\n"
    write_text_atomically(session.output_dir / f"{stem}.md", markdown)

    buffer = io.StringIO()
    if csv_rows:
        writer = csv.DictWriter(buffer, fieldnames=list(csv_rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(csv_rows)
    write_text_atomically(session.output_dir / f"{stem}.csv", buffer.getvalue())
    return markdown


def flops_note() -> str:
    return (
        "FLOPs per example are 2 × the multiply-adds that ada_keras.flops counts (matrix "
        "products and interaction products; embedding lookups, biases, activations and "
        "normalisation excluded), as executed on the test split: each expert counts for "
        "the share of examples routed to it, and an example that exits early counts only "
        "the layers it ran."
    )


def path_counts(record: Mapping[str, Any], choice: str) -> Counter:
    """Return Counter of routing paths ("top1" or "set") stored in a cell record."""
    return Counter({tuple(key.split("|")): count for key, count in record["routing_paths"][choice].items()})


def records_of(
    records: Mapping[tuple[str, str, int], Mapping[str, Any]],
    session: Session, dataset: str, variant: Variant,
) -> list[Mapping[str, Any]]:
    """Return the records of `variant` on `dataset`, one per seed that has one."""
    keys = [(dataset, variant.name, seed) for seed in session.seeds]
    return [records[key] for key in keys if key in records]


def metric_summary(label: str, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean and std over seeds of test AUC, LogLoss and executed FLOPs per example."""
    auc_mean, auc_std = mean_std([r["test"]["auc"] for r in records])
    logloss_mean, logloss_std = mean_std([r["test"]["logloss"] for r in records])
    flops_mean, _ = mean_std([r["flops"]["executed"]["flops"] for r in records])
    return {
        "row": label,
        "seeds": len(records),
        "auc_mean": auc_mean,
        "auc_std": auc_std,
        "logloss_mean": logloss_mean,
        "logloss_std": logloss_std,
        "flops_mean": flops_mean,
    }


def metric_table_rows(
    summaries: Sequence[Mapping[str, Any]], paper: Mapping[str, tuple[float, float, float]],
    dataset: str,
) -> tuple[list[str], list[list[str]], list[dict[str, Any]]]:
    """Return the header, Markdown rows and CSV rows of a metric table with paper columns.

    Yan and Li's figures are Criteo's, so other datasets get n/a there.
    """
    header = ["Model", "AUC", "LogLoss", "FLOPs/example", "Paper AUC", "Paper LogLoss",
              "Paper FLOPs", "Seeds"]
    rows, csv_rows = [], []
    for summary in summaries:
        published = paper.get(summary["row"]) if dataset == "criteo" else None
        paper_auc, paper_logloss, paper_flops = published or (None, None, None)
        rows.append([
            summary["row"],
            format_mean_std(summary["auc_mean"], summary["auc_std"]),
            format_mean_std(summary["logloss_mean"], summary["logloss_std"]),
            format_mflops(summary["flops_mean"]),
            format_number(paper_auc),
            format_number(paper_logloss),
            format_mflops(paper_flops),
            str(summary["seeds"]),
        ])
        csv_rows.append({"dataset": dataset, **summary, "paper_auc": paper_auc,
                         "paper_logloss": paper_logloss, "paper_flops": paper_flops})
    return header, rows, csv_rows


def write_metric_table(
    session: Session, stem: str, title: str,
    summaries_by_dataset: Mapping[str, Sequence[Mapping[str, Any]]],
    paper: Mapping[str, tuple[float, float, float]], notes: Sequence[str],
) -> str:
    """Write a metric table (one block of rows per dataset) as `stem`.md/.csv; return the Markdown."""
    header: list[str] = []
    rows: list[list[str]] = []
    csv_rows: list[dict[str, Any]] = []
    for dataset, summaries in summaries_by_dataset.items():
        header, dataset_rows, dataset_csv = metric_table_rows(summaries, paper, dataset)
        if len(summaries_by_dataset) > 1:
            rows.append([f"**{dataset}**"] + [""] * (len(header) - 1))
        rows.extend(dataset_rows)
        csv_rows.extend(dataset_csv)
    all_notes = [session.data_note(dataset) for dataset in summaries_by_dataset]
    all_notes += [""] + list(notes) + ["", flops_note()]
    return write_table(session, stem, title, all_notes, header, rows, csv_rows)
