"""Aggregate cell records over seeds and write result tables as Markdown and CSV."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import pathlib
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from experiments import paper_results
from experiments.runner import write_json_atomically

CSV_COLUMNS = (
    "model",
    "dataset",
    "auc_mean",
    "auc_std",
    "logloss_mean",
    "logloss_std",
    "seeds",
    "paper_auc",
    "paper_logloss",
    "best",
    "seed_values",
    "validation_auc_mean",
    "validation_logloss_mean",
    "epochs_mean",
    "wall_time_s_mean",
    "parameters",
)


@dataclasses.dataclass
class TableRow:
    """Test metrics of one model on one dataset, aggregated over seeds.

    `auc_std` and `logloss_std` are sample standard deviations (ddof = 1), None with a
    single seed. A row without records (`seeds == 0`) marks a missing cell.
    """

    model: str
    dataset: str
    auc_mean: float | None
    auc_std: float | None
    logloss_mean: float | None
    logloss_std: float | None
    seeds: int
    seed_values: tuple[int, ...]
    paper_auc: float | None
    paper_logloss: float | None
    validation_auc_mean: float | None
    validation_logloss_mean: float | None
    epochs_mean: float | None
    wall_time_s_mean: float | None
    parameters: int | None
    best: bool = False


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    array = np.asarray(values, dtype=np.float64)
    std = float(array.std(ddof=1)) if array.size > 1 else None
    return float(array.mean()), std


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def summarize(
    records: Iterable[Mapping[str, Any]], models: Sequence[str], datasets: Sequence[str]
) -> list[TableRow]:
    """Group cell records by (dataset, model), average over seeds and mark the best model.

    The best model of a dataset has the highest mean test AUC among the rows with results.
    Rows come dataset-major, models in the order given; a (model, dataset) pair without
    records gives a row with `seeds == 0`.
    """
    grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for record in records:
        cell = record["cell"]
        grouped.setdefault((cell["dataset"], cell["model"]), []).append(record)

    rows = []
    for dataset in datasets:
        dataset_rows = []
        for model in models:
            cell_records = sorted(
                grouped.get((dataset, model), []), key=lambda r: r["cell"]["seed"]
            )
            auc_mean, auc_std = _mean_std([r["test"]["auc"] for r in cell_records])
            logloss_mean, logloss_std = _mean_std([r["test"]["logloss"] for r in cell_records])
            paper = paper_results.paper_metrics(model, dataset)
            dataset_rows.append(
                TableRow(
                    model=model,
                    dataset=dataset,
                    auc_mean=auc_mean,
                    auc_std=auc_std,
                    logloss_mean=logloss_mean,
                    logloss_std=logloss_std,
                    seeds=len(cell_records),
                    seed_values=tuple(r["cell"]["seed"] for r in cell_records),
                    paper_auc=paper.auc if paper else None,
                    paper_logloss=paper.logloss if paper else None,
                    validation_auc_mean=_mean([r["validation"]["auc"] for r in cell_records]),
                    validation_logloss_mean=_mean(
                        [r["validation"]["logloss"] for r in cell_records]
                    ),
                    epochs_mean=_mean([r["epochs"] for r in cell_records]),
                    wall_time_s_mean=_mean([r["wall_time_s"] for r in cell_records]),
                    parameters=cell_records[0].get("parameters") if cell_records else None,
                )
            )
        filled = [row for row in dataset_rows if row.auc_mean is not None]
        if filled:
            max(filled, key=lambda row: row.auc_mean).best = True
        rows.extend(dataset_rows)
    return rows


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return value


def write_csv(rows: Sequence[TableRow], path: pathlib.Path) -> None:
    """Write one line per (model, dataset) with the columns of `CSV_COLUMNS`.

    Missing values (the std with one seed, a model without a published figure) are empty.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_csv_value(getattr(row, column)) for column in CSV_COLUMNS])
    _write_text_atomically(path, buffer.getvalue())


def _decimals(value: float) -> int:
    # iPinYou's LogLoss is about 0.0056, so four decimals would show only two digits.
    return 6 if abs(value) < 0.01 else 4


def _format_metric(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.{_decimals(value)}f}"


def _format_mean_std(mean: float | None, std: float | None) -> str:
    """Format `mean ± std`, the standard deviation with as many decimals as the mean."""
    if mean is None:
        return "missing"
    if std is None:
        return _format_metric(mean)
    decimals = _decimals(mean)
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def format_markdown(
    rows: Sequence[TableRow],
    title: str,
    notes: Sequence[str] = (),
    dataset_descriptions: Mapping[str, str] | None = None,
) -> str:
    """Render `rows` as Markdown: the title, notes, then one table per dataset.

    The best model per dataset (highest mean test AUC) is in bold with "(best)".
    """
    dataset_descriptions = dataset_descriptions or {}
    lines = [f"# {title}", ""]
    for note in notes:
        lines.append(note)
    if notes:
        lines.append("")

    datasets = list(dict.fromkeys(row.dataset for row in rows))
    for dataset in datasets:
        heading = dataset
        if dataset in dataset_descriptions:
            heading += f": {dataset_descriptions[dataset]}"
        lines += [f"## {heading}", ""]
        lines.append("| Model | AUC | LogLoss | Seeds | Paper AUC | Paper LogLoss |")
        lines.append("|---|---|---|---|---|---|")
        for row in (r for r in rows if r.dataset == dataset):
            name = paper_results.DISPLAY_NAMES.get(row.model, row.model)
            auc = _format_mean_std(row.auc_mean, row.auc_std)
            logloss = _format_mean_std(row.logloss_mean, row.logloss_std)
            if row.best:
                name, auc = f"**{name}** (best)", f"**{auc}**"
            lines.append(
                f"| {name} | {auc} | {logloss} | {row.seeds} | "
                f"{_format_metric(row.paper_auc)} | {_format_metric(row.paper_logloss)} |"
            )
        lines.append("")
    return "\n".join(lines)


def _write_text_atomically(path: pathlib.Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def write_tables(
    rows: Sequence[TableRow],
    output_dir: pathlib.Path,
    stem: str,
    title: str,
    notes: Sequence[str] = (),
    dataset_descriptions: Mapping[str, str] | None = None,
) -> str:
    """Write `<stem>.md`, `<stem>.csv` and `<stem>.json` (title and notes) under `output_dir`.

    Returns:
        The Markdown text.
    """
    markdown = format_markdown(rows, title, notes, dataset_descriptions)
    _write_text_atomically(output_dir / f"{stem}.md", markdown)
    write_csv(rows, output_dir / f"{stem}.csv")
    write_json_atomically(
        output_dir / f"{stem}.json",
        {
            "title": title,
            "notes": list(notes),
            "dataset_descriptions": dict(dataset_descriptions or {}),
            "rows": [dataclasses.asdict(row) for row in rows],
        },
    )
    return markdown
