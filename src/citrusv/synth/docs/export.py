"""MedDocBench-format export (the VLMEvalKit TSV layout that ``citrusv.eval`` loads and scores).

``export_meddocbench(out_dir, lab_docs, general_items)`` writes
``LTR_fullparsing/``, ``LTR_simpleQA/``, ``LTR_abnormalityQA/``, ``GMD_simpleQA/`` and
``GMD_complexQA/``, each with ``<split>.tsv`` (``index``, ``question``, ``answer``, ``image_path``
and the split's extra columns) and the images under ``<split>/images/``. Splits without rows are
not written.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...eval.prompts import (
    MEDDOC_ABNORMALITY_PROMPT,
    MEDDOC_FULLPARSE_PROMPT,
    meddoc_simple_question,
)
from .qa import abnormal_items

__all__ = ["GeneralQAItem", "LabDoc", "export_meddocbench"]


@dataclass
class LabDoc:
    """An agreed lab report: its image file and table rows (``entryname``, ``result``, ``unit``, ``reference``)."""

    doc_id: str
    image: Path
    entries: list[dict[str, str]]
    bucket: str = "hard"


@dataclass
class GeneralQAItem:
    """An agreed general-document question (``kind`` simple / complex)."""

    doc_id: str
    image: Path
    kind: str
    question: str
    answer: str
    doc_type: str = ""
    department: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _write(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(header)
        writer.writerows(rows)


def _copy(image: Path, split_dir: Path, doc_id: str) -> str:
    target = split_dir / "images" / f"{doc_id}{Path(image).suffix or '.png'}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        shutil.copyfile(image, target)
    return target.relative_to(split_dir).as_posix()


def export_meddocbench(out_dir: str | Path, lab_docs: Sequence[LabDoc], general_items: Sequence[GeneralQAItem] = (), *,
                       simple_per_doc: int = 2, seed: int = 0) -> dict[str, int]:
    """Write the five MedDocBench splits; returns rows written per split.

    LTR_simpleQA takes ``simple_per_doc`` entries per report, alternating result and reference
    questions (MedDocBench's two field types), with the generator's question wording.
    """
    out = Path(out_dir)
    rng = random.Random(seed)
    counts: dict[str, int] = {}
    if lab_docs:
        full, simple, abnormal = [], [], []
        for doc in lab_docs:
            split = out / "LTR_fullparsing"
            full.append([doc.doc_id, MEDDOC_FULLPARSE_PROMPT, json.dumps(doc.entries, ensure_ascii=False),
                         _copy(doc.image, split, doc.doc_id)])
            items = abnormal_items(doc.entries)
            abnormal.append([doc.doc_id, MEDDOC_ABNORMALITY_PROMPT, json.dumps(items, ensure_ascii=False),
                             _copy(doc.image, out / "LTR_abnormalityQA", doc.doc_id)])
            picks = rng.sample(doc.entries, min(simple_per_doc, len(doc.entries)))
            for k, entry in enumerate(picks):
                field_type = "result" if (len(simple) + k) % 2 == 0 else "reference"
                has_unit = field_type == "result" and bool(entry["unit"])
                answer = f"{entry['result']} {entry['unit']}".strip() if field_type == "result" else entry["reference"]
                simple.append([f"{doc.doc_id}-{k}", meddoc_simple_question(entry["entryname"], field_type, has_unit),
                               answer, _copy(doc.image, out / "LTR_simpleQA", doc.doc_id), entry["entryname"],
                               field_type, entry["unit"]])
        _write(out / "LTR_fullparsing" / "LTR_fullparsing.tsv", ["index", "question", "answer", "image_path"], full)
        _write(out / "LTR_abnormalityQA" / "LTR_abnormalityQA.tsv", ["index", "question", "answer", "image_path"], abnormal)
        _write(out / "LTR_simpleQA" / "LTR_simpleQA.tsv",
               ["index", "question", "answer", "image_path", "entryname", "field_type", "unit"], simple)
        counts.update(LTR_fullparsing=len(full), LTR_abnormalityQA=len(abnormal), LTR_simpleQA=len(simple))
    for kind, split in (("simple", "GMD_simpleQA"), ("complex", "GMD_complexQA")):
        rows = [[f"{item.doc_id}-{i}", item.question, item.answer, _copy(item.image, out / split, item.doc_id),
                 item.doc_type, item.department]
                for i, item in enumerate(general_items) if item.kind == kind]
        if rows:
            _write(out / split / f"{split}.tsv", ["index", "question", "answer", "image_path", "doc_type", "dept_name"], rows)
            counts[split] = len(rows)
    return counts
