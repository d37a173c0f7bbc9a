"""MedDocBench question answering: LTR_simpleQA (rules + yes/no judge) and GMD_simpleQA / GMD_complexQA (judge score).

References: ``jdh-algo/JoyMed`` ``evaluation/VLMEvalKit/data_configs/JDH_INSPECTION_simple_qa.py`` and
``JDH_ALLDOC_qa.py`` (see ``docs/evaluation.md`` §3). Quirks reproduced by default,
each fixed by ``strict=True``:

* simple QA: the judge says yes when its lower-cased reply contains 是, ``yes``, 对 or 正确, so
  ``不是``, ``不对`` and ``不正确`` count as yes; strict reads negations;
* simple QA: a result-field answer (or gold) made only of digits and dots that is not a number
  (``1.2.3``, ``.``) crashes the reference's number parser, and the item scores 0 without a
  judge call; strict treats it as text;
* GMD: without a ``<score>`` tag the last number of the reply is used as-is when it lies in
  0-100, so a bare ``1`` (meaning 1.0) gives 1 point; strict reads a bare number <= 1 on the 0-1
  scale;
* GMD: a tagged score is clamped to [0, 1] before x 100, so ``<score>85</score>`` gives 100;
  strict reads a tagged number in (1, 100] as points.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from .base import JudgeFn
from .meddoc_match import _JudgeTally, _Record, reply_is_positive

__all__ = [
    "GMD_JUDGE_TEMPLATE",
    "SIMPLE_QA_JUDGE_POSITIVES",
    "GeneralQAItem",
    "GeneralQASummary",
    "GroupScore",
    "SimpleQAItem",
    "SimpleQASummary",
    "aggregate_general_qa",
    "aggregate_simple_qa",
    "build_general_judge_prompt",
    "build_simple_qa_judge_prompt",
    "build_simple_qa_question",
    "clean_simple_answer",
    "normalize_simple_value",
    "parse_general_judge_score",
    "score_general_qa",
    "score_simple_qa",
]

FieldType = Literal["result", "reference"]


@dataclass
class GroupScore(_Record):
    """Mean score (0-100) of a group of items, its size and (simple QA) exact-match rate (0-100)."""

    score: float
    count: int
    exact_match_rate: float | None = None


def _distribution(scores_100: Sequence[float]) -> dict[str, int]:
    """Counts in [0, 50), [50, 80), [80, 100] (the reference's ``np.histogram`` bins)."""
    return {"0-50": sum(0 <= s < 50 for s in scores_100), "50-80": sum(50 <= s < 80 for s in scores_100),
            "80-100": sum(80 <= s <= 100 for s in scores_100)}


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


# --------------------------------------------------------------------------------------------
# LTR_simpleQA
# --------------------------------------------------------------------------------------------


def build_simple_qa_question(entryname: str, field_type: FieldType, *, has_unit: bool = False) -> str:
    """The LTR_simpleQA question: ``图中显示{entryname}的{测量结果|参考区间}是多少？`` (+ unit request)."""
    if field_type not in ("result", "reference"):
        raise ValueError(f"field_type must be 'result' or 'reference', got {field_type!r}")
    question = f"图中显示{entryname}的{'测量结果' if field_type == 'result' else '参考区间'}是多少？"
    return question + "如果有单位请同时包含单位" if has_unit and field_type == "result" else question


_SIMPLE_JUDGE_TEMPLATE = """请判断以下两个答案是否等价或基本正确：

问题：{question}
预测答案：{pred}
标准答案：{label}

请考虑：
1. 数值的等价性（如0.5和0.50是等价的）
2. 单位的不同表示方式（如umol/L和μmol/L是等价的）
3. 范围表示的不同方式（如10-20和10~20是等价的）
4. 科学记数法的不同表示

如果预测答案基本正确（数值正确但格式略有差异），请回答"是"。
如果预测答案错误或偏差较大，请回答"否"。

请只回答"是"或"否"。"""

#: Substrings of a positive yes/no reply (checked on the lower-cased reply).
SIMPLE_QA_JUDGE_POSITIVES = ("是", "yes", "对", "正确")


def build_simple_qa_judge_prompt(question: str, pred: str, gold: str) -> str:
    """The yes/no judge prompt for one simple-QA item (cleaned prediction, raw gold)."""
    return _SIMPLE_JUDGE_TEMPLATE.format(question=question, pred=pred, label=gold)


#: Answer prefixes removed in this order; the last two are unanchored and remove every
#: "...的测量结果是" / "...的参考区间为" up to the marker.
_ANSWER_PREFIXES = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"^(?:答案)[是：:]\s*",
    r"^(?:回答)[是：:]\s*",
    r"^该项?的?测量结果[是：:]\s*",
    r"^该项?的?参考区间[是：:]\s*",
    r"^根据.*?[，,]\s*",
    r".*?[的地]测量结果[是为：:]\s*",
    r".*?[的地]参考区间[是为：:]\s*",
))


def clean_simple_answer(text: str) -> str:
    """Strip the answer and remove lead-ins such as ``答案是`` / ``根据检验单，`` / ``白细胞的测量结果是``."""
    text = text.strip()
    for prefix in _ANSWER_PREFIXES:
        text = prefix.sub("", text)
    return text


def normalize_simple_value(text: str) -> str:
    """Normalisation of both sides before comparison (reference ``normalize_value``).

    Collapse whitespace; ``μmol/L`` -> ``umol/L``; ``×10^n`` / ``×10n`` / ``*10^n`` -> ``En``; drop a
    trailing ``.0...`` and ``.0...`` before a space; unify ``- ~ ～ – —`` between numbers to ``-``
    (and ``--``); remove ``参考范围:`` / ``参考区间:`` / ``正常值范围:``; drop one trailing Chinese
    punctuation mark; lower-case. Non-strings and ``""`` give ``""``.
    """
    if not isinstance(text, str) or not text:
        return ""
    text = re.sub(r"\s+", " ", text.strip())
    text = text.replace("\u03bcmol/L", "umol/L")
    text = re.sub(r"×10\^(\d+)", r"*10^\1", text)
    text = re.sub(r"×10(\d+)", r"*10^\1", text)
    text = re.sub(r"\*10\^(\d+)", r"E\1", text)
    text = re.sub(r"\.0+$", "", text)
    text = re.sub(r"\.0+\s", " ", text)
    text = re.sub(r"(\d+)\s*[-~～–—]\s*(\d+)", r"\1-\2", text)
    text = re.sub(r"(\d+)--(\d+)", r"\1-\2", text)
    text = re.sub(r"(?:参考范围|参考区间|正常值范围)[：:]", "", text)
    text = re.sub(r"[。，、；：]$", "", text)
    return text.lower()


_RANGE_LIKE = (re.compile(r"\d+\.?\d*\s*[-~～–—]\s*\d+\.?\d*"), re.compile(r"[<>≤≥]\s*\d+\.?\d*"),
               re.compile(r"阴性|阳性"))


class _ReferenceCrash(Exception):
    """The reference's number parser raises on this value; the item scores 0."""


def _number_and_unit(text: str, strict: bool) -> tuple[float | str | None, str | None]:
    """(number, unit) of a normalised answer; the number is the text itself when unparsable."""
    text = text.strip()
    match = re.match(r"^([\d.]+)\s*([a-zA-Z/%\u03bc]+.*)$", text)
    if match:
        try:
            return float(match[1]), match[2].strip()
        except ValueError:
            return match[1], match[2].strip()
    match = re.match(r"^([\d.]+)\s*\*\s*10\^(\d+)\s*(.*)$", text) or re.match(r"^([\d.]+)E(\d+)\s*(.*)$", text)
    if match:
        try:
            return float(match[1]) * 10 ** int(match[2]), match[3].strip() or None
        except (ValueError, OverflowError):
            return text, None
    match = re.match(r"^([\d.]+)$", text)
    if match:
        try:
            return float(match[1]), None
        except ValueError:
            if strict:
                return text, None
            raise _ReferenceCrash(f"{text!r} is not a number") from None
    return text, None


def _rule_score(pred_clean: str, gold: str, field_type: FieldType, strict: bool) -> tuple[float, str]:
    pred, label = normalize_simple_value(pred_clean), normalize_simple_value(gold)
    if pred == label:
        return 1.0, "exact"
    if not pred:
        return 0.0, "empty"
    if field_type == "reference" and any(p.search(gold) for p in _RANGE_LIKE):
        pred_numbers, label_numbers = re.findall(r"[\d.]+", pred), re.findall(r"[\d.]+", label)
        if pred_numbers and len(pred_numbers) == len(label_numbers):
            try:
                close = all(abs(float(p) - float(g)) < 0.01 for p, g in zip(pred_numbers, label_numbers))
            except ValueError:
                close = False
            if close:
                return 1.0, "range"
    if field_type == "result":
        pred_number, pred_unit = _number_and_unit(pred, strict)
        label_number, label_unit = _number_and_unit(label, strict)
        numbers = isinstance(pred_number, float) and isinstance(label_number, float)
        if numbers and abs(pred_number - label_number) / max(abs(label_number), 1e-10) < 0.01:
            if pred_unit == label_unit or (not pred_unit and not label_unit):
                return 1.0, "number"
            return 0.5, "number_only"
    pred_chars, label_chars = set(pred), set(label)
    if label_chars and len(pred_chars & label_chars) / max(len(pred_chars), len(label_chars)) > 0.8:
        return 0.5, "char_overlap"
    return 0.0, "none"


@dataclass
class SimpleQAItem(_Record):
    """One LTR_simpleQA item.

    ``score`` is 0, 0.5 or 1 (x 100 in the summary); ``rule`` names the step that decided:
    ``exact`` / ``empty`` / ``range`` / ``number`` / ``number_only`` / ``char_overlap`` / ``none``,
    ``judge`` (the judge turned a score below 1 into 1), or ``reference_crash``.
    """

    id: str
    score: float
    rule: str
    field_type: str
    prediction_clean: str
    entryname: str = ""
    judge_called: bool = False
    judge_error: bool = False
    reply: str | None = None


def score_simple_qa(prediction: str, gold: str, *, field_type: FieldType = "result", question: str = "",
                    judge: JudgeFn | None = None, strict: bool = False, item_id: str = "",
                    entryname: str = "") -> SimpleQAItem:
    """Score one LTR_simpleQA answer.

    Ladder on the cleaned prediction (``clean_simple_answer``), both sides normalised
    (``normalize_simple_value``): equal -> 1; empty prediction -> 0; reference field whose gold looks
    like a range: same count of numbers, each within 0.01 -> 1; result field: numbers within 1 %
    relative -> 1 when the units agree, else 0.5; character-set overlap > 0.8 -> 0.5; else 0. Then,
    when the score is below 1 and a judge is given, a yes from the judge makes it 1 (a
    ``JudgeError`` leaves the rule score and sets ``judge_error``).

    Raises:
        ValueError: ``field_type`` is not ``"result"`` or ``"reference"``.
    """
    if field_type not in ("result", "reference"):
        raise ValueError(f"field_type must be 'result' or 'reference', got {field_type!r}")
    pred_clean = clean_simple_answer(prediction)
    item = SimpleQAItem(item_id, 0.0, "reference_crash", field_type, pred_clean, entryname)
    try:
        item.score, item.rule = _rule_score(pred_clean, gold, field_type, strict)
    except _ReferenceCrash:
        return item
    if item.score < 1.0 and judge is not None:
        tally = _JudgeTally()
        item.judge_called = True
        item.reply = tally.ask(judge, build_simple_qa_judge_prompt(question, pred_clean, gold))
        item.judge_error = item.reply is None
        if item.reply is not None and reply_is_positive(item.reply, SIMPLE_QA_JUDGE_POSITIVES, strict=strict):
            item.score, item.rule = 1.0, "judge"
    return item


@dataclass
class SimpleQASummary(_Record):
    """LTR_simpleQA dataset result: ``overall`` = mean score x 100, ``exact_match_rate`` = % of items
    scoring exactly 1 (0-100), per field type the same, the score histogram, judge counts."""

    overall: float
    exact_match_rate: float
    n: int
    by_field_type: dict[str, GroupScore]
    score_distribution: dict[str, int]
    judge_calls: int
    judge_errors: int
    items: list[SimpleQAItem] = field(default_factory=list)


def _simple_group(items: Sequence[SimpleQAItem]) -> GroupScore:
    return GroupScore(_mean([100 * i.score for i in items]), len(items),
                      100 * sum(i.score == 1.0 for i in items) / len(items) if items else 0.0)


def aggregate_simple_qa(items: Sequence[SimpleQAItem]) -> SimpleQASummary:
    """Mean score and exact-match rate, overall and per field type (0 for an empty list, as the reference)."""
    overall = _simple_group(items)
    types = sorted({i.field_type for i in items})
    return SimpleQASummary(
        overall=overall.score, exact_match_rate=overall.exact_match_rate or 0.0, n=len(items),
        by_field_type={t: _simple_group([i for i in items if i.field_type == t]) for t in types},
        score_distribution=_distribution([100 * i.score for i in items]),
        judge_calls=sum(i.judge_called for i in items), judge_errors=sum(i.judge_error for i in items),
        items=list(items))


# --------------------------------------------------------------------------------------------
# GMD_simpleQA / GMD_complexQA
# --------------------------------------------------------------------------------------------

#: The judge prompt (protocol text, trailing newline included).
GMD_JUDGE_TEMPLATE = """请判断以下两个答案是否在主要内容上一致：

问题：{question}
预测答案：{pred}
标准答案：{label}

如果答案在主要内容上完全一致，请输出1.0。
如果答案在主要内容上不一致，请输出0.0。
如果答案在主要内容上部分一致，请输出0-1之间的分数。

你可以推理思考，请将最终评分输出在<score>标签中。
"""


def build_general_judge_prompt(question: str, prediction: str, gold: str) -> str:
    """The GMD judge prompt: 1.0 when the main content agrees, 0.0 when not, partial in between."""
    return GMD_JUDGE_TEMPLATE.format(question=question, pred=prediction, label=gold)


_SCORE_TAG = re.compile(r"<score>\s*(\d+(?:\.\d+)?)\s*</score>", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def parse_general_judge_score(reply: str, *, strict: bool = False) -> tuple[float, str]:
    """Points (0-100) from a GMD judge reply, and how they were read.

    The first ``<score>x</score>``: ``min(max(x, 0), 1) * 100`` (``"tag"``). Without a tag, the last
    number ``x`` of the reply (signs are not read): ``x`` itself when ``0 <= x <= 100``
    (``"last_number"``), else 0 (``"out_of_range"``); no number gives 0 (``"no_number"``). Strict:
    a tagged ``1 < x <= 100`` is ``x`` points (``"tag_points"``), a bare ``x <= 1`` is ``x * 100``.
    """
    tags = _SCORE_TAG.findall(reply)
    if tags:
        value = float(tags[0])
        if strict and 1.0 < value <= 100.0:
            return value, "tag_points"
        return min(max(value, 0.0), 1.0) * 100, "tag"
    numbers = _NUMBER.findall(reply)
    if not numbers:
        return 0.0, "no_number"
    value = float(numbers[-1])
    if strict and value <= 1.0:
        return value * 100, "last_number"
    if 0.0 <= value <= 100.0:
        return value, "last_number"
    return 0.0, "out_of_range"


@dataclass
class GeneralQAItem(_Record):
    """One GMD item: judge points (0-100), how they were read, the reply and the breakdown keys."""

    id: str
    score: float
    rule: str  # "tag" | "tag_points" | "last_number" | "out_of_range" | "no_number" | "judge_error"
    reply: str | None
    doc_type: str = "unknown"
    department: str = "unknown"
    judge_error: bool = False


def score_general_qa(prediction: str, gold: str, *, question: str, judge: JudgeFn, strict: bool = False,
                     item_id: str = "", doc_type: str = "unknown", department: str = "unknown") -> GeneralQAItem:
    """Score one GMD_simpleQA / GMD_complexQA answer with the judge (no rule-based fallback).

    A ``JudgeError`` scores 0 with ``judge_error`` set.
    """
    reply = _JudgeTally().ask(judge, build_general_judge_prompt(question, prediction, gold))
    if reply is None:
        return GeneralQAItem(item_id, 0.0, "judge_error", None, doc_type, department, judge_error=True)
    points, rule = parse_general_judge_score(reply, strict=strict)
    return GeneralQAItem(item_id, points, rule, reply, doc_type, department)


@dataclass
class GeneralQASummary(_Record):
    """GMD dataset result: mean points (0-100), per document type and per department, histogram."""

    overall: float
    n: int
    by_doc_type: dict[str, GroupScore]
    by_department: dict[str, GroupScore]
    score_distribution: dict[str, int]
    judge_errors: int
    items: list[GeneralQAItem] = field(default_factory=list)


def aggregate_general_qa(items: Sequence[GeneralQAItem]) -> GeneralQASummary:
    """Mean points overall, per ``doc_type`` and per ``department`` (0 for an empty list)."""

    def groups(key: str) -> dict[str, GroupScore]:
        names = sorted({getattr(i, key) for i in items})
        out = {}
        for name in names:
            members = [i.score for i in items if getattr(i, key) == name]
            out[name] = GroupScore(_mean(members), len(members))
        return out

    return GeneralQASummary(overall=_mean([i.score for i in items]), n=len(items), by_doc_type=groups("doc_type"),
                            by_department=groups("department"),
                            score_distribution=_distribution([i.score for i in items]),
                            judge_errors=sum(i.judge_error for i in items), items=list(items))
