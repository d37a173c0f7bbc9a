"""Medical VQA scoring (VQA-RAD, SLAKE, PathVQA) as JD Health's MedEvalKit fork does it.

Per item:

* **closed yes/no** (``judge_yes_no``): after ``parse_response`` and removing newlines and
  periods, exactly one of "yes" / "no" occurs as a substring (XOR) and the gold occurs as a
  substring. "no" also matches inside "not", "normal", "node" (reference quirk, kept in both
  modes: it is the definition of the metric the paper reports).
* **closed, other** (``judge_closed``): exact equality after the same normalisation.
* **open, rule mode** (``open_exact_match``): ``parse_response(pred) == gold.lower()``; periods
  are *not* removed. Not comparable with the paper, which used an LLM judge.
* **open, judge mode**: ``judge_prompt`` → the judge's ``<judge>0/1</judge>``; 0 means correct,
  a missing tag or a failed call means incorrect.

Benchmark protocols (``score_vqa``), JD fork semantics:

* ``vqa_rad``, ``path_vqa``: an item is closed when ``gold.lower()`` is "yes" or "no" → rule;
  open items → the judge (rule exact match without one).
* ``slake``: with a judge, **every** item is judged (closed ones too). Without one, closed items
  use the yes/no rule only when the gold is literally "yes"/"no"; SLAKE golds are capitalised
  ("Yes"), so they fall to exact match and a verbose "yes, because …" is wrong (reference quirk;
  ``strict=True`` lower-cases the gold first).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .answers import extract_tag_content, parse_response, pre_extract_vqa
from .base import JudgeError, JudgeFn, judge_many

__all__ = [
    "JUDGE_VERDICT",
    "VQAItemScore",
    "VQAScores",
    "judge_closed",
    "judge_prompt",
    "judge_yes_no",
    "open_exact_match",
    "parse_judge_verdict",
    "score_vqa",
    "token_prf",
]

JUDGE_VERDICT = re.compile(r"<judge>(.*?)</judge>")  # no DOTALL: the reference's pattern


def _normalise_closed(response: str) -> str:
    return parse_response(response).replace("\n", "").replace(".", "")


def judge_yes_no(answer: str, response: str) -> bool:
    """Closed yes/no rule (``judge_judgement``)."""
    answer = answer.lower()
    text = _normalise_closed(response)
    return (("yes" in text) != ("no" in text)) and answer in text


def judge_closed(answer: str, response: str) -> bool:
    """Closed non-yes/no rule (``judge_close_end_vqa``): exact match after normalisation."""
    return _normalise_closed(response) == answer.lower()


def open_exact_match(answer: str, response: str) -> bool:
    """Open rule (``judge_open_end_vqa``'s ``em``): exact match, periods kept."""
    return parse_response(response) == answer.lower()


def token_prf(prediction: str, reference: str) -> tuple[float, float, float]:
    """Set-of-tokens precision, recall, F1 (lower-cased, whitespace split); 0s when a side is empty.

    Logged by the reference for open questions (its log swaps the three names; the values here are
    in the right order). Not part of accuracy.
    """
    pred, ref = set(prediction.lower().split()), set(reference.lower().split())
    if not pred or not ref:
        return 0.0, 0.0, 0.0
    common = len(pred & ref)
    precision, recall = common / len(pred), common / len(ref)
    if precision + recall == 0:
        return 0.0, 0.0, 0.0
    return precision, recall, 2 * precision * recall / (precision + recall)


def judge_prompt(question: str, response: str, answer: str) -> str:
    """The reference's judge prompt (``get_compare_messages``): one user message, 0 = correct."""
    return f"""
Your task is to determine whether the user's answer is correct based on the provided questions and standard answers (for example, if the user expresses a similar meaning to the standard answer, or another interpretation of the standard answer, it is considered correct.)

The question is: {question}

The standard answer: {answer}

The user's answer: {response}

Please strictly follow the following format for output(0 represents correct, 1 represents incorrect):
<think>{{your concise think step}}</think>
<judge>{{0/1}}</judge>

for example:
<think>The standard answer is right, and the user's answer is right frontal lobe, they express the same meaning, so it is correct.</think>
<judge>0</judge>
    """


def parse_judge_verdict(reply: str | None) -> bool:
    """``True`` when the first single-line ``<judge>`` span of the reply is exactly ``"0"``."""
    if not reply:
        return False
    match = JUDGE_VERDICT.search(reply)
    if match is None:
        return False
    return extract_tag_content(match.group(1), "judge") == "0"


@dataclass
class VQAItemScore:
    id: str
    correct: bool
    kind: str  # "yes_no" | "closed" | "open"
    method: str  # "rule" | "judge" | "judge_failed"
    extracted: str
    judge_reply: str | None = None
    token_f1: float | None = None


@dataclass
class VQAScores:
    """Accuracies on 0–100 and per-item verdicts. ``comparable`` is False when open items (or
    SLAKE) were scored by rule: the paper's numbers used an LLM judge."""

    benchmark: str
    accuracy: float
    closed_accuracy: float | None
    open_accuracy: float | None
    total: int
    closed_total: int
    open_total: int
    judge_failures: int
    comparable: bool
    items: list[VQAItemScore] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _percent(right: int, total: int) -> float | None:
    return 100.0 * right / total if total else None


def score_vqa(benchmark: str, rows: Sequence[dict[str, Any]], *, judge: JudgeFn | None = None,
              strict: bool = False) -> VQAScores:
    """Score one VQA benchmark.

    Args:
        benchmark: ``"vqa_rad"``, ``"path_vqa"`` or ``"slake"`` (any other name gets the
            VQA-RAD protocol).
        rows: dicts with ``id``, ``question``, ``answer`` (gold), ``prediction`` and, for SLAKE,
            ``answer_type`` (``"closed"`` / ``"open"``, any case).
        judge: the LLM judge for open answers (and all of SLAKE); ``None`` = rule-only mode.
        strict: SLAKE yes/no detection on the lower-cased gold (see the module docstring).
    """
    prepared = []  # (row id, kind, extracted response, rule verdict, judge prompt or None, token F1)
    slake = benchmark == "slake"
    for row in rows:
        question, gold = str(row.get("question", "")), str(row["answer"])
        response = pre_extract_vqa(str(row.get("prediction") or ""))
        if slake:
            is_open = str(row.get("answer_type", "")).lower() == "open"
            gold_test = gold.lower() if strict else gold
            kind = "open" if is_open else ("yes_no" if gold_test in ("yes", "no") else "closed")
        else:
            # VQA-RAD / PathVQA lower-case both sides first, and judge the lower-cased strings.
            gold, response = gold.lower().strip(), response.lower().strip()
            kind = "yes_no" if gold in ("yes", "no") else "open"
        f1 = None
        if kind == "yes_no":
            correct = judge_yes_no(gold, response)
        elif kind == "closed":
            correct = judge_closed(gold, response)
        else:
            correct = open_exact_match(gold, response)
            f1 = token_prf(parse_response(response), gold.lower())[2]
        use_judge = judge is not None and (slake or kind == "open")
        prompt = judge_prompt(question, response, gold) if use_judge else None
        prepared.append((str(row["id"]), kind, response, bool(correct), prompt, f1))
    prompts = [p[4] for p in prepared if p[4] is not None]
    replies = iter(judge_many(judge, prompts) if prompts and judge is not None else [])
    items: list[VQAItemScore] = []
    closed_right = open_right = closed_total = open_total = failures = 0
    for row_id, kind, response, correct, prompt, f1 in prepared:
        method, reply = "rule", None
        if prompt is not None:
            answer = next(replies)
            if isinstance(answer, JudgeError):
                # The fork turns five failed calls into the reply "1": incorrect.
                correct, method = False, "judge_failed"
                failures += 1
            else:
                correct, method, reply = parse_judge_verdict(answer), "judge", answer
        if kind == "open":
            open_total += 1
            open_right += correct
        else:
            closed_total += 1
            closed_right += correct
        items.append(VQAItemScore(row_id, bool(correct), kind, method, response, reply, f1))
    total = closed_total + open_total
    comparable = judge is not None or (open_total == 0 and not slake)
    return VQAScores(
        benchmark=benchmark,
        accuracy=_percent(closed_right + open_right, total) or 0.0,
        closed_accuracy=_percent(closed_right, closed_total),
        open_accuracy=_percent(open_right, open_total),
        total=total,
        closed_total=closed_total,
        open_total=open_total,
        judge_failures=failures,
        comparable=comparable,
        items=items,
    )

