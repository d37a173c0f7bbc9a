"""MedDocBench LTR_abnormalityQA ("Complex QA"): the abnormal entries of a lab report, as JSON.

Reference: ``jdh-algo/JoyMed`` ``evaluation/VLMEvalKit/data_configs/JDH_INSPECTION_abnormality_qa.py``
(see ``docs/evaluation.md`` §3). Quirks reproduced by default, each fixed by ``strict=True``:

* the judge (asked on every field, entry name included) says yes when its reply contains 是,
  ``yes`` or ``true``, so ``不是`` ("is not") counts as yes; strict reads negations;
* the micro average pools the *raw* parsed item counts (duplicates and unnamed items included,
  and the gold count even when the prediction is empty) while TP comes from de-duplicated
  matches; strict pools the de-duplicated entry counts;
* a non-JSON reply that mentions 正常 or 无异 anywhere (``正常项目未列出`` ...) parses to no item
  before the line patterns are tried, and a reply parsed to no item is a parse failure unless
  the gold is empty too; strict tries the line patterns first and does not count a
  "no abnormality" reply as a failure;
* a ``status`` that is not a string (``null``, a number) crashes the reference's empty-case test
  when it is reached: the document scores 0 and is left out of the averages (``DocScore.error``);
  strict reads such a status as text (``null`` as missing).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .base import JudgeFn
from .meddoc_match import (
    DocScore,
    FieldCheck,
    FieldScore,
    Matching,
    TableSummary,
    _JudgeTally,
    _Record,
    aggregate_table_docs,
    check_mapping,
    field_score,
    pair_entries,
    reply_is_positive,
)

__all__ = [
    "ABNORMALITY_FIELDS",
    "ABNORMALITY_JUDGE_POSITIVES",
    "ABNORMALITY_KEY_MAP",
    "ABNORMALITY_PROMPT",
    "AbnormalityParse",
    "aggregate_abnormality",
    "build_abnormality_judge_prompt",
    "is_meaningful_abnormality",
    "parse_abnormality_answer",
    "score_abnormality",
    "standardize_abnormality_value",
]

ABNORMALITY_FIELDS = ("entryname", "result", "reference", "status")

#: The task prompt sent to the model under evaluation.
ABNORMALITY_PROMPT = ("请识别检验单中的异常项目，输出JSON格式，包含检验项目名称、结果、参考范围和异常状态。"
                      "异常状态包括：偏高、偏低、阳性、阴性、弱阳性、异常。只输出异常项目，正常项目不要输出。")

#: Exact Chinese keys renamed to the canonical fields (other keys are kept as they are).
ABNORMALITY_KEY_MAP: dict[str, str] = {
    **dict.fromkeys(("检验项目名称", "检验项目", "项目名称", "名称", "项目"), "entryname"),
    **dict.fromkeys(("结果", "检测结果", "值", "检测值"), "result"),
    **dict.fromkeys(("参考范围", "参考值", "正常值范围", "参考", "正常范围", "参考区间"), "reference"),
    **dict.fromkeys(("异常状态", "状态", "异常", "异常类型"), "status"),
}

_JUDGE_TEMPLATE = """请判断以下两个{field}是否等价，如果是数值类型的，请忽略单位：

预测值：{pred}
标准值：{label}

请只回答"是"或"否"。"""

#: Substrings of a positive judge reply (checked on the lower-cased reply).
ABNORMALITY_JUDGE_POSITIVES = ("是", "yes", "true")


def build_abnormality_judge_prompt(pred: Any, label: Any, field: str) -> str:
    """The judge prompt asking whether two values of ``field`` are equivalent (raw values)."""
    return _JUDGE_TEMPLATE.format(field=field, pred=pred, label=label)


# --------------------------------------------------------------------------------------------
# Standardisation
# --------------------------------------------------------------------------------------------

_CN_PUNCT = re.compile(r"[，。、；：！？]")
_UNIT_SPACING = re.compile(r"\s*(\u03bcmol/L|mmol/L|g/L|mg/L|U/L|%|umol/L)\s*")


def standardize_abnormality_value(value: Any) -> str:
    """Canonical form of an abnormality field (reference ``standardize_value`` of this task).

    Non-strings are returned as ``str(value)`` (``None`` -> ``""``) without further change. Strings:
    collapse whitespace, drop Chinese punctuation and every ``(...)``, tighten spaces around a few
    units and around numeric ``-`` / ``~`` ranges, ``a--b`` -> ``a-b``, ``正常值范围:`` /
    ``参考区间:`` -> ``参考范围：``, drop ``↑ ↓ *``, remove all whitespace, lower-case.
    """
    if not isinstance(value, str):
        return "" if value is None else str(value)
    text = re.sub(r"\s+", " ", value.strip())
    text = _CN_PUNCT.sub("", text)
    text = re.sub(r"\([^)]*\)", "", text)
    text = _UNIT_SPACING.sub(r"\1", text)
    text = re.sub(r"(\d+)\s*([~-])\s*(\d+)", r"\1\2\3", text)
    text = re.sub(r"(\d+)--(\d+)", r"\1-\2", text)
    text = re.sub(r"正常值范围[：:]", "参考范围：", text)
    text = re.sub(r"参考区间[：:]", "参考范围：", text)
    text = re.sub(r"[↑↓*]", "", text)
    return re.sub(r"\s+", "", text).lower()


def is_meaningful_abnormality(text: Any) -> bool:
    """A string with a word character or CJK ideograph (this task's test; ``-`` alone is not)."""
    return isinstance(text, str) and re.search(r"[\w\u4e00-\u9fff]", text.strip()) is not None


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


@dataclass
class AbnormalityParse(_Record):
    """Parsed abnormal items (canonical keys where the Chinese key is known) and whether parsing failed."""

    items: list[dict[str, Any]]
    failed: bool
    how: str  # "empty" | "json" | "json_objects" | "lines" | "no_abnormality" | "none"


def _canonical_keys(item: Mapping[str, Any]) -> dict[str, Any]:
    return {ABNORMALITY_KEY_MAP.get(key, key): value for key, value in item.items()}


def _from_json(parsed: Any) -> list[dict[str, Any]] | None:
    if isinstance(parsed, list):
        return [_canonical_keys(item) for item in parsed if isinstance(item, dict)]
    if isinstance(parsed, dict):
        return [_canonical_keys(parsed)]
    return None


def _repair_object(text: str) -> str:
    """Single quotes -> double quotes, bare ``key:`` -> ``"key":`` (the reference's repair)."""
    return re.sub(r"(\s*)(\w+)(\s*:)", r'\1"\2"\3', text.replace("'", '"'))


_NAME = r"([^\n]+?)"
_VALUE = r"([\d\.]+(?:\s*[^\s]+)?)"
_STATUS = r"(偏高|偏低|阳性|阴性|异常)"
#: Line patterns, tried in this order over the whole reply; each yields (entryname, result,
#: reference, status) from its groups. A name already found is not added again.
_LINE_PATTERNS: tuple[tuple[re.Pattern[str], Any], ...] = (
    # "梅毒螺旋体抗体 阳性(R)"
    (re.compile(rf"^{_NAME}\s+阳性\(R\)$", re.MULTILINE), lambda g: (g[0], "阳性", "", "阳性")),
    # "平均血红蛋白浓度 32.3 g/L 参考范围：320-360 偏低"
    (re.compile(rf"^{_NAME}\s+{_VALUE}\s+(参考范围[：:]\s*[^\s]+(?:\s*[^\s]+)*?)\s+{_STATUS}$", re.MULTILINE),
     lambda g: (g[0], g[1], g[2], g[3])),
    # "【生化】谷丙转氨酶 54 偏高"
    (re.compile(rf"^【[^】]*】\s*{_NAME}\s+{_VALUE}\s+{_STATUS}$", re.MULTILINE), lambda g: (g[0], g[1], "", g[2])),
    # "MP-β2M 阴性(-) 偏高"
    (re.compile(rf"^{_NAME}\s+阴性\([^)]*\)\s+{_STATUS}$", re.MULTILINE), lambda g: (g[0], "阴性", "", g[1])),
    # "肌酐 52.8 umol/L 41--73 偏高"
    (re.compile(rf"^{_NAME}\s+{_VALUE}\s+([\d\.]+(?:--|-|~)[\d\.]+(?:\s*[^\s]+)?)\s+{_STATUS}$", re.MULTILINE),
     lambda g: (g[0], g[1], g[2], g[3])),
    # "白细胞 12.5 偏高" (not a 【...】 line)
    (re.compile(rf"^(?!【[^】]*】){_NAME}\s+{_VALUE}\s+{_STATUS}$", re.MULTILINE), lambda g: (g[0], g[1], "", g[2])),
    # "红细胞分布宽度 35.60 ↓"
    (re.compile(rf"^{_NAME}\s+{_VALUE}\s*([↑↓])$", re.MULTILINE),
     lambda g: (g[0], g[1], "", "偏高" if g[2] == "↑" else "偏低")),
    # "游离甲状腺素11.46＜下限"
    (re.compile(rf"^{_NAME}{_VALUE}\s*([＜＞])\s*(下限|上限)$", re.MULTILINE),
     lambda g: (g[0], g[1], g[3], "偏低" if g[2] == "＜" else "偏高")),
)
_NO_ABNORMALITY = ("无异常", "正常", "无异")


def _line_items(text: str) -> list[dict[str, Any]]:
    lines = [line.strip() for line in text.split("\n")]
    body = "\n".join(line for line in lines if line and not line.endswith((":", "：")))
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for pattern, fields in _LINE_PATTERNS:
        for groups in pattern.findall(body):
            if isinstance(groups, str):  # a one-group pattern yields strings, not tuples
                groups = (groups,)
            name, result, reference, status = fields(groups)
            name = name.strip()
            if name and name not in seen:
                items.append({"entryname": name, "result": result.strip(), "reference": reference.strip(),
                              "status": status.strip()})
                seen.add(name)
    return items


def parse_abnormality_answer(text: str, *, strict: bool = False) -> AbnormalityParse:
    """Parse an abnormality answer (model reply or gold text) into items (reference ``extract_json_from_text``).

    After removing ``<think>...</think>``: an empty text is an empty, successful parse; else the
    first of: the greedy ``[...]`` span as JSON, the greedy ``{...}`` span as JSON, every flat
    ``{...}`` repaired (single quotes, bare keys) and parsed, the whole text as JSON, and the
    natural-language line patterns. Default: a text mentioning 无异常 / 正常 / 无异 goes straight
    to no items, and no items from the line patterns is a failure. Strict: line patterns first;
    no items with such a phrase is a successful "no abnormality" parse.
    """
    if not isinstance(text, str):
        raise TypeError(f"an abnormality answer must be a string, got {type(text).__name__}")
    text = re.sub(r"<think>.*?</think>", "", text.strip(), flags=re.DOTALL).strip()
    if not text:
        return AbnormalityParse([], False, "empty")
    for span in (re.compile(r"\[.*\]", re.DOTALL), re.compile(r"\{.*\}", re.DOTALL)):
        for candidate in span.findall(text):
            try:
                items = _from_json(json.loads(candidate))
            except ValueError:
                continue
            if items is not None:
                return AbnormalityParse(items, False, "json")
    objects = []
    for candidate in re.findall(r"\{[^}]*\}", text):
        try:
            parsed = json.loads(_repair_object(candidate))
        except ValueError:
            continue
        if isinstance(parsed, dict):
            objects.append(_canonical_keys(parsed))
    if objects:
        return AbnormalityParse(objects, False, "json_objects")
    try:
        items = _from_json(json.loads(text))
    except ValueError:
        items = None
    if items is not None:
        return AbnormalityParse(items, False, "json")
    says_normal = any(phrase in text for phrase in _NO_ABNORMALITY)
    if says_normal and not strict:
        return AbnormalityParse([], True, "no_abnormality")
    items = _line_items(text)
    if items:
        return AbnormalityParse(items, False, "lines")
    if says_normal:
        return AbnormalityParse([], False, "no_abnormality")
    return AbnormalityParse([], True, "none")


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


class _ReferenceCrash(Exception):
    """An input on which the reference scorer raises; the document scores 0 and is left out."""


def _status_text(status: Any, strict: bool) -> str:
    if isinstance(status, str):
        return status
    if strict:
        return "" if status is None else str(status)
    raise _ReferenceCrash(f"status {status!r} is not a string")


def _no_abnormal_item(items: Sequence[Mapping[str, Any]], strict: bool) -> bool:
    """Empty, or every status missing, or every status starting with 正常 (short-circuits like the reference)."""
    if not items or all(not item.get("status") for item in items):
        return True
    for item in items:
        if not _status_text(item.get("status", ""), strict).strip().startswith("正常"):
            return False
    return True


def _lookup(items: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    table: dict[str, Mapping[str, Any]] = {}
    for item in items:
        name = standardize_abnormality_value(item.get("entryname", ""))
        if name and is_meaningful_abnormality(name):
            table[name] = item
    return table


def _check(pred_item: Mapping[str, Any], label_item: Mapping[str, Any], field: str, judge: JudgeFn | None,
           tally: _JudgeTally, strict: bool) -> FieldCheck:
    pred = standardize_abnormality_value(pred_item.get(field, ""))
    label = standardize_abnormality_value(label_item.get(field, ""))
    pred_ok, label_ok = is_meaningful_abnormality(pred), is_meaningful_abnormality(label)
    if pred_ok != label_ok:
        return FieldCheck(field, pred, label, False, "one_empty")
    if not pred_ok:
        return FieldCheck(field, pred, label, True, "both_empty")
    if pred == label:
        return FieldCheck(field, pred, label, True, "exact")
    if judge is None:
        return FieldCheck(field, pred, label, False, "differ")
    reply = tally.ask(judge, build_abnormality_judge_prompt(pred_item.get(field, ""), label_item.get(field, ""), field))
    if reply is None:
        return FieldCheck(field, pred, label, False, "judge_error")
    return FieldCheck(field, pred, label, reply_is_positive(reply, ABNORMALITY_JUDGE_POSITIVES, strict=strict),
                      "judge", reply)


def _gold_items(gold: str | Sequence[Mapping[str, Any]], doc_id: str, strict: bool) -> AbnormalityParse:
    if isinstance(gold, str):
        return parse_abnormality_answer(gold, strict=strict)
    rows = [_canonical_keys(check_mapping(row, f"abnormality gold row of {doc_id!r}")) for row in gold]
    return AbnormalityParse(rows, False, "json")


def score_abnormality(prediction: str, gold: str | Sequence[Mapping[str, Any]], *, judge: JudgeFn | None = None,
                      strict: bool = False, matching: Matching = "greedy", doc_id: str = "") -> DocScore:
    """Score one LTR_abnormalityQA document.

    Empty case: when neither side has an abnormal item (no item, every status missing, or every
    status starting with 正常) the document scores 100 with P = R = F1 = 1 and zero counts.
    Otherwise entries keyed by standardised name are paired (``match_entry_names``) and each of
    entryname / result / reference / status compared: one side meaningful only -> no match,
    neither -> match, equal after ``standardize_abnormality_value`` -> match, else the judge
    decides (all four fields). Unmatched entries add no "false" here (unlike full parse); they
    only lower P or R through the counts. Score = mean field F1 x 100.

    Args:
        prediction: the model's answer.
        gold: the gold items (dicts, Chinese keys allowed) or the TSV answer text.
        judge: equivalence judge; ``None`` scores by rules only.
        strict: fix the reference quirks listed in the module docstring.
        matching: ``"greedy"`` (reference) or ``"hungarian"``.
        doc_id: carried into the result.

    Raises:
        TypeError: ``gold`` is neither text nor a sequence of dicts with string keys.
    """
    label = _gold_items(gold, doc_id, strict)
    pred = parse_abnormality_answer(prediction, strict=strict)
    tally = _JudgeTally()
    try:  # both sides are tested (no short-circuit), as in the reference
        pred_empty, label_empty = _no_abnormal_item(pred.items, strict), _no_abnormal_item(label.items, strict)
    except _ReferenceCrash as crash:
        zero = {name: FieldScore() for name in ABNORMALITY_FIELDS}
        return DocScore(id=doc_id, score=0.0, fields=zero, parse_failed=True, error=str(crash))
    if pred_empty and label_empty:
        ones = {name: FieldScore(0, 0, 0, 1.0, 1.0, 1.0) for name in ABNORMALITY_FIELDS}
        return DocScore(id=doc_id, score=100.0, fields=ones, empty_case=True)
    if pred.items and label.items or strict:
        pred_table, label_table = _lookup(pred.items), _lookup(label.items)
    else:
        pred_table, label_table = {}, {}
    pairs = pair_entries(pred_table, label_table, ABNORMALITY_FIELDS,
                         lambda pred_item, label_item, name: _check(pred_item, label_item, name, judge, tally, strict),
                         matching=matching)
    fields = {
        name: field_score(sum(pair.checks[k].match for pair in pairs), len(pred_table), len(label_table),
                          decided=bool(pairs), rounded=not strict)
        for k, name in enumerate(ABNORMALITY_FIELDS)
    }
    score = 100 * sum(f.f1 for f in fields.values()) / len(fields)
    return DocScore(id=doc_id, score=score, fields=fields, pairs=pairs, pred_items=len(pred.items),
                    label_items=len(label.items), parse_failed=pred.failed or label.failed,
                    judge_calls=tally.calls, judge_errors=tally.errors)


def aggregate_abnormality(docs: Sequence[DocScore], *, strict: bool = False) -> TableSummary:
    """Dataset metrics of LTR_abnormalityQA documents (``score_abnormality`` results).

    As ``aggregate_full_parse`` (macro over documents, micro pooled, ``overall`` = mean of the
    two F1s x 100; crashed documents left out of both), except that by default each document adds
    its raw parsed item counts to every field's micro pool (reference quirk); ``strict=True``
    adds the de-duplicated entry counts instead. Empty-case documents add 1 to the macro means
    and nothing to the micro pool.
    """
    if strict:
        return aggregate_table_docs(docs, ABNORMALITY_FIELDS,
                                    lambda doc, name: (doc.fields[name].n_pred, doc.fields[name].n_label))
    return aggregate_table_docs(docs, ABNORMALITY_FIELDS, lambda doc, name: (doc.pred_items, doc.label_items))
