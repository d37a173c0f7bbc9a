"""MedDocBench scorers (LTR_fullparsing, LTR_simpleQA, LTR_abnormalityQA, GMD_simpleQA / GMD_complexQA).

Pure functions with the judge injected (``citrusv.eval.metrics.base.JudgeFn``); a ``JudgeError``
counts as "no match" (0 points for GMD) and is counted in the results. Every ``score_*`` returns a
per-item dataclass and every ``aggregate_*`` a dataset dataclass, all with ``to_dict()``.

The default mode scores exactly like the reference, JD Health's ``jdh-algo/JoyMed``
``evaluation/VLMEvalKit/data_configs/JDH_*.py`` (commit ``d82691a``), bugs included;
``strict=True`` fixes each one. ``docs/evaluation.md`` section 3 describes the protocol, and
the docstrings of the submodules list every quirk:

* ``meddoc_tables``: Markdown table -> rows, full-parse prediction / gold parsing, column mapping;
* ``meddoc_match``: ``standardize_value``, ``is_meaningful``, greedy / Hungarian entry matching,
  judge-reply reading, the result records and the macro / micro aggregation;
* ``meddoc_full``: LTR_fullparsing; ``meddoc_abnormal``: LTR_abnormalityQA;
* ``meddoc_qa``: LTR_simpleQA and the GMD judge score.

Task-to-function map:

=====================  =======================  ===========================
benchmark split        per item / document      dataset
=====================  =======================  ===========================
LTR_fullparsing        ``score_full_parse``     ``aggregate_full_parse``
LTR_simpleQA           ``score_simple_qa``      ``aggregate_simple_qa``
LTR_abnormalityQA      ``score_abnormality``    ``aggregate_abnormality``
GMD_simple / complex   ``score_general_qa``     ``aggregate_general_qa``
=====================  =======================  ===========================
"""

from __future__ import annotations

from .meddoc_abnormal import (
    ABNORMALITY_FIELDS,
    ABNORMALITY_JUDGE_POSITIVES,
    ABNORMALITY_KEY_MAP,
    ABNORMALITY_PROMPT,
    AbnormalityParse,
    aggregate_abnormality,
    build_abnormality_judge_prompt,
    is_meaningful_abnormality,
    parse_abnormality_answer,
    score_abnormality,
    standardize_abnormality_value,
)
from .meddoc_full import (
    FULL_PARSE_JUDGE_POSITIVES,
    FULL_PARSE_PROMPT,
    aggregate_full_parse,
    build_full_parse_judge_prompt,
    score_full_parse,
)
from .meddoc_match import (
    PRF,
    DocScore,
    EntryPair,
    FieldCheck,
    FieldScore,
    TableSummary,
    is_meaningful,
    match_entry_names,
    reply_is_positive,
    standardize_value,
)
from .meddoc_qa import (
    GMD_JUDGE_TEMPLATE,
    SIMPLE_QA_JUDGE_POSITIVES,
    GeneralQAItem,
    GeneralQASummary,
    GroupScore,
    SimpleQAItem,
    SimpleQASummary,
    aggregate_general_qa,
    aggregate_simple_qa,
    build_general_judge_prompt,
    build_simple_qa_judge_prompt,
    build_simple_qa_question,
    clean_simple_answer,
    normalize_simple_value,
    parse_general_judge_score,
    score_general_qa,
    score_simple_qa,
)
from .meddoc_tables import (
    ENTRY_FIELDS,
    FIELD_SYNONYMS,
    STRICT_FIELD_SYNONYMS,
    map_entry_fields,
    parse_full_gold,
    parse_full_prediction,
    parse_markdown_table,
    rows_to_entries,
)

#: The system prompt the reference sends before every MedDocBench question (when the TSV has none).
DEFAULT_SYSTEM_PROMPT = "你是医学文档解析专家"

__all__ = [
    "ABNORMALITY_FIELDS",
    "ABNORMALITY_JUDGE_POSITIVES",
    "ABNORMALITY_KEY_MAP",
    "ABNORMALITY_PROMPT",
    "DEFAULT_SYSTEM_PROMPT",
    "ENTRY_FIELDS",
    "FIELD_SYNONYMS",
    "FULL_PARSE_JUDGE_POSITIVES",
    "FULL_PARSE_PROMPT",
    "GMD_JUDGE_TEMPLATE",
    "PRF",
    "SIMPLE_QA_JUDGE_POSITIVES",
    "STRICT_FIELD_SYNONYMS",
    "AbnormalityParse",
    "DocScore",
    "EntryPair",
    "FieldCheck",
    "FieldScore",
    "GeneralQAItem",
    "GeneralQASummary",
    "GroupScore",
    "SimpleQAItem",
    "SimpleQASummary",
    "TableSummary",
    "aggregate_abnormality",
    "aggregate_full_parse",
    "aggregate_general_qa",
    "aggregate_simple_qa",
    "build_abnormality_judge_prompt",
    "build_full_parse_judge_prompt",
    "build_general_judge_prompt",
    "build_simple_qa_judge_prompt",
    "build_simple_qa_question",
    "clean_simple_answer",
    "is_meaningful",
    "is_meaningful_abnormality",
    "map_entry_fields",
    "match_entry_names",
    "normalize_simple_value",
    "parse_abnormality_answer",
    "parse_full_gold",
    "parse_full_prediction",
    "parse_general_judge_score",
    "parse_markdown_table",
    "reply_is_positive",
    "rows_to_entries",
    "score_abnormality",
    "score_full_parse",
    "score_general_qa",
    "score_simple_qa",
    "standardize_abnormality_value",
    "standardize_value",
]
