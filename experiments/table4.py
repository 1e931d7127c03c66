r"""Table 4 of Yan and Li: the share of test examples exiting after each layer.

Trains (or reuses) AdaEnsemble at depth L (``--num_layers``) and k (``--top_k``) with the
depth controller, runs ``model.evaluate`` on the test split and reads the exit-depth
distribution from the model's routing statistics. The table also lists, per layer, the
share of examples that reach it and each expert's top-1 share among them.

Examples:

    python -m experiments.table4
    python -m experiments.table4 --data_dir /path/to/data --datasets criteo --profile sample

Outputs under --output_dir (shared with the other analyses): table4.md, table4.csv.
"""

from __future__ import annotations

from typing import Any, Sequence

from absl import app, flags, logging

from experiments import analyses

analyses.define_flags()
# List the shared data flags under --help, not only under --helpfull.
flags.adopt_module_key_flags(analyses)
FLAGS = flags.FLAGS


def exit_rows(
    records: Sequence[dict[str, Any]], dataset: str, num_layers: int
) -> tuple[list[list[str]], list[dict[str, Any]]]:
    """Return Markdown and CSV rows: per layer, exit share (mean ± std), reach, expert shares."""
    names = records[0]["expert_names"] if records else []
    rows, csv_rows = [], []
    for layer in range(num_layers):
        shares = [r["routing"]["exit_depth_shares"][layer] for r in records]
        mean, std = analyses.mean_std(shares)
        reached, _ = analyses.mean_std([sum(r["routing"]["exit_depth_shares"][layer:]) for r in records])
        top1 = [
            analyses.mean_std([r["routing"]["top1"][layer][j] for r in records])[0]
            for j in range(len(names))
        ]
        paper = paper_exit_share(dataset, num_layers, layer)
        rows.append([
            str(layer + 1),
            "missing" if mean is None else analyses.format_mean_std(100 * mean, None if std is None else 100 * std, 2) + " %",
            "n/a" if paper is None else f"{100 * paper:.2f} %",
            "missing" if reached is None else f"{100 * reached:.2f} %",
            "no example reached the layer" if not reached else ", ".join(
                f"{name} {100 * share:.0f} %" for name, share in zip(names, top1) if share is not None
            ),
        ])
        csv_rows.append({
            "dataset": dataset, "layer": layer + 1, "exit_share_mean": mean, "exit_share_std": std,
            "paper_exit_share": paper, "reach_share": reached, "seeds": len(records),
            **{f"top1_share_{name}": share for name, share in zip(names, top1)},
        })
    return rows, csv_rows


def paper_exit_share(dataset: str, num_layers: int, layer: int) -> float | None:
    """Yan and Li's exit share of `layer` (0-based), known for Criteo at depth 4 only."""
    if dataset != "criteo" or num_layers != len(analyses.PAPER_TABLE4):
        return None
    return analyses.PAPER_TABLE4[layer]


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    session = analyses.start_session("table4")
    variant = analyses.variant_from_flags()
    records = analyses.run_variants(session, [variant])

    header = ["Layer", "Exits here", "Paper", "Reaches the layer", "Top-1 expert shares at the layer"]
    rows, csv_rows = [], []
    for dataset in session.datasets:
        dataset_records = analyses.records_of(records, session, dataset, variant)
        dataset_rows, dataset_csv = exit_rows(dataset_records, dataset, variant.num_layers)
        if len(session.datasets) > 1:
            rows.append([f"**{dataset}**"] + [""] * (len(header) - 1))
        rows.extend(dataset_rows)
        csv_rows.extend(dataset_csv)

    notes = [session.data_note(dataset) for dataset in session.datasets] + [
        "",
        f"AdaEnsemble with depth L = {variant.num_layers}, k = {variant.top_k} of "
        f"{', '.join(variant.experts)}; shares of the test examples from the routing "
        f"statistics after model.evaluate, mean ± sample std over {len(session.seeds)} "
        "seed(s). Top-1 shares are among the examples reaching the layer. Paper column: "
        "Yan and Li, AdaEnsemble, Table 4 (Criteo, full data, depth 4).",
    ]
    markdown = analyses.write_table(
        session, "table4", "Table 4: share of test examples exiting at each layer",
        notes, header, rows, csv_rows,
    )
    print(markdown)
    logging.info("Table 4 written to %s", session.output_dir / "table4.md")


if __name__ == "__main__":
    app.run(main)
