"""Multiple-choice scoring: the reference answer-extraction cascade (``judge_multi_choice``).

Used by PMC-VQA, MedXpertQA (MM and Text) and every text QA set. ``choices`` are the option
strings exactly as the prompt renders them (``"A. text"``, ``"A.text"`` or, for MedQA-MCMLE, the
bare option text); ``answer`` is the gold, an option letter in every benchmark here.

Reference quirks reproduced by default (``strict=False``), each fixed by ``strict=True``:

* only an answer made entirely of spaces counts as empty; ``"   \\n"`` or ``"..."`` goes to the
  similarity fallback, which picks option A when nothing is similar, so it is scored correct when
  the gold is A. Strict: any answer that is blank after stripping is wrong, and a fallback whose
  best similarity is 0 is wrong.
* the "longer than 300 characters" guard has no effect (it sets a flag that is overwritten).
  Strict keeps that behaviour too: the fallback is what makes long free-text answers scoreable.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from .answers import extract_tag_content, parse_response

__all__ = ["ChoiceVerdict", "judge_multi_choice", "option_letters"]


def option_letters(count: int) -> list[str]:
    """``["a", "b", ...]``: the reference compares lower-case letters."""
    if count < 1 or count > 26:
        raise ValueError(f"a multiple-choice question needs 1..26 options, got {count}")
    return [chr(ord("a") + i) for i in range(count)]


@dataclass(frozen=True)
class ChoiceVerdict:
    """How a response was scored. ``rule`` names the cascade step that decided."""

    correct: bool
    extracted: str
    rule: str  # "empty" | "exact" | "letter" | "option_text" | "similarity" | "no_match"


def _similarity_index(choices: Sequence[str], response: str) -> tuple[int, float]:
    best_index, best = 0, 0.0
    for index, choice in enumerate(choices):
        ratio = difflib.SequenceMatcher(None, choice, response).ratio()
        if ratio > best:  # strict '>': the first maximum wins, index 0 when all are 0
            best_index, best = index, ratio
    return best_index, best


def judge_multi_choice(choices: Sequence[str], answer: str, response: str, *, strict: bool = False,
                       extract_answer_tag: bool = False) -> ChoiceVerdict:
    """Score one multiple-choice response as the reference does.

    Args:
        choices: option strings as rendered in the prompt.
        answer: the gold (an option letter, any case).
        response: the model text.
        strict: fix the documented quirks (see the module docstring).
        extract_answer_tag: first reduce the response to its ``<answer>`` content (MedXpertQA and
            the text sets do this before the cascade; PMC-VQA does not).
    """
    if extract_answer_tag:
        response = extract_tag_content(response, "answer")
    blank = not response.strip() if strict else response.replace(" ", "") == ""
    if blank:
        return ChoiceVerdict(False, "", "empty")
    alphas = option_letters(len(choices))
    response = response.lower()
    paragraphs = response.split("\n\n")
    if paragraphs[0] in alphas:
        response = paragraphs[0]
    elif paragraphs[-1].split(".")[0] in alphas:
        response = paragraphs[-1].split(".")[0]
    response = parse_response(response)
    lowered = [choice.lower() for choice in choices]
    response = response.strip().lower().replace("\n", "").replace("*", "")
    head = response.split(".")[0].split(":")[-1]
    gold = answer.strip().lower()
    if head == gold:
        return ChoiceVerdict(True, head, "exact")
    if head in alphas:
        return ChoiceVerdict(lowered[ord(head) - ord("a")] == gold, head, "letter")
    if head in lowered:
        correct = gold in alphas and head == lowered[ord(gold) - ord("a")]
        return ChoiceVerdict(correct, head, "option_text")
    if strict and not response.strip():
        return ChoiceVerdict(False, response, "empty")
    index, best = _similarity_index(lowered, response)
    if strict and best == 0.0:
        return ChoiceVerdict(False, response, "no_match")
    correct = alphas[index] == gold or lowered[index] == gold
    return ChoiceVerdict(correct, alphas[index], "similarity")
