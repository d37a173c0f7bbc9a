"""Visual-reasoning QA synthesis with verification (paper §3.2.1).

Candidates are rows with one image whose answer is short (``max_response_words``), whose question
is hard enough (``question_difficulty``) and, optionally, whose task tag is in ``tasks``. For each
candidate and question format a generation model writes a question and its standard answer
(prompt ``reason_generate``); an answering model writes step-by-step reasoning and a final answer
(prompt ``reason_answer``). The sample is kept only when the final answer matches the standard
answer: exactly (after normalisation) for multiple choice, true/false and short answers, by an LLM
judge (prompt ``answer_judge``) for open questions. Kept rows answer as
``<think>…</think>\\n<answer>…</answer>``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.schema import IMAGE_TAG, Sample
from ..llm import LLMClient, LLMResponseError, user_message
from ..processing.reasoning import parse_reasoning
from .checks import (
    FORMATS,
    extract_choice,
    judge_verdict,
    match_closed,
    normalize_text,
    parse_bool,
)
from .common import Outcome, Unit, qa_pairs, row_image_path
from .prompts import PromptTemplate, load_prompt

__all__ = ["HARD_TASKS", "ReasonConfig", "ReasoningSynthesizer", "question_difficulty", "select_candidates"]

#: Task tags whose questions need inference beyond perception.
HARD_TASKS = frozenset({"Differential Diagnosis", "Symptoms Inference", "Treatment Generation", "Treatment Selection",
                        "Prior Comparison", "Report Analysis", "Lesion Localization", "Examination Selection"})
_REASONING_CUES = re.compile(r"(?i)\b(?:why|most likely|diagnos\w*|differential|cause[sd]?|compare|comparison|"
                             r"explain|suggest\w*|indicat\w*|consistent with|next step|treatment|manage\w*|"
                             r"based on|likely)\b|为什么|诊断|可能|原因|提示|鉴别|比较|治疗|考虑")
_FORMAT_NAMES = {"mcq": "multiple choice (4 options A-D)", "tf": "true/false statement", "short": "short answer",
                 "open": "open question"}
_FORMAT_RULES = {
    "mcq": 'Give exactly four options "A"-"D" with one correct; "answer" is its letter.',
    "tf": 'Write a statement to judge; "answer" is "true" or "false".',
    "short": '"answer" is a word or short phrase (at most five words).',
    "open": '"answer" is one to three sentences.',
}
_ANSWER_FORMATS = {
    "mcq": "The final answer is the letter of the correct option only.",
    "tf": "The final answer is True or False only.",
    "short": "The final answer is a word or short phrase only.",
    "open": "The final answer is one to three sentences.",
}


def question_difficulty(question: str, tags: dict[str, list[str]] | None = None) -> int:
    """A 0-3 difficulty score: +1 for a long question (12+ words or 24+ CJK characters), +1 for
    reasoning cues (why, most likely, diagnosis, 诊断, 鉴别, ...), +1 for a task tag in
    ``HARD_TASKS``."""
    cjk = len(re.findall(r"[\u4e00-\u9fff]", question))
    score = int(len(question.split()) >= 12 or cjk >= 24)
    score += int(bool(_REASONING_CUES.search(question)))
    score += int(any(t in HARD_TASKS for t in (tags or {}).get("task", [])))
    return score


@dataclass
class ReasonConfig:
    """Settings of reasoning synthesis.

    Attributes:
        formats: question formats to generate per candidate (each one unit).
        tasks: task tags to keep (``None``: any).
        max_response_words: candidates have answers at most this long.
        min_difficulty: candidates score at least this (``question_difficulty``, or a numeric
            ``difficulty`` key of the row).
        temperature, max_tokens: sampling of both models.
    """

    formats: tuple[str, ...] = FORMATS
    tasks: tuple[str, ...] | None = None
    max_response_words: int = 30
    min_difficulty: int = 1
    temperature: float = 0.0
    max_tokens: int | None = 2048

    def __post_init__(self) -> None:
        bad = [f for f in self.formats if f not in FORMATS]
        if bad or not self.formats:
            raise ValueError(f"formats must be a non-empty subset of {FORMATS}, got {list(self.formats)}")


def select_candidates(samples: Iterable[Sample], config: ReasonConfig) -> tuple[list[Unit], dict[str, int]]:
    """One unit per candidate row and format (id ``<row id>--reason-<format>``), and counts of
    rows left out by reason (``no_id``, ``not_single_image``, ``no_qa``, ``long_response``,
    ``easy``, ``task``)."""
    skipped: Counter[str] = Counter()
    units = []
    for sample in samples:
        pairs = qa_pairs(sample)
        tasks = sample.tags.get("task") or []
        if sample.id is None:
            skipped["no_id"] += 1
        elif len(sample.images) != 1:
            skipped["not_single_image"] += 1
        elif not pairs:
            skipped["no_qa"] += 1
        elif config.tasks is not None and not set(tasks) & set(config.tasks):
            skipped["task"] += 1
        elif len(pairs[0][1].split()) > config.max_response_words:
            skipped["long_response"] += 1
        else:
            given = sample.extra.get("difficulty")
            score = given if isinstance(given, (int, float)) and not isinstance(given, bool) else \
                question_difficulty(pairs[0][0], sample.tags)
            if score < config.min_difficulty:
                skipped["easy"] += 1
                continue
            for fmt in config.formats:
                units.append(Unit(id=f"{sample.id}--reason-{fmt}", tag=tasks[0] if tasks else "untagged",
                                  source_ids=[sample.id], payload={"sample": sample, "format": fmt}))
    return units, dict(skipped)


def _generated(reply: Any, fmt: str) -> tuple[str, str, dict[str, str] | None] | str:
    """``(question, standard answer, options)`` from the generation reply, or a problem."""
    if not isinstance(reply, dict):
        return "not a JSON object"
    question, answer, options = reply.get("question"), reply.get("answer"), reply.get("options")
    if not (isinstance(question, str) and question.strip() and isinstance(answer, (str, bool)) and str(answer).strip()):
        return "question and answer must be non-empty strings"
    answer = str(answer).strip()
    if fmt == "mcq":
        if not (isinstance(options, dict) and len(options) >= 2
                and all(isinstance(k, str) and re.fullmatch(r"[A-H]", k) and isinstance(v, str) and v.strip()
                        for k, v in options.items())):
            return "multiple choice needs options {A: ..., B: ...}"
        letter = extract_choice(answer, options)
        if letter is None:
            return f"the answer {answer!r} names no option"
        return question.strip(), letter, {k: v.strip() for k, v in sorted(options.items())}
    if fmt == "tf":
        value = parse_bool(answer)
        if value is None:
            return f"true/false answer {answer!r} is neither"
        return question.strip(), "True" if value else "False", None
    return question.strip(), answer, None


class ReasoningSynthesizer:
    """Turns one (candidate, format) unit into a verified reasoning row or a drop reason.

    Args:
        generator: client of the generation model (questions and standard answers).
        answerer: client of the answering model (reasoning); defaults to ``generator``.
        judge: client of the open-answer judge; defaults to ``generator``.
        root: the input JSONL's folder; out_dir: the output's (image paths).
        config: settings. prompt_root: prompt folder.
    """

    task = "reason"

    def __init__(self, generator: LLMClient, root: str | Path, out_dir: str | Path, *,
                 answerer: LLMClient | None = None, judge: LLMClient | None = None,
                 config: ReasonConfig | None = None, prompt_root: str | Path | None = None):
        self.generator, self.answerer, self.judge = generator, answerer or generator, judge or generator
        self.root, self.out_dir = Path(root), Path(out_dir)
        self.config = config or ReasonConfig()
        self.prompts: dict[str, PromptTemplate] = {
            name: load_prompt(name, None, prompt_root) for name in ("reason_generate", "reason_answer", "answer_judge")}

    def __call__(self, unit: Unit) -> Outcome:
        sample: Sample = unit.payload["sample"]
        fmt: str = unit.payload["format"]
        image = sample.resolve_paths(self.root).images[0]
        source_question, source_answer = qa_pairs(sample)[0]
        generate = self.prompts["reason_generate"].render(
            task=unit.tag if unit.tag != "untagged" else "any", format=_FORMAT_NAMES[fmt], format_instructions=_FORMAT_RULES[fmt],
            source_question=source_question, source_answer=source_answer)
        settings = {"temperature": self.config.temperature, "max_tokens": self.config.max_tokens}
        try:
            reply = self.generator.chat_json([user_message(generate, images=[image])], expect=dict, **settings)
        except LLMResponseError as err:
            return Outcome.drop("bad_generation", f"no JSON: {err}")
        generated = _generated(reply, fmt)
        if isinstance(generated, str):
            return Outcome.drop("bad_generation", generated)
        question, standard, options = generated
        shown = question if options is None else question + "\nOptions:\n" + "\n".join(
            f"{k}. {v}" for k, v in options.items())
        answer_prompt = self.prompts["reason_answer"].render(question=shown, answer_format=_ANSWER_FORMATS[fmt])
        result = self.answerer.chat([user_message(answer_prompt, images=[image])], **settings)
        parts = parse_reasoning(result.text)
        if not parts.think or not parts.answer:
            return Outcome.drop("no_reasoning", "the reply lacks a <think> section or a final answer")
        correct = match_closed(parts.answer, standard, fmt, options)
        if correct is None:  # open question: the judge decides
            judge_text = self.prompts["answer_judge"].render(question=shown, standard_answer=standard,
                                                             answer=parts.answer)
            try:
                correct = judge_verdict(self.judge.chat_json(judge_text, expect=dict, temperature=0.0), "correct")
            except LLMResponseError:
                correct = None
            if correct is None:
                return Outcome.drop("judge_unreadable", "the judge gave no verdict")
        if not correct:
            return Outcome.drop("wrong_answer", f"final {normalize_text(parts.answer)[:80]!r} vs standard {standard!r}")
        row: dict[str, Any] = {
            "id": unit.id,
            "messages": [{"role": "user", "content": IMAGE_TAG + shown},
                         {"role": "assistant", "content": f"<think>\n{parts.think}\n</think>\n<answer>\n{parts.answer}\n</answer>"}],
            "images": [row_image_path(image, self.out_dir)],
            "source_ids": unit.source_ids,
            "prompt_version": {name: p.tag for name, p in self.prompts.items()},
            "model": {"generate": self.generator.model, "answer": self.answerer.model, "judge": self.judge.model},
            "enhance": {"task": self.task, "format": fmt, "standard_answer": standard,
                        **({"options": options} if options else {})},
        }
        if sample.tags:
            row["tags"] = sample.tags
        return Outcome(row=row)
