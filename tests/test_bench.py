"""experiments.bench: the generated input file and the JSON line of the benchmark command."""

import json
import subprocess
import sys

import numpy as np
import pytest

from experiments import bench
from tests.conftest import REPOSITORY_ROOT

REQUIRED_FIELDS = (
    "model", "train_examples_per_sec", "predict_examples_per_sec", "flops_per_example",
    "batch_size", "devices",
)


@pytest.mark.parametrize("total", [1_000_000, 10_000_000])
def test_criteo_like_vocabulary_total(total):
    sizes = bench.criteo_like_vocabulary(total)
    assert len(sizes) == 39
    assert min(sizes) >= 2
    assert abs(sum(sizes) - total) <= 0.001 * total


def test_generate_ids_within_vocabulary():
    arrays = bench.generate(500, 1_000_000, seed=3)
    assert arrays["ids"].dtype == np.int32
    assert arrays["ids"].shape == (500, 39)
    assert arrays["label"].dtype == np.float32
    assert arrays["label"].shape == (500,)
    assert (arrays["ids"] >= 0).all()
    assert (arrays["ids"] < arrays["vocab"][None, :]).all()


def test_load_input_rejects_out_of_range_id(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, ids=np.array([[0, 5]], np.int32), label=np.zeros(1, np.float32),
             vocab=np.array([3, 5], np.int64))
    with pytest.raises(ValueError, match="id 5 at row 0, field 1"):
        bench.load_input(str(path))


def test_command_prints_consistent_json(tmp_path):
    path = tmp_path / "tiny.npz"
    np.savez(path, **bench.generate(600, 2_000, seed=0))
    command = [
        sys.executable, "-m", "experiments.bench", "--model", "dnn", "--input", str(path),
        "--batch_size", "128", "--hidden", "8,8", "--embedding_dim", "4", "--warmup_steps", "1",
    ]
    completed = subprocess.run(command, cwd=REPOSITORY_ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    record = json.loads(completed.stdout.strip().splitlines()[-1])

    for field in REQUIRED_FIELDS:
        assert field in record, field
    assert record["model"] == "dnn"
    assert record["batch_size"] == 128
    # 600 rows give 4 full batches of 128; the partial batch is left out of both passes.
    assert record["train_examples"] == 512
    assert record["predict_examples"] == 512
    assert record["train_examples_per_sec"] == pytest.approx(512 / record["train_seconds"], rel=0.01)
    assert record["predict_examples_per_sec"] == pytest.approx(512 / record["predict_seconds"], rel=0.01)
    # Forward multiply-adds of the DNN: (39 * 4) x 8, 8 x 8 and 8 x 1, two FLOPs each.
    assert record["flops_per_example"] == 2 * (39 * 4 * 8 + 8 * 8 + 8)
    assert record["devices"]


def test_command_rejects_too_few_batches(tmp_path):
    path = tmp_path / "tiny.npz"
    np.savez(path, **bench.generate(600, 2_000, seed=0))
    command = [sys.executable, "-m", "experiments.bench", "--model", "dnn", "--input", str(path)]
    completed = subprocess.run(command, cwd=REPOSITORY_ROOT, capture_output=True, text=True, timeout=300)

    assert completed.returncode == 1
    assert "600 rows, 0 full batches of 4096" in completed.stderr
    assert "lower --batch_size or --warmup_steps" in completed.stderr
    # Only the message, not absl's full flag help.
    assert "--embedding_optimizer" not in completed.stderr
