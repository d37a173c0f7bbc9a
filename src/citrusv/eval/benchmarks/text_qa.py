"""Medical text QA loaders (all multiple choice): PubMedQA, MedMCQA, MedQA (USMLE, MCMLE), CMMLU
(7 medical subjects), Medbullets op4 / op5, SuperGPQA (Medicine). MedXpertQA-Text is in ``vqa``.

Option strings are rendered per dataset as the JD MedEvalKit fork does (``"A. x"``, ``"A.x"`` or
the bare value for MCMLE) and stored in ``EvalItem.options`` exactly as they appear in the
prompt. The fork tags MedMCQA and both MedQA sets ``CLOSED``, so their prompts end with the
single-word/phrase instruction; ``strict=True`` uses the option-letter instruction instead.
"""

from __future__ import annotations

from typing import Any

from .. import prompts
from ..types import EvalItem
from ._io import (
    LoadContext,
    RowError,
    as_row,
    is_missing,
    letter,
    opt_str,
    option_letters,
    parse_list,
    parse_mapping,
    read_json,
    req_str,
)

__all__ = [
    "CMMLU_MEDICAL_SUBJECTS",
    "load_cmmlu_medical",
    "load_medbullets",
    "load_medmcqa",
    "load_medqa_mcmle",
    "load_medqa_usmle",
    "load_pubmedqa",
    "load_supergpqa_medicine",
]

#: The CMMLU subjects the fork evaluates, in its order.
CMMLU_MEDICAL_SUBJECTS = ("anatomy", "clinical_knowledge", "college_medicine", "genetics",
                          "traditional_chinese_medicine", "nutrition", "virology")
_PUBMEDQA_OPTIONS = {"A": "yes", "B": "no", "C": "maybe"}


def _closed_type(ctx: LoadContext) -> str:
    return "CHOICE" if ctx.strict else "CLOSED"


def _mcq_item(ctx: LoadContext, item_id: str, question: str, options: dict[str, str], answer: str, *,
              lang: str = "en", question_type: str = "CHOICE", tags: dict[str, str] | None = None,
              prompt: str | None = None) -> EvalItem:
    return EvalItem(
        id=item_id, benchmark=ctx.benchmark, family="mcq", question=question,
        prompt=prompt if prompt is not None else prompts.mcq_prompt(
            question, list(options.values()), lang, question_type=question_type),
        answer=answer, options=options, language=lang, tags=tags or {},
    )


def _tags(row: dict[str, Any], keys: dict[str, str]) -> dict[str, str]:
    return {tag: value for key, tag in keys.items() if (value := opt_str(row, key)) is not None}


def load_pubmedqa(ctx: LoadContext) -> None:
    """PubMedQA PQA-L: ``ori_pqal.json`` + the 500 PMIDs of ``test_ground_truth.json``."""
    truth_path = ctx.path("test_ground_truth.json")
    data_path = ctx.path("ori_pqal.json")
    truth = read_json(truth_path)
    data = read_json(data_path)
    for source, value in ((truth_path, truth), (data_path, data)):
        if not isinstance(value, dict):
            raise ValueError(f"{source}: expected a JSON object keyed by PMID, got {type(value).__name__}")
    options = {key: f"{key}.{value}" for key, value in _PUBMEDQA_OPTIONS.items()}
    by_label = {value: key for key, value in _PUBMEDQA_OPTIONS.items()}
    for number, (pmid, label) in enumerate(truth.items(), start=1):
        if ctx.full:
            return
        with ctx.row(truth_path, number):
            if not isinstance(label, str) or label.strip().lower() not in by_label:
                raise RowError(f"PMID {pmid}: label must be yes, no or maybe, got {label!r}")
            entry = data.get(pmid)
            if not isinstance(entry, dict):
                raise RowError(f"PMID {pmid} is not in {data_path.name}")
            question = req_str(entry, "QUESTION")
            contexts = parse_list(entry.get("CONTEXTS"), "CONTEXTS")
            if not contexts or not all(isinstance(c, str) for c in contexts):
                raise RowError(f"PMID {pmid}: CONTEXTS must be a non-empty list of strings")
            ctx.add(_mcq_item(
                ctx, str(pmid), question, options, by_label[label.strip().lower()],
                prompt=prompts.pubmedqa_prompt(contexts, question, list(options.values())),
            ))


def load_medmcqa(ctx: LoadContext) -> None:
    """MedMCQA ``validation`` split (Hugging Face export: ``cop`` 0..3 = A..D)."""
    files = ctx.paths("validation.jsonl|validation.parquet|data/validation-*.parquet")
    for item_index, path, number, obj in ctx.rows(*files):
        with ctx.row(path, number):
            row = as_row(obj)
            question = req_str(row, "question")
            options = {key: f"{key}. {req_str(row, 'op' + key.lower(), allow_empty=True)}" for key in "ABCD"}
            cop = row.get("cop")
            if isinstance(cop, str) and cop.strip().isdigit():
                cop = int(cop)
            if isinstance(cop, bool) or not isinstance(cop, int) or not 0 <= cop <= 3:
                raise RowError(f"cop must be 0..3 (the Hugging Face export's A..D), got {cop!r}")
            row_id = opt_str(row, "id")
            ctx.add(_mcq_item(
                ctx, row_id if row_id is not None else str(item_index), question, options, "ABCD"[cop],
                question_type=_closed_type(ctx),
                tags=_tags(row, {"subject_name": "subject", "topic_name": "topic", "choice_type": "choice_type"}),
            ))


def load_medqa_usmle(ctx: LoadContext) -> None:
    """MedQA-USMLE 4-option test (``phrases_no_exclude_test.jsonl``): options ``A. x`` .. ``D. x``."""
    files = ctx.paths("phrases_no_exclude_test.jsonl|test.jsonl|test.parquet|data/test-*.parquet")
    for item_index, path, number, obj in ctx.rows(*files):
        with ctx.row(path, number):
            row = as_row(obj)
            question = req_str(row, "question")
            raw = parse_mapping(row.get("options"), "options")
            missing = [key for key in "ABCD" if key not in raw or is_missing(raw[key])]
            if missing:
                raise RowError(f"options lack {', '.join(missing)}")
            options = {key: f"{key}. {raw[key]}" for key in "ABCD"}
            answer = letter(req_str(row, "answer_idx"), options, "answer_idx")
            ctx.add(_mcq_item(ctx, str(item_index), question, options, answer,
                              question_type=_closed_type(ctx), tags=_tags(row, {"meta_info": "meta_info"})))


def load_medqa_mcmle(ctx: LoadContext) -> None:
    """MedQA-MCMLE (Mainland test, 3426 rows): raw option values without letters, zh prompt."""
    files = ctx.paths("test.jsonl|train.jsonl|test.parquet|data/train-*.parquet")
    for item_index, path, number, obj in ctx.rows(*files):
        with ctx.row(path, number):
            row = as_row(obj)
            question = req_str(row, "question")
            raw = parse_mapping(row.get("options"), "options")
            values = [str(value) for value in raw.values()]
            options = dict(zip(option_letters(len(values)), values, strict=True))
            answer = letter(req_str(row, "answer_idx"), options, "answer_idx")
            ctx.add(_mcq_item(ctx, str(item_index), question, options, answer, lang="zh",
                              question_type=_closed_type(ctx), tags=_tags(row, {"meta_info": "meta_info"})))


def load_cmmlu_medical(ctx: LoadContext) -> None:
    """CMMLU ``test/{subject}.csv`` for the 7 medical subjects; options ``A.x``, zh prompt."""
    for subject in CMMLU_MEDICAL_SUBJECTS:
        path = ctx.path(f"test/{subject}.csv")
        for _, _, number, obj in ctx.rows(path):
            with ctx.row(path, number):
                row = as_row(obj)
                question = req_str(row, "Question")
                options = {key: f"{key}.{req_str(row, key, allow_empty=True)}" for key in "ABCD"}
                answer = letter(req_str(row, "Answer"), options, "Answer")
                ctx.add(_mcq_item(ctx, f"{subject}-{number - 1}", question, options, answer, lang="zh",
                                  tags={"subject": subject}))


def load_medbullets(ctx: LoadContext, n_options: int) -> None:
    """Medbullets op4 / op5: ``options`` mapping or ``opa``.. columns; options ``A.text``."""
    stem = f"medbullets_op{n_options}"
    for item_index, path, number, obj in ctx.rows(*ctx.paths(f"{stem}.jsonl|{stem}.csv|{stem}.parquet")):
        with ctx.row(path, number):
            row = as_row(obj)
            question = req_str(row, "question")
            if not is_missing(row.get("options")) and row.get("options") != "":
                raw = parse_mapping(row["options"], "options")
                options = {str(key).strip().upper(): f"{key}.{value}" for key, value in raw.items()}
                if list(options) != option_letters(len(options)):
                    raise RowError(f"option keys must be A, B, ..., got {', '.join(raw)}")
            else:
                letters = option_letters(n_options)
                options = {key: f"{key}.{req_str(row, 'op' + key.lower(), allow_empty=True)}" for key in letters}
            answer = letter(req_str(row, "answer_idx"), options, "answer_idx")
            ctx.add(_mcq_item(ctx, str(item_index), question, options, answer))


def load_supergpqa_medicine(ctx: LoadContext) -> None:
    """SuperGPQA ``SuperGPQA-all.jsonl`` rows with ``discipline == "Medicine"``; options ``A.x``."""
    path = ctx.path("SuperGPQA-all.jsonl")
    for _, _, number, obj in ctx.rows(path):
        with ctx.row(path, number):
            row = as_row(obj)
            if req_str(row, "discipline") != "Medicine":
                continue
            question = req_str(row, "question")
            values = parse_list(row.get("options"), "options")
            options = {key: f"{key}.{value}" for key, value in zip(option_letters(len(values)), values, strict=True)}
            answer = letter(req_str(row, "answer_letter"), options, "answer_letter")
            row_id = opt_str(row, "uuid")
            ctx.add(_mcq_item(
                ctx, row_id if row_id is not None else str(number - 1), question, options, answer,
                tags=_tags(row, {"field": "field", "subfield": "subfield", "difficulty": "difficulty"}),
            ))
