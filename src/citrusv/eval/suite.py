"""The evaluation run: load benchmarks, answer, score, write tables. ``citrusv eval`` calls this.

Output layout under ``out_dir``::

    <model>/<benchmark>.predictions.jsonl   answers, appended as they arrive (resumable)
    <model>/<benchmark>.score.json          BenchmarkScore: overall, per-metric, per-row, by tag
    <model>/<benchmark>.load_errors.txt     rows of the benchmark files that could not be read
    tables/<capability>.{md,csv,png}        every model found under out_dir, paper layout
    tables/breakdowns/<benchmark>.<tag>.md  per modality / region / dataset ...
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .predictions import read_predictions
from .report import write_reports
from .results import BenchmarkScore, load_scores
from .runner import Answerer, run_benchmark
from .scoring import ScoringOptions, score_rows

__all__ = ["SuiteResult", "evaluate", "model_folder_name", "rescore", "select_benchmarks"]

logger = logging.getLogger(__name__)


def select_benchmarks(selection: str | Sequence[str]) -> list[str]:
    """Benchmark names from a comma-separated list of names, capabilities (``text_qa``) or ``all``.

    Raises:
        ValueError: an unknown name, with the known ones listed.
    """
    from .benchmarks import BENCHMARKS

    words = [w.strip() for w in (selection.split(",") if isinstance(selection, str) else selection) if w.strip()]
    capabilities = {spec.capability for spec in BENCHMARKS.values()}
    chosen: list[str] = []
    unknown = []
    for word in words:
        if word == "all":
            chosen += list(BENCHMARKS)
        elif word in capabilities:
            chosen += [name for name, spec in BENCHMARKS.items() if spec.capability == word]
        elif word in BENCHMARKS:
            chosen.append(word)
        else:
            unknown.append(word)
    if unknown:
        raise ValueError(f"unknown benchmark(s) {', '.join(unknown)}; choose from: all, "
                         f"{', '.join(sorted(capabilities))}, {', '.join(BENCHMARKS)}")
    if not chosen:
        raise ValueError("no benchmarks selected")
    return list(dict.fromkeys(chosen))


def model_folder_name(name: str) -> str:
    """A file-system-safe folder name for a model name (``org/model`` → ``org_model``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"


@dataclass
class SuiteResult:
    scores: list[BenchmarkScore] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)  # benchmark → missing files
    tables: list[Path] = field(default_factory=list)


def evaluate(answerer: Answerer, benchmarks: Sequence[str], data_root: str | Path, out_dir: str | Path, *,
             options: ScoringOptions | None = None, limit: int | None = None, batch_size: int = 8,
             strict_load: bool = False, progress: bool = True) -> SuiteResult:
    """Answer and score each benchmark; a benchmark whose files are missing is reported and skipped.

    Reruns resume: answered ids are skipped, failed ones retried, and every benchmark rescored.
    """
    from .benchmarks import load_benchmark, missing_files

    options = options or ScoringOptions()
    out_dir = Path(out_dir)
    model_dir = out_dir / model_folder_name(answerer.name)
    result = SuiteResult()
    for name in benchmarks:
        missing = missing_files(name, data_root)
        if missing:
            logger.warning("skipping %s: missing %s", name, ", ".join(missing))
            result.missing[name] = missing
            continue
        load_errors: list[str] = []
        items = load_benchmark(name, data_root, limit=limit, errors=load_errors, strict=strict_load)
        if load_errors:
            model_dir.mkdir(parents=True, exist_ok=True)
            (model_dir / f"{name}.load_errors.txt").write_text("\n".join(load_errors) + "\n", encoding="utf-8")
            logger.warning("%s: %d row(s) could not be read (see %s.load_errors.txt)", name, len(load_errors), name)
        predictions = model_dir / f"{name}.predictions.jsonl"
        run_benchmark(answerer, items, predictions, batch_size=batch_size, progress=progress)
        wanted = {item.id for item in items}
        rows = [row for row in read_predictions(predictions, errors=[]) if str(row["id"]) in wanted]
        score = score_rows(name, rows, model=answerer.name, options=options)
        if load_errors:
            score.notes.append(f"{len(load_errors)} benchmark row(s) could not be read and were left out")
        score.save(model_dir / f"{name}.score.json")
        result.scores.append(score)
    result.tables = write_reports(load_scores(out_dir), out_dir / "tables")
    return result


def rescore(benchmark: str, predictions_path: str | Path, output: str | Path, *,
            options: ScoringOptions | None = None, model: str | None = None) -> BenchmarkScore:
    """Score a predictions JSONL offline and write ``output`` (``BenchmarkScore`` JSON).

    Unreadable lines are listed in the result's ``errors``, the other rows are scored.
    """
    read_errors: list[str] = []
    rows = read_predictions(predictions_path, errors=read_errors)
    score = score_rows(benchmark, rows, model=model, options=options)
    score.errors = read_errors + score.errors
    score.save(output)
    return score
