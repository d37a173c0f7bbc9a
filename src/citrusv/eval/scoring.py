"""Score a benchmark's prediction rows with the reference protocol of its family.

``score_rows`` is what ``citrusv eval score`` and ``citrusv eval run`` call. Input rows are
prediction rows (``citrusv.eval.predictions``): ``id``, ``question``, ``options``, ``answer``,
``prediction`` plus each family's extra fields:

========================= ==================================================================
family                    extra fields read
========================= ==================================================================
vqa                       ``answer_type`` (SLAKE: ``closed`` / ``open``)
mcq                       ``options``: letter → the option string as the prompt rendered it
report                    none (``answer`` is the formatted gold report)
meddoc_full / _abnormal   ``answer`` = list of ``{entryname, result, unit, reference[, status]}``
meddoc_simple             ``extra.field`` (``result`` / ``reference``), ``extra.unit``
meddoc_general            ``extra.doc_type``, ``extra.department`` (breakdowns)
segmentation              ``prediction_masks`` (COCO RLE list), ``image_size`` ``[h, w]``
detection                 ``extra.width`` / ``extra.height`` (original image size)
========================= ==================================================================

A row missing ``id`` or ``answer`` is reported in ``errors`` and left out; a row whose model call
failed (``error`` set, no prediction) is scored as an empty answer, as the reference would.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from .metrics.answers import strip_think
from .metrics.base import JudgeFn
from .metrics.choice import judge_multi_choice
from .metrics.grounding import score_detection, score_segmentation
from .metrics.vqa import score_vqa
from .results import BenchmarkScore

__all__ = ["ScoringOptions", "choices_of", "score_rows"]

_TEXT_FAMILIES = {"vqa", "mcq", "report", "meddoc_full", "meddoc_simple", "meddoc_abnormal", "meddoc_general"}
#: MCQ sets whose scorer first keeps the ``<answer>`` content (all but PMC-VQA).
_MCQ_WITHOUT_ANSWER_TAG = {"pmc_vqa"}


class ScoringOptions:
    """Knobs shared by every family.

    Args:
        judge: the LLM judge (open VQA, all of SLAKE, MedDocBench equivalence and GMD scores).
        strict: fix the reference's documented bugs (``docs/evaluation.md`` lists each).
        cider_df: document frequencies for CIDEr: a path to cidereval's ``coco-val.p`` (the
            reference's), ``"coco-val"`` (that file from an installed ``cidereval``), ``"corpus"``
            (counted on the evaluated references), or ``"auto"``: ``coco-val`` when installed, else
            ``corpus`` with the result marked not comparable.
        ratescore: a RaTEScore scorer (``citrusv.eval.metrics.report``), or ``None`` to skip.
        matching: MedDocBench entry matching, ``"greedy"`` (reference) or ``"hungarian"``.
    """

    def __init__(self, *, judge: JudgeFn | None = None, strict: bool = False, cider_df: Any = "auto",
                 ratescore: Any = None, matching: str = "greedy"):
        self.judge = judge
        self.strict = strict
        self.cider_df = cider_df
        self.ratescore = ratescore
        self.matching = matching


def choices_of(row: Mapping[str, Any]) -> list[str]:
    """The option strings as the prompt rendered them."""
    extra = row.get("extra") or {}
    if extra.get("choices"):
        return [str(c) for c in extra["choices"]]
    options = row.get("options") or {}
    if not isinstance(options, Mapping) or not options:
        raise ValueError("a multiple-choice row needs 'options' (letter → text) or 'extra.choices'")
    # Values are the option strings as rendered ("A. text", "A.text", or bare text for MCMLE).
    return [str(text) for _, text in sorted(options.items())]


def _validate(rows: Sequence[Any], errors: list[str]) -> list[dict[str, Any]]:
    good = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            errors.append(f"row {index}: not a JSON object")
            continue
        missing = [k for k in ("id", "answer") if k not in row]
        if missing:
            errors.append(f"row {index}: missing {', '.join(missing)}")
            continue
        row = dict(row)
        prediction = row.get("prediction")
        if prediction is None:
            row["prediction"] = ""
        elif not isinstance(prediction, str):
            errors.append(f"row {index} (id {row['id']}): 'prediction' must be a string, got {type(prediction).__name__}")
            continue
        good.append(row)
    return good


def _by_tag(rows: Sequence[Mapping[str, Any]], item_scores: Mapping[str, float]) -> dict[str, dict[str, dict[str, float]]]:
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        value = item_scores.get(str(row["id"]))
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        for key, tag in (row.get("tags") or {}).items():
            if tag not in (None, ""):
                groups[key][str(tag)].append(float(value))
    return {key: {tag: {"mean": sum(v) / len(v), "count": len(v)} for tag, v in sorted(tags.items())}
            for key, tags in sorted(groups.items())}


def score_rows(benchmark: str, rows: Sequence[Mapping[str, Any]], *, model: str | None = None,
               options: ScoringOptions | None = None) -> BenchmarkScore:
    """Score prediction rows of one registered benchmark (see the module docstring)."""
    from .benchmarks import get_benchmark

    spec = get_benchmark(benchmark)
    options = options or ScoringOptions()
    errors: list[str] = []
    rows = _validate(rows, errors)
    if spec.family in _TEXT_FAMILIES:
        for row in rows:
            row["prediction"] = strip_think(row["prediction"])
    model = model or next((str(r["model"]) for r in rows if r.get("model")), "model")
    result = BenchmarkScore(benchmark=spec.name, title=spec.title, capability=spec.capability, family=spec.family,
                            model=model, score=0.0, metric="", strict=options.strict)
    unanswered = sum(1 for r in rows if r.get("error"))
    if unanswered:
        result.notes.append(f"{unanswered} row(s) had no answer (model call failed) and count as wrong")
    scorer = _SCORERS[spec.family]
    item_scores = scorer(spec.name, rows, options, result, errors)
    result.errors = errors
    result.by_tag = _by_tag(rows, item_scores)
    result.details["unanswered"] = unanswered
    return result


# ----------------------------------------------------------------------------- family scorers
def _score_vqa(name, rows, options, result, errors) -> dict[str, float]:
    scores = score_vqa(name, rows, judge=options.judge, strict=options.strict)
    result.score, result.metric, result.count = scores.accuracy, "accuracy", scores.total
    result.metrics = {"accuracy": scores.accuracy, "closed_accuracy": scores.closed_accuracy,
                      "open_accuracy": scores.open_accuracy}
    result.comparable = scores.comparable
    if not scores.comparable:
        result.notes.append("scored without an LLM judge (rule-only exact match for open answers); "
                            "the paper used a GPT-4.1 judge")
    result.details.update(closed_total=scores.closed_total, open_total=scores.open_total,
                          judge_failures=scores.judge_failures)
    result.items = [vars(item) | {"score": 100.0 * item.correct} for item in scores.items]
    return {item.id: 100.0 * item.correct for item in scores.items}


def _score_mcq(name, rows, options, result, errors) -> dict[str, float]:
    items, per_id = [], {}
    for row in rows:
        try:
            choices = choices_of(row)
            verdict = judge_multi_choice(choices, str(row["answer"]), row["prediction"], strict=options.strict,
                                         extract_answer_tag=name not in _MCQ_WITHOUT_ANSWER_TAG)
        except ValueError as err:
            errors.append(f"id {row['id']}: {err}")
            continue
        per_id[str(row["id"])] = 100.0 * verdict.correct
        items.append({"id": str(row["id"]), "score": 100.0 * verdict.correct, "extracted": verdict.extracted,
                      "rule": verdict.rule})
    result.count = len(items)
    result.score = sum(per_id.values()) / len(per_id) if per_id else 0.0
    result.metric = "accuracy"
    result.metrics = {"accuracy": result.score}
    result.items = items
    return per_id


def _score_segmentation(name, rows, options, result, errors) -> dict[str, float]:
    scores = score_segmentation(rows)
    result.score, result.metric, result.count = scores.mean_dice, "dice", scores.count
    result.metrics = {"dice": scores.mean_dice, "dice_std": scores.std_dice, "iou": scores.mean_iou}
    result.details.update(skipped=scores.skipped, failed=scores.failed)
    errors.extend(f"id {i['id']}: {i['error']}" for i in scores.items if "error" in i)
    result.items = scores.items
    return {i["id"]: i["score"] for i in scores.items if "score" in i}


def _score_detection(name, rows, options, result, errors) -> dict[str, float]:
    scores = score_detection(rows, strict=options.strict)
    result.score, result.metric, result.count = scores.precision, "precision@0.5", scores.count
    result.metrics = {"precision@0.5": scores.precision, "mean_iou": scores.mean_iou}
    result.details["skipped"] = scores.skipped
    errors.extend(f"id {i['id']}: {i['error']}" for i in scores.items if "error" in i)
    result.items = scores.items
    return {i["id"]: i["score"] for i in scores.items if "score" in i}


def _gold_entries(row: Mapping[str, Any]) -> Any:
    # The answer cell as the reference read it, so its own gold parser (quirks included) runs.
    extra = row.get("extra") or {}
    return extra.get("answer_raw", row["answer"])


def _table_summary_into(result: BenchmarkScore, summary: Any, docs: list[Any]) -> dict[str, float]:
    result.score, result.metric, result.count = summary.overall, "overall", len(docs)
    result.metrics = {"overall": summary.overall, "f1_macro": 100 * summary.f1_macro, "f1_micro": 100 * summary.f1_micro}
    result.details.update(parse_failures=summary.parse_failed_count, parse_success_rate=summary.parse_success_rate,
                          avg_pred_items=summary.avg_pred_items, judge_calls=summary.judge_calls,
                          judge_errors=summary.judge_errors,
                          fields={k: v.to_dict() for k, v in summary.macro.items()})

    result.items = [d.to_dict() for d in docs]
    return {d.id: d.score for d in docs if d.error is None}


def _score_meddoc_full(name, rows, options, result, errors) -> dict[str, float]:
    from .metrics.meddoc import aggregate_full_parse, score_full_parse

    docs = [score_full_parse(r["prediction"], _gold_entries(r), judge=options.judge, strict=options.strict,
                             matching=options.matching, doc_id=str(r["id"])) for r in rows]
    return _table_summary_into(result, aggregate_full_parse(docs), docs)


def _score_meddoc_abnormal(name, rows, options, result, errors) -> dict[str, float]:
    from .metrics.meddoc import aggregate_abnormality, score_abnormality

    docs = [score_abnormality(r["prediction"], _gold_entries(r), judge=options.judge, strict=options.strict,
                              matching=options.matching, doc_id=str(r["id"])) for r in rows]
    errors.extend(f"id {d.id}: {d.error}" for d in docs if d.error)
    return _table_summary_into(result, aggregate_abnormality(docs, strict=options.strict), docs)


def _score_meddoc_simple(name, rows, options, result, errors) -> dict[str, float]:
    from .metrics.meddoc import aggregate_simple_qa, score_simple_qa

    items = []
    for row in rows:
        extra = row.get("extra") or {}
        items.append(score_simple_qa(row["prediction"], str(row["answer"]), field_type=extra.get("field", "result"),
                                     question=str(row.get("question", "")), judge=options.judge,
                                     strict=options.strict, item_id=str(row["id"]),
                                     entryname=str(extra.get("entryname", ""))))
    summary = aggregate_simple_qa(items)
    result.score, result.metric, result.count = summary.overall, "overall", summary.n
    result.metrics = {"overall": summary.overall, "exact_match_rate": summary.exact_match_rate}
    result.details.update(judge_calls=summary.judge_calls, judge_errors=summary.judge_errors,
                          by_field_type={k: v.to_dict() for k, v in summary.by_field_type.items()})
    result.items = [i.to_dict() | {"score": 100 * i.score} for i in items]
    if options.judge is None:
        result.comparable = False
        result.notes.append("scored without the LLM equivalence judge the reference uses")
    return {i.id: 100 * i.score for i in items}


def _score_meddoc_general(name, rows, options, result, errors) -> dict[str, float]:
    from .metrics.meddoc import aggregate_general_qa, score_general_qa

    result.metric = "judge score"
    if options.judge is None:
        result.score = None
        result.comparable = False
        result.notes.append("GMD questions are scored only by an LLM judge: pass --judge-endpoint")
        return {}
    items = []
    for row in rows:
        extra = row.get("extra") or {}
        items.append(score_general_qa(row["prediction"], str(row["answer"]), question=str(row.get("question", "")),
                                      judge=options.judge, strict=options.strict, item_id=str(row["id"]),
                                      doc_type=str(extra.get("doc_type") or "unknown"),
                                      department=str(extra.get("department") or "unknown")))
    summary = aggregate_general_qa(items)
    result.score, result.count = summary.overall, summary.n
    result.metrics = {"judge_score": summary.overall}
    result.details["judge_errors"] = sum(i.judge_error for i in items)
    result.items = [i.to_dict() for i in items]
    return {i.id: i.score for i in items}


def _score_report(name, rows, options, result, errors) -> dict[str, float]:
    from .metrics.report import COCO_VAL_DF, score_reports
    from .metrics.report_cider import resolve_document_frequency

    # The fork reads a study's own ``report`` field first when the file has one (ReXrank's does).
    references = [str((r.get("extra") or {}).get("report_field") or r["answer"]) for r in rows]
    cider_df = options.cider_df
    if cider_df == "auto":
        try:
            cider_df = resolve_document_frequency(COCO_VAL_DF)
        except FileNotFoundError:
            cider_df = "corpus"
            result.comparable = False
            result.notes.append("CIDEr IDF counted on the evaluated references (no coco-val.p given with "
                                "--cider-df); the reference uses cidereval's COCO-val document frequencies")
    scores = score_reports([r["prediction"] for r in rows], references, strict=options.strict, cider_df=cider_df,
                           ratescore=options.ratescore)
    result.score, result.metric, result.count = scores.rouge_l, "rouge_l", scores.n_rows
    cider = None if scores.cider != scores.cider else scores.cider  # NaN: every prediction empty
    result.metrics = {"rouge_l": scores.rouge_l, "cider": cider, "ratescore": scores.ratescore}
    if scores.ratescore is None:
        result.notes.append("RaTEScore not computed (pass --ratescore-models NER_DIR BIOLORD_DIR)")
    result.details.update(empty_rows=len(scores.empty_rows), cider_df=scores.cider_df)
    result.items = [{"id": str(r["id"]), "score": rouge, "rouge_l": rouge, "cider": cider_row, "ratescore": rate}
                    for r, rouge, cider_row, rate in zip(rows, scores.rouge_l_per_row, scores.cider_per_row,
                                                          scores.ratescore_per_row, strict=True)]
    return {item["id"]: item["score"] for item in result.items}


_SCORERS = {
    "report": _score_report,
    "meddoc_full": _score_meddoc_full,
    "meddoc_abnormal": _score_meddoc_abnormal,
    "meddoc_simple": _score_meddoc_simple,
    "meddoc_general": _score_meddoc_general,
    "vqa": _score_vqa,
    "mcq": _score_mcq,
    "segmentation": _score_segmentation,
    "detection": _score_detection,
}
