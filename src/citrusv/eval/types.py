"""One benchmark item, the unit that loaders produce, runners answer and metrics score."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["FAMILIES", "EvalItem"]

#: Benchmark families: each has one scoring function (``citrusv.eval.scoring``).
FAMILIES = (
    "vqa",  # medical VQA: closed (yes/no or short) and open questions
    "mcq",  # multiple choice, image or text (PMC-VQA, MedXpertQA, all text QA)
    "report",  # report generation (CheXpert Plus)
    "meddoc_full",  # MedDocBench LTR_fullparsing
    "meddoc_simple",  # MedDocBench LTR_simpleQA
    "meddoc_abnormal",  # MedDocBench LTR_abnormalityQA
    "meddoc_general",  # MedDocBench GMD_simpleQA / GMD_complexQA (judge score)
    "segmentation",  # MeCoVQA-G+, MedSegBench
    "detection",  # MedSAM2 detection set
)


@dataclass
class EvalItem:
    """One question of one benchmark, with its reference prompt already applied.

    Attributes:
        id: unique within the benchmark; runners resume by it.
        benchmark: registry name, e.g. ``"vqa_rad"``.
        family: one of ``FAMILIES``.
        question: the raw question text (before the prompt template).
        prompt: the full user text sent to the model (the reference prompt of the benchmark).
        answer: the gold answer: an option letter (mcq), a string (vqa, report, meddoc simple /
            general), a list of entry dicts (meddoc full / abnormal), a mask file path
            (segmentation) or ``[x1, y1, x2, y2]`` in original pixels (detection).
        images: image file paths (absolute), in prompt order; empty for text-only items.
        options: option letter -> option text, for mcq (and MCQ-style VQA); else ``None``.
        answer_type: vqa only: ``"closed"`` or ``"open"``.
        language: ``"en"`` or ``"zh"``.
        system_prompt: a system message, when the reference sends one (MedDocBench).
        tags: breakdown keys, e.g. ``{"modality": "CT", "region": "abdomen", "dataset": ...}``.
        extra: family-specific fields (detection: ``width``, ``height``; meddoc simple:
            ``field``; ...).
    """

    id: str
    benchmark: str
    family: str
    question: str
    prompt: str
    answer: Any
    images: list[str] = field(default_factory=list)
    options: dict[str, str] | None = None
    answer_type: str | None = None
    language: str = "en"
    system_prompt: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown benchmark family {self.family!r}; expected one of {', '.join(FAMILIES)}")
        if not self.id:
            raise ValueError("an EvalItem needs a non-empty id")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> EvalItem:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in row.items() if k in known})
