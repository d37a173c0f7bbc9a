"""Segmentation and detection loaders (Citrus-V ``eval/`` formats).

* MeCoVQA-G+: JSON list ``{id, image, conversations}``; the query is ``conversations[0].value``
  (verbatim, ``<image>`` included) and the mask path sits inside ``<mask>…</mask>`` in
  ``conversations[1].value``. Image and mask paths are relative to the image root (the
  SA-Med2D-20M root; default: the benchmark folder). Tags: ``modality`` = upper-cased id prefix
  before the first ``_``, ``dataset`` = the part after the first ``--``.
* MedSegBench: JSON list ``{id, images[0], masks[0], conversations, metadata{dataset, region}}``.
* MedSAM2 detection: JSONL ``{image, sentence, bbox [x1,y1,x2,y2] original pixels, width,
  height}``; prompt from ``citrusv.eval.prompts.detection_prompt``.

The reference skips a sample whose gold mask cannot be read; here a missing image or mask file
is a bad row (reported, skipped).
"""

from __future__ import annotations

import re
from typing import Any

from .. import prompts
from ..types import EvalItem
from ._io import LoadContext, RowError, as_row, opt_str, parse_list, req_str

__all__ = ["load_mecovqa_g_plus", "load_medsam2_detection", "load_medsegbench"]

_MASK = re.compile(r"<mask>(.*?)</mask>", re.DOTALL)


def _query(row: dict[str, Any]) -> tuple[str, list[Any]]:
    conversations = parse_list(row.get("conversations"), "conversations")
    try:
        return prompts.segmentation_query(conversations), conversations
    except ValueError as exc:
        raise RowError(str(exc)) from None


def mecovqa_modality(sample_id: str) -> str:
    """``ct_00--AMOS2022--…`` → ``CT`` (the reference's by-modality key)."""
    return sample_id.split("_")[0].upper()


def load_mecovqa_g_plus(ctx: LoadContext) -> None:
    path = ctx.path("test.json|MeCoVQA*.json")
    for _, _, number, obj in ctx.rows(path):
        with ctx.row(path, number):
            row = as_row(obj)
            sample_id = req_str(row, "id").strip()
            query, conversations = _query(row)
            if len(conversations) < 2 or not isinstance(conversations[1], dict):
                raise RowError("conversations needs a second turn holding <mask>…</mask>")
            match = _MASK.search(str(conversations[1].get("value", "")))
            if not match or not match.group(1).strip():
                raise RowError("no <mask>path</mask> in the second conversation turn")
            image = ctx.image_file(row.get("image"), ctx.folder, "image")
            mask = ctx.image_file(match.group(1).strip(), ctx.folder, "mask")
            tags = {"modality": mecovqa_modality(sample_id)}
            if "--" in sample_id:
                tags["dataset"] = sample_id.split("--")[1]
            ctx.add(EvalItem(
                id=sample_id, benchmark=ctx.benchmark, family="segmentation", question=query, prompt=query,
                answer=mask, images=[image], language="en", tags=tags,
            ))


def load_medsegbench(ctx: LoadContext) -> None:
    path = ctx.path("medseg_bench_test_2571_ENG.json")
    for _, _, number, obj in ctx.rows(path):
        with ctx.row(path, number):
            row = as_row(obj)
            sample_id = req_str(row, "id").strip()
            query, _ = _query(row)
            images = parse_list(row.get("images"), "images")
            masks = parse_list(row.get("masks"), "masks")
            if not images or not masks:
                raise RowError("fields 'images' and 'masks' need at least one path each")
            metadata = row.get("metadata")
            if not isinstance(metadata, dict):
                raise RowError("missing field 'metadata'")
            tags = {"dataset": req_str(metadata, "dataset").strip(), "region": req_str(metadata, "region").strip()}
            image = ctx.image_file(images[0], ctx.folder, "image")
            mask = ctx.image_file(masks[0], ctx.folder, "mask")
            ctx.add(EvalItem(
                id=sample_id, benchmark=ctx.benchmark, family="segmentation", question=query, prompt=query,
                answer=mask, images=[image], language="en", tags=tags,
            ))


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RowError(f"{key} must be a number, got {value!r}")
    return float(value)


def load_medsam2_detection(ctx: LoadContext) -> None:
    path = ctx.path("evaluation_dataset_with_id.jsonl")
    for _, _, number, obj in ctx.rows(path):
        with ctx.row(path, number):
            row = as_row(obj)
            sentence = req_str(row, "sentence")
            bbox = parse_list(row.get("bbox"), "bbox")
            if len(bbox) != 4:
                raise RowError(f"bbox must be [x1, y1, x2, y2], got {bbox!r}")
            box = [_number(v, "bbox") for v in bbox]
            size = {}
            for key in ("width", "height"):
                value = row.get(key)
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                    raise RowError(f"{key} must be a positive integer, got {value!r}")
                size[key] = value
            image = ctx.image_file(row.get("image"), ctx.folder, "image")
            row_id = opt_str(row, "id")
            tags = {tag: value for key, tag in (("modality", "modality"), ("dataset", "dataset"))
                    if (value := opt_str(row, key)) is not None}
            ctx.add(EvalItem(
                id=row_id if row_id is not None else str(number - 1), benchmark=ctx.benchmark, family="detection",
                question=sentence, prompt=prompts.detection_prompt(sentence, ctx.bbox_format), answer=box,
                images=[image], language="en", tags=tags, extra=dict(size),
            ))
