"""Dialogue de-identification rewrite (paper §3.1.2): an LLM rewrites doctor–patient dialogues
without personal information unrelated to the medical question, keeping the medical content.

The rule-based PHI scrubber (``citrusv.curate.phi``) runs before the rewrite (what it finds is
counted by kind in the row) and after it as a check: a rewrite in which it still finds PHI is
dropped (``phi_remaining``). Also dropped: a rewrite that changes the turns (``structure_changed``)
or loses a medical quantity of the original, such as "500 mg" or "3.5 mmol/L"
(``medical_content_lost``). Dropped-row details name PHI kinds and counts, never the PHI itself.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..curate.phi import find_phi
from ..data.schema import IMAGE_TAG, Sample
from ..llm import LLMClient, LLMResponseError
from .common import Outcome, Unit, row_image_path
from .prompts import PromptTemplate, load_prompt

__all__ = ["DialogueDeidentifier", "medical_quantities", "select_dialogues"]

_UNITS = (r"mmol/l|umol/l|μmol/l|mg/dl|g/l|g/dl|mg/l|iu/l|u/l|mmhg|mg|mcg|μg|ug|g|kg|ml|l|iu|u|cm|mm|%|bpm|"
          r"次/分|毫克|微克|克|千克|毫升|升|厘米|毫米|单位|片|粒|支|袋|℃|°c")
_QUANTITY = re.compile(rf"(\d+(?:\.\d+)?(?:\s*[-~～/]\s*\d+(?:\.\d+)?)?)\s*({_UNITS})(?![a-z])", re.IGNORECASE)


def medical_quantities(text: str) -> Counter[str]:
    """Numbers with a medical unit ("500 mg", "3.5-5.5 mmol/L", "120/80 mmHg", "38.5℃"),
    normalised (no spaces, lower case), outside PHI spans."""
    spans = [(s.start, s.end) for s in find_phi(text)]
    found: Counter[str] = Counter()
    for match in _QUANTITY.finditer(text):
        if any(a < match.end() and match.start() < b for a, b in spans):
            continue
        found[re.sub(r"\s+", "", match.group(1)) + match.group(2).lower().replace("μ", "u")] += 1
    return found


def select_dialogues(samples: Iterable[Sample]) -> tuple[list[Unit], dict[str, int]]:
    """One unit per row with an id and at least one user and one assistant message (id kept:
    the rewrite replaces the row), and counts of rows left out (``no_id``, ``not_dialogue``)."""
    skipped: Counter[str] = Counter()
    units = []
    for sample in samples:
        roles = {m["role"] for m in sample.messages}
        if sample.id is None:
            skipped["no_id"] += 1
        elif not {"user", "assistant"} <= roles:
            skipped["not_dialogue"] += 1
        else:
            tasks = sample.tags.get("task") or []
            units.append(Unit(id=sample.id, tag=tasks[0] if tasks else "untagged", source_ids=[sample.id],
                              payload=sample))
    return units, dict(skipped)


def _kinds(messages: list[dict[str, str]]) -> dict[str, int]:
    return dict(Counter(span.kind for m in messages for span in find_phi(m["content"])))


def _rewritten(reply: Any, original: list[dict[str, str]]) -> list[dict[str, str]] | str:
    messages = reply.get("messages") if isinstance(reply, dict) else None
    if not isinstance(messages, list) or len(messages) != len(original):
        return f"expected {len(original)} messages"
    out = []
    for index, (new, old) in enumerate(zip(messages, original)):
        if not isinstance(new, dict) or new.get("role") != old["role"]:
            return f"message {index}: role changed"
        content = new.get("content")
        if not isinstance(content, str) or not content.strip():
            return f"message {index}: empty content"
        if content.count(IMAGE_TAG) != old["content"].count(IMAGE_TAG):
            return f"message {index}: <image> placeholders changed"
        out.append({"role": old["role"], "content": content.strip()})
    return out


class DialogueDeidentifier:
    """Turns one dialogue row into a rewritten row or a drop reason.

    Args:
        llm: client of the rewriting LLM.
        root, out_dir: the input's and the output's folders; when both are given, relative image
            and mask paths are rewritten to stay valid next to the output.
        temperature, max_tokens: sampling.
        prompt_version: version of the ``deid_rewrite`` prompt (default: newest).
        prompt_root: prompt folder.
    """

    task = "deid-dialogue"

    def __init__(self, llm: LLMClient, *, root: str | Path | None = None, out_dir: str | Path | None = None,
                 temperature: float = 0.0, max_tokens: int | None = 4096,
                 prompt_version: int | None = None, prompt_root: str | Path | None = None):
        self.llm = llm
        self.root, self.out_dir = root, out_dir
        self.temperature, self.max_tokens = temperature, max_tokens
        self.prompt: PromptTemplate = load_prompt("deid_rewrite", prompt_version, prompt_root)

    def __call__(self, unit: Unit) -> Outcome:
        sample: Sample = unit.payload
        before = _kinds(sample.messages)
        dialogue = json.dumps([{"role": m["role"], "content": m["content"]} for m in sample.messages],
                              ensure_ascii=False, indent=1)
        try:
            reply = self.llm.chat_json(self.prompt.render(dialogue=dialogue), expect=dict,
                                       temperature=self.temperature, max_tokens=self.max_tokens)
        except LLMResponseError as err:
            return Outcome.drop("bad_reply", f"no JSON in the reply ({type(err).__name__})")
        messages = _rewritten(reply, sample.messages)
        if isinstance(messages, str):
            return Outcome.drop("structure_changed", messages)
        after = _kinds(messages)
        if after:
            return Outcome.drop("phi_remaining", ", ".join(f"{k}×{n}" for k, n in sorted(after.items())))
        lost = medical_quantities("\n".join(m["content"] for m in sample.messages)) - medical_quantities(
            "\n".join(m["content"] for m in messages))
        if lost:
            return Outcome.drop("medical_content_lost", ", ".join(sorted(lost)))
        images, masks = sample.images, sample.masks
        if self.root is not None and self.out_dir is not None:
            moved = sample.resolve_paths(self.root)
            images = [row_image_path(p, Path(self.out_dir)) for p in moved.images]
            masks = [row_image_path(m, Path(self.out_dir)) if isinstance(m, str) else m for m in moved.masks]
        row = Sample(messages=messages, images=images, masks=masks, objects=sample.objects, tags=sample.tags,
                     id=sample.id).to_dict()
        row.update({"source_ids": unit.source_ids, "prompt_version": {"deid": self.prompt.tag},
                    "model": {"deid": self.llm.model},
                    "enhance": {"task": self.task, "phi_before": before}})
        return Outcome(row=row)
