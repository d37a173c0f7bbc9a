"""Task and region tags from an LLM given a definition and an example for each tag (the paper's
method), through ``citrusv.llm.LLMClient``. Optional: rules (``tagging.RuleTagger``) run first and
the LLM fills only the kinds still missing unless told otherwise.

The model gets the definitions, one example per tag and the sample's text (truncated), and must
answer ``{"task": "<tag>", "region": "<tag>"}``; an answer outside the taxonomy is ignored (the
kind stays untagged and is counted), never guessed.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ..data.taxonomy import canonical_tag
from .stage import Row, RowStage

__all__ = ["REGION_DEFINITIONS", "TASK_DEFINITIONS", "LLMTagger", "LLMTaggingStage"]

logger = logging.getLogger(__name__)

#: tag → (definition, example request). Written for citrusv from the paper's task names.
TASK_DEFINITIONS: dict[str, tuple[str, str]] = {
    "Examination Selection": ("choosing which imaging or laboratory examination to perform", "Which scan should this patient get first?"),
    "Report Analysis": ("explaining, summarising or answering questions about an existing report", "What does 'ground-glass opacity' in this report mean?"),
    "Prior Comparison": ("comparing the current study with an earlier one", "Has the nodule grown since the prior CT?"),
    "Modality Recognition": ("naming the imaging modality or sequence", "Is this an MRI or a CT image?"),
    "Organ Recognition": ("naming the organ or anatomical structure shown", "Which organ is highlighted in this image?"),
    "Image Description": ("describing what the image shows without a formal report", "Describe the findings in this image."),
    "Report Generation": ("writing a radiology or pathology report for the image", "Write the findings and impression for this chest X-ray."),
    "Lesion Localization": ("locating or segmenting a lesion or structure (boxes, masks, positions)", "Segment the liver tumour."),
    "Differential Diagnosis": ("giving the most likely diagnosis or a list of candidate diagnoses", "What is the most likely diagnosis?"),
    "Symptoms Inference": ("inferring symptoms or clinical presentation from findings", "What symptoms would this patient likely have?"),
    "Treatment Generation": ("proposing a treatment or management plan", "How should this fracture be managed?"),
    "Treatment Selection": ("choosing among given treatment options", "Which is the best treatment: A) surgery B) radiotherapy?"),
    "Treatment Details": ("details of a treatment: dose, duration, side effects, procedure steps", "What is the usual dose of this drug?"),
    "Basic": ("basic medical knowledge not tied to a case", "What is the function of the pancreas?"),
    "Other": ("anything that fits none of the other tasks", "Translate this sentence."),
}

REGION_DEFINITIONS: dict[str, tuple[str, str]] = {
    "Abdomen": ("liver, kidneys, spleen, pancreas, abdominal cavity", "CT of the liver"),
    "Chest": ("lungs, heart, mediastinum, ribs, chest wall", "chest radiograph"),
    "Brain": ("brain, skull, intracranial structures", "head MRI"),
    "Neck": ("neck, thyroid, larynx, cervical spine", "thyroid ultrasound"),
    "Cell": ("cells or tissue seen under a microscope", "H&E slide of a biopsy"),
    "Lower Limb": ("thigh, leg and their bones, excluding joints and foot", "tibia fracture radiograph"),
    "Upper Limb": ("arm, forearm, hand and their bones, excluding joints", "hand radiograph"),
    "Oral Cavity": ("mouth, teeth, tongue, jaw", "dental panoramic X-ray"),
    "Eye": ("eye, retina, optic disc", "fundus photograph"),
    "Breast": ("breast", "mammogram"),
    "Gastrointestinal Tract": ("oesophagus, stomach, intestines, colon, rectum", "colonoscopy image"),
    "Pelvis": ("pelvis, bladder, prostate, uterus, ovaries", "pelvic MRI"),
    "Foot": ("foot, ankle bones below the joint, toes", "foot radiograph"),
    "Joint": ("knee, hip, shoulder, elbow, wrist, ankle joints", "knee MRI"),
    "Other": ("whole body or a region not listed", "whole-body PET"),
}

_DEFINITIONS = {"task": TASK_DEFINITIONS, "region": REGION_DEFINITIONS}


class LLMTagger:
    """Ask an LLM for ``kinds`` (``task`` and / or ``region``) of a row.

    Args:
        client: a ``citrusv.llm.LLMClient`` (any object with ``chat_json(messages, expect=dict)``).
        kinds: which tag kinds to ask for.
        max_chars: the sample text is cut to this many characters.
    """

    def __init__(self, client: Any, kinds: tuple[str, ...] = ("task", "region"), max_chars: int = 2000):
        bad = [k for k in kinds if k not in _DEFINITIONS]
        if bad or not kinds:
            raise ValueError(f"LLM tagging kinds must be among {sorted(_DEFINITIONS)}, got {list(kinds)}")
        self.client, self.kinds, self.max_chars = client, tuple(kinds), max_chars

    def messages(self, row: Row) -> list[dict[str, str]]:
        """The chat messages for ``row`` (system: definitions and examples; user: the sample)."""
        keys = ", ".join(repr(k) for k in self.kinds)
        parts = [(f"You tag medical training samples with a fixed taxonomy. Answer with one JSON object with the keys "
                  f"{keys}, each value exactly one tag name from its list.")]
        for kind in self.kinds:
            parts.append(f"\n{kind} tags (name: definition; example):")
            parts += [f"- {tag}: {definition}; e.g. \"{example}\"" for tag, (definition, example) in _DEFINITIONS[kind].items()]
        conversation = "\n".join(f"{m.get('role')}: {m.get('content', '')}" for m in row.get("messages", [])
                                 if m.get("role") in ("user", "assistant"))
        return [{"role": "system", "content": "\n".join(parts)},
                {"role": "user", "content": f"Sample:\n{conversation[:self.max_chars]}\n\nJSON answer:"}]

    def tags(self, row: Row) -> dict[str, str]:
        """Valid tags from the model's answer; kinds it got wrong are left out.

        Raises:
            citrusv.llm.LLMError: the request failed after the client's retries.
        """
        answer = self.client.chat_json(self.messages(row), expect=dict)
        out = {}
        for kind in self.kinds:
            value = answer.get(kind)
            if isinstance(value, list) and value:
                value = value[0]
            try:
                out[kind] = canonical_tag(kind, str(value))
            except ValueError:
                logger.debug("LLM gave %s %s, not in the taxonomy", kind, json.dumps(value)[:40])
        return out


class LLMTaggingStage(RowStage):
    """Pipeline stage: fills the kinds a row lacks (or all, with ``overwrite``) from ``LLMTagger``.
    Rows the model could not tag keep their other tags and get ``_llm_untagged`` (counted in the
    manifest); a failed request raises, stopping the run at this shard (resume continues there)."""

    name = "llm_tagging"

    def __init__(self, tagger: LLMTagger, overwrite: bool = False):
        self.tagger, self.overwrite = tagger, overwrite

    def check(self, row: Row) -> tuple[str, str] | None:
        tags = dict(row.get("tags") or {})
        wanted = [k for k in self.tagger.kinds if self.overwrite or not tags.get(k)]
        if not wanted or not any(m.get("content") for m in row.get("messages", [])):
            return None
        got = self.tagger.tags(row)
        for kind in wanted:
            if kind in got:
                tags[kind] = [got[kind]]
            else:
                row["_llm_untagged"] = row.get("_llm_untagged", 0) + 1
        if tags:
            row["tags"] = tags
        return None

