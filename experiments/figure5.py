r"""Figure 5 of Yan and Li: AUC and LogLoss against the depth L and against k.

Two sweeps of AdaEnsemble with the depth controller: depth L = 1 .. ``--num_layers`` at
k = ``--top_k``, and k = 1 .. min(4, number of experts) at depth ``--num_layers``. The
figure has four panels (AUC and LogLoss against each), with the standard deviation over
seeds as error bars. Yan and Li give Criteo's k-sweep numbers in its Table 2; they are
printed beside ours, and drawn on a second axis of the k panels when the data is Criteo.

Examples:

    python -m experiments.figure5
    python -m experiments.figure5 --data_dir /path/to/data --datasets criteo --profile sample

Outputs under --output_dir (shared with the other analyses): figure5_<dataset>.png and
.svg, figure5.md and figure5.csv.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from absl import app, flags, logging

from experiments import analyses

analyses.define_flags()
# List the shared data flags under --help, not only under --helpfull.
flags.adopt_module_key_flags(analyses)
FLAGS = flags.FLAGS

MAX_K = 4


def sweep_variants(base: analyses.Variant) -> dict[str, list[tuple[int, analyses.Variant]]]:
    """Return the two sweeps as ``{"depth": [(L, variant)], "k": [(k, variant)]}``."""
    depths = range(1, base.num_layers + 1)
    ks = range(1, min(MAX_K, len(base.experts)) + 1)
    return {
        "depth": [(depth, dataclasses.replace(base, num_layers=depth)) for depth in depths],
        "k": [(k, dataclasses.replace(base, top_k=k)) for k in ks],
    }


def paper_point(sweep: str, value: int, dataset: str, base: analyses.Variant) -> tuple[float, float] | None:
    """Yan and Li's (AUC, LogLoss) at this point, known for Criteo's k sweep at depth 4 and
    for depth 4 at k = 3."""
    if dataset != "criteo" or len(base.experts) != 5:
        return None
    if sweep == "k" and base.num_layers == 4:
        published = analyses.PAPER_TABLE2.get(f"SparseMoE k={value}")
        return published[:2] if published else None
    if sweep == "depth" and value == 4 and base.top_k == 3:
        return analyses.PAPER_TABLE2["SparseMoE k=3"][:2]
    return None


def draw(points: dict[str, list[dict[str, Any]]], title: str, output_stem: Any) -> list[str]:
    """Draw AUC and LogLoss against depth and k; return the PNG and SVG paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(10, 7), sharex="col")
    for column, (sweep, label) in enumerate((("depth", "depth L"), ("k", "experts per example k"))):
        for row, (metric, name) in enumerate((("auc", "AUC"), ("logloss", "LogLoss"))):
            axis = axes[row][column]
            measured = [p for p in points[sweep] if p[f"{metric}_mean"] is not None]
            axis.errorbar(
                [p["value"] for p in measured], [p[f"{metric}_mean"] for p in measured],
                yerr=[p[f"{metric}_std"] or 0.0 for p in measured],
                marker="o", capsize=3, color="tab:blue", label="ours",
            )
            published = [p for p in points[sweep] if p[f"paper_{metric}"] is not None]
            if published:
                # Yan and Li's values sit on another scale (full data), so a second axis.
                twin = axis.twinx()
                twin.plot(
                    [p["value"] for p in published], [p[f"paper_{metric}"] for p in published],
                    marker="s", linestyle="--", color="tab:orange", label="Yan and Li, full data (right axis)",
                )
                twin.tick_params(axis="y", labelcolor="tab:orange", labelsize=8)
                lines = axis.get_legend_handles_labels()
                twin_lines = twin.get_legend_handles_labels()
                axis.legend(lines[0] + twin_lines[0], lines[1] + twin_lines[1], fontsize=8, loc="best")
            axis.set_ylabel(name)
            axis.grid(alpha=0.3)
            if row == 1:
                axis.set_xlabel(label)
                axis.set_xticks([p["value"] for p in points[sweep]])
    axes[0][0].set_title("against depth")
    axes[0][1].set_title("against k")
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    written = []
    for suffix in ("png", "svg"):
        path = f"{output_stem}.{suffix}"
        figure.savefig(path, dpi=150 if suffix == "png" else None)
        written.append(path)
    plt.close(figure)
    return written


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    session = analyses.start_session("figure5")
    base = analyses.variant_from_flags()
    sweeps = sweep_variants(base)
    variants = [variant for sweep in sweeps.values() for _, variant in sweep]
    records = analyses.run_variants(session, variants)

    header = ["Dataset", "Sweep", "Value", "AUC", "LogLoss", "FLOPs/example", "Paper AUC",
              "Paper LogLoss", "Seeds"]
    rows, csv_rows, figures = [], [], []
    for dataset in session.datasets:
        points: dict[str, list[dict[str, Any]]] = {}
        for sweep, members in sweeps.items():
            points[sweep] = []
            for value, variant in members:
                dataset_records = analyses.records_of(records, session, dataset, variant)
                summary = analyses.metric_summary(variant.name, dataset_records)
                paper = paper_point(sweep, value, dataset, base)
                point = {"dataset": dataset, "sweep": sweep, "value": value, **summary,
                         "paper_auc": paper[0] if paper else None,
                         "paper_logloss": paper[1] if paper else None}
                points[sweep].append(point)
                csv_rows.append(point)
                rows.append([
                    dataset, sweep, str(value),
                    analyses.format_mean_std(summary["auc_mean"], summary["auc_std"]),
                    analyses.format_mean_std(summary["logloss_mean"], summary["logloss_std"]),
                    analyses.format_mflops(summary["flops_mean"]),
                    analyses.format_number(point["paper_auc"]),
                    analyses.format_number(point["paper_logloss"]),
                    str(summary["seeds"]),
                ])
        title = (
            f"AdaEnsemble on {dataset}" + (" (synthetic data)" if session.synthetic else "")
            + f": depth sweep at k = {base.top_k}, k sweep at depth {base.num_layers}, "
            f"{len(session.seeds)} seed(s)"
        )
        figures += draw(points, title, session.output_dir / f"figure5_{dataset}")

    notes = [session.data_note(dataset) for dataset in session.datasets] + [
        "",
        "Test AUC and LogLoss, mean ± sample std over seeds. Paper columns: Yan and Li, "
        "AdaEnsemble, Table 2 for the k sweep on Criteo at depth 4 (the depth sweep's "
        "numbers are only drawn in their Figure 5, except depth 4 at k = 3).",
        "",
        "Figures: " + ", ".join(str(name) for name in figures),
    ]
    markdown = analyses.write_table(
        session, "figure5", "Figure 5: AUC and LogLoss against depth and k", notes, header,
        rows, csv_rows,
    )
    print(markdown)
    logging.info("Figure 5 written to %s", ", ".join(str(name) for name in figures))


if __name__ == "__main__":
    app.run(main)
