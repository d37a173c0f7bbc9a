"""The sample schema every part of citrusv reads and writes.

A sample is one JSON object (one JSONL line), ms-swift compatible plus Citrus-V's additions:

.. code-block:: json

    {"id": "ct_00--AMOS--0001",
     "messages": [{"role": "user", "content": "<image>Please segment the liver."},
                  {"role": "assistant", "content": "Sure, it is [SEG]."}],
     "images": ["images/ct_0001.png"],
     "masks": [{"size": [512, 512], "counts": "..."}],
     "objects": {"ref": ["liver"], "bbox": [[120, 80, 300, 260]], "bbox_type": "real", "image_id": [0]},
     "tags": {"modality": ["CT"], "task": ["Lesion Localization"], "region": ["Abdomen"]}}

* ``messages``: roles system / user / assistant / tool; ``<image>`` placeholders in the text.
* ``images``: paths (relative to the JSONL file's folder unless absolute) or ``{"path": ...}``.
* ``masks``: COCO RLE dicts or mask-image paths; the k-th mask belongs to the k-th ``[SEG]`` in
  the assistant messages and lies on the first image, at its original size.
* ``objects``: boxes for grounding (ms-swift ``objects``); ``bbox_type`` ``"real"`` (original
  pixels) or ``"norm1000"``; ``image_id`` says which image each box is on.
* ``tags``: modality / task / region from the paper's taxonomy (``citrusv.data.taxonomy``);
  other tag kinds are free text.

Unknown top-level keys are kept in ``extra`` and written back unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..processing.masks import RLEError, validate_rle
from ..processing.tokens import CHAT_CONTROL_TOKENS, SEG
from .taxonomy import TAXONOMY, canonical_tag

__all__ = ["Objects", "Sample", "SampleError", "parse_sample"]

ROLES = ("system", "user", "assistant", "tool")
IMAGE_TAG = "<image>"
_KNOWN_KEYS = {"id", "messages", "images", "masks", "objects", "tags"}


class SampleError(ValueError):
    """A row that does not follow the sample schema.

    Attributes:
        where: the row's location (``"line 12"``, ``"row 3"``).
        field: the offending field (``"messages[1].content"``), or ``None`` for the whole row.
        reason: what is wrong.
    """

    def __init__(self, where: str, field: str | None, reason: str):
        self.where, self.field, self.reason = where, field, reason
        super().__init__(f"{where}: {field + ': ' if field else ''}{reason}")


@dataclass
class Objects:
    """Grounding boxes of a sample (ms-swift ``objects``)."""

    ref: list[str]
    bbox: list[list[float]]
    bbox_type: str = "real"
    image_id: list[int] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ref": list(self.ref), "bbox": [list(b) for b in self.bbox], "bbox_type": self.bbox_type}
        if self.image_id is not None:
            out["image_id"] = list(self.image_id)
        return out


@dataclass
class Sample:
    """One validated sample (see the module docstring for the fields)."""

    messages: list[dict[str, str]]
    images: list[str] = field(default_factory=list)
    masks: list[dict[str, Any] | str] = field(default_factory=list)
    objects: Objects | None = None
    tags: dict[str, list[str]] = field(default_factory=dict)
    id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_seg_tokens(self) -> int:
        return sum(m["content"].count(SEG) for m in self.messages if m["role"] == "assistant")

    def resolve_paths(self, root: str | Path) -> Sample:
        """A copy whose relative image / mask paths are made absolute under ``root``."""
        def resolve(p: str) -> str:
            return p if Path(p).is_absolute() or re.match(r"^[a-z]+://|^data:", p) else str(Path(root) / p)

        return Sample(messages=self.messages, images=[resolve(p) for p in self.images],
                      masks=[resolve(m) if isinstance(m, str) else m for m in self.masks], objects=self.objects,
                      tags=self.tags, id=self.id, extra=self.extra)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object for this sample (round-trips through ``parse_sample``)."""
        out: dict[str, Any] = {}
        if self.id is not None:
            out["id"] = self.id
        out["messages"] = [dict(m) for m in self.messages]
        if self.images:
            out["images"] = list(self.images)
        if self.masks:
            out["masks"] = list(self.masks)
        if self.objects is not None:
            out["objects"] = self.objects.to_dict()
        if self.tags:
            out["tags"] = {k: list(v) for k, v in self.tags.items()}
        out.update(self.extra)
        return out


def _messages(row: dict[str, Any], where: str) -> list[dict[str, str]]:
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        raise SampleError(where, "messages", "must be a non-empty list")
    out = []
    for i, message in enumerate(messages):
        name = f"messages[{i}]"
        if not isinstance(message, dict):
            raise SampleError(where, name, "must be an object with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise SampleError(where, f"{name}.role", f"must be one of {ROLES}, got {role!r}")
        if not isinstance(content, str):
            raise SampleError(where, f"{name}.content", f"must be a string, got {type(content).__name__}")
        reserved = [t for t in CHAT_CONTROL_TOKENS if t in content]
        if role != "assistant" and SEG in content:
            reserved.append(SEG)
        if reserved:
            raise SampleError(where, f"{name}.content", f"contains reserved token(s) {reserved}")
        out.append({"role": role, "content": content})
    return out


def _images(row: dict[str, Any], where: str) -> list[str]:
    images = row.get("images", [])
    if isinstance(images, str):
        images = [images]
    if not isinstance(images, list):
        raise SampleError(where, "images", "must be a list of paths")
    out = []
    for i, image in enumerate(images):
        if isinstance(image, dict):
            image = image.get("path")
        if not isinstance(image, str) or not image.strip():
            raise SampleError(where, f"images[{i}]", "must be a non-empty path string or {\"path\": ...}")
        out.append(image)
    return out


def _masks(row: dict[str, Any], where: str) -> list[dict[str, Any] | str]:
    masks = row.get("masks", [])
    if not isinstance(masks, list):
        raise SampleError(where, "masks", "must be a list of COCO RLE objects or mask paths")
    for i, mask in enumerate(masks):
        if isinstance(mask, str):
            if not mask.strip():
                raise SampleError(where, f"masks[{i}]", "empty path")
        else:
            try:
                (height, width), _ = validate_rle(mask)
            except RLEError as err:
                raise SampleError(where, f"masks[{i}]", str(err)) from None
            if height == 0 or width == 0:
                raise SampleError(where, f"masks[{i}]", f"mask size {height}x{width} is empty")
    return masks


def _objects(row: dict[str, Any], where: str, num_images: int) -> Objects | None:
    objects = row.get("objects")
    if objects is None:
        return None
    if not isinstance(objects, dict):
        raise SampleError(where, "objects", "must be an object with ref and bbox lists")
    refs, boxes = objects.get("ref", []), objects.get("bbox", [])
    if not isinstance(refs, list) or not isinstance(boxes, list):
        raise SampleError(where, "objects", "ref and bbox must be lists")
    if refs and len(refs) != len(boxes):
        raise SampleError(where, "objects", f"{len(refs)} refs but {len(boxes)} boxes")
    bbox_type = objects.get("bbox_type", "real")
    if bbox_type not in ("real", "norm1000"):
        raise SampleError(where, "objects.bbox_type", f"must be 'real' or 'norm1000', got {bbox_type!r}")
    clean = []
    for i, box in enumerate(boxes):
        name = f"objects.bbox[{i}]"
        if (not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
            raise SampleError(where, name, f"must be 4 numbers [x1, y1, x2, y2], got {box!r}")
        x1, y1, x2, y2 = box
        if x1 > x2 or y1 > y2:
            raise SampleError(where, name, f"corners out of order: {box}")
        if min(box) < 0 or (bbox_type == "norm1000" and max(box) > 1000):
            raise SampleError(where, name, f"coordinates outside the {bbox_type} range: {box}")
        clean.append([float(v) for v in box])
    image_id = objects.get("image_id")
    if image_id is not None:
        if not isinstance(image_id, list) or len(image_id) != len(boxes):
            raise SampleError(where, "objects.image_id", f"must list one image index per box ({len(boxes)})")
        bad = [i for i in image_id if not isinstance(i, int) or not 0 <= i < num_images]
        if bad:
            raise SampleError(where, "objects.image_id", f"indices {bad} do not name one of the {num_images} images")
    return Objects(ref=[str(r) for r in refs] or [""] * len(clean), bbox=clean, bbox_type=bbox_type, image_id=image_id)


def _tags(row: dict[str, Any], where: str) -> dict[str, list[str]]:
    tags = row.get("tags", {})
    if not isinstance(tags, dict):
        raise SampleError(where, "tags", "must be an object of tag kind → list of values")
    out: dict[str, list[str]] = {}
    for kind, values in tags.items():
        values = [values] if isinstance(values, str) else values
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise SampleError(where, f"tags.{kind}", "must be a string or a list of strings")
        if kind in TAXONOMY:
            try:
                values = [canonical_tag(kind, v) for v in values]
            except ValueError as err:
                raise SampleError(where, f"tags.{kind}", str(err)) from None
        out[kind] = values
    return out


def parse_sample(row: Any, where: str = "row") -> Sample:
    """Validate one raw row and build a ``Sample``.

    Raises:
        SampleError: the first problem found, naming ``where`` and the field.
    """
    if not isinstance(row, dict):
        raise SampleError(where, None, f"must be a JSON object, got {type(row).__name__}")
    messages = _messages(row, where)
    images = _images(row, where)
    masks = _masks(row, where)
    tags_in_text = sum(m["content"].count(IMAGE_TAG) for m in messages)
    if tags_in_text > len(images):
        raise SampleError(where, "messages", f"{tags_in_text} <image> placeholders but {len(images)} images")
    num_seg = sum(m["content"].count(SEG) for m in messages if m["role"] == "assistant")
    if num_seg != len(masks):
        raise SampleError(where, "masks", f"{num_seg} [SEG] token(s) in assistant messages but {len(masks)} mask(s)")
    if masks and not images:
        raise SampleError(where, "masks", "masks need an image to lie on")
    sample_id = row.get("id")
    if sample_id is not None and not isinstance(sample_id, (str, int)):
        raise SampleError(where, "id", "must be a string or an integer")
    return Sample(
        messages=messages, images=images, masks=masks, objects=_objects(row, where, len(images)), tags=_tags(row, where),
        id=str(sample_id) if sample_id is not None else None,
        extra={k: v for k, v in row.items() if k not in _KNOWN_KEYS},
    )
