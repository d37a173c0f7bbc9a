"""CheXpert Plus report generation, from the ReXrank test JSON (JD MedEvalKit fork semantics).

The JSON maps study ids to ``{key_image_path, section_findings, section_impression, …}``; only
the single ``key_image_path`` image (under ``images/``) is used. NaN / null sections become "";
a study whose sections are both blank is skipped (not an error). Gold =
``f"Findings: {findings} Impression: {impression}."`` with newlines → spaces, lower-cased (the
sections are not stripped, as in the reference).

``extra["report_field"]`` keeps the ReXrank ``report`` field normalised the same way, when the
study has one: the fork's report scorer reads ``sample["report"]`` *before* falling back to the
sections, so on the raw ReXrank file its ROUGE / CIDEr / RaTE gold is that field ("Findings:
None. Impression: …"), not the section-built string.
"""

from __future__ import annotations

from typing import Any

from .. import prompts
from ..types import EvalItem
from ._io import LoadContext, RowError, is_missing, read_json

__all__ = ["load_chexpert_plus", "report_gold"]


def _section(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    if is_missing(value):
        return ""
    if not isinstance(value, str):
        raise RowError(f"field {key!r} must be a string or NaN, got {type(value).__name__}")
    return value


def report_gold(findings: str, impression: str) -> str:
    """``Findings: {f} Impression: {i}.`` with newlines replaced by spaces, lower-cased."""
    return f"Findings: {findings} Impression: {impression}.".replace("\n", " ").lower()


def _first_str(value: Any) -> str | None:
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    return value if isinstance(value, str) and value else None


def load_chexpert_plus(ctx: LoadContext) -> None:
    path = ctx.path("test.json|ReXRank_CheXpertPlus.json")
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object keyed by study id, got {type(data).__name__}")
    prompt = prompts.report_prompt("en")
    for number, (study_id, entry) in enumerate(data.items(), start=1):
        if ctx.full:
            return
        with ctx.row(path, number):
            if not isinstance(entry, dict):
                raise RowError(f"study {study_id}: expected an object, got {type(entry).__name__}")
            findings = _section(entry, "section_findings")
            impression = _section(entry, "section_impression")
            if not findings.strip() and not impression.strip():
                continue
            image = ctx.image_file(entry.get("key_image_path"), ctx.folder / "images", "key_image_path")
            extra: dict[str, Any] = {"findings": findings, "impression": impression}
            if isinstance(entry.get("report"), str):
                extra["report_field"] = entry["report"].replace("\n", " ").lower()
            tags = {tag: value for key, tag in (("frontal_lateral", "view"), ("ap_pa", "projection"))
                    if (value := _first_str(entry.get(key))) is not None}
            ctx.add(EvalItem(
                id=str(study_id), benchmark=ctx.benchmark, family="report", question="", prompt=prompt,
                answer=report_gold(findings, impression), images=[image], language="en", tags=tags, extra=extra,
            ))
