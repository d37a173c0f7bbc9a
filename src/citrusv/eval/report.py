"""Result tables and plots in the layout of the paper's tables.

One table per capability (models as rows, benchmarks as columns, then the average), written as
Markdown and CSV, with a grouped bar chart PNG; one breakdown table per benchmark and tag key
(modality, task, anatomical region, dataset, ...). Numbers not comparable with the paper (open VQA
without an LLM judge, say) are marked with ``*`` and explained under the table.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from .results import BenchmarkScore

__all__ = ["CAPABILITY_TITLES", "capability_columns", "write_reports"]

CAPABILITY_TITLES = {
    "medical_vqa": "Medical VQA (accuracy)",
    "text_qa": "Medical text QA (accuracy)",
    "document": "Medical document understanding, MedDocBench",
    "report": "Report generation, CheXpert Plus",
    "grounding": "Detection and segmentation",
}
# Capabilities whose columns are different metrics of one task have no meaningful average.
_NO_AVERAGE = {"report"}
_REPORT_METRICS = (("rouge_l", "ROUGE-L"), ("cider", "CIDEr"), ("ratescore", "RaTE"))


#: Column order of the paper's tables (5: text QA, 6: VQA, 7: documents, 8: reports, 9-10: grounding).
PAPER_COLUMN_ORDER = (
    "vqa_rad", "medxpertqa_mm", "slake", "path_vqa", "pmc_vqa",
    "pubmedqa", "medmcqa", "medqa_usmle", "medqa_mcmle", "medxpertqa_text", "cmmlu_medical",
    "medbullets_op4", "medbullets_op5", "supergpqa_medicine",
    "meddocbench_ltr_full", "meddocbench_ltr_simple", "meddocbench_ltr_abnormal",
    "meddocbench_gmd_simple", "meddocbench_gmd_complex",
    "chexpert_plus", "mecovqa_g_plus", "medsegbench", "medsam2_detection",
)


def _benchmark_order() -> list[str]:
    from .benchmarks import BENCHMARKS

    return list(dict.fromkeys([*PAPER_COLUMN_ORDER, *BENCHMARKS]))


def capability_columns(scores: Sequence[BenchmarkScore]) -> dict[str, list[tuple[str, str, str]]]:
    """capability → ordered columns ``(benchmark, metric key, column title)``."""
    order = {name: i for i, name in enumerate(_benchmark_order())}
    seen: dict[str, dict[tuple[str, str], str]] = defaultdict(dict)
    for score in scores:
        if score.family == "report":
            for key, label in _REPORT_METRICS:
                seen[score.capability][(score.benchmark, key)] = f"{score.title} {label}"
        else:
            seen[score.capability][(score.benchmark, "score")] = score.title
    columns = {}
    for capability, found in seen.items():
        keys = sorted(found, key=lambda k: (order.get(k[0], len(order)), k[0], [m for m, _ in _REPORT_METRICS].index(k[1]) if k[1] != "score" else 0))
        columns[capability] = [(bench, metric, found[(bench, metric)]) for bench, metric in keys]
    return columns


def _value(score: BenchmarkScore, metric: str) -> float | None:
    value = score.score if metric == "score" else score.metrics.get(metric)
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def write_reports(scores: Sequence[BenchmarkScore], out_dir: str | Path, *, plots: bool = True) -> list[Path]:
    """Write ``<capability>.md`` / ``.csv`` / ``.png`` and ``breakdowns/*.md`` under ``out_dir``.

    Returns the written paths. Models are rows in first-seen order.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    by_key = {(s.model, s.benchmark): s for s in scores}
    models = list(dict.fromkeys(s.model for s in scores))
    for capability, columns in capability_columns(scores).items():
        title = CAPABILITY_TITLES.get(capability, capability)
        header = ["Model", *[c[2] for c in columns]]
        average = capability not in _NO_AVERAGE and len(columns) > 1
        if average:
            header.append("Avg.")
        rows: list[list[str]] = []
        values_by_model: dict[str, list[float | None]] = {}
        footnotes: list[str] = []
        for model in models:
            values, cells = [], [model]
            for bench, metric, _ in columns:
                score = by_key.get((model, bench))
                value = _value(score, metric) if score else None
                values.append(value)
                cell = _fmt(value)
                if score is not None and not score.comparable:
                    cell += "*"
                    footnotes.extend(f"{model} / {score.title}: {note}" for note in score.notes)
                cells.append(cell)
            if average:
                present = [v for v in values if v is not None]
                # An average over a partial row would not compare with full rows: only when complete.
                cells.append(_fmt(sum(present) / len(present)) if present and len(present) == len(values) else "–")
            values_by_model[model] = values
            rows.append(cells)
        md = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        md += ["| " + " | ".join(r) + " |" for r in rows]
        if footnotes:
            md += ["", "\\* not comparable with the paper's numbers:"] + [f"- {n}" for n in dict.fromkeys(footnotes)]
        md_path = out_dir / f"{capability}.md"
        md_path.write_text("\n".join(md) + "\n", encoding="utf-8")
        csv_path = out_dir / f"{capability}.csv"
        with open(csv_path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows([[c.rstrip("*") for c in r] for r in rows])
        written += [md_path, csv_path]
        if plots:
            written.append(_bar_chart(out_dir / f"{capability}.png", title, [c[2] for c in columns], values_by_model))
    written += _write_breakdowns(scores, out_dir / "breakdowns")
    return written


def _bar_chart(path: Path, title: str, labels: list[str], values_by_model: dict[str, list[float | None]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(values_by_model)
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(labels) + 2), 4.0))
    for index, model in enumerate(models):
        xs = [i + (index - (len(models) - 1) / 2) * width for i in range(len(labels))]
        ys = [v if v is not None else 0.0 for v in values_by_model[model]]
        ax.bar(xs, ys, width=width, label=model)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=30, ha="right")
    ax.set_ylabel("score (0–100)")
    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _write_breakdowns(scores: Sequence[BenchmarkScore], out_dir: Path) -> list[Path]:
    grouped: dict[tuple[str, str], list[BenchmarkScore]] = defaultdict(list)
    for score in scores:
        for tag in score.by_tag:
            grouped[(score.benchmark, tag)].append(score)
    written = []
    for (benchmark, tag), group in sorted(grouped.items()):
        values = sorted({v for s in group for v in s.by_tag[tag]})
        title = group[0].title
        md = [f"# {title} by {tag}", "", "| Model | " + " | ".join(values) + " |", "|" + "---|" * (len(values) + 1)]
        for score in group:
            cells = [_fmt(score.by_tag[tag][v]["mean"]) + f" (n={int(score.by_tag[tag][v]['count'])})"
                     if v in score.by_tag[tag] else "–" for v in values]
            md.append(f"| {score.model} | " + " | ".join(cells) + " |")
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{benchmark}.{tag}.md"
        path.write_text("\n".join(md) + "\n", encoding="utf-8")
        written.append(path)
    return written
