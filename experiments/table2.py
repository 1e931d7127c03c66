r"""Table 2 of Yan and Li: sparse versus dense mixtures, ensembles and single experts.

Rows, all at the same depth L (``--num_layers``, default 4) with the depth controller:

* SparseMoE k = 1 .. 4: AdaEnsemble routing each example to its k best experts.
* DenseMoE: every expert runs on every example, weighted by the softmax gate (k = n).
* Ensemble: the single-expert models below, trained apart, their test probabilities
  averaged; its FLOPs are the sum of theirs.
* Dense / Cross / Polynomial / CNN / MHSA only: AdaEnsemble with that one expert.

Each row gives the test AUC, LogLoss and executed FLOPs per example (mean ± std over
seeds) beside Yan and Li's Criteo figures.

Examples:

    python -m experiments.table2                      # synthetic smoke run
    python -m experiments.table2 --data_dir /path/to/data --datasets criteo --profile sample
    python -m experiments.table2 ... --resume         # continue, reusing finished cells

Outputs under --output_dir (shared with the other analyses): table2.md, table2.csv,
cells/*.json and predictions/*.npy.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from absl import app, flags, logging

from experiments import analyses, runner

analyses.define_flags()
# List the shared data flags under --help, not only under --helpfull.
flags.adopt_module_key_flags(analyses)
FLAGS = flags.FLAGS

MAX_SPARSE_K = 4


def table2_variants(base: analyses.Variant) -> dict[str, Any]:
    """Return the variants of each row; the ensemble row's value is the list of singles."""
    experts = base.experts
    variants: dict[str, Any] = {}
    for k in range(1, min(MAX_SPARSE_K, len(experts) - 1) + 1):
        variants[f"SparseMoE k={k}"] = dataclasses.replace(base, top_k=k)
    variants["DenseMoE"] = dataclasses.replace(base, top_k=len(experts))
    singles = {
        analyses.EXPERT_LABELS[name]: analyses.Variant(base.num_layers, 1, (name,))
        for name in experts
    }
    variants["Ensemble"] = list(singles.values())
    variants.update(singles)
    return variants


def ensemble_summary(
    session: analyses.Session, dataset: str, singles: Sequence[analyses.Variant],
    records: Mapping[tuple[str, str, int], Mapping[str, Any]],
) -> dict[str, Any]:
    """Average the singles' test probabilities per seed and score the average."""
    import numpy as np

    from ada_keras.metrics import exact_auc, log_loss
    from data import pipeline
    from experiments import cell_training

    # The labels in the order the cells predicted them: the unshuffled test dataset.
    directory = session.prepared[dataset].directory
    labels = cell_training.labels_of(pipeline.make_dataset(directory, "test", 4096))
    per_seed = []
    for seed in session.seeds:
        keys = [(dataset, single.name, seed) for single in singles]
        if not all(key in records for key in keys):
            continue
        cells = [
            runner.Cell(dataset=dataset, model=analyses.MODEL, seed=seed, variant=single.name)
            for single in singles
        ]
        probabilities = [np.load(session.predictions_path(cell)) for cell in cells]
        if any(p.shape != labels.shape for p in probabilities):
            raise ValueError(
                f"stored test predictions of {dataset}, seed {seed} do not match the "
                f"{labels.size} test rows; rerun without --resume"
            )
        average = np.mean(probabilities, axis=0)
        per_seed.append({
            "test": {"auc": exact_auc(labels, average), "logloss": log_loss(labels, average)},
            "flops": {"executed": {"flops": sum(records[key]["flops"]["executed"]["flops"] for key in keys)}},
        })
    return analyses.metric_summary("Ensemble", per_seed)


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    session = analyses.start_session("table2")
    # Every row sets its own k, so --top_k plays no part here.
    base = analyses.variant_from_flags(top_k=1)
    row_variants = table2_variants(base)
    trained = [v for v in row_variants.values() if isinstance(v, analyses.Variant)]
    records = analyses.run_variants(session, trained, need_predictions=True)

    summaries_by_dataset = {}
    for dataset in session.datasets:
        summaries = []
        for label, variant in row_variants.items():
            if label == "Ensemble":
                summaries.append(ensemble_summary(session, dataset, variant, records))
            else:
                dataset_records = analyses.records_of(records, session, dataset, variant)
                summaries.append(analyses.metric_summary(label, dataset_records))
        summaries_by_dataset[dataset] = summaries

    notes = [
        f"Depth L = {base.num_layers} with the depth controller in every row; experts "
        f"{', '.join(base.experts)}. Mean ± sample std over {len(session.seeds)} seed(s) on "
        "the test split. Paper columns: Yan and Li, AdaEnsemble, Table 2 (Criteo, full data).",
    ]
    markdown = analyses.write_metric_table(
        session, "table2", "Table 2: sparse and dense mixtures, ensemble, single experts",
        summaries_by_dataset, analyses.PAPER_TABLE2, notes,
    )
    print(markdown)
    logging.info("Table 2 written to %s", session.output_dir / "table2.md")


if __name__ == "__main__":
    app.run(main)
