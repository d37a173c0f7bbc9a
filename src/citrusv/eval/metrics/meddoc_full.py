"""MedDocBench LTR_fullparsing ("Full extract"): per-document, per-field P / R / F1 of table entries.

Reference: ``jdh-algo/JoyMed`` ``evaluation/VLMEvalKit/data_configs/JDH_INSPECTION_full_parsing.py``
(see ``docs/evaluation.md`` §3). Quirks reproduced by default, each fixed by ``strict=True``:

* the judge's reply is read by substring, so ``不相等`` ("not equal") contains ``相等`` and counts
  as a match (the prompt itself asks for 相等 or 不相等); strict reads negations;
* the Markdown parsing and column-mapping quirks listed in ``meddoc_tables``;
* the judge sees the cell of the *last* header containing a synonym (one direction only), which
  is not always the column that was compared (``参考值`` after ``结果`` is sent as the result);
  strict sends the compared column;
* a document whose prediction parses to no rows adds nothing to the micro counts, not even its
  gold entries; strict adds the gold entries (and a gold that parses to nothing still counts
  the predicted entries);
* per-document P / R / F1 are rounded to 4 decimals before the macro average; strict does not round;
* the micro sign (U+00B5) is not folded to ``u`` (``standardize_value``); strict folds it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .base import JudgeFn
from .meddoc_match import (
    DocScore,
    FieldCheck,
    Matching,
    TableSummary,
    _JudgeTally,
    aggregate_table_docs,
    check_mapping,
    field_score,
    is_meaningful,
    pair_entries,
    reply_is_positive,
    standardize_value,
)
from .meddoc_tables import (
    ENTRY_FIELDS,
    FIELD_SYNONYMS,
    _cell_text,
    parse_full_gold,
    parse_full_prediction,
    reference_column,
    strict_columns,
)

__all__ = [
    "FULL_PARSE_JUDGE_POSITIVES",
    "FULL_PARSE_PROMPT",
    "aggregate_full_parse",
    "build_full_parse_judge_prompt",
    "score_full_parse",
]

#: The task prompt sent to the model under evaluation.
FULL_PARSE_PROMPT = "请将图中检验单表格解析为Markdown格式，表头包括检验项目、结果、单位、参考范围"

#: The reference's equivalence prompt (protocol text); ``{field}`` is ``result``, ``unit`` or ``reference``.
_JUDGE_TEMPLATE = """请判断以下两个{field}字段的值是否相等。考虑以下规则：
1. 希腊字母与英文字母等价（如μL和uL相同）
2. 科学计数法等价（如10^6和10 6相同）
3. 忽略大小写差异
4. 范围表示法等价（如"-"、"~"等）
5. 对于结果和参考值，有无单位部分都算正确
6. 只要主要信息相等就算正确

预测值: {pred}
真实值: {label}

请回答"相等"或"不相等"。"""

#: Substrings of a positive judge reply.
FULL_PARSE_JUDGE_POSITIVES = ("相等", "相同", "正确")


def build_full_parse_judge_prompt(pred: str, label: str, field: str) -> str:
    """The judge prompt asking whether a predicted and a gold cell of ``field`` are equal."""
    return _JUDGE_TEMPLATE.format(field=field, pred=pred, label=label)


# --------------------------------------------------------------------------------------------
# Cells of one row
# --------------------------------------------------------------------------------------------


def _entry_key(row: Mapping[str, Any], strict: bool) -> str:
    """The standardised entry name a row is looked up by ("" when it has none)."""
    if strict:
        for key in strict_columns(row, "entryname"):
            name = standardize_value(_cell_text(row[key], True), strict=True)
            if name:
                return name
        return ""
    key = reference_column(row, "entryname", skip_blank=True)
    return "" if key is None else standardize_value(str(row[key]))


def _compared_key(row: Mapping[str, Any], field: str, strict: bool) -> str | None:
    if not strict:
        return reference_column(row, field)
    keys = strict_columns(row, field)
    return next((k for k in keys if standardize_value(_cell_text(row[k], True), strict=True)),
                keys[0] if keys else None)


def _judged_text(row: Mapping[str, Any], field: str, strict: bool) -> str:
    """The raw cell shown to the judge: default, the last header *containing* a synonym."""
    if strict:
        key = _compared_key(row, field, True)
        return "" if key is None else _cell_text(row[key], True)
    text = ""
    for key, value in row.items():
        if any(word.lower() in key.lower() for word in FIELD_SYNONYMS[field]):
            text = str(value)
    return text


def _check_field(pred_row: Mapping[str, Any], label_row: Mapping[str, Any], field: str, judge: JudgeFn | None,
                 tally: _JudgeTally, strict: bool) -> FieldCheck:
    pred_key, label_key = _compared_key(pred_row, field, strict), _compared_key(label_row, field, strict)
    pred = "" if pred_key is None else standardize_value(_cell_text(pred_row[pred_key], strict), strict=strict)
    label = "" if label_key is None else standardize_value(_cell_text(label_row[label_key], strict), strict=strict)
    pred_ok, label_ok = is_meaningful(pred), is_meaningful(label)
    if pred_ok != label_ok:
        return FieldCheck(field, pred, label, False, "one_empty")
    if not pred_ok:
        return FieldCheck(field, pred, label, True, "both_empty")
    if pred == label:
        return FieldCheck(field, pred, label, True, "exact")
    if field == "entryname" or judge is None:
        return FieldCheck(field, pred, label, False, "differ")
    raw_pred, raw_label = _judged_text(pred_row, field, strict), _judged_text(label_row, field, strict)
    if not raw_pred or not raw_label:
        return FieldCheck(field, pred, label, False, "differ")
    # The reference re-tests meaningfulness on the raw cells before asking.
    if is_meaningful(raw_pred) != is_meaningful(raw_label):
        return FieldCheck(field, pred, label, False, "one_empty")
    if not is_meaningful(raw_pred):
        return FieldCheck(field, pred, label, True, "both_empty")
    reply = tally.ask(judge, build_full_parse_judge_prompt(raw_pred, raw_label, field))
    if reply is None:
        return FieldCheck(field, pred, label, False, "judge_error")
    return FieldCheck(field, pred, label, reply_is_positive(reply, FULL_PARSE_JUDGE_POSITIVES, strict=strict),
                      "judge", reply)


def _lookup(rows: Sequence[Any], strict: bool) -> dict[str, Mapping[str, Any]]:
    """Rows keyed by standardised entry name; meaningful names only, a repeated name keeps the last row."""
    table: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        if isinstance(row, Mapping):
            name = _entry_key(row, strict)
            if name and is_meaningful(name):
                table[name] = row
    return table


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


def score_full_parse(prediction: str, gold: str | Sequence[Mapping[str, Any]], *, judge: JudgeFn | None = None,
                     strict: bool = False, matching: Matching = "greedy", doc_id: str = "") -> DocScore:
    """Score one LTR_fullparsing document.

    Entries on both sides are keyed by their standardised entry name (meaningful names only,
    duplicates collapse), paired one-to-one by ``match_entry_names`` and compared field by field:
    one side meaningful and the other not -> no match; neither meaningful -> match; equal after
    ``standardize_value`` -> match; else, for result / unit / reference, the judge decides when
    both raw cells are non-blank. Per field, TP counts matching pairs, P = TP / #pred entries,
    R = TP / #gold entries. The document score is the mean of the 4 field F1s x 100 (0 when both
    sides have no entry).

    Args:
        prediction: the model's answer text.
        gold: the gold rows (dicts with ``entryname`` / ``result`` / ``unit`` / ``reference`` or any
            synonym headers), or the TSV answer text (JSON or a Markdown table).
        judge: equivalence judge; ``None`` scores by rules only (not comparable with the paper).
        strict: fix the reference quirks listed in the module docstring.
        matching: ``"greedy"`` (reference) or ``"hungarian"`` entry pairing.
        doc_id: carried into the result.

    Raises:
        TypeError: ``gold`` is neither text nor a sequence of dicts with string keys.
    """
    if isinstance(gold, str):
        label_rows = parse_full_gold(gold, strict=strict)
    else:
        label_rows = [check_mapping(row, f"full-parse gold row of {doc_id!r}") for row in gold]
    pred_rows = parse_full_prediction(prediction, strict=strict)
    tally = _JudgeTally()
    parse_failed = not pred_rows
    if pred_rows and label_rows or strict:
        pred_table, label_table = _lookup(pred_rows, strict), _lookup(label_rows, strict)
    else:
        pred_table, label_table = {}, {}
    pairs = pair_entries(pred_table, label_table, ENTRY_FIELDS,
                         lambda pred_row, label_row, name: _check_field(pred_row, label_row, name, judge, tally, strict),
                         matching=matching)
    # Unmatched entries on either side add a "false" per field, so fields are decided whenever any
    # entry exists.
    decided = bool(pred_table or label_table)
    fields = {
        name: field_score(sum(pair.checks[k].match for pair in pairs), len(pred_table), len(label_table),
                          decided=decided, rounded=not strict)
        for k, name in enumerate(ENTRY_FIELDS)
    }
    score = 100 * sum(f.f1 for f in fields.values()) / len(fields) if decided else 0.0
    return DocScore(id=doc_id, score=score, fields=fields, pairs=pairs, pred_items=len(pred_rows),
                    label_items=len(label_rows), parse_failed=parse_failed, judge_calls=tally.calls,
                    judge_errors=tally.errors)


def aggregate_full_parse(docs: Sequence[DocScore]) -> TableSummary:
    """Dataset metrics of LTR_fullparsing documents (``score_full_parse`` results).

    Macro: per field, the mean over documents of each document's P / R / F1; ``f1_macro`` is the
    mean of the 4 field macro F1s. Micro: TP and entry counts pooled over documents and fields.
    ``overall`` = 0.5 * ``f1_micro`` + 0.5 * ``f1_macro``, x 100. A parse failure is a document whose
    prediction gave no rows. With no documents every number is 0 (the reference's convention).
    """
    return aggregate_table_docs(docs, ENTRY_FIELDS,
                                lambda doc, name: (doc.fields[name].n_pred, doc.fields[name].n_label))
