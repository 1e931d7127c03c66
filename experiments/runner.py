"""Run experiment cells with one atomic JSON file per cell, resume and progress lines.

A cell is one training run: (model, dataset, seed), plus an optional `variant` that
analyses use to tell apart configurations of the same model (for example "top_k=2").
Every finished cell is written to `<output_dir>/cells/<key>.json` through a temporary file
and `os.replace`, so a reader never sees a half-written file and a killed run loses at
most the cell in progress. With `resume=True`, cells whose file exists and whose
configuration fingerprint matches are read back instead of rerun.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
import pathlib
import platform
import re
import sys
import tempfile
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

from absl import logging

CELL_FORMAT_VERSION = 1

_KEY_COMPONENT = re.compile(r"^[A-Za-z0-9_.=+-]+$")


@dataclasses.dataclass(frozen=True, order=True)
class Cell:
    """One training run: a model on a dataset with a seed, optionally a named variant."""

    dataset: str
    model: str
    seed: int
    variant: str = ""

    def __post_init__(self):
        for name in ("dataset", "model", "variant"):
            value = getattr(self, name)
            if value and not _KEY_COMPONENT.match(value):
                raise ValueError(
                    f"cell {name} {value!r} may contain only letters, digits and _.=+-, "
                    "because it becomes part of a file name"
                )
        if not self.dataset or not self.model:
            raise ValueError(f"cell needs a dataset and a model, got {self!r}")

    @property
    def key(self) -> str:
        """File-name stem, unique per cell, e.g. `criteo__dcn__seed0`."""
        parts = [self.dataset, self.model]
        if self.variant:
            parts.append(self.variant)
        parts.append(f"seed{self.seed}")
        return "__".join(parts)

    def describe(self) -> str:
        variant = f" [{self.variant}]" if self.variant else ""
        return f"{self.model}{variant} on {self.dataset}, seed {self.seed}"


def fingerprint(configuration: Mapping[str, Any]) -> str:
    """Return a short SHA-256 of a JSON-serialisable configuration (keys sorted)."""
    text = json.dumps(configuration, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def package_versions() -> dict[str, str]:
    """Versions of Python, the platform and the numerical packages, for the cell records."""
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    # Read from the installed distributions' metadata, which is fast and imports nothing.
    for distribution in ("tensorflow", "keras", "numpy", "scikit-learn", "absl-py"):
        try:
            versions[distribution] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            versions[distribution] = "not installed"
    return versions


def write_json_atomically(path: pathlib.Path, payload: Mapping[str, Any]) -> None:
    """Write `payload` as JSON to `path` so that `path` is either old or complete.

    The text goes to a temporary file in the same directory (same file system), is
    flushed to disk with fsync, then renamed over `path` with `os.replace`, which POSIX
    and Windows perform atomically.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            json.dump(payload, stream, indent=2, sort_keys=True, default=str)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary_name, path)
    except BaseException:
        # Also on KeyboardInterrupt: leave no temporary file behind.
        pathlib.Path(temporary_name).unlink(missing_ok=True)
        raise


class CellStore:
    """The directory of finished cells: `<root>/cells/<cell key>.json`."""

    def __init__(self, root: str | os.PathLike):
        self.root = pathlib.Path(root)
        self.cells_dir = self.root / "cells"

    def path(self, cell: Cell) -> pathlib.Path:
        return self.cells_dir / f"{cell.key}.json"

    def load(self, cell: Cell) -> dict[str, Any] | None:
        """Return the stored record of `cell`, or None when it has none or it is unreadable."""
        path = self.path(cell)
        if not path.exists():
            return None
        try:
            with path.open(encoding="utf-8") as stream:
                return json.load(stream)
        except (OSError, json.JSONDecodeError) as error:
            logging.warning("Ignoring unreadable cell file %s (%s); the cell reruns.", path, error)
            return None

    def write(self, cell: Cell, record: Mapping[str, Any]) -> pathlib.Path:
        path = self.path(cell)
        write_json_atomically(path, record)
        return path


def _format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, remainder = divmod(seconds, 3600)
    minutes, seconds = divmod(remainder, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{seconds:02d}s"
    return f"{minutes}m{seconds:02d}s"


RunCellFunction = Callable[[Cell, Mapping[str, Any]], Mapping[str, Any]]


def run_cells(
    cells: Sequence[Cell],
    run_cell: RunCellFunction,
    configuration_of: Callable[[Cell], Mapping[str, Any]],
    store: CellStore,
    *,
    resume: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> list[dict[str, Any]]:
    """Run every cell in order, writing each record as soon as the cell ends.

    Args:
        cells: the cells, in the order to run them. Keys must be unique.
        run_cell: `run_cell(cell, configuration) -> record` trains and evaluates one cell
            and returns a JSON-serialisable mapping (metrics and whatever else it measured).
        configuration_of: returns the configuration of a cell (hyper-parameters, data
            settings). It is stored in the record, and its fingerprint decides whether a
            stored cell can be reused on resume.
        store: where the cell files live.
        resume: reuse stored cells whose configuration fingerprint matches; without it
            every cell runs again and its file is overwritten.
        clock: seconds, monotonic; replaceable in tests.

    Returns:
        The records of all cells, in the order of `cells`. Each record contains what
        `run_cell` returned plus `cell`, `configuration`, `configuration_fingerprint`,
        `wall_time_s`, `finished_at` and `package_versions`.
    """
    keys = [cell.key for cell in cells]
    if len(set(keys)) != len(keys):
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        raise ValueError(f"duplicate cells: {duplicates}")

    total = len(cells)
    start = clock()
    seconds_in_run_cells = 0.0
    cells_run = 0
    records: list[dict[str, Any]] = []
    versions = package_versions()

    for index, cell in enumerate(cells, start=1):
        configuration = dict(configuration_of(cell))
        configuration_fingerprint = fingerprint(configuration)

        if resume:
            stored = store.load(cell)
            if stored is not None and stored.get("configuration_fingerprint") == configuration_fingerprint:
                logging.info(
                    "cell %d of %d: %s already finished in %s, reused",
                    index, total, cell.describe(), store.path(cell),
                )
                records.append(stored)
                continue
            if stored is not None:
                logging.warning(
                    "cell %d of %d: %s has a stored result with another configuration, rerunning it",
                    index, total, cell.describe(),
                )

        elapsed = clock() - start
        remaining = total - index + 1
        if cells_run:
            eta = _format_duration(seconds_in_run_cells / cells_run * remaining)
        else:
            eta = "unknown"
        logging.info(
            "cell %d of %d: %s | elapsed %s, estimated time left %s",
            index, total, cell.describe(), _format_duration(elapsed), eta,
        )

        cell_start = clock()
        result = run_cell(cell, configuration)
        wall_time = clock() - cell_start
        seconds_in_run_cells += wall_time
        cells_run += 1

        record = dict(result)
        record.update(
            {
                "format_version": CELL_FORMAT_VERSION,
                "cell": dataclasses.asdict(cell),
                "configuration": configuration,
                "configuration_fingerprint": configuration_fingerprint,
                "wall_time_s": wall_time,
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "package_versions": versions,
            }
        )
        path = store.write(cell, record)
        logging.info(
            "cell %d of %d: %s finished in %s, written to %s",
            index, total, cell.describe(), _format_duration(wall_time), path,
        )
        records.append(record)

    logging.info("all %d cells done in %s (%d run, %d reused)", total,
                 _format_duration(clock() - start), cells_run, total - cells_run)
    return records


def make_cells(
    models: Iterable[str], datasets: Iterable[str], seeds: Iterable[int], variant: str = ""
) -> list[Cell]:
    """Return the cells of a grid, dataset-major: every model and seed on one dataset first."""
    models, seeds = list(models), list(seeds)
    return [
        Cell(dataset=dataset, model=model, seed=seed, variant=variant)
        for dataset in datasets
        for model in models
        for seed in seeds
    ]
