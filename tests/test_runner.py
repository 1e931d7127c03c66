"""Tests of the experiment runner: atomic cell files, resume and progress lines."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time
import zlib

import numpy as np
import pytest
from absl import logging as absl_logging

from experiments import runner
from experiments.runner import Cell, CellStore

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parents[1]


def fake_metrics(cell, configuration):
    """Deterministic stand-in for training: metrics depend only on the cell and its config."""
    # zlib.crc32, not hash(): string hashes differ between processes.
    rng = np.random.default_rng(zlib.crc32(f"{cell.key} {configuration['learning_rate']}".encode()))
    return {"test": {"auc": float(rng.uniform(0.6, 0.8)), "logloss": float(rng.uniform(0.3, 0.5))}}


def configuration_of(cell):
    return {"learning_rate": 1e-3, "model": cell.model}


CELLS = runner.make_cells(["lr", "fm", "dnn"], ["criteo", "avazu"], [0, 1])


def metrics_of(records):
    return [(r["cell"], r["test"]) for r in records]


def test_cell_key_and_validation():
    assert Cell("criteo", "dcn", 3).key == "criteo__dcn__seed3"
    assert Cell("criteo", "adaensemble", 0, "top_k=2").key == "criteo__adaensemble__top_k=2__seed0"
    with pytest.raises(ValueError, match="file name"):
        Cell("criteo/../x", "dcn", 0)
    with pytest.raises(ValueError, match="dataset and a model"):
        Cell("", "dcn", 0)


def test_make_cells_grid_order():
    cells = runner.make_cells(["lr", "fm"], ["criteo", "avazu"], [0, 1])
    assert len(cells) == 8
    assert cells[0] == Cell("criteo", "lr", 0)
    assert cells[1] == Cell("criteo", "lr", 1)
    assert cells[2] == Cell("criteo", "fm", 0)
    assert cells[4] == Cell("avazu", "lr", 0)


def test_write_json_atomically_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "cells" / "a.json"
    runner.write_json_atomically(path, {"value": 1})

    def failing_dump(payload, stream, **kwargs):
        stream.write('{"value": 2, "trunc')
        raise OSError("disk full")

    monkeypatch.setattr(runner.json, "dump", failing_dump)
    with pytest.raises(OSError, match="disk full"):
        runner.write_json_atomically(path, {"value": 2})

    assert json.loads(path.read_text()) == {"value": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.json"]


def test_run_cells_writes_one_file_per_cell(tmp_path):
    store = CellStore(tmp_path)
    records = runner.run_cells(CELLS, fake_metrics, configuration_of, store)

    assert len(records) == len(CELLS)
    files = sorted(p.name for p in store.cells_dir.iterdir())
    assert files == sorted(f"{cell.key}.json" for cell in CELLS)

    stored = json.loads(store.path(CELLS[3]).read_text())
    assert stored["cell"] == {"dataset": "criteo", "model": "fm", "seed": 1, "variant": ""}
    assert stored["configuration"] == {"learning_rate": 1e-3, "model": "fm"}
    assert stored["test"] == records[3]["test"]
    assert stored["wall_time_s"] >= 0.0
    assert "keras" in stored["package_versions"]


def test_run_cells_rejects_duplicates(tmp_path):
    with pytest.raises(ValueError, match="duplicate"):
        runner.run_cells(CELLS + CELLS[:1], fake_metrics, configuration_of, CellStore(tmp_path))


def test_resume_after_exception_gives_same_records(tmp_path):
    uninterrupted = runner.run_cells(CELLS, fake_metrics, configuration_of, CellStore(tmp_path / "a"))

    calls = []

    def failing_after_five(cell, configuration):
        if len(calls) == 5:
            raise KeyboardInterrupt
        calls.append(cell)
        return fake_metrics(cell, configuration)

    store = CellStore(tmp_path / "b")
    with pytest.raises(KeyboardInterrupt):
        runner.run_cells(CELLS, failing_after_five, configuration_of, store)
    assert len(list(store.cells_dir.glob("*.json"))) == 5

    rerun = []

    def counting(cell, configuration):
        rerun.append(cell)
        return fake_metrics(cell, configuration)

    resumed = runner.run_cells(CELLS, counting, configuration_of, store, resume=True)

    assert rerun == CELLS[5:]
    assert metrics_of(resumed) == metrics_of(uninterrupted)


def test_resume_reruns_cells_with_changed_configuration(tmp_path):
    store = CellStore(tmp_path)
    runner.run_cells(CELLS[:2], fake_metrics, configuration_of, store)

    rerun = []

    def changed_configuration(cell):
        return {"learning_rate": 1e-4 if cell == CELLS[1] else 1e-3, "model": cell.model}

    def counting(cell, configuration):
        rerun.append(cell)
        return fake_metrics(cell, configuration)

    runner.run_cells(CELLS[:2], counting, changed_configuration, store, resume=True)
    assert rerun == [CELLS[1]]


def test_without_resume_every_cell_reruns(tmp_path):
    store = CellStore(tmp_path)
    runner.run_cells(CELLS[:2], fake_metrics, configuration_of, store)

    rerun = []

    def counting(cell, configuration):
        rerun.append(cell)
        return fake_metrics(cell, configuration)

    runner.run_cells(CELLS[:2], counting, configuration_of, store, resume=False)
    assert rerun == CELLS[:2]


def test_unreadable_cell_file_reruns(tmp_path):
    store = CellStore(tmp_path)
    runner.run_cells(CELLS[:1], fake_metrics, configuration_of, store)
    store.path(CELLS[0]).write_text('{"truncated": ')

    rerun = []

    def counting(cell, configuration):
        rerun.append(cell)
        return fake_metrics(cell, configuration)

    runner.run_cells(CELLS[:1], counting, configuration_of, store, resume=True)
    assert rerun == CELLS[:1]


def test_progress_lines_count_cells_and_estimate(tmp_path, monkeypatch):
    messages = []
    monkeypatch.setattr(
        absl_logging, "info", lambda message, *args: messages.append(message % args)
    )
    ticks = iter(range(0, 1000, 10))
    runner.run_cells(
        CELLS[:3], fake_metrics, configuration_of, CellStore(tmp_path), clock=lambda: next(ticks)
    )

    progress = [m for m in messages if "estimated time left" in m]
    assert len(progress) == 3
    assert progress[0].startswith("cell 1 of 3: lr on criteo, seed 0")
    assert "estimated time left unknown" in progress[0]
    # Every cell takes 10 fake seconds, so with 2 cells left the estimate is 20 s.
    assert progress[1].startswith("cell 2 of 3:")
    assert "estimated time left 0m20s" in progress[1]


KILLED_RUN_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from experiments import runner
    from tests.test_runner import CELLS, configuration_of, fake_metrics

    def slow(cell, configuration):
        time.sleep(0.3)
        return fake_metrics(cell, configuration)

    runner.run_cells(CELLS, slow, configuration_of, runner.CellStore(sys.argv[1]),
                     resume=True)
    """
)


def test_sigkilled_run_resumes_to_same_records(tmp_path):
    store = CellStore(tmp_path / "killed")
    environment = dict(os.environ, PYTHONPATH=str(REPOSITORY_ROOT))
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN_SCRIPT, str(store.root)],
        cwd=REPOSITORY_ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if store.cells_dir.exists() and len(list(store.cells_dir.glob("*.json"))) >= 2:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)

    finished = list(store.cells_dir.glob("*.json"))
    assert 2 <= len(finished) < len(CELLS)
    for path in finished:
        json.loads(path.read_text())  # every file left behind is complete JSON

    rerun = []

    def counting(cell, configuration):
        rerun.append(cell)
        return fake_metrics(cell, configuration)

    resumed = runner.run_cells(CELLS, counting, configuration_of, store, resume=True)
    uninterrupted = runner.run_cells(
        CELLS, fake_metrics, configuration_of, CellStore(tmp_path / "whole")
    )

    assert len(rerun) == len(CELLS) - len(finished)
    assert metrics_of(resumed) == metrics_of(uninterrupted)
