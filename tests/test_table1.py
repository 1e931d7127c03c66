"""Tests of Table 1's configs, data discovery, aggregation and output files."""

import csv
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

from experiments import config as experiment_config
from experiments import data_sources, paper_results, tables

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parents[1]

MODEL_ORDER = (
    "lr", "fm", "dnn", "wide_deep", "deepfm", "deep_crossing", "dcn", "pnn", "xdeepfm",
    "autoint", "fibinet", "xdeepint", "dcn_v2", "adaensemble",
)


def fake_record(model, dataset, seed, auc, logloss):
    return {
        "cell": {"model": model, "dataset": dataset, "seed": seed, "variant": ""},
        "test": {"auc": auc, "logloss": logloss},
        "validation": {"auc": auc + 0.01, "logloss": logloss - 0.01},
        "epochs": 3,
        "wall_time_s": 2.0,
        "parameters": 1234,
    }


# ------------------------------------------------------------------ paper numbers


def test_paper_table_covers_every_model_and_dataset():
    assert tuple(paper_results.TABLE1) == MODEL_ORDER
    for model in MODEL_ORDER:
        assert set(paper_results.TABLE1[model]) == set(paper_results.DATASETS)
    assert paper_results.paper_metrics("adaensemble", "criteo") == (0.8132, 0.4394)
    assert paper_results.paper_metrics("lr", "ipinyou") == (0.7692, 0.005605)
    assert paper_results.paper_metrics("lr", "synthetic") is None


def test_paper_adaensemble_best_on_every_dataset():
    # The published table has AdaEnsemble on top everywhere; a typo would likely break it.
    for dataset in paper_results.DATASETS:
        best = max(MODEL_ORDER, key=lambda m: paper_results.TABLE1[m][dataset].auc)
        assert best == "adaensemble"


# ------------------------------------------------------------------ configs


@pytest.mark.parametrize("profile", experiment_config.PROFILES)
@pytest.mark.parametrize("dataset", paper_results.DATASETS)
def test_every_config_loads(profile, dataset):
    config = experiment_config.load_config(profile, dataset)
    assert config["profile"] == profile
    assert config["dataset"] == dataset


def test_paper_profile_uses_paper_settings():
    for dataset in paper_results.DATASETS:
        config = experiment_config.load_config("paper", dataset)
        assert config["training"]["batch_size"] == 4096
        assert config["training"]["eval_every_steps"] == 2000
        assert config["model_hyperparameters"]["*"]["embedding_dim"] == 16
        assert config["data"]["min_count"] == 20


def test_cell_configuration_applies_overrides():
    config = experiment_config.load_config("sample", "criteo")
    lr_settings = experiment_config.cell_configuration(config, "lr")
    dnn_settings = experiment_config.cell_configuration(config, "dnn")

    assert lr_settings["training"]["optimizer"] == "ftrl"
    assert dnn_settings["training"]["optimizer"] == "adam"
    assert dnn_settings["training"]["batch_size"] == config["training"]["batch_size"]
    assert dnn_settings["model_hyperparameters"]["embedding_dim"] == 16
    assert dnn_settings["config_file"] == "experiments/configs/sample/criteo.json"


def test_unknown_profile_and_dataset_raise():
    with pytest.raises(ValueError, match="unknown profile"):
        experiment_config.load_config("huge", "criteo")
    with pytest.raises(ValueError, match="no configuration"):
        experiment_config.load_config("smoke", "movielens")


def test_grid_points_expand_product():
    configuration = {"training": {"learning_rate": 1.0, "batch_size": 8},
                     "model_hyperparameters": {"embedding_dim": 4}}
    grid = {"training.learning_rate": [0.1, 0.2], "model_hyperparameters.embedding_dim": [4, 8, 16]}
    points = experiment_config.grid_points(configuration, grid)

    assert len(points) == 6
    assignments = [assignment for assignment, _ in points]
    assert {"model_hyperparameters.embedding_dim": 16, "training.learning_rate": 0.2} in assignments
    for assignment, point in points:
        assert point["training"]["learning_rate"] == assignment["training.learning_rate"]
        assert point["training"]["batch_size"] == 8
    assert configuration["training"]["learning_rate"] == 1.0  # the input stays unchanged

    with pytest.raises(ValueError, match="tune_grid path"):
        experiment_config.grid_points(configuration, {"optimizer": [1]})


# ------------------------------------------------------------------ data discovery


def test_find_inputs_on_shared_samples(shared_data):
    form, files, others = data_sources.find_inputs("criteo", shared_data / "criteo")
    assert [f.name for f in files] == ["criteo_train_head10k.txt"]
    assert others == []

    form, files, others = data_sources.find_inputs("avazu", shared_data / "avazu")
    assert [f.name for f in files] == ["avazu_train_head9k.csv"]

    form, files, others = data_sources.find_inputs("ipinyou", shared_data / "ipinyou")
    assert form.name == "decoded"
    assert [f.name for f in files] == ["train.decoded.tsv", "test.decoded.tsv"]
    assert others == ["indexed"]


def test_find_inputs_skips_docs_and_unlabelled_test(tmp_path):
    folder = tmp_path / "criteo"
    folder.mkdir()
    for name in ("train.txt.gz", "test.txt", "README.txt", "SOURCE.md"):
        (folder / name).write_text("x")
    form, files, _ = data_sources.find_inputs("criteo", folder)
    assert [f.name for f in files] == ["train.txt.gz"]


def test_find_inputs_ipinyou_indexed_only(tmp_path):
    folder = tmp_path / "ipinyou"
    folder.mkdir()
    for name in ("train.fm.txt", "test.fm.txt", "featindex.fm.txt"):
        (folder / name).write_text("x")
    form, files, others = data_sources.find_inputs("ipinyou", folder)
    assert form.name == "indexed"
    assert [f.name for f in files] == ["train.fm.txt", "test.fm.txt", "featindex.fm.txt"]
    assert others == []


def test_find_inputs_prefers_ipinyou_log_form(tmp_path):
    folder = tmp_path / "ipinyou"
    folder.mkdir()
    for name in ("train.log.txt", "test.log.txt", "train.fm.txt", "test.fm.txt", "featindex.fm.txt"):
        (folder / name).write_text("x")
    form, files, others = data_sources.find_inputs("ipinyou", folder)
    assert form.name == "log"
    assert [f.name for f in files] == ["train.log.txt", "test.log.txt"]
    assert others == ["indexed"]


def test_find_inputs_errors_name_the_folder(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        data_sources.find_inputs("criteo", tmp_path / "criteo")
    (tmp_path / "avazu").mkdir()
    (tmp_path / "avazu" / "notes.md").write_text("x")
    with pytest.raises(ValueError, match=r"no avazu data recognised .*notes\.md"):
        data_sources.find_inputs("avazu", tmp_path / "avazu")


def test_cache_is_reused_and_failed_build_leaves_nothing(tmp_path):
    builds = []

    def build(directory):
        builds.append(directory)
        (directory / "metadata.json").write_text("{}")

    first, reused_first = data_sources._prepare_into_cache(tmp_path, "criteo-abc", build)
    second, reused_second = data_sources._prepare_into_cache(tmp_path, "criteo-abc", build)
    assert first == second == tmp_path / "criteo-abc"
    assert (reused_first, reused_second) == (False, True)
    assert len(builds) == 1

    def failing_build(directory):
        (directory / "shard-0").write_text("partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        data_sources._prepare_into_cache(tmp_path, "avazu-abc", failing_build)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["criteo-abc"]


# ------------------------------------------------------------------ aggregation


def make_records():
    rng = np.random.default_rng(0)
    records = []
    for dataset in ("criteo", "avazu"):
        for model in ("lr", "dnn", "adaensemble"):
            for seed in (0, 1, 2):
                auc = {"lr": 0.70, "dnn": 0.74, "adaensemble": 0.72}[model] + rng.normal(0, 0.005)
                if dataset == "avazu" and model == "lr":
                    auc += 0.1  # LR wins on avazu
                records.append(fake_record(model, dataset, seed, auc, 0.45 + rng.normal(0, 0.01)))
    return records


def test_summarize_means_stds_and_best():
    records = make_records()
    rows = tables.summarize(records, ["lr", "dnn", "adaensemble"], ["criteo", "avazu"])

    assert [(r.dataset, r.model) for r in rows] == [
        ("criteo", "lr"), ("criteo", "dnn"), ("criteo", "adaensemble"),
        ("avazu", "lr"), ("avazu", "dnn"), ("avazu", "adaensemble"),
    ]
    for row in rows:
        aucs = [r["test"]["auc"] for r in records
                if r["cell"]["model"] == row.model and r["cell"]["dataset"] == row.dataset]
        assert row.auc_mean == pytest.approx(np.mean(aucs))
        assert row.auc_std == pytest.approx(np.std(aucs, ddof=1))
        assert row.seeds == 3
        assert row.seed_values == (0, 1, 2)
    assert [r.model for r in rows if r.best] == ["dnn", "lr"]
    assert rows[2].paper_auc == 0.8132


def test_summarize_missing_cell_and_single_seed():
    records = [fake_record("lr", "criteo", 0, 0.7, 0.5)]
    rows = tables.summarize(records, ["lr", "fm"], ["criteo"])

    assert rows[0].auc_mean == 0.7
    assert rows[0].auc_std is None
    assert rows[0].best
    assert rows[1].seeds == 0
    assert rows[1].auc_mean is None
    assert not rows[1].best


def test_write_tables_markdown_and_csv(tmp_path):
    records = make_records()
    rows = tables.summarize(records, ["lr", "dnn", "adaensemble"], ["criteo", "avazu"])
    markdown = tables.write_tables(
        rows, tmp_path, "table1", "Table 1: profile smoke, SYNTHETIC data",
        ["A note."], {"criteo": "synthetic, 3,000 rows"},
    )

    assert markdown.startswith("# Table 1: profile smoke, SYNTHETIC data")
    assert "## criteo: synthetic, 3,000 rows" in markdown
    assert "| **DNN** (best) |" in markdown
    assert "| AdaEnsemble |" in markdown
    assert (tmp_path / "table1.md").read_text() == markdown

    with (tmp_path / "table1.csv").open() as stream:
        csv_rows = list(csv.DictReader(stream))
    assert list(csv_rows[0])[:9] == [
        "model", "dataset", "auc_mean", "auc_std", "logloss_mean", "logloss_std", "seeds",
        "paper_auc", "paper_logloss",
    ]
    assert len(csv_rows) == 6
    for csv_row, row in zip(csv_rows, rows):
        assert float(csv_row["auc_mean"]) == row.auc_mean
        assert float(csv_row["logloss_std"]) == row.logloss_std
        assert csv_row["best"] == ("true" if row.best else "false")
        assert csv_row["seeds"] == "3"
    assert json.loads((tmp_path / "table1.json").read_text())["title"].startswith("Table 1")


def test_small_logloss_keeps_significant_digits():
    records = [fake_record("lr", "ipinyou", 0, 0.7, 0.005605)]
    rows = tables.summarize(records, ["lr"], ["ipinyou"])
    markdown = tables.format_markdown(rows, "t")
    assert "0.005605" in markdown


def test_std_has_decimals_of_mean():
    records = [
        fake_record("lr", "criteo", 0, 0.7001, 0.005601),
        fake_record("lr", "criteo", 1, 0.7003, 0.005609),
    ]
    rows = tables.summarize(records, ["lr"], ["criteo"])
    markdown = tables.format_markdown(rows, "t")
    assert "**0.7002 ± 0.0001**" in markdown
    assert "| 0.005605 ± 0.000006 |" in markdown


# ------------------------------------------------------------------ end to end


def run_table1(arguments, cache_dir, **popen_arguments):
    command = [
        sys.executable, "-m", "experiments.table1", "--profile", "smoke",
        "--datasets", "criteo", "--models", "lr,dnn", "--seeds", "0,1",
        "--cache_dir", str(cache_dir), "--keras_verbose", "0", *arguments,
    ]
    environment = dict(os.environ, PYTHONPATH=str(REPOSITORY_ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen(
        command, cwd=REPOSITORY_ROOT, env=environment, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen_arguments,
    )


def read_table_csv(path):
    with path.open() as stream:
        return list(csv.DictReader(stream))


def test_table1_killed_and_resumed_matches_uninterrupted(tmp_path):
    cache_dir = tmp_path / "cache"
    whole_dir = tmp_path / "whole"
    process = run_table1(["--output_dir", str(whole_dir)], cache_dir)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    assert "cell 1 of 4: lr on criteo, seed 0" in stderr
    assert "SYNTHETIC" in stdout
    assert len(list((whole_dir / "cells").glob("*.json"))) == 4

    # Kill a second run with SIGKILL once two cells are on disk, then resume it.
    killed_dir = tmp_path / "killed"
    process = run_table1(["--output_dir", str(killed_dir)], cache_dir)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            if len(list(killed_dir.glob("cells/*.json"))) >= 2:
                break
            time.sleep(0.1)
        process.kill()
    finally:
        process.communicate(timeout=60)
    finished = len(list(killed_dir.glob("cells/*.json")))
    assert 2 <= finished < 4

    process = run_table1(["--output_dir", str(killed_dir), "--table_only"], cache_dir)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    partial = read_table_csv(killed_dir / "table1.csv")
    assert sum(int(row["seeds"]) for row in partial) == finished
    assert len(list(killed_dir.glob("cells/*.json"))) == finished  # nothing trained

    process = run_table1(["--output_dir", str(killed_dir), "--resume"], cache_dir)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    assert stderr.count("already finished") == finished

    whole = read_table_csv(whole_dir / "table1.csv")
    resumed = read_table_csv(killed_dir / "table1.csv")
    columns = ("model", "dataset", "auc_mean", "auc_std", "logloss_mean", "logloss_std", "seeds")
    assert [[row[c] for c in columns] for row in resumed] == [
        [row[c] for c in columns] for row in whole
    ]
    for row in whole:
        assert row["auc_mean"] and row["logloss_mean"]  # every cell filled

    record = json.loads((whole_dir / "cells" / "criteo__dnn__seed1.json").read_text())
    assert record["configuration"]["profile"] == "smoke"
    assert record["configuration"]["training"]["optimizer"] == "adam"
    assert record["parameters"] > 0
    assert 0.0 <= record["test"]["auc"] <= 1.0
    assert record["test"]["rows"] == record["data"]["rows"]["test"]


def test_grid_search_picks_best_validation(monkeypatch):
    from experiments import cell_training

    validation_auc = {1e-4: 0.70, 3e-4: 0.75, 1e-3: 0.72}
    calls = []

    def fake_train(model_name, data_dir, configuration, seed, **kwargs):
        learning_rate = configuration["training"]["learning_rate"]
        calls.append(learning_rate)
        return {
            "validation": {"auc": validation_auc[learning_rate], "logloss": 0.5},
            # The test AUC must play no part in the choice.
            "test": {"auc": 1.0 - validation_auc[learning_rate], "logloss": 0.5},
            "flops_per_example": 100.0,
        }

    monkeypatch.setattr(cell_training, "train_and_evaluate", fake_train)
    configuration = {"training": {"learning_rate": 1.0}, "model_hyperparameters": {}}
    grid = {"training.learning_rate": [1e-4, 3e-4, 1e-3]}
    record = cell_training.train_with_grid_search("dnn", "unused", configuration, grid, seed=0)

    assert calls == [1e-4, 3e-4, 1e-3]
    assert record["tuning"]["chosen"] == {"training.learning_rate": 3e-4}
    assert record["test"]["auc"] == pytest.approx(0.25)
    assert record["tuned_configuration"]["training"]["learning_rate"] == 3e-4
    assert [trial["validation"]["auc"] for trial in record["tuning"]["trials"]] == [0.70, 0.75, 0.72]


def test_grid_search_prefers_cheaper_within_tolerance(monkeypatch):
    from experiments import cell_training

    # num_layers -> (validation AUC, FLOPs): 3 layers is within 0.02 % of the best (4),
    # 2 layers is not, so the rule must pick 3.
    points = {1: (0.7900, 1e6), 2: (0.8100, 2e6), 3: (0.81315, 3e6), 4: (0.8132, 4e6)}

    def fake_train(model_name, data_dir, configuration, seed, **kwargs):
        auc, flops = points[configuration["model_hyperparameters"]["num_layers"]]
        return {"validation": {"auc": auc}, "test": {"auc": auc}, "flops_per_example": flops}

    monkeypatch.setattr(cell_training, "train_and_evaluate", fake_train)
    configuration = {"training": {}, "model_hyperparameters": {"num_layers": 4}}
    grid = {"model_hyperparameters.num_layers": [1, 2, 3, 4]}

    tolerant = cell_training.train_with_grid_search(
        "adaensemble", "unused", configuration, grid, seed=0, tolerance=0.0002
    )
    strict = cell_training.train_with_grid_search(
        "adaensemble", "unused", configuration, grid, seed=0, tolerance=0.0
    )

    assert tolerant["tuning"]["chosen"] == {"model_hyperparameters.num_layers": 3}
    assert tolerant["tuning"]["tolerance"] == 0.0002
    assert [t["flops_per_example"] for t in tolerant["tuning"]["trials"]] == [1e6, 2e6, 3e6, 4e6]
    assert strict["tuning"]["chosen"] == {"model_hyperparameters.num_layers": 4}
    with pytest.raises(ValueError, match="tolerance"):
        cell_training.train_with_grid_search(
            "adaensemble", "unused", configuration, grid, seed=0, tolerance=1.5
        )


def test_choose_grid_point_breaks_flops_ties_by_auc():
    from experiments.cell_training import choose_grid_point

    trials = [
        {"validation": {"auc": 0.80}, "flops_per_example": 5.0},
        {"validation": {"auc": 0.81}, "flops_per_example": 5.0},
        {"validation": {"auc": 0.70}, "flops_per_example": 1.0},
    ]
    assert choose_grid_point(trials, tolerance=0.05) == 1
    assert choose_grid_point(trials, tolerance=0.2) == 2


def test_config_rejects_bad_training_options(tmp_path, monkeypatch):
    config = json.loads(experiment_config.config_path("smoke", "criteo").read_text())
    profile_dir = tmp_path / "smoke"
    profile_dir.mkdir()
    monkeypatch.setattr(experiment_config, "CONFIG_DIR", tmp_path)

    for key, value, message in [
        ("embedding_optimizer", "rmsprop", "embedding_optimizer 'rmsprop'"),
        ("alpha_every", 0, "alpha_every 0"),
    ]:
        bad = json.loads(json.dumps(config))
        bad["training"][key] = value
        (profile_dir / "criteo.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=message):
            experiment_config.load_config("smoke", "criteo")

    bad = json.loads(json.dumps(config))
    bad["tune_tolerance"] = {"adaensemble": 2.0}
    (profile_dir / "criteo.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="tune_tolerance"):
        experiment_config.tune_tolerance(experiment_config.load_config("smoke", "criteo"), "adaensemble")


def test_prepare_real_caches_by_inputs_and_settings(shared_data, tmp_path):
    settings = {"min_count": 2, "split_seed": 0}
    first = data_sources.prepare_real("avazu", shared_data / "avazu", tmp_path, settings)
    second = data_sources.prepare_real("avazu", shared_data / "avazu", tmp_path, settings)
    other = data_sources.prepare_real(
        "avazu", shared_data / "avazu", tmp_path, {"min_count": 3, "split_seed": 0}
    )

    assert first.directory == second.directory
    assert other.directory != first.directory
    assert sum(first.rows().values()) == 8999
    assert first.metadata["num_fields"] == other.metadata["num_fields"]
    assert "avazu_train_head9k.csv" in first.describe()
    assert len([p for p in tmp_path.iterdir() if not p.name.startswith(".")]) == 2


@pytest.mark.parametrize("profile", experiment_config.PROFILES)
def test_config_settings_are_model_arguments(profile):
    from baselines import registry

    for dataset in paper_results.DATASETS:
        config = experiment_config.load_config(profile, dataset)
        for model in registry.MODEL_NAMES:
            accepted = registry.hyperparameter_names(model)
            settings = experiment_config.cell_configuration(config, model, accepted)
            for key in settings["model_hyperparameters"]:
                assert key in accepted, (profile, dataset, model, key)
            for path in experiment_config.tune_grid(config, model):
                section, _, key = path.partition(".")
                if section == "model_hyperparameters":
                    assert key in accepted, (profile, dataset, model, path)


def test_compile_model_applies_training_section():
    from ada_keras.optimizers import LazyAdam
    from baselines.registry import build_model
    from experiments.cell_training import compile_model

    model = build_model("adaensemble", [5, 6, 7], embedding_dim=4, num_layers=2)
    compile_model(model, {"optimizer": "adam", "learning_rate": 0.002,
                          "embedding_optimizer": "lazy_adam", "alpha_every": 3})

    assert isinstance(model.embedding_optimizer, LazyAdam)
    assert float(model.embedding_optimizer.learning_rate) == pytest.approx(0.002)
    assert model.alpha_every == 3

    compile_model(model, {"optimizer": "adam", "learning_rate": 0.002})
    assert model.embedding_optimizer is None
    assert model.alpha_every == 1
