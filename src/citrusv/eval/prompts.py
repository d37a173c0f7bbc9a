"""Reference prompts of the evaluation suite, as pure string builders.

The strings are part of the protocol, so they are quoted exactly (``docs/eval-data.md`` and
``docs/evaluation.md`` §1-§5 say where each comes from):

* **MedEvalKit, JD Health fork** (``jdh-algo/JoyMed``, ``evaluation/MedEvalKit_local``), the
  default for VQA, text QA and report generation. The fork builds a *body* per dataset (the bare
  question, or ``Question: …\\nOptions: …`` for multiple choice) and then applies its ``v1``
  template table, keyed by a question type and a language: ``"{body}\\n{suffix}"`` for
  ``CHOICE`` / ``CLOSED`` / ``OPEN`` / ``JUDGE`` and a fixed text for ``REPORT``
  (:func:`apply_question_type`).
* **Upstream MedEvalKit** (``alibaba-damo-academy/MedEvalKit``), kept for comparison: the MCQ body
  starts with a newline and puts a line break after ``Options:`` (``variant="upstream"``). Its
  VQA prompts are identical to the fork's.
* **MedDocBench** (``JDH_*`` VLMEvalKit configs in the same repository): the TSV ``question`` is
  the user text and a leading text message carries the system prompt
  (:data:`MEDDOC_DEFAULT_SYSTEM_PROMPT` unless the row has its own).
* **Citrus-V ``eval/``**: detection prompt templates and the segmentation query taken verbatim
  from the first conversation turn. Both keep the literal ``<image>`` placeholder, as the
  reference does (ms-swift puts the image there); :func:`strip_image_placeholder` removes it for
  runners that attach images separately.

Only the non-reasoning prompts are covered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

__all__ = [
    "CHOICE_SUFFIX",
    "CLOSED_SUFFIX",
    "DETECTION_TEMPLATES",
    "JUDGE_SUFFIX",
    "MEDDOC_ABNORMALITY_PROMPT",
    "MEDDOC_DEFAULT_SYSTEM_PROMPT",
    "MEDDOC_FULLPARSE_PROMPT",
    "OPEN_SUFFIX",
    "QUESTION_TYPES",
    "REPORT_PROMPTS",
    "apply_question_type",
    "closed_prompt",
    "detection_prompt",
    "mcq_body",
    "mcq_prompt",
    "meddoc_simple_question",
    "open_prompt",
    "pubmedqa_prompt",
    "report_prompt",
    "segmentation_query",
    "strip_image_placeholder",
    "vqa_question_type",
    "yes_no_prompt",
]

Lang = Literal["en", "zh"]
QuestionType = Literal["CHOICE", "CLOSED", "OPEN", "JUDGE", "REPORT"]
#: The question types of the fork's ``v1`` template table.
QUESTION_TYPES: tuple[str, ...] = ("CHOICE", "CLOSED", "OPEN", "JUDGE", "REPORT")

#: ``CHOICE``: multiple choice (PMC-VQA, MedXpertQA, PubMedQA, CMMLU, Medbullets, SuperGPQA).
CHOICE_SUFFIX = {
    "en": "Answer with the option's letter from the given choices directly.",
    "zh": "请直接使用给定选项中的选项字母来回答该问题。",
}
#: ``CLOSED``: short closed answers (SLAKE closed questions; also MedMCQA / MedQA in the fork).
CLOSED_SUFFIX = {
    "en": "Answer the question using a single word or phrase.",
    "zh": "请用一个单词或者短语回答该问题。",
}
#: ``OPEN``: open questions.
OPEN_SUFFIX = {
    "en": "Please answer the question concisely.",
    "zh": "请简要回答该问题。",
}
#: ``JUDGE``: yes/no questions (decided from the gold answer).
JUDGE_SUFFIX = {
    "en": "Please output 'yes' or 'no'(no extra output).",
    "zh": "请输出'是'或'否'(不要有任何其它输出)。",
}
#: ``REPORT``: the whole user text for report generation (no question).
REPORT_PROMPTS = {
    "en": (
        "You are a helpful assistant. Please generate a report for the given images, including "
        "both findings and impressions. Return the report in the following format: "
        "Findings: {} Impression: {}."
    ),
    "zh": "生成一份报告。",
}

_SUFFIXES = {"CHOICE": CHOICE_SUFFIX, "CLOSED": CLOSED_SUFFIX, "OPEN": OPEN_SUFFIX, "JUDGE": JUDGE_SUFFIX}

#: MedDocBench: the system text sent first when a row has no ``system_prompt`` of its own.
MEDDOC_DEFAULT_SYSTEM_PROMPT = "你是医学文档解析专家"
#: MedDocBench LTR_fullparsing question (every row of that split).
MEDDOC_FULLPARSE_PROMPT = "请将图中检验单表格解析为Markdown格式，表头包括检验项目、结果、单位、参考范围"
#: MedDocBench LTR_abnormalityQA question (every row of that split).
MEDDOC_ABNORMALITY_PROMPT = (
    "请识别检验单中的异常项目，输出JSON格式，包含检验项目名称、结果、参考范围和异常状态。"
    "异常状态包括：偏高、偏低、阳性、阴性、弱阳性、异常。只输出异常项目，正常项目不要输出。"
)
_MEDDOC_FIELD_NAMES = {"result": "测量结果", "reference": "参考区间"}

#: Citrus-V ``eval/eval_detection.py`` prompt templates by ``--bbox-format`` (default ``json``).
DETECTION_TEMPLATES = {
    "json": "<image>\nLocate the {}, output its bbox coordinates using JSON format.",
    "standard": "<image>Please detect the {} in the given image using bounding box.",
}


def _check_lang(lang: str) -> None:
    if lang not in ("en", "zh"):
        raise ValueError(f"lang must be 'en' or 'zh', got {lang!r}")


def apply_question_type(body: str, question_type: str, lang: str = "en") -> str:
    """Apply the fork's ``v1`` template for ``question_type`` to ``body``.

    ``REPORT`` ignores ``body`` (the fork's report template has no ``{prompt}`` slot); the other
    types give ``f"{body}\\n{suffix}"``.

    Raises:
        ValueError: unknown question type or language.
    """
    _check_lang(lang)
    if question_type == "REPORT":
        return REPORT_PROMPTS[lang]
    if question_type not in _SUFFIXES:
        raise ValueError(f"unknown question type {question_type!r}; expected one of {', '.join(QUESTION_TYPES)}")
    return f"{body}\n{_SUFFIXES[question_type][lang]}"


def yes_no_prompt(question: str, lang: str = "en") -> str:
    """``JUDGE``: question + ``\\nPlease output 'yes' or 'no'(no extra output).`` (zh: 请输出'是'或'否'…)."""
    return apply_question_type(question, "JUDGE", lang)


def open_prompt(question: str, lang: str = "en") -> str:
    """``OPEN``: question + ``\\nPlease answer the question concisely.`` (zh: 请简要回答该问题。)."""
    return apply_question_type(question, "OPEN", lang)


def closed_prompt(question: str, lang: str = "en") -> str:
    """``CLOSED``: question + ``\\nAnswer the question using a single word or phrase.`` (zh: 请用…)."""
    return apply_question_type(question, "CLOSED", lang)


def vqa_question_type(answer: str, answer_type: str | None = None, *, lower: bool = True) -> str:
    """The fork's question type of a VQA item, decided from its gold answer.

    Args:
        answer: the gold answer.
        answer_type: SLAKE's ``answer_type`` (``"OPEN"`` / ``"CLOSED"``); ``None`` for VQA-RAD and
            PathVQA, whose non-yes/no questions are all ``OPEN``.
        lower: lower-case the gold before the yes/no test. The fork does so for VQA-RAD only;
            SLAKE and PathVQA test the raw gold, so SLAKE's capitalised "Yes"/"No" are never
            yes/no questions (``CLOSED`` prompt).

    Returns:
        ``"JUDGE"``, ``"CLOSED"`` or ``"OPEN"``.
    """
    if answer_type is not None and answer_type.upper() == "OPEN":
        return "OPEN"
    test = answer.lower() if lower else answer
    if test in ("yes", "no"):
        return "JUDGE"
    return "OPEN" if answer_type is None else "CLOSED"


def mcq_body(question: str, options: Sequence[str], lang: str = "en", *, variant: str = "jd") -> str:
    """The multiple-choice body, without the answer instruction.

    ``options`` are the option strings exactly as the dataset renders them ("A. text", "A.text",
    "A:text" or the bare text), one per line.

    * ``variant="jd"`` (JD fork): ``Question: {q}\\nOptions: {o1}\\n{o2}…`` (zh:
      ``问题： {q}\\n选项： {o1}\\n…``).
    * ``variant="upstream"``: ``\\nQuestion: {q}\\nOptions: \\n{o1}\\n…``.
    """
    _check_lang(lang)
    joined = "\n".join(str(option) for option in options)
    q_label, o_label = ("Question: ", "Options: ") if lang == "en" else ("问题： ", "选项： ")
    if variant == "jd":
        return f"{q_label}{question}\n{o_label}{joined}"
    if variant == "upstream":
        return f"\n{q_label}{question}\n{o_label}\n{joined}"
    raise ValueError(f"variant must be 'jd' or 'upstream', got {variant!r}")


def mcq_prompt(question: str, options: Sequence[str], lang: str = "en", *, question_type: str = "CHOICE",
               variant: str = "jd") -> str:
    """Full multiple-choice prompt: :func:`mcq_body` + the instruction of ``question_type``.

    The fork tags MedMCQA and both MedQA sets ``CLOSED``, so their prompt ends with the
    single-word/phrase instruction instead of the option-letter one; the loaders reproduce that
    unless ``strict=True``. Upstream always uses the option-letter instruction.
    """
    if question_type not in ("CHOICE", "CLOSED"):
        raise ValueError(f"a multiple-choice prompt takes question_type 'CHOICE' or 'CLOSED', got {question_type!r}")
    return apply_question_type(mcq_body(question, options, lang, variant=variant), question_type, lang)


def pubmedqa_prompt(contexts: Sequence[str], question: str, options: Sequence[str], *,
                    variant: str = "jd") -> str:
    """PubMedQA: ``Context: {contexts joined by newlines}\\n`` + the MCQ body + the ``CHOICE`` instruction."""
    context = "\n".join(contexts)
    return apply_question_type(f"Context: {context}\n" + mcq_body(question, options, "en", variant=variant),
                               "CHOICE", "en")


def report_prompt(lang: str = "en") -> str:
    """The report-generation user text (CheXpert Plus); the fork's default language is ``en``."""
    return apply_question_type("", "REPORT", lang)


def meddoc_simple_question(entryname: str, field: str, has_unit: bool = False) -> str:
    """MedDocBench LTR_simpleQA question, as the generator script writes it.

    ``图中显示{entryname}的{测量结果|参考区间}是多少？`` plus ``如果有单位请同时包含单位`` for a
    ``result`` question whose answer carries a unit.

    Raises:
        ValueError: ``field`` is not ``"result"`` or ``"reference"``.
    """
    if field not in _MEDDOC_FIELD_NAMES:
        raise ValueError(f"field must be 'result' or 'reference', got {field!r}")
    question = f"图中显示{entryname}的{_MEDDOC_FIELD_NAMES[field]}是多少？"
    if has_unit and field == "result":
        question += "如果有单位请同时包含单位"
    return question


def detection_prompt(sentence: str, bbox_format: str = "json") -> str:
    """Citrus-V detection prompt for the target ``sentence`` (``bbox_format`` ``json`` or ``standard``)."""
    if bbox_format not in DETECTION_TEMPLATES:
        raise ValueError(f"bbox_format must be one of {', '.join(DETECTION_TEMPLATES)}, got {bbox_format!r}")
    return DETECTION_TEMPLATES[bbox_format].format(sentence)


def segmentation_query(conversations: Sequence[Mapping[str, Any]]) -> str:
    """The segmentation prompt: the first conversation turn's ``value``, verbatim.

    Raises:
        ValueError: no conversation turn, or the first turn has no string ``value``.
    """
    if not conversations:
        raise ValueError("conversations is empty; the segmentation query is its first turn")
    first = conversations[0]
    value = first.get("value") if isinstance(first, Mapping) else None
    if not isinstance(value, str):
        raise ValueError(f"the first conversation turn needs a string 'value', got {first!r}")
    return value


def strip_image_placeholder(prompt: str) -> str:
    """Remove a leading ``<image>`` placeholder (and the newline after it) from a reference prompt."""
    if prompt.startswith("<image>"):
        return prompt.removeprefix("<image>").removeprefix("\n")
    return prompt
