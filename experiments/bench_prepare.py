"""Benchmark `data.prepare` on generated Criteo-format files: rows per second and peak RSS.

For each --rows value the benchmark writes a synthetic Criteo `train.txt` of that many rows
(`data.synthetic.write_raw`), then prepares it in a fresh child process, so the peak
resident set size (from wait4) is that of preparation alone.

Example:
    python -m experiments.bench_prepare --rows 1000000 --rows 5000000
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

from absl import app, flags, logging

from data import synthetic

FLAGS = flags.FLAGS
flags.DEFINE_multi_integer("rows", [1_000_000], "Rows of each generated Criteo file (repeat the flag for several sizes).")
flags.DEFINE_string("work_dir", None, "Folder for the generated files (default: a temporary folder, removed at the end).")
flags.DEFINE_integer("seed", 0, "Seed of the generated data.")
flags.DEFINE_integer("min_count", 20, "min_count passed to prepare.")
flags.DEFINE_bool("gzip", False, "Write and read the generated file gzip-compressed.")
flags.DEFINE_string("results", None, "Optional JSON file to write the measurements to.")

# Runs in the child process: prepare the file and print the elapsed seconds and metadata.
CHILD = """
import json, sys, time
from data.prepare import prepare
started = time.monotonic()
metadata = prepare("criteo", [sys.argv[1]], sys.argv[2], min_count=int(sys.argv[3]))
print(json.dumps({"seconds": time.monotonic() - started, "rows_read": metadata["rows_read"],
                  "vocabulary_total": sum(metadata["vocabulary_sizes"])}))
"""


def measure(rows: int, work_dir: pathlib.Path) -> dict:
    """Generate a Criteo file of `rows` rows, prepare it in a child process, return the numbers."""
    suffix = ".txt.gz" if FLAGS.gzip else ".txt"
    raw = work_dir / f"criteo_{rows}{suffix}"
    output = work_dir / f"prepared_{rows}"
    started = time.monotonic()
    synthetic.write_raw(raw, "criteo", rows, FLAGS.seed)
    logging.info("wrote %s (%.1f MB) in %.1f s", raw, raw.stat().st_size / 1e6, time.monotonic() - started)
    shutil.rmtree(output, ignore_errors=True)

    repository = pathlib.Path(__file__).resolve().parents[1]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(raw), str(output), str(FLAGS.min_count)],
        cwd=repository,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(repository)},
    )
    output_text = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"prepare failed with exit code {child.returncode}")
    result = json.loads(output_text.decode().strip().splitlines()[-1])
    result.update(
        rows=rows,
        file_megabytes=round(raw.stat().st_size / 1e6, 1),
        rows_per_second=round(rows / result["seconds"]),
        # ru_maxrss is in kilobytes on Linux.
        peak_rss_megabytes=round(usage.ru_maxrss / 1024, 1),
        # CPU seconds of the child, all threads, including Python start-up and imports.
        cpu_seconds=round(usage.ru_utime + usage.ru_stime, 1),
        # The machine is shared: the 1-minute load average shows how busy it was.
        load_average=round(os.getloadavg()[0], 1),
        seconds=round(result["seconds"], 2),
    )
    raw.unlink()
    shutil.rmtree(output, ignore_errors=True)
    return result


def main(argv) -> None:
    del argv
    work_dir = pathlib.Path(FLAGS.work_dir or tempfile.mkdtemp(prefix="bench_prepare_"))
    work_dir.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for rows in FLAGS.rows:
            result = measure(rows, work_dir)
            logging.info("%s", json.dumps(result))
            results.append(result)
    finally:
        if FLAGS.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    print("rows        file MB   seconds   rows/s     CPU s   peak RSS MB   ids kept   load avg")
    for result in results:
        print(
            f"{result['rows']:>10,}  {result['file_megabytes']:>8}  {result['seconds']:>7}  "
            f"{result['rows_per_second']:>9,}  {result['cpu_seconds']:>6}  {result['peak_rss_megabytes']:>10}  "
            f"{result['vocabulary_total']:>9,}  {result['load_average']:>8}"
        )
    if FLAGS.results:
        pathlib.Path(FLAGS.results).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    app.run(main)
