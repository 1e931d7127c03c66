r"""Table 3 of Yan and Li: AdaEnsemble with and without the depth-selecting controller.

"With controller" exits each example after the layer its depth controller picks;
"without controller" runs every example through all L layers and predicts with the
last estimator. Both use depth L (``--num_layers``) and k (``--top_k``). FLOPs per example
are as executed on the test split, so early exits lower the first row's count.

Examples:

    python -m experiments.table3
    python -m experiments.table3 --data_dir /path/to/data --datasets criteo --profile sample

Outputs under --output_dir (shared with the other analyses): table3.md, table3.csv.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from absl import app, flags, logging

from experiments import analyses

analyses.define_flags()
# List the shared data flags under --help, not only under --helpfull.
flags.adopt_module_key_flags(analyses)
FLAGS = flags.FLAGS

WITH_CONTROLLER = "with controller"
WITHOUT_CONTROLLER = "without controller (full depth)"


def table3_variants(base: analyses.Variant) -> dict[str, analyses.Variant]:
    return {
        WITH_CONTROLLER: dataclasses.replace(base, early_exit=True),
        WITHOUT_CONTROLLER: dataclasses.replace(base, early_exit=False),
    }


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    session = analyses.start_session("table3")
    base = analyses.variant_from_flags()
    row_variants = table3_variants(base)
    records = analyses.run_variants(session, list(row_variants.values()))

    summaries_by_dataset = {
        dataset: [
            analyses.metric_summary(label, analyses.records_of(records, session, dataset, variant))
            for label, variant in row_variants.items()
        ]
        for dataset in session.datasets
    }
    notes = [
        f"Depth L = {base.num_layers}, k = {base.top_k} of the experts "
        f"{', '.join(base.experts)}. Mean ± sample std over {len(session.seeds)} seed(s) on "
        "the test split. Paper columns: Yan and Li, AdaEnsemble, Table 3 (Criteo, full data).",
    ]
    markdown = analyses.write_metric_table(
        session, "table3", "Table 3: AdaEnsemble with and without the depth controller",
        summaries_by_dataset, analyses.PAPER_TABLE3, notes,
    )
    print(markdown)
    logging.info("Table 3 written to %s", session.output_dir / "table3.md")


if __name__ == "__main__":
    app.run(main)
