"""Find the users' dataset files, prepare them once with `data.prepare`, and cache the result.

`--data_dir DIR` contains one folder per dataset (`DIR/criteo`, `DIR/avazu`,
`DIR/ipinyou`) with the files as they come from their sources. `find_inputs` recognises
the forms below; where a folder contains several, it picks the first form listed and
reports the others:

- criteo: the Kaggle `train.txt` (tab-separated, label + I1..I13 + C1..C26), plain or
  gzip; any `*.txt`, `*.txt.gz`, `*.tsv` or `*.tsv.gz` file except those named
  `test*` (the Kaggle test file has no labels).
- avazu: the Kaggle `train.csv` (with header), plain or gzip; any `*.csv` or `*.csv.gz`.
- ipinyou: the make-ipinyou-data output with its own train/test split: the log files
  (`train.log.txt` + `test.log.txt`, tab-separated with a header), the same rows decoded
  into one named column per field (`train.decoded.tsv` + `test.decoded.tsv`, preferred
  over the indexed form because the field names survive) or one-hot indexed (`train.fm.txt` + `test.fm.txt` +
  `featindex.fm.txt`).

Prepared folders live under a cache directory, named after a SHA-256 of the dataset, the
input files (path, size, modification time) and the preparation settings, so a second run
with the same inputs reuses them. Without `--data_dir`, `data.synthetic` generates
Criteo-, Avazu- and iPinYou-shaped data with planted feature interactions instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import tempfile
from typing import Any, Callable, Mapping, Sequence

from absl import logging

DATASETS = ("criteo", "avazu", "ipinyou")

# Folder entries that are documentation, never data.
_IGNORED_SUFFIXES = (".md", ".json", ".html", ".pdf")


@dataclasses.dataclass(frozen=True)
class InputForm:
    """One recognised form of a dataset's files."""

    name: str
    description: str
    # Glob patterns, each matching exactly one file: the whole file, or the train file
    # then the test file, then (indexed iPinYou) the featindex file.
    patterns: tuple[str, ...]
    # Lower-case name prefixes to skip: Criteo's Kaggle `test.txt` has no labels.
    excluded_prefixes: tuple[str, ...] = ("readme", "license")


INPUT_FORMS: dict[str, tuple[InputForm, ...]] = {
    "criteo": (
        InputForm("raw", "raw Criteo TSV (label, I1..I13, C1..C26)", ("*.txt*",),
                  ("readme", "license", "test")),
        InputForm("raw-tsv", "raw Criteo TSV (label, I1..I13, C1..C26)", ("*.tsv*",),
                  ("readme", "license", "test")),
    ),
    "avazu": (
        InputForm("raw", "raw Avazu CSV with header", ("*.csv*",)),
    ),
    "ipinyou": (
        InputForm(
            "log",
            "make-ipinyou-data log TSV with header (raw columns), given train/test split",
            ("train*.log.txt*", "test*.log.txt*"),
        ),
        InputForm(
            "decoded",
            "make-ipinyou-data decoded TSV, one named column per field, given train/test split",
            ("train*.decoded.tsv*", "test*.decoded.tsv*"),
        ),
        InputForm(
            "indexed",
            "make-ipinyou-data one-hot indexed files (libFM format) with featindex, given "
            "train/test split",
            ("train*.fm.txt*", "test*.fm.txt*", "featindex*.txt*"),
        ),
    ),
}


@dataclasses.dataclass(frozen=True)
class PreparedData:
    """A prepared dataset folder and how it came about."""

    dataset: str
    directory: pathlib.Path
    synthetic: bool
    form: str
    inputs: tuple[str, ...]
    fingerprint: str
    metadata: Mapping[str, Any]

    def rows(self) -> dict[str, int]:
        return {split: int(info["rows"]) for split, info in self.metadata["splits"].items()}

    def describe(self) -> str:
        """Return e.g. "raw Criteo TSV, 10,000 rows (7,000 train / 1,000 validation / 2,000 test)"."""
        rows = self.rows()
        total = sum(rows.values())
        parts = " / ".join(f"{rows[s]:,} {s}" for s in ("train", "validation", "test") if s in rows)
        source = "synthetic" if self.synthetic else ", ".join(pathlib.Path(p).name for p in self.inputs)
        return f"{source} ({self.form}), {total:,} rows ({parts})"


def _data_files(folder: pathlib.Path, pattern: str, form: InputForm) -> list[pathlib.Path]:
    files = []
    for path in sorted(folder.glob(pattern)):
        name = path.name.lower()
        if not path.is_file() or name.startswith("."):
            continue
        if name.endswith(_IGNORED_SUFFIXES) or name.startswith(form.excluded_prefixes):
            continue
        files.append(path)
    return files


def find_inputs(dataset: str, folder: str | os.PathLike) -> tuple[InputForm, list[pathlib.Path], list[str]]:
    """Pick the input form and files of `dataset` in `folder`.

    Returns:
        `(form, files, other_forms)`: the chosen form, its files (sorted within each
        pattern), and the names of other recognised forms also present in the folder.

    Raises:
        ValueError: for an unknown dataset, a missing folder, or a folder with no
            recognised form; the message lists what the folder contains.
    """
    if dataset not in INPUT_FORMS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise ValueError(
            f"dataset folder {folder} not found: --data_dir must contain one folder per "
            f"dataset ({', '.join(DATASETS)}) holding that dataset's files"
        )

    found: list[tuple[InputForm, list[pathlib.Path]]] = []
    for form in INPUT_FORMS[dataset]:
        per_pattern = [_data_files(folder, pattern, form) for pattern in form.patterns]
        if not all(per_pattern):
            continue
        for pattern, paths in zip(form.patterns, per_pattern):
            if len(paths) > 1:
                raise ValueError(
                    f"{folder} contains several {dataset} files matching {pattern!r}: "
                    f"{[p.name for p in paths]}; data.prepare takes one file (or one train "
                    "and one test file), so keep one of them in the folder"
                )
        found.append((form, [paths[0] for paths in per_pattern]))
    if not found:
        contents = sorted(p.name for p in folder.iterdir())
        expected = "; ".join(
            f"{form.description}: {' + '.join(form.patterns)}" for form in INPUT_FORMS[dataset]
        )
        raise ValueError(
            f"no {dataset} data recognised in {folder} (it contains {contents}). "
            f"Expected one of: {expected}"
        )
    chosen_form, files = found[0]
    return chosen_form, files, [form.name for form, _ in found[1:]]


def _cache_key(dataset: str, form: str, files: Sequence[pathlib.Path], settings: Mapping[str, Any]) -> str:
    description = {
        "dataset": dataset,
        "form": form,
        "files": [
            {"path": str(path.resolve()), "bytes": path.stat().st_size,
             "modified_ns": path.stat().st_mtime_ns}
            for path in files
        ],
        "settings": dict(settings),
    }
    text = json.dumps(description, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _prepare_into_cache(
    cache_dir: pathlib.Path, name: str, build: Callable[[pathlib.Path], None]
) -> tuple[pathlib.Path, bool]:
    """Return `(directory, reused)`; build into a temporary folder and rename it into place.

    The rename makes a half-finished preparation (a killed run) invisible, so the next
    run finds no folder and prepares again.
    """
    final = cache_dir / name
    if (final / "metadata.json").exists():
        return final, True
    cache_dir.mkdir(parents=True, exist_ok=True)
    temporary = pathlib.Path(tempfile.mkdtemp(prefix=f".{name}.", dir=cache_dir))
    try:
        build(temporary)
        if final.exists():
            # A folder without metadata.json is an old failed attempt.
            shutil.rmtree(final)
        os.replace(temporary, final)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)
    return final, False


def prepare_real(
    dataset: str,
    folder: str | os.PathLike,
    cache_dir: str | os.PathLike,
    data_settings: Mapping[str, Any],
) -> PreparedData:
    """Prepare the user's files of `dataset` in `folder` (or reuse the cached preparation)."""
    from data import prepare as data_prepare

    form, files, other_forms = find_inputs(dataset, folder)
    logging.info(
        "%s: using %s (%s)", dataset, ", ".join(str(p) for p in files), form.description
    )
    if other_forms:
        logging.info(
            "%s: %s also contains the form(s) %s, not used; keep one form per folder to choose",
            dataset, folder, ", ".join(other_forms),
        )

    settings = {
        "min_count": int(data_settings["min_count"]),
        "seed": int(data_settings["split_seed"]),
        # Malformed rows are counted in metadata["bad_rows"] and reported below; a file
        # with no valid row still fails.
        "on_bad_row": data_settings.get("on_bad_row", "skip"),
    }
    key = _cache_key(dataset, form.name, files, settings)
    inputs = [str(p) for p in files]
    extra = {}
    if form.name == "indexed":
        inputs, extra["featindex"] = inputs[:2], inputs[2]

    def build(directory: pathlib.Path) -> None:
        logging.info("%s: preparing into the cache %s (min_count %d, split seed %d)",
                     dataset, directory.parent, settings["min_count"], settings["seed"])
        # `directory` is an empty temporary folder; prepare() replaces it with its output.
        data_prepare.prepare(dataset, inputs, str(directory), overwrite=True, **settings, **extra)

    directory, reused = _prepare_into_cache(pathlib.Path(cache_dir), f"{dataset}-{key}", build)
    if reused:
        logging.info("%s: reusing the prepared data in %s", dataset, directory)
    metadata = load_metadata(directory)
    _log_bad_rows(dataset, metadata)
    return PreparedData(
        dataset=dataset,
        directory=directory,
        synthetic=False,
        form=form.description,
        inputs=tuple(str(p) for p in files),
        fingerprint=key,
        metadata=metadata,
    )


def _log_bad_rows(dataset: str, metadata: Mapping[str, Any]) -> None:
    bad_rows = metadata.get("bad_rows", {})
    if bad_rows.get("count"):
        logging.warning(
            "%s: %d rows rejected during preparation (%s); first: %s",
            dataset, bad_rows["count"], bad_rows.get("by_reason"),
            (bad_rows.get("examples") or [None])[0],
        )


def prepare_synthetic(
    dataset: str, cache_dir: str | os.PathLike, data_settings: Mapping[str, Any]
) -> PreparedData:
    """Generate `dataset`-shaped synthetic data with `data.synthetic` (or reuse the cache)."""
    from data import synthetic

    # The synthetic vocabularies are drawn directly, so min_count plays no part here.
    settings = {"rows": int(data_settings["synthetic_rows"]), "seed": int(data_settings["split_seed"])}
    key = _cache_key(f"synthetic-{dataset}", "synthetic", [], settings)

    def build(directory: pathlib.Path) -> None:
        logging.info("%s: generating %d synthetic rows", dataset, settings["rows"])
        synthetic.write_prepared(
            directory, shape=dataset, rows=settings["rows"], seed=settings["seed"], overwrite=True
        )

    directory, reused = _prepare_into_cache(
        pathlib.Path(cache_dir), f"synthetic-{dataset}-{key}", build
    )
    if reused:
        logging.info("%s: reusing the synthetic data in %s", dataset, directory)
    metadata = load_metadata(directory)
    return PreparedData(
        dataset=dataset,
        directory=directory,
        synthetic=True,
        form=f"synthetic {dataset}-shaped data with planted interactions",
        inputs=(),
        fingerprint=key,
        metadata=metadata,
    )


def load_metadata(directory: pathlib.Path) -> dict[str, Any]:
    # Imported here so that finding inputs works before the data package is importable.
    from data import pipeline

    return pipeline.load_metadata(directory)


def default_cache_dir() -> pathlib.Path:
    """`$XDG_CACHE_HOME/ada_keras/prepared`, or `~/.cache/ada_keras/prepared`."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "ada_keras" / "prepared"
