"""Instruction consolidation (paper §3.1.2): several short questions about one image become one or
a few holistic questions with comprehensive answers that keep every original fact.

Rows are grouped by the hash of their image's pixels (``image_hash``), not by path. An image whose
rows carry at least ``min_questions`` short or yes/no question / answer pairs is a candidate: a VLM
gets the image and the pairs (prompt ``consolidate``) and answers with JSON questions. Each original
pair is then checked against the new answers: rules for yes/no and short answers
(``checks.check_fact``), an LLM judge (prompt ``entailment_judge``) for longer ones. One failed
fact drops the group (reason ``fact_missing``, ``fact_contradicted`` or ``fact_not_entailed``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.schema import IMAGE_TAG, Sample
from ..llm import LLMClient, LLMResponseError, user_message
from .checks import answer_kind, check_fact, judge_verdict
from .common import Outcome, Unit, image_hash, qa_pairs, row_image_path
from .prompts import PromptTemplate, load_prompt

__all__ = ["ConsolidateConfig", "Consolidator", "group_by_image"]


@dataclass
class ConsolidateConfig:
    """Settings of instruction consolidation.

    Attributes:
        min_questions: short / yes-no pairs an image needs to be a candidate.
        max_short_words: answers up to this many words count as short (checked by rules).
        max_merge_words: longer answers, up to this many words, are merged too (checked by the
            judge); answers longer still are left out of the merge.
        max_questions: holistic questions the VLM may write per image.
        temperature, max_tokens: VLM sampling.
    """

    min_questions: int = 2
    max_short_words: int = 5
    max_merge_words: int = 60
    max_questions: int = 3
    temperature: float = 0.0
    max_tokens: int | None = 2048

    def __post_init__(self) -> None:
        if self.min_questions < 2:
            raise ValueError(f"min_questions must be >= 2 (there is nothing to merge otherwise), got {self.min_questions}")
        if self.max_questions < 1:
            raise ValueError(f"max_questions must be >= 1, got {self.max_questions}")


def _first_tag(sample: Sample) -> str:
    tasks = sample.tags.get("task") or []
    return tasks[0] if tasks else "untagged"


def group_by_image(samples: Iterable[Sample], root: str | Path, config: ConsolidateConfig) -> tuple[list[Unit], dict[str, int]]:
    """Candidate groups of rows sharing an image, and counts of rows that are not candidates.

    Args:
        samples: rows; relative image paths resolve against ``root``.
        root: the input JSONL's folder.
        config: selection thresholds.

    Returns:
        ``(units, not_candidates)``: one ``Unit`` per candidate image (id ``cons-<hash[:16]>``,
        payload ``{"image", "hash", "pairs": [(source_id, question, answer)], "tags"}``), and
        reason → row count for rows left out (``not_single_image``, ``grounding``, ``no_id``,
        ``too_few_short_questions``).
    """
    skipped: Counter[str] = Counter()
    groups: dict[str, dict[str, Any]] = {}
    hashes: dict[str, str] = {}
    for sample in samples:
        if sample.id is None:
            skipped["no_id"] += 1
            continue
        if len(sample.images) != 1:
            skipped["not_single_image"] += 1
            continue
        if sample.masks or sample.objects is not None:
            skipped["grounding"] += 1  # boxes and masks are answers in their own right
            continue
        image = sample.resolve_paths(root).images[0]
        digest = hashes.get(image) or hashes.setdefault(image, image_hash(image))
        group = groups.setdefault(digest, {"image": image, "hash": digest, "pairs": [], "rows": [], "tags": {}})
        pairs = [(q, a) for q, a in qa_pairs(sample) if q and len(a.split()) <= config.max_merge_words]
        group["rows"].append(sample.id)
        group["pairs"].extend((sample.id, q, a) for q, a in pairs)
        group["short"] = group.get("short", 0) + sum(answer_kind(a, config.max_short_words) != "long" for _, a in pairs)
        for kind, values in sample.tags.items():
            merged = group["tags"].setdefault(kind, [])
            merged.extend(v for v in values if v not in merged)
        group.setdefault("tag", _first_tag(sample))
    units = []
    for digest, group in groups.items():
        if group["short"] < config.min_questions:
            skipped["too_few_short_questions"] += len(group["rows"])
            continue
        source_ids = list(dict.fromkeys(source_id for source_id, _, _ in group["pairs"]))
        units.append(Unit(id=f"cons-{digest[:16]}", tag=group["tag"], source_ids=source_ids, payload=group))
    return units, dict(skipped)


def _numbered(pairs: list[tuple[str, str, str]]) -> str:
    return "\n".join(f"{i}. Q: {q}\n   A: {a}" for i, (_, q, a) in enumerate(pairs, start=1))


def _questions(reply: Any, limit: int) -> list[tuple[str, str]] | None:
    items = reply.get("questions") if isinstance(reply, dict) else None
    if not isinstance(items, list) or not 1 <= len(items) <= limit:
        return None
    out = []
    for item in items:
        if not isinstance(item, dict):
            return None
        question, answer = item.get("question"), item.get("answer")
        if not (isinstance(question, str) and question.strip() and isinstance(answer, str) and answer.strip()):
            return None
        out.append((question.strip().replace(IMAGE_TAG, ""), answer.strip()))
    return out


class Consolidator:
    """Turns one candidate group into a consolidated row or a drop reason.

    Args:
        vlm: the client of the VLM that writes the holistic questions.
        judge: the client of the LLM judge for long answers (defaults to ``vlm``).
        out_dir: the output JSONL's folder (image paths in rows are relative to it).
        config: settings.
        prompt_version: version of the ``consolidate`` prompt (default: newest).
        prompt_root: prompt folder (default ``configs/prompts/enhance``).
    """

    task = "consolidate"

    def __init__(self, vlm: LLMClient, out_dir: str | Path, *, judge: LLMClient | None = None,
                 config: ConsolidateConfig | None = None, prompt_version: int | None = None,
                 prompt_root: str | Path | None = None):
        self.vlm, self.judge = vlm, judge or vlm
        self.out_dir = Path(out_dir)
        self.config = config or ConsolidateConfig()
        self.prompt: PromptTemplate = load_prompt("consolidate", prompt_version, prompt_root)
        self.judge_prompt: PromptTemplate = load_prompt("entailment_judge", None, prompt_root)

    def _judge(self, question: str, answer: str, consolidated: str) -> bool | None:
        text = self.judge_prompt.render(question=question, answer=answer, consolidated=consolidated)
        try:
            reply = self.judge.chat_json(text, expect=dict, temperature=0.0)
        except LLMResponseError:
            return None
        return judge_verdict(reply, "entailed")

    def __call__(self, unit: Unit) -> Outcome:
        group = unit.payload
        pairs: list[tuple[str, str, str]] = group["pairs"]
        text = self.prompt.render(qa_list=_numbered(pairs), num_questions=self.config.max_questions)
        try:
            reply = self.vlm.chat_json([user_message(text, images=[group["image"]])], expect=dict,
                                       temperature=self.config.temperature, max_tokens=self.config.max_tokens)
        except LLMResponseError as err:
            return Outcome.drop("bad_reply", f"no JSON in the reply: {err}")
        questions = _questions(reply, self.config.max_questions)
        if questions is None:
            return Outcome.drop("bad_reply", f"expected 1-{self.config.max_questions} {{question, answer}} items")
        consolidated = "\n".join(answer for _, answer in questions)
        judged = 0
        for source_id, question, answer in pairs:
            verdict = check_fact(question, answer, consolidated, self.config.max_short_words)
            if verdict.status == "needs_judge":
                judged += 1
                entailed = self._judge(question, answer, consolidated)
                if entailed is None:
                    return Outcome.drop("judge_unreadable", f"{source_id}: {question!r}")
                if not entailed:
                    return Outcome.drop("fact_not_entailed", f"{source_id}: {question!r} -> {answer!r}")
            elif verdict.status != "entailed":
                return Outcome.drop(f"fact_{verdict.status}", f"{source_id}: {question!r} -> {answer!r}: {verdict.reason}")
        messages = []
        for index, (question, answer) in enumerate(questions):
            messages.append({"role": "user", "content": (IMAGE_TAG if index == 0 else "") + question})
            messages.append({"role": "assistant", "content": answer})
        row = {
            "id": unit.id, "messages": messages, "images": [row_image_path(group["image"], self.out_dir)],
            "source_ids": unit.source_ids,
            "prompt_version": {"consolidate": self.prompt.tag, "judge": self.judge_prompt.tag},
            "model": {"consolidate": self.vlm.model, "judge": self.judge.model},
            "enhance": {"task": self.task, "image_hash": group["hash"], "facts": len(pairs), "judged": judged},
        }
        if group["tags"]:
            row["tags"] = group["tags"]
        return Outcome(row=row)
