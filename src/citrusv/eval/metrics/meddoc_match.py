"""MedDocBench shared pieces: value standardisation, entry matching, judge verdicts, result records.

Used by the two table-scoring tasks (LTR_fullparsing in ``meddoc_full``, LTR_abnormalityQA in
``meddoc_abnormal``); the public names are re-exported by ``citrusv.eval.metrics.meddoc``.
The reference is JD Health's ``jdh-algo/JoyMed`` (``evaluation/VLMEvalKit/data_configs/``); see
``docs/evaluation.md`` section 3.

Scales: every precision / recall / F1 here is a fraction in [0, 1]; document scores and
``overall`` are on 0-100, as the reference reports them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .base import JudgeError, JudgeFn

__all__ = [
    "PRF",
    "DocScore",
    "EntryPair",
    "FieldCheck",
    "FieldScore",
    "TableSummary",
    "is_meaningful",
    "match_entry_names",
    "pair_entries",
    "reply_is_positive",
    "standardize_value",
]

Matching = Literal["greedy", "hungarian"]

# --------------------------------------------------------------------------------------------
# Standardisation (full parse)
# --------------------------------------------------------------------------------------------

#: Chinese punctuation and look-alikes mapped before the full-width fold. Greek mu (U+03BC) only:
#: the micro sign (U+00B5) is left alone and upper-cases to Greek capital MU (reference quirk).
_CHAR_MAP = str.maketrans({
    "\u03bc": "u", "：": ":", "，": ",", "。": ".", "？": "?", "！": "!", "；": ";", "（": "(", "）": ")",
    "【": "[", "】": "]", "《": "<", "》": ">", "、": ",", "\u2014": "-", "～": "~",
})
_RANGE = re.compile(r"(\d+\.?\d*)\s*-\s*(\d+\.?\d*)")
_NUMERIC = re.compile(r"^[\d.]+$")


def _trim_float(text: str) -> str:
    """``"11.0"`` -> ``"11"``, ``"3.50"`` -> ``"3.5"``: ``str(float(x))`` without trailing zeros or dot."""
    return str(float(text)).rstrip("0").rstrip(".")


def standardize_value(value: Any, *, strict: bool = False) -> str:
    """Canonical form of a full-parse cell, the key of every comparison (reference ``standardize_value``).

    Steps: drop all whitespace; map Chinese punctuation, Greek mu, em dash and full-width tilde;
    fold full-width ASCII to half-width; upper-case; ``阴性(-)`` -> ``阴性-`` and ``阳性(+)`` ->
    ``阳性+`` (whole value only); ``~`` -> ``-``; numeric ranges lose trailing zeros
    (``11.0-45.0`` -> ``11-45``); a value made only of digits and dots becomes its float repr
    without trailing zeros (``5.20`` -> ``5.2``; unparsable ones such as ``1.2.3`` stay).

    Args:
        value: any cell; ``None`` gives ``""``, other non-strings go through ``str``.
        strict: also map the micro sign (U+00B5) to ``u``; the reference maps Greek mu only, so
            ``µmol/L`` and ``μmol/L`` differ after standardisation.
    """
    text = "" if value is None else str(value)
    text = "".join(text.split())
    if strict:
        text = text.replace("\u00b5", "u")
    text = text.translate(_CHAR_MAP)
    text = "".join(chr(ord(ch) - 0xFEE0) if 0xFF01 <= ord(ch) <= 0xFF5E else ch for ch in text)
    text = text.upper()
    if text == "阴性(-)":
        text = "阴性-"
    elif text == "阳性(+)":
        text = "阳性+"
    text = text.replace("~", "-")
    for start, end in _RANGE.findall(text):
        text = text.replace(f"{start}-{end}", f"{_trim_float(start)}-{_trim_float(end)}")
    if _NUMERIC.match(text):
        try:
            text = _trim_float(text)
        except ValueError:  # "1.2.3", "." : the reference leaves them as they are
            pass
    return text


_MEANINGLESS = (
    re.compile(r"^[-\s]{2,}$"),
    re.compile(r"^[~\s]+$"),
    re.compile(r"^[.\s]+$"),
    re.compile(r"^[()\s]+$"),
    re.compile(r"^[\[\]\s]+$"),
    re.compile(r"^[^\w\u4e00-\u9fff+\-]+$"),
)
_MEANINGFUL = re.compile(r"[\da-zA-Z\u4e00-\u9fff+\-]")


def is_meaningful(text: Any) -> bool:
    """Whether a (standardised) full-parse value carries information (reference ``is_meaningful_field``).

    False for non-strings, blanks, two or more dashes, only tildes / dots / brackets or only
    punctuation; otherwise true when it holds a digit, a Latin letter, a CJK ideograph, ``+`` or
    ``-``. A single ``-`` is meaningful (it is a sign), ``--`` is not.
    """
    if not isinstance(text, str) or not text.strip():
        return False
    text = text.strip()
    if any(pattern.match(text) for pattern in _MEANINGLESS):
        return False
    return _MEANINGFUL.search(text) is not None


# --------------------------------------------------------------------------------------------
# Entry matching
# --------------------------------------------------------------------------------------------


def _similarity(a: str, b: str) -> float:
    import Levenshtein  # the reference's package (``levenshtein`` on PyPI)

    return 1.0 if a == b else float(Levenshtein.ratio(a, b))


def match_entry_names(pred_names: Sequence[str], label_names: Sequence[str], *,
                      matching: Matching = "greedy") -> list[tuple[int, int, float]]:
    """One-to-one pairing of predicted and gold entry names by Levenshtein ratio, no threshold.

    ``"greedy"`` (the reference): score every pair, sort by ratio descending (stable, so ties keep
    row-major order: lower prediction index, then lower gold index), and take each pair whose
    two sides are still free until ``min(len(pred), len(label))`` pairs exist. ``"hungarian"``
    maximises the summed ratio instead (``scipy.optimize.linear_sum_assignment``).

    Returns:
        ``(pred_index, label_index, ratio)`` triples: in assignment order for greedy, by
        prediction index for hungarian. Empty when either side is empty.

    Raises:
        ValueError: unknown ``matching``.
        ImportError: ``matching="hungarian"`` without scipy installed.
    """
    if matching not in ("greedy", "hungarian"):
        raise ValueError(f"matching must be 'greedy' or 'hungarian', got {matching!r}")
    if not pred_names or not label_names:
        return []
    scores = [[_similarity(p, g) for g in label_names] for p in pred_names]
    if matching == "hungarian":
        try:
            from scipy.optimize import linear_sum_assignment
        except ImportError as err:
            raise ImportError("matching='hungarian' needs scipy (pip install scipy); "
                              "the reference scorer uses matching='greedy'") from err
        rows, cols = linear_sum_assignment(scores, maximize=True)
        return [(int(i), int(j), scores[i][j]) for i, j in zip(rows, cols)]
    candidates = sorted(((scores[i][j], i, j) for i in range(len(pred_names)) for j in range(len(label_names))),
                        key=lambda triple: -triple[0])
    wanted = min(len(pred_names), len(label_names))
    used_pred: set[int] = set()
    used_label: set[int] = set()
    pairs: list[tuple[int, int, float]] = []
    for ratio, i, j in candidates:
        if i in used_pred or j in used_label:
            continue
        pairs.append((i, j, ratio))
        used_pred.add(i)
        used_label.add(j)
        if len(pairs) == wanted:
            break
    return pairs


def pair_entries(pred_table: Mapping[str, Any], label_table: Mapping[str, Any], fields: Sequence[str],
                 check: Callable[[Any, Any, str], FieldCheck], *, matching: Matching = "greedy") -> list[EntryPair]:
    """Match entries by name (``match_entry_names``) and check each field of each matched pair.

    ``pred_table`` / ``label_table`` map standardised entry names to entries; ``check(pred, label,
    field)`` compares one field. Both table tasks (full parse, abnormality QA) use this.
    """
    pred_names, label_names = list(pred_table), list(label_table)
    pairs: list[EntryPair] = []
    for i, j, ratio in match_entry_names(pred_names, label_names, matching=matching):
        pred_entry, label_entry = pred_table[pred_names[i]], label_table[label_names[j]]
        pairs.append(EntryPair(pred_names[i], label_names[j], ratio,
                               [check(pred_entry, label_entry, name) for name in fields]))
    return pairs


# --------------------------------------------------------------------------------------------
# Judge calls and verdicts
# --------------------------------------------------------------------------------------------

#: Negated replies. ``是否`` ("whether") is removed before the test so it is not read as 否.
_NEGATION = re.compile(r"不是|不对|不正确|不相等|不相同|不一致|不等价|不等|否|错误|\bno\b|\bnot\b|\bincorrect\b|\bfalse\b")


def reply_is_positive(reply: str, positives: Sequence[str], *, strict: bool = False) -> bool:
    """Read a judge's yes/no reply the way the reference does: a substring test on ``positives``.

    The reply is stripped and lower-cased first. Default (reference): positive when any of
    ``positives`` occurs, so ``不相等`` ("not equal") contains ``相等`` and ``不是`` ("is not")
    contains ``是`` and both count as positive. ``strict=True``: a reply containing a negation
    (不是 / 不对 / 不正确 / 不相等 / 不相同 / 不一致 / 否 / 错误 / no / not / incorrect / false) is negative.
    """
    text = reply.strip().lower()
    if strict and _NEGATION.search(text.replace("是否", "")):
        return False
    return any(word in text for word in positives)


@dataclass
class _JudgeTally:
    calls: int = 0
    errors: int = 0

    def ask(self, judge: JudgeFn, prompt: str) -> str | None:
        """The reply, or ``None`` when the judge raised ``JudgeError`` (counted, scored as no match)."""
        self.calls += 1
        try:
            return judge(prompt)
        except JudgeError:
            self.errors += 1
            return None


# --------------------------------------------------------------------------------------------
# Result records
# --------------------------------------------------------------------------------------------


class _Record:
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (nested records become dicts)."""
        return asdict(self)  # type: ignore[call-overload]


@dataclass
class PRF(_Record):
    """Precision, recall and F1, fractions in [0, 1]."""

    precision: float = 0.0
    recall: float = 0.0
    f1: float = 0.0


@dataclass
class FieldScore(_Record):
    """One field of one document, or pooled over documents (micro): true positives and counts."""

    tp: int = 0
    n_pred: int = 0
    n_label: int = 0
    precision: float = 0.0
    recall: float = 0.0
    f1: float = 0.0


@dataclass
class FieldCheck(_Record):
    """How one field of one matched entry pair was decided.

    ``rule``: ``"both_empty"`` (neither side meaningful: match), ``"one_empty"`` (only one side
    meaningful: no match), ``"exact"`` (equal after standardisation), ``"judge"`` (the judge
    decided; ``reply`` holds its text), ``"judge_error"`` (the judge raised ``JudgeError``: no
    match), ``"differ"`` (unequal and no judge consulted).
    """

    field: str
    pred: str
    label: str
    match: bool
    rule: str
    reply: str | None = None


@dataclass
class EntryPair(_Record):
    """A predicted entry matched to a gold entry (standardised names) and its field checks."""

    pred_name: str
    label_name: str
    similarity: float
    checks: list[FieldCheck] = field(default_factory=list)


@dataclass
class DocScore(_Record):
    """One document of a table task (LTR_fullparsing or LTR_abnormalityQA).

    Attributes:
        id: caller's document id.
        score: mean of the per-field F1s x 100 (0-100).
        fields: per field, TP and counts of de-duplicated entries with a meaningful name.
        pairs: the matched entries with their field checks.
        pred_items / label_items: raw parsed row counts (before de-duplication).
        parse_failed: the prediction gave no rows (full parse), or prediction or gold failed to
            parse (abnormality, reference rule).
        empty_case: abnormality only: both sides had no abnormal item, scored 100.
        error: set when the reference scorer crashes on this input (it then scores 0 and leaves
            the document out of the macro and micro averages); the message says why.
        judge_calls / judge_errors: judge prompts sent, and how many raised ``JudgeError``.
    """

    id: str
    score: float
    fields: dict[str, FieldScore]
    pairs: list[EntryPair] = field(default_factory=list)
    pred_items: int = 0
    label_items: int = 0
    parse_failed: bool = False
    empty_case: bool = False
    error: str | None = None
    judge_calls: int = 0
    judge_errors: int = 0


@dataclass
class TableSummary(_Record):
    """Dataset result of a table task.

    Attributes:
        overall: 0.5 * ``f1_micro`` + 0.5 * ``f1_macro``, on 0-100.
        macro: per field, the mean over documents of each document's P / R / F1.
        micro: per field, P / R / F1 of the pooled TP and counts.
        precision_macro / recall_macro / f1_macro: means of the 4 field macro values.
        precision_micro / recall_micro / f1_micro: from TP and counts pooled over all fields.
        n_docs, n_valid_docs: documents scored, and those without a reference crash (the
            denominator of the macro averages).
        parse_failed_count, parse_success_rate: documents with ``parse_failed``, and the share without.
        total_pred_items / avg_pred_items, total_label_items / avg_label_items: raw row counts.
        judge_calls / judge_errors: summed over documents.
        docs: the per-document results.
    """

    overall: float
    macro: dict[str, PRF]
    micro: dict[str, FieldScore]
    precision_macro: float
    recall_macro: float
    f1_macro: float
    precision_micro: float
    recall_micro: float
    f1_micro: float
    n_docs: int
    n_valid_docs: int
    parse_failed_count: int
    parse_success_rate: float
    total_pred_items: int
    avg_pred_items: float
    total_label_items: int
    avg_label_items: float
    judge_calls: int
    judge_errors: int
    docs: list[DocScore] = field(default_factory=list)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else 0.0


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def field_score(tp: int, n_pred: int, n_label: int, *, decided: bool, rounded: bool) -> FieldScore:
    """P = TP / n_pred, R = TP / n_label, F1; all zero when no entry was compared (``decided`` false).

    ``rounded``: round P / R / F1 to 4 decimals, as the reference stores them per document
    (the macro averages are then means of rounded values).
    """
    if not decided:
        return FieldScore(0, n_pred, n_label)
    precision, recall = _ratio(tp, n_pred), _ratio(tp, n_label)
    f1 = _f1(precision, recall)
    if rounded:
        precision, recall, f1 = round(precision, 4), round(recall, 4), round(f1, 4)
    return FieldScore(tp, n_pred, n_label, precision, recall, f1)


def aggregate_table_docs(docs: Sequence[DocScore], fields: Sequence[str],
                         micro_counts: Callable[[DocScore, str], tuple[int, int]]) -> TableSummary:
    """Macro, micro and Overall over documents (both table tasks).

    ``micro_counts(doc, field)`` gives the (n_pred, n_label) a document adds to the micro pool;
    TP always comes from ``doc.fields``. Documents with ``error`` are left out of both averages.
    """
    valid = [doc for doc in docs if doc.error is None]
    macro: dict[str, PRF] = {}
    micro: dict[str, FieldScore] = {}
    for name in fields:
        n = len(valid)
        macro[name] = PRF(_ratio(sum(d.fields[name].precision for d in valid), n),
                          _ratio(sum(d.fields[name].recall for d in valid), n),
                          _ratio(sum(d.fields[name].f1 for d in valid), n))
        tp = sum(d.fields[name].tp for d in valid)
        n_pred = n_label = 0
        for doc in valid:
            doc_pred, doc_label = micro_counts(doc, name)
            n_pred += doc_pred
            n_label += doc_label
        precision, recall = _ratio(tp, n_pred), _ratio(tp, n_label)
        micro[name] = FieldScore(tp, n_pred, n_label, precision, recall, _f1(precision, recall))
    k = len(fields)
    f1_macro = sum(m.f1 for m in macro.values()) / k
    tp_all = sum(m.tp for m in micro.values())
    precision_micro = _ratio(tp_all, sum(m.n_pred for m in micro.values()))
    recall_micro = _ratio(tp_all, sum(m.n_label for m in micro.values()))
    f1_micro = _f1(precision_micro, recall_micro)
    n_docs = len(docs)
    failed = sum(doc.parse_failed for doc in docs)
    total_pred = sum(doc.pred_items for doc in docs)
    total_label = sum(doc.label_items for doc in docs)
    return TableSummary(
        overall=100 * (0.5 * f1_micro + 0.5 * f1_macro),
        macro=macro,
        micro=micro,
        precision_macro=sum(m.precision for m in macro.values()) / k,
        recall_macro=sum(m.recall for m in macro.values()) / k,
        f1_macro=f1_macro,
        precision_micro=precision_micro,
        recall_micro=recall_micro,
        f1_micro=f1_micro,
        n_docs=n_docs,
        n_valid_docs=len(valid),
        parse_failed_count=failed,
        parse_success_rate=_ratio(n_docs - failed, n_docs),
        total_pred_items=total_pred,
        avg_pred_items=_ratio(total_pred, n_docs),
        total_label_items=total_label,
        avg_label_items=_ratio(total_label, n_docs),
        judge_calls=sum(doc.judge_calls for doc in docs),
        judge_errors=sum(doc.judge_errors for doc in docs),
        docs=list(docs),
    )


def check_mapping(row: Any, where: str) -> Mapping[str, Any]:
    """Validate a gold row given as a Python object."""
    if not isinstance(row, Mapping) or not all(isinstance(key, str) for key in row):
        raise TypeError(f"{where}: expected a dict with string keys, got {row!r}")
    return row
