"""What the three enhancement pipelines share: pixel hashes, question / answer pairs, and the
resumable run loop that writes kept rows, dropped rows with reasons and a summary.

Files of a run with output ``out.jsonl``:

* ``out.jsonl``: kept rows (sample schema; ``source_ids``, ``prompt_version``, ``model`` and an
  ``enhance`` dict as extra keys), appended and flushed one at a time;
* ``out.dropped.jsonl``: one row per dropped unit: ``id``, ``reason``, ``detail``,
  ``source_ids``, ``tag``;
* ``out.summary.json``: counts of this run and totals over both files.

A rerun skips every unit whose id is in either file. Units that failed at the endpoint (an
``LLMError`` after the client's retries) are written nowhere, so the rerun tries them again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice, pairwise
from pathlib import Path
from typing import Any

from ..data.jsonl import JsonlAppender
from ..data.schema import IMAGE_TAG, Sample, SampleError, parse_sample

__all__ = ["Outcome", "RunSummary", "Unit", "image_hash", "output_paths", "qa_pairs", "row_image_path", "run_units"]

logger = logging.getLogger(__name__)


def image_hash(path: str | Path) -> str:
    """SHA-256 of an image's decoded pixels (mode, size and bytes), so the same picture stored
    under two paths or re-encoded losslessly gets one hash.

    Raises:
        FileNotFoundError: no such file.
        PIL.UnidentifiedImageError: not an image.
    """
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        digest = hashlib.sha256(f"{image.mode}|{image.size[0]}x{image.size[1]}|".encode())
        digest.update(image.tobytes())
    return digest.hexdigest()


def qa_pairs(sample: Sample) -> list[tuple[str, str]]:
    """``(question, answer)`` for each user message followed by an assistant message, with
    ``<image>`` placeholders removed from the question."""
    pairs = []
    messages = sample.messages
    for message, reply in pairwise(messages):
        if message["role"] == "user" and reply["role"] == "assistant":
            pairs.append((message["content"].replace(IMAGE_TAG, "").strip(), reply["content"].strip()))
    return pairs


def row_image_path(image: str, out_dir: Path) -> str:
    """An absolute image path rewritten relative to the output folder (rows resolve images
    against their own JSONL's folder)."""
    try:
        return os.path.relpath(image, out_dir)
    except ValueError:  # another drive on Windows
        return str(Path(image).resolve())


def output_paths(out: str | Path) -> tuple[Path, Path, Path]:
    """``(out.jsonl, out.dropped.jsonl, out.summary.json)`` for an output file."""
    out = Path(out)
    stem = out.name.removesuffix(".jsonl")
    return out, out.with_name(f"{stem}.dropped.jsonl"), out.with_name(f"{stem}.summary.json")


@dataclass
class Unit:
    """One piece of work: an id (also the id of the row it produces), a tag for the yield
    table (a task tag), the source row ids and the pipeline's payload."""

    id: str
    tag: str
    source_ids: list[str]
    payload: Any


@dataclass
class Outcome:
    """What processing a unit gave: a row to keep, or a drop reason with detail."""

    row: dict[str, Any] | None = None
    reason: str | None = None
    detail: str = ""

    @classmethod
    def drop(cls, reason: str, detail: str = "") -> Outcome:
        return cls(reason=reason, detail=detail)


@dataclass
class RunSummary:
    """Counts of one run (``kept``, ``dropped`` by reason, ``errors``, ``skipped_done``) and
    totals over the output files; ``by_tag`` gives kept / dropped / yield per tag for this run."""

    task: str
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    skipped_done: int = 0
    not_candidates: dict[str, int] = field(default_factory=dict)
    by_tag: dict[str, dict[str, float]] = field(default_factory=dict)
    total_kept: int = 0
    total_dropped: dict[str, int] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}

    def __str__(self) -> str:
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())) or "none"
        lines = [(f"{self.task}: kept {self.kept}, dropped {sum(self.dropped.values())} ({dropped}), "
                  f"endpoint errors {self.errors} (retried on rerun), already done {self.skipped_done}")]
        if self.not_candidates:
            lines.append("  not candidates: " + ", ".join(f"{k} {v}" for k, v in sorted(self.not_candidates.items())))
        for tag, row in sorted(self.by_tag.items()):
            lines.append(f"  {tag}: kept {row['kept']:.0f}, dropped {row['dropped']:.0f}, yield {row['yield']:.0%}")
        lines.append(f"  totals in the output files: kept {self.total_kept}, dropped {sum(self.total_dropped.values())}")
        return "\n".join(lines)


def _totals(path: Path, dropped_path: Path) -> tuple[int, dict[str, int]]:
    kept = 0
    if path.exists():
        with open(path, encoding="utf-8") as handle:
            kept = sum(1 for line in handle if line.strip())
    reasons: Counter[str] = Counter()
    if dropped_path.exists():
        with open(dropped_path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    reasons[json.loads(line).get("reason", "?")] += 1
    return kept, dict(reasons)


def _chunks(items: Iterable[Unit], size: int) -> Iterable[list[Unit]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def run_units(
    task: str,
    units: Sequence[Unit],
    process: Callable[[Unit], Outcome],
    out: str | Path,
    *,
    workers: int = 1,
    progress: bool = False,
    not_candidates: dict[str, int] | None = None,
    usage: Callable[[], dict[str, Any]] | None = None,
) -> RunSummary:
    """Process units not done yet, appending kept and dropped rows as they finish.

    Every kept row is validated with ``parse_sample`` first (a row that fails is dropped as
    ``schema_invalid``). With ``workers > 1`` units run on a thread pool, written in input order.
    ``usage`` (called at the end) gives the LLM usage to store in the summary.

    Raises:
        ValueError: duplicate unit ids, or ``workers < 1``.
        Whatever ``process`` raises other than ``LLMError`` (a bug stops the run; rows written
        so far stay).
    """
    from tqdm.auto import tqdm

    from ..llm import LLMError

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    ids = Counter(unit.id for unit in units)
    duplicates = [i for i, n in ids.items() if n > 1]
    if duplicates:
        raise ValueError(f"duplicate unit ids {duplicates[:5]}")
    out_path, dropped_path, summary_path = output_paths(out)
    summary = RunSummary(task=task, not_candidates=dict(not_candidates or {}))
    dropped: Counter[str] = Counter()
    tags: dict[str, Counter[str]] = {}

    def safe(unit: Unit) -> Outcome | LLMError:
        try:
            return process(unit)
        except LLMError as err:
            return err

    with JsonlAppender(out_path) as kept_file, JsonlAppender(dropped_path) as dropped_file:
        done = kept_file.done_ids | dropped_file.done_ids
        todo = [u for u in units if u.id not in done]
        summary.skipped_done = len(units) - len(todo)
        bar = tqdm(total=len(todo), desc=task, unit="row", disable=None if progress else True)
        executor = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
        try:
            for chunk in _chunks(todo, workers * 4):
                results = executor.map(safe, chunk) if executor else map(safe, chunk)
                for unit, result in zip(chunk, results):
                    bar.update(1)
                    if isinstance(result, LLMError):
                        summary.errors += 1
                        logger.warning("%s: endpoint error on %s (retried on rerun): %s", task, unit.id, result)
                        continue
                    if result.row is not None:
                        try:
                            parse_sample(result.row, where=unit.id)
                        except SampleError as err:
                            result = Outcome.drop("schema_invalid", str(err))
                    counts = tags.setdefault(unit.tag, Counter())
                    if result.row is not None:
                        kept_file.write(result.row)
                        summary.kept += 1
                        counts["kept"] += 1
                    else:
                        dropped_file.write({"id": unit.id, "reason": result.reason, "detail": result.detail,
                                            "source_ids": unit.source_ids, "tag": unit.tag})
                        dropped[result.reason or "?"] += 1
                        counts["dropped"] += 1
        finally:
            bar.close()
            if executor is not None:
                executor.shutdown(cancel_futures=True)
    summary.dropped = dict(dropped)
    summary.by_tag = {tag: {"kept": c["kept"], "dropped": c["dropped"],
                            "yield": c["kept"] / max(1, c["kept"] + c["dropped"])} for tag, c in tags.items()}
    summary.total_kept, summary.total_dropped = _totals(out_path, dropped_path)
    summary.usage = usage() if usage is not None else {}
    summary_path.write_text(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary
