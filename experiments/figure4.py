r"""Figure 4 of Yan and Li: an alluvial diagram of the expert choices from layer to layer.

Each test example follows one path through the L SparseMoE layers: at every layer it
uses its top-1 expert (``--choice=top1``, as in Yan and Li's figure) or its set of k
selected experts (``--choice=set``), and "exited" at the layers after its exit. A column
of bars per layer shows how many examples make each choice. A band joins the bars of
consecutive layers for every complete path, as wide as the share of examples taking it.
Bands are sorted by how often their path occurs: the ``--top_paths`` most frequent paths
get their own colour and are listed in the legend with their share, the rest are grey.

Examples:

    python -m experiments.figure4
    python -m experiments.figure4 --data_dir /path/to/data --datasets criteo --profile sample

Outputs under --output_dir (shared with the other analyses): figure4_<dataset>.png and
.svg, figure4.md and figure4.csv (every path with its count and share).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from absl import app, flags, logging

from experiments import analyses
from experiments.analysis_training import EXITED

analyses.define_flags()
# List the shared data flags under --help, not only under --helpfull.
flags.adopt_module_key_flags(analyses)
FLAGS = flags.FLAGS
flags.DEFINE_enum(
    "choice", "top1", ["top1", "set"],
    "What a layer's bar stands for: the example's top-1 expert or its set of k experts.",
)
flags.DEFINE_integer("top_paths", 8, "Number of most frequent paths drawn in colour and listed.")

NODE_WIDTH = 0.08
# Vertical gap between two bars of one layer, as a share of all examples.
NODE_GAP = 0.025


def layer_nodes(paths: Counter, num_layers: int) -> list[list[str]]:
    """Return each layer's choices, most frequent first, with "exited" last."""
    nodes = []
    for layer in range(num_layers):
        totals = Counter()
        for path, count in paths.items():
            totals[path[layer]] += count
        ordered = sorted(totals, key=lambda name: (name == EXITED, -totals[name], name))
        nodes.append(ordered)
    return nodes


def band_positions(
    paths: Counter, nodes: list[list[str]]
) -> tuple[dict[tuple[int, str], tuple[float, float]], dict[tuple, list[tuple[float, float]]]]:
    """Lay out the bars and the bands; heights are shares of all examples.

    Returns:
        ``(bars, bands)``: ``bars[(layer, choice)] = (top, bottom)`` and
        ``bands[path] = [(top, bottom) per layer]``, with y growing downwards from 0.
        Within a bar, bands are stacked by the order of their choices in the next
        layer, then by frequency, which keeps crossings few.
    """
    total = float(sum(paths.values()))
    bars: dict[tuple[int, str], tuple[float, float]] = {}
    for layer, choices in enumerate(nodes):
        y = 0.0
        for choice in choices:
            height = sum(c for p, c in paths.items() if p[layer] == choice) / total
            bars[(layer, choice)] = (y, y + height)
            y += height + NODE_GAP

    ranked = [path for path, _ in paths.most_common()]
    bands: dict[tuple, list[tuple[float, float]]] = {path: [] for path in ranked}
    num_layers = len(nodes)
    for layer in range(num_layers):
        def order(path: tuple) -> tuple:
            # Sort by the previous layer's position (fewer crossings on the left), then
            # the next layer's, then frequency.
            previous = nodes[layer - 1].index(path[layer - 1]) if layer else 0
            following = nodes[layer + 1].index(path[layer + 1]) if layer + 1 < num_layers else 0
            return (previous, following, -paths[path])

        cursor = {choice: bars[(layer, choice)][0] for choice in nodes[layer]}
        for path in sorted(ranked, key=order):
            height = paths[path] / total
            top = cursor[path[layer]]
            bands[path].append((top, top + height))
            cursor[path[layer]] = top + height
    return bars, bands


def draw_alluvial(paths: Counter, title: str, top_paths: int, output_stem: Any) -> list[str]:
    """Draw the diagram to `output_stem`.png and .svg; return the written file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    num_layers = len(next(iter(paths)))
    nodes = layer_nodes(paths, num_layers)
    bars, bands = band_positions(paths, nodes)
    total = float(sum(paths.values()))
    ranked = [path for path, _ in paths.most_common()]
    # tab10 without its grey, which marks the less frequent paths.
    colours = [c for index, c in enumerate(plt.get_cmap("tab10").colors) if index != 7]

    height = max(bottom for _, bottom in bars.values())
    figure, axes = plt.subplots(figsize=(2.8 * num_layers + 2.0, 7.5))
    t = np.linspace(0.0, 1.0, 50)
    smooth = 3 * t**2 - 2 * t**3  # S-curve from one bar to the next

    # Grey bands first, so the coloured (most frequent) paths lie on top.
    for rank in reversed(range(len(ranked))):
        path = ranked[rank]
        coloured = rank < top_paths
        colour = colours[rank % len(colours)] if coloured else (0.6, 0.6, 0.6)
        alpha = 0.75 if coloured else 0.25
        for layer in range(num_layers - 1):
            (top0, bottom0), (top1, bottom1) = bands[path][layer], bands[path][layer + 1]
            x = layer + NODE_WIDTH / 2 + (1 - NODE_WIDTH) * t
            axes.fill_between(
                x, top0 + (top1 - top0) * smooth, bottom0 + (bottom1 - bottom0) * smooth,
                color=colour, alpha=alpha, linewidth=0,
            )
        if num_layers == 1:
            top, bottom = bands[path][0]
            axes.fill_between([0.05, 0.5], top, bottom, color=colour, alpha=alpha, linewidth=0)

    for (layer, choice), (top, bottom) in bars.items():
        axes.add_patch(matplotlib.patches.Rectangle(
            (layer - NODE_WIDTH / 2, top), NODE_WIDTH, bottom - top,
            facecolor="#333333" if choice != EXITED else "#bbbbbb", edgecolor="none",
        ))
        share = bottom - top
        if share >= 0.015:
            axes.text(
                layer + NODE_WIDTH / 2 + 0.02, (top + bottom) / 2,
                f"{choice}  {100 * share:.0f} %", va="center", ha="left", fontsize=9,
                bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1},
            )

    axes.set_xlim(-0.3, num_layers - 1 + 0.75)
    axes.set_ylim(height + 0.02, -0.06)
    axes.set_xticks(range(num_layers))
    axes.set_xticklabels([f"layer {layer + 1}" for layer in range(num_layers)], fontsize=11)
    axes.xaxis.tick_top()
    axes.set_yticks([])
    for side in ("left", "right", "bottom", "top"):
        axes.spines[side].set_visible(False)
    axes.set_title(title, fontsize=12, pad=28)

    handles = [
        matplotlib.patches.Patch(
            color=colours[rank % len(colours)], alpha=0.75,
            label=f"{100 * paths[path] / total:4.1f} %  " + " → ".join(path),
        )
        for rank, path in enumerate(ranked[:top_paths])
    ]
    if len(ranked) > top_paths:
        rest = sum(paths[path] for path in ranked[top_paths:]) / total
        handles.append(matplotlib.patches.Patch(
            color=(0.6, 0.6, 0.6), alpha=0.4,
            label=f"{100 * rest:4.1f} %  {len(ranked) - top_paths} other paths",
        ))
    axes.legend(
        handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=9,
        title="Most frequent paths (share of test examples)", title_fontsize=10, frameon=False,
    )
    figure.tight_layout()
    written = []
    for suffix in ("png", "svg"):
        path = f"{output_stem}.{suffix}"
        figure.savefig(path, dpi=150 if suffix == "png" else None, bbox_inches="tight")
        written.append(path)
    plt.close(figure)
    return written


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    session = analyses.start_session("figure4")
    variant = analyses.variant_from_flags()
    records = analyses.run_variants(session, [variant])

    header = ["Dataset", "Path", "Examples", "Share"]
    rows, csv_rows, figures = [], [], []
    for dataset in session.datasets:
        dataset_records = analyses.records_of(records, session, dataset, variant)
        if not dataset_records:
            logging.error("%s: no finished cell for %s; no figure", dataset, variant.name)
            continue
        # Paths of all seeds together: each seed's test split is the same examples.
        paths = Counter()
        for record in dataset_records:
            paths.update(analyses.path_counts(record, FLAGS.choice))
        total = sum(paths.values())
        title = (
            f"Expert choices ({FLAGS.choice}) per layer, AdaEnsemble L = {variant.num_layers}, "
            f"k = {variant.top_k}, {dataset}"
            + (" (synthetic data)" if session.synthetic else "")
            + f", {len(dataset_records)} seed(s)"
        )
        stem = session.output_dir / f"figure4_{dataset}"
        figures += draw_alluvial(paths, title, FLAGS.top_paths, stem)
        for path, count in paths.most_common():
            rows.append([dataset, " → ".join(path), str(count), f"{100 * count / total:.2f} %"])
            csv_rows.append({"dataset": dataset, "path": "|".join(path), "examples": count,
                             "share": count / total})

    notes = [session.data_note(dataset) for dataset in session.datasets] + [
        "",
        f"Every path of the test examples through the layers ({FLAGS.choice} choice, "
        "'exited' after the example's exit layer), most frequent first. Yan and Li's "
        "Figure 4 (Yan and Li) draws the same diagram for Criteo and gives no numbers.",
        "",
        "Figures: " + ", ".join(str(name) for name in figures),
    ]
    markdown = analyses.write_table(
        session, "figure4", "Figure 4: routing paths of the test examples", notes, header,
        rows[:40], csv_rows,
    )
    print(markdown)
    logging.info("Figure 4 written to %s", ", ".join(str(name) for name in figures))


if __name__ == "__main__":
    app.run(main)
