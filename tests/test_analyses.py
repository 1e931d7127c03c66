"""The analysis commands (Tables 2-4, Figures 4-5) end to end on tiny synthetic data.

All commands share one output folder, as they do by default, so later commands reuse
the cells of earlier ones. AdaEnsemble is 2 layers deep with 2 experts (k = 1) to keep
the cells to seconds each.
"""

import csv
import json
from collections import Counter

import numpy as np
import pytest
from absl import flags

from ada_keras.metrics import exact_auc, log_loss
from data import pipeline
from experiments import analyses, figure4, figure5, table2, table3, table4

FLAGS = flags.FLAGS


def run_command(module, output_dir, cache_dir, *extra):
    FLAGS.unparse_flags()
    FLAGS([
        module.__name__,
        "--profile=smoke", "--datasets=criteo", "--seeds=0", "--keras_verbose=0",
        "--num_layers=2", "--top_k=1", "--experts=dense,cross",
        f"--output_dir={output_dir}", f"--cache_dir={cache_dir}", *extra,
    ])
    try:
        module.main([module.__name__])
    finally:
        FLAGS.unparse_flags()


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture(scope="module")
def analyses_dir(tmp_path_factory):
    """Run every command once into one folder; return (output_dir, cache_dir)."""
    output_dir = tmp_path_factory.mktemp("analyses")
    cache_dir = tmp_path_factory.mktemp("prepared")
    for module in (table2, table3, table4, figure4, figure5):
        run_command(module, output_dir, cache_dir, "--resume")
    return output_dir, cache_dir


def test_commands_write_their_files(analyses_dir):
    output_dir, _ = analyses_dir
    for stem in ("table2", "table3", "table4", "figure4", "figure5"):
        assert (output_dir / f"{stem}.md").stat().st_size > 0, stem
        assert len(read_csv(output_dir / f"{stem}.csv")) > 0, stem
    for figure in ("figure4_criteo", "figure5_criteo"):
        assert (output_dir / f"{figure}.png").read_bytes()[:4] == b"\x89PNG"
        assert b"<svg" in (output_dir / f"{figure}.svg").read_bytes()[:500]


def test_table2_rows_and_paper_columns(analyses_dir):
    output_dir, _ = analyses_dir
    rows = {row["row"]: row for row in read_csv(output_dir / "table2.csv")}
    assert list(rows) == ["SparseMoE k=1", "DenseMoE", "Ensemble", "Dense only", "Cross only"]
    assert float(rows["DenseMoE"]["paper_auc"]) == 0.8133
    for row in rows.values():
        assert 0.0 <= float(row["auc_mean"]) <= 1.0
        assert float(row["flops_mean"]) > 0


def test_ensemble_averages_single_expert_predictions(analyses_dir):
    output_dir, _ = analyses_dir
    cells = {
        json.loads(path.read_text())["cell"]["variant"]: json.loads(path.read_text())
        for path in (output_dir / "cells").glob("*.json")
    }
    singles = ["L2-k1-dense", "L2-k1-cross"]
    predictions = [
        np.load(output_dir / "predictions" / f"criteo__adaensemble__{name}__seed0.npy")
        for name in singles
    ]
    _, labels = pipeline.load_split(cells[singles[0]]["data"]["directory"], "test")
    average = np.mean(predictions, axis=0)

    row = {r["row"]: r for r in read_csv(output_dir / "table2.csv")}["Ensemble"]
    assert float(row["auc_mean"]) == pytest.approx(exact_auc(labels, average))
    assert float(row["logloss_mean"]) == pytest.approx(log_loss(labels, average))
    single_flops = sum(cells[name]["flops"]["executed"]["flops"] for name in singles)
    assert float(row["flops_mean"]) == pytest.approx(single_flops)


def test_table4_exit_shares_match_paths(analyses_dir):
    output_dir, _ = analyses_dir
    record = json.loads(
        (output_dir / "cells" / "criteo__adaensemble__L2-k1-dense.cross__seed0.json").read_text()
    )
    rows = read_csv(output_dir / "table4.csv")
    shares = [float(row["exit_share_mean"]) for row in rows]
    assert sum(shares) == pytest.approx(1.0)

    # The exit layer of a path is its last layer before "exited". The routing paths are
    # computed apart from the model's exit counters, so they are an independent check.
    paths = analyses.path_counts(record, "top1")
    exits = Counter()
    for path, count in paths.items():
        exits[sum(choice != "exited" for choice in path) - 1] += count
    total = sum(paths.values())
    assert total == record["test"]["rows"]
    for layer, share in enumerate(shares):
        assert exits[layer] / total == pytest.approx(share)


def test_table3_full_depth_runs_every_layer(analyses_dir):
    output_dir, _ = analyses_dir
    record = json.loads(
        (output_dir / "cells" / "criteo__adaensemble__L2-k1-dense.cross-full-depth__seed0.json")
        .read_text()
    )
    assert record["routing"]["exit_depth_shares"] is None
    assert record["routing"]["layer_examples"] == [record["test"]["rows"]] * 2
    rows = read_csv(output_dir / "table3.csv")
    assert [row["row"] for row in rows] == [table3.WITH_CONTROLLER, table3.WITHOUT_CONTROLLER]


def test_resume_skips_finished_cells(analyses_dir):
    output_dir, cache_dir = analyses_dir
    cells = sorted((output_dir / "cells").glob("*.json"))
    before = {path.name: path.stat().st_mtime_ns for path in cells}
    table_before = (output_dir / "figure5.csv").read_text()

    run_command(figure5, output_dir, cache_dir, "--resume")

    after = {path.name: path.stat().st_mtime_ns for path in (output_dir / "cells").glob("*.json")}
    assert after == before
    assert (output_dir / "figure5.csv").read_text() == table_before


def test_alluvial_layout_stacks_bands_in_bars():
    paths = Counter({
        ("dense", "cross"): 5, ("dense", "exited"): 3, ("cross", "cross"): 2,
    })
    nodes = figure4.layer_nodes(paths, 2)
    assert nodes == [["dense", "cross"], ["cross", "exited"]]
    bars, bands = figure4.band_positions(paths, nodes)
    total = sum(paths.values())
    for (layer, choice), (top, bottom) in bars.items():
        inside = [bands[p][layer] for p in paths if p[layer] == choice]
        assert sum(b - t for t, b in inside) == pytest.approx(bottom - top)
        assert min(t for t, _ in inside) == pytest.approx(top)
        assert bottom - top == pytest.approx(sum(c for p, c in paths.items() if p[layer] == choice) / total)


def test_variant_rejects_k_above_experts():
    with pytest.raises(ValueError, match="top_k = 3"):
        analyses.Variant(num_layers=2, top_k=3, experts=("dense", "cross"))
