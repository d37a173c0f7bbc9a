"""Tagging with the paper's taxonomy (13 modalities, 15 tasks, 15 anatomical regions) by rules:
DICOM metadata (Modality, BodyPartExamined) first, then keyword rules on the sample's text.

Rules fill only tag kinds a row does not already have (``overwrite=False``); a kind no rule
matches stays absent and is counted as untagged in the report. Rules are data
(``MODALITY_RULES``, ``REGION_RULES``, ``TASK_RULES``: ordered ``(regex, tag)`` pairs, first match
wins) and can be extended from the config.
"""

from __future__ import annotations

import re
from typing import Any

from ..data.taxonomy import TAXONOMY, canonical_tag
from .dedup import row_text
from .stage import Row, RowStage

__all__ = ["DICOM_BODY_PART", "DICOM_MODALITY", "MODALITY_RULES", "REGION_RULES", "TASK_RULES", "RuleTagger", "tag_row"]

#: DICOM Modality (0008,0060) defined terms → taxonomy modality.
DICOM_MODALITY: dict[str, str] = {
    "CT": "CT", "MR": "MRI", "CR": "X-Ray", "DX": "X-Ray", "DR": "X-Ray", "RF": "X-Ray", "MG": "X-Ray", "XA": "X-Ray",
    "IO": "X-Ray", "PX": "X-Ray", "US": "Ultrasound", "IVUS": "Ultrasound", "OPT": "OCT", "IVOCT": "OCT", "OP": "Fundus",
    "SM": "Histopathology", "DMS": "Dermoscopy", "ES": "Endoscopy", "XC": "Photograph", "GM": "Microscopy",
}

#: DICOM BodyPartExamined (0018,0015) defined terms → taxonomy region.
DICOM_BODY_PART: dict[str, str] = {
    "ABDOMEN": "Abdomen", "LIVER": "Abdomen", "KIDNEY": "Abdomen", "PANCREAS": "Abdomen", "ABDOMENPELVIS": "Abdomen",
    "CHEST": "Chest", "THORAX": "Chest", "LUNG": "Chest", "HEART": "Chest", "CHESTABDOMEN": "Chest",
    "BRAIN": "Brain", "HEAD": "Brain", "SKULL": "Brain", "NECK": "Neck", "CSPINE": "Neck", "THYROID": "Neck",
    "PELVIS": "Pelvis", "PROSTATE": "Pelvis", "HIP": "Joint", "KNEE": "Joint", "SHOULDER": "Joint", "ELBOW": "Joint",
    "WRIST": "Joint", "ANKLE": "Joint", "FOOT": "Foot", "HAND": "Upper Limb", "ARM": "Upper Limb",
    "LEG": "Lower Limb", "FEMUR": "Lower Limb", "TIBIA": "Lower Limb", "BREAST": "Breast", "EYE": "Eye",
    "JAW": "Oral Cavity", "TMJ": "Oral Cavity", "COLON": "Gastrointestinal Tract", "STOMACH": "Gastrointestinal Tract",
    "ESOPHAGUS": "Gastrointestinal Tract",
}

MODALITY_RULES: list[tuple[str, str]] = [
    (r"\b(h\s*&\s*e|histopatholog\w*|histolog\w*|biops\w+ slide|whole[- ]slide|pathology slide)", "Histopathology"),
    (r"\b(optical coherence tomograph\w*|oct)\b", "OCT"),
    (r"\b(dermoscop\w*|dermatoscop\w*)", "Dermoscopy"),
    (r"\b(fundus|retinal photograph\w*|fundoscop\w*)", "Fundus"),
    (r"\b(endoscop\w*|colonoscop\w*|gastroscop\w*|laparoscop\w*)", "Endoscopy"),
    (r"\b(near[- ]infrared|nir)\b", "NIR"),
    (r"\b(microscop\w*|cytolog\w*)", "Microscopy"),
    (r"\b(mri|mr imag\w*|magnetic resonance|t1[- ]weighted|t2[- ]weighted|flair)\b", "MRI"),
    (r"\b(ct|computed tomograph\w*|cta)\b", "CT"),
    (r"\b(x[- ]?ray|radiograph\w*|cxr|mammogra\w*|fluorosc\w*)", "X-Ray"),
    (r"\b(ultrasound|ultrasonograph\w*|sonograph\w*|echocardiogra\w*|doppler)", "Ultrasound"),
    (r"\b(photograph\w*|clinical photo)", "Photograph"),
]

REGION_RULES: list[tuple[str, str]] = [
    (r"\b(brain|cerebr\w*|intracranial|skull|head ct|ventricles?)\b", "Brain"),
    (r"\b(retina\w*|optic disc|macula\w*|eye|ocular)\b", "Eye"),
    (r"\b(breast|mammogra\w*)", "Breast"),
    (r"\b(oral|teeth|tooth|dental|tongue|mandible)\b", "Oral Cavity"),
    (r"\b(thyroid|neck|cervical spine|larynx)\b", "Neck"),
    (r"\b(colon\w*|stomach|gastric|esophag\w*|duoden\w*|bowel|rectum)\b", "Gastrointestinal Tract"),
    (r"\b(lungs?|chest|thora\w*|pulmonary|pleura\w*|heart|cardiac|mediastin\w*)\b", "Chest"),
    (r"\b(liver|kidneys?|renal|spleen|pancrea\w*|abdom\w*|gallbladder|hepatic)\b", "Abdomen"),
    (r"\b(pelvi\w*|bladder|prostate|uterus|ovar\w*)\b", "Pelvis"),
    (r"\b(foot|feet|toes?|calcane\w*)\b", "Foot"),
    (r"\b(knee|hip|shoulder|elbow|wrist|ankle|joint)s?\b", "Joint"),
    (r"\b(femur|tibia|fibula|thigh|leg)\b", "Lower Limb"),
    (r"\b(humerus|radius|ulna|forearm|hand|arm|finger)s?\b", "Upper Limb"),
    (r"\b(cells?|nucle\w*|cytoplasm)\b", "Cell"),
]

TASK_RULES: list[tuple[str, str]] = [
    (r"\b(compare|comparison|prior|previous (study|exam|image))", "Prior Comparison"),
    (r"\b(which (imaging )?(exam|examination|test) (should|would)|recommend\w* (an? )?(imaging|exam))", "Examination Selection"),
    (r"\b(what|which) (imaging )?modality\b", "Modality Recognition"),
    (r"\b(what|which) (organ|anatomical structure|structure)\b", "Organ Recognition"),
    (r"\b(segment|locat\w*|where is|bounding box|detect|grounding|outline)", "Lesion Localization"),
    (r"\b(write|generate|draft|produce) (a |the )?(radiology )?report|\breport generation|findings and impression", "Report Generation"),
    (r"\b(report|findings)\b.*\b(mean|explain|interpret|summar\w*)", "Report Analysis"),
    (r"\b(differential|diagnos\w*|most likely|what disease)", "Differential Diagnosis"),
    (r"\bsymptoms?\b", "Symptoms Inference"),
    (r"\b(which|best|choose|select)\b.*\btreatment", "Treatment Selection"),
    (r"\b(dose|dosage|how (long|often)|side effects?)\b", "Treatment Details"),
    (r"\b(treatment|therapy|manage\w*|treat)\b", "Treatment Generation"),
    (r"\b(describe|description|what (do you see|is shown|can be seen)|what (does|do) (this|these|the)\b.*\bshow)", "Image Description"),
]


def _compile(rules: list[tuple[str, str]], kind: str) -> list[tuple[re.Pattern[str], str]]:
    return [(re.compile(pattern, re.IGNORECASE), canonical_tag(kind, tag)) for pattern, tag in rules]


def _first(rules: list[tuple[re.Pattern[str], str]], text: str) -> str | None:
    for regex, tag in rules:
        if regex.search(text):
            return tag
    return None


class RuleTagger:
    """Taxonomy tags from DICOM metadata and text rules.

    Args:
        extra_rules: ``{"modality" | "task" | "region": [[regex, tag], ...]}`` tried before the
            built-in rules.
        overwrite: replace existing tags of a kind instead of keeping them.
    """

    def __init__(self, extra_rules: dict[str, list[list[str]]] | None = None, overwrite: bool = False):
        extra = extra_rules or {}
        unknown = set(extra) - set(TAXONOMY)
        if unknown:
            raise ValueError(f"extra tagging rules for unknown kinds {sorted(unknown)}; expected {sorted(TAXONOMY)}")
        self.overwrite = overwrite
        self.rules = {
            kind: _compile([tuple(r) for r in extra.get(kind, [])] + base, kind)
            for kind, base in (("modality", MODALITY_RULES), ("region", REGION_RULES), ("task", TASK_RULES))
        }

    def tags(self, row: Row) -> dict[str, str]:
        """The tags the rules give ``row`` (kinds without a match are absent)."""
        out: dict[str, str] = {}
        meta: dict[str, Any] = row.get("dicom") or {}
        if meta.get("modality") in DICOM_MODALITY:
            out["modality"] = DICOM_MODALITY[meta["modality"]]
        body = re.sub(r"[^A-Z]", "", str(meta.get("body_part") or "").upper())
        if body in DICOM_BODY_PART:
            out["region"] = DICOM_BODY_PART[body]
        text = row_text(row)
        user = "\n".join(m.get("content", "") for m in row.get("messages", []) if m.get("role") == "user")
        for kind, source in (("modality", text), ("region", text), ("task", user)):
            if kind not in out and source:
                tag = _first(self.rules[kind], source)
                if tag is not None:
                    out[kind] = tag
        return out

    def apply(self, row: Row) -> Row:
        """Fill ``row["tags"]`` in place (see ``overwrite``) and return the row."""
        tags = dict(row.get("tags") or {})
        for kind, tag in self.tags(row).items():
            if self.overwrite or not tags.get(kind):
                tags[kind] = [tag]
        if tags:
            row["tags"] = tags
        return row


def tag_row(row: Row, tagger: RuleTagger | None = None) -> Row:
    """``RuleTagger().apply(row)``."""
    return (tagger or RuleTagger()).apply(row)


class TaggingStage(RowStage):
    """Pipeline stage wrapping a ``RuleTagger`` (never drops)."""

    name = "tagging"

    def __init__(self, tagger: RuleTagger):
        self.tagger = tagger

    def check(self, row: Row) -> tuple[str, str] | None:
        self.tagger.apply(row)
        return None
