"""Medical VQA loaders: VQA-RAD, SLAKE, PathVQA, PMC-VQA, MedXpertQA-MM.

Prompts follow the JD MedEvalKit fork (``citrusv.eval.prompts``). The question type comes from
the gold answer: VQA-RAD lower-cases it before the yes/no test, PathVQA and SLAKE do not, so
SLAKE's capitalised "Yes"/"No" get the ``CLOSED`` prompt (reference quirk; ``strict=True``
lower-cases and strips the gold first in every set).
"""

from __future__ import annotations

from typing import Any

from .. import prompts
from ..types import EvalItem
from ._io import LoadContext, RowError, as_row, letter, opt_str, parse_list, parse_mapping, req_str

__all__ = ["load_medxpertqa", "load_path_vqa", "load_pmc_vqa", "load_slake", "load_vqa_rad"]

_ANSWER_TYPES = {"JUDGE": "closed", "CLOSED": "closed", "OPEN": "open"}
# Optional per-row metadata copied into tags (source key -> tag name).
_VQA_TAG_KEYS = {"modality": "modality", "organ": "region", "image_organ": "region", "location": "region",
                 "question_type": "question_type", "content_type": "content_type"}


def _tags(row: dict[str, Any], keys: dict[str, str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for key, tag in keys.items():
        value = opt_str(row, key)
        if value is not None and tag not in tags:
            tags[tag] = value
    return tags


def _hf_vqa(ctx: LoadContext, entry: str, *, lower_gold: bool) -> None:
    """VQA-RAD / PathVQA: the Hugging Face ``test`` split as JSONL (image paths) or Parquet."""
    for item_index, path, number, obj in ctx.rows(*ctx.paths(entry)):
        with ctx.row(path, number):
            row = as_row(obj)
            question = req_str(row, "question")
            answer = req_str(row, "answer")
            image = ctx.image_file(row.get("image"), ctx.folder)
            test = answer.lower().strip() if ctx.strict else answer
            qtype = prompts.vqa_question_type(test, lower=lower_gold)
            ctx.add(EvalItem(
                id=str(item_index), benchmark=ctx.benchmark, family="vqa", question=question,
                prompt=prompts.apply_question_type(question, qtype, "en"), answer=answer, images=[image],
                answer_type=_ANSWER_TYPES[qtype], language="en", tags=_tags(row, _VQA_TAG_KEYS),
            ))


def load_vqa_rad(ctx: LoadContext) -> None:
    _hf_vqa(ctx, "test.jsonl|test.parquet|data/test-*.parquet", lower_gold=True)


def load_path_vqa(ctx: LoadContext) -> None:
    _hf_vqa(ctx, "test.jsonl|test.parquet|data/test-*.parquet", lower_gold=False)


def load_slake(ctx: LoadContext) -> None:
    """SLAKE ``test.json`` (both ``q_lang`` en and zh) + ``imgs/``."""
    path = ctx.path("test.json")
    for _, _, number, obj in ctx.rows(path):
        with ctx.row(path, number):
            row = as_row(obj)
            question = req_str(row, "question")
            answer = req_str(row, "answer")
            lang = req_str(row, "q_lang").strip()
            if lang not in ("en", "zh"):
                raise RowError(f"q_lang must be 'en' or 'zh', got {lang!r}")
            answer_type = req_str(row, "answer_type").strip().upper()
            if answer_type not in ("OPEN", "CLOSED"):
                raise RowError(f"answer_type must be OPEN or CLOSED, got {answer_type!r}")
            image = ctx.image_file(row.get("img_name"), ctx.folder / "imgs", "img_name")
            test = answer.lower().strip() if ctx.strict else answer
            qtype = prompts.vqa_question_type(test, answer_type, lower=False)
            qid = opt_str(row, "qid")
            ctx.add(EvalItem(
                id=qid if qid is not None else str(number - 1), benchmark=ctx.benchmark, family="vqa",
                question=question, prompt=prompts.apply_question_type(question, qtype, lang), answer=answer,
                images=[image], answer_type=_ANSWER_TYPES[qtype], language=lang,
                tags=_tags(row, {"modality": "modality", "location": "region", "content_type": "content_type"}),
            ))


def load_pmc_vqa(ctx: LoadContext) -> None:
    """PMC-VQA ``test_2.csv`` + ``figures/``; option strings as in the CSV (they carry ``A:``)."""
    path = ctx.path("test_2.csv")
    for _, _, number, obj in ctx.rows(path):
        with ctx.row(path, number):
            row = as_row(obj)
            question = req_str(row, "Question")
            options = {key: req_str(row, f"Choice {key}", allow_empty=True) for key in "ABCD"}
            answer = letter(req_str(row, "Answer"), options, "Answer")
            image = ctx.image_file(row.get("Figure_path"), ctx.folder / "figures", "Figure_path")
            index = opt_str(row, "index")
            ctx.add(EvalItem(
                id=index if index is not None else str(number - 1), benchmark=ctx.benchmark, family="mcq",
                question=question, prompt=prompts.mcq_prompt(question, list(options.values())), answer=answer,
                images=[image], options=options, language="en",
            ))


def load_medxpertqa(ctx: LoadContext, split: str) -> None:
    """MedXpertQA ``{MM,Text}/test.jsonl`` (+ ``images/`` for MM).

    The fork cuts the question before its inline ``Answer Choices:`` list (upstream MedEvalKit
    keeps it, so the options appear twice there) and renders options as ``"A. text"``.
    """
    path = ctx.path(f"{split}/test.jsonl")
    for _, _, number, obj in ctx.rows(path):
        with ctx.row(path, number):
            row = as_row(obj)
            question = req_str(row, "question")
            if "Answer Choices:" in question:
                question = question[:question.index("Answer Choices:")].strip()
            raw_options = parse_mapping(row.get("options"), "options")
            if not raw_options:
                raise RowError("field 'options' is empty")
            options = {str(key).strip().upper(): f"{key}. {value}" for key, value in raw_options.items()}
            label = row.get("label")
            if isinstance(label, list) and len(label) == 1:
                label = label[0]
            if not isinstance(label, str):
                raise RowError(f"field 'label' must be one option letter, got {label!r}")
            answer = letter(label, options, "label")
            images: list[str] = []
            if split == "MM":
                names = parse_list(row.get("images"), "images")
                if not names:
                    raise RowError("field 'images' is empty")
                images = [ctx.image_file(name, ctx.folder / "images", "images") for name in names]
            row_id = opt_str(row, "id")
            ctx.add(EvalItem(
                id=row_id if row_id is not None else str(number - 1), benchmark=ctx.benchmark, family="mcq",
                question=question, prompt=prompts.mcq_prompt(question, list(options.values())), answer=answer,
                images=images, options=options, language="en",
                tags=_tags(row, {"medical_task": "medical_task", "body_system": "body_system",
                                 "question_type": "question_type"}),
            ))
