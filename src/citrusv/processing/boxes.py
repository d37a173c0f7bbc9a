"""Boxes in model text: every convention models emit, converted to original-image pixels.

Coordinate spaces (names carry them):

* ``orig_px``: pixels of the image as loaded, the only public space;
* ``resized_px``: pixels of Qwen's smart-resized image (Qwen2.5-VL and the released Citrus-V);
* ``norm1000``: 0..1000 relative to width / height (Qwen2-VL ``<|box_start|>``, Qwen3-VL, MedGemma).

Formats recognised by ``parse_boxes``:

=============== ====================================================== ==================
name            example                                                axis order
=============== ====================================================== ==================
``bbox_2d``     ``{"bbox_2d": [x1, y1, x2, y2], "label": "liver"}``    x, y
``box_2d``      ``{"box_2d": [y0, x0, y1, x1], "label": "nodule"}``    y, x (MedGemma)
``box_start``   ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>``            x, y
``bbox_tag``    ``<bbox>[x1, y1, x2, y2]</bbox>``                      x, y
``part``        ``{"Part": "heart", "bbox": "[x1, y1, x2, y2]"}``      x, y
``with_bbox``   ``'heart' with bbox [x1, y1, x2, y2]``                 x, y
=============== ====================================================== ==================

Malformed boxes produce warnings, never exceptions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from .processor import ImageSize

__all__ = [
    "BoxConvention",
    "CITRUS_V",
    "MEDGEMMA",
    "ParsedBox",
    "QWEN2_VL",
    "QWEN3_VL",
    "boxes_norm1000_to_orig_px",
    "boxes_orig_px_to_norm1000",
    "boxes_orig_px_to_resized_px",
    "boxes_resized_px_to_orig_px",
    "convention_for_backbone",
    "parse_boxes",
]

BoxSpace = Literal["resized_px", "norm1000", "orig_px"]


# ----------------------------------------------------------------------------- conversions
def _as_array(boxes_xyxy) -> np.ndarray:
    array = np.asarray(boxes_xyxy, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes must have shape [N, 4], got {array.shape}")
    return array


def _scale(boxes: np.ndarray, sx: float, sy: float) -> np.ndarray:
    return boxes * np.array([sx, sy, sx, sy])


def boxes_resized_px_to_orig_px(boxes_xyxy_resized_px, resized_hw: tuple[int, int], orig_hw: tuple[int, int]) -> np.ndarray:
    """``[N, 4]`` boxes in smart-resized pixels → original pixels."""
    return _scale(_as_array(boxes_xyxy_resized_px), orig_hw[1] / resized_hw[1], orig_hw[0] / resized_hw[0])


def boxes_orig_px_to_resized_px(boxes_xyxy_orig_px, orig_hw: tuple[int, int], resized_hw: tuple[int, int]) -> np.ndarray:
    """``[N, 4]`` boxes in original pixels → smart-resized pixels."""
    return _scale(_as_array(boxes_xyxy_orig_px), resized_hw[1] / orig_hw[1], resized_hw[0] / orig_hw[0])


def boxes_norm1000_to_orig_px(boxes_xyxy_norm1000, orig_hw: tuple[int, int]) -> np.ndarray:
    """``[N, 4]`` boxes on the 0..1000 grid → original pixels."""
    return _scale(_as_array(boxes_xyxy_norm1000), orig_hw[1] / 1000.0, orig_hw[0] / 1000.0)


def boxes_orig_px_to_norm1000(boxes_xyxy_orig_px, orig_hw: tuple[int, int]) -> np.ndarray:
    """``[N, 4]`` boxes in original pixels → the 0..1000 grid."""
    return _scale(_as_array(boxes_xyxy_orig_px), 1000.0 / orig_hw[1], 1000.0 / orig_hw[0])


def _to_orig(box_xyxy: list[float], space: BoxSpace, size: ImageSize) -> np.ndarray:
    box = np.asarray([box_xyxy], dtype=np.float64)
    if space == "resized_px":
        return boxes_resized_px_to_orig_px(box, size.resized_hw, size.orig_hw)[0]
    if space == "norm1000":
        return boxes_norm1000_to_orig_px(box, size.orig_hw)[0]
    return box[0]


# ----------------------------------------------------------------------------- conventions
@dataclass(frozen=True)
class BoxConvention:
    """The coordinate space each format is written in by a given model family."""

    bbox_2d: BoxSpace = "resized_px"
    box_2d: BoxSpace = "norm1000"
    box_start: BoxSpace = "resized_px"
    bbox_tag: BoxSpace = "resized_px"
    part: BoxSpace = "resized_px"
    with_bbox: BoxSpace = "resized_px"


#: The released Citrus-V (Qwen2.5-VL, ``norm_bbox='none'``): absolute resized-image pixels everywhere.
CITRUS_V = BoxConvention()
#: Qwen2-VL: ``<|box_start|>`` on the 0..1000 grid.
QWEN2_VL = replace(CITRUS_V, box_start="norm1000")
#: Qwen3-VL: relative 0..1000 coordinates for JSON and tags.
QWEN3_VL = BoxConvention(bbox_2d="norm1000", box_start="norm1000", bbox_tag="norm1000", part="norm1000",
                         with_bbox="norm1000")
#: MedGemma: ``box_2d`` as [y0, x0, y1, x1] on the 0..1000 grid.
MEDGEMMA = BoxConvention(box_2d="norm1000")


def convention_for_backbone(model_type: str) -> BoxConvention:
    """The box convention a Citrus-V model on this backbone writes."""
    return QWEN3_VL if model_type == "qwen3_vl" else CITRUS_V


# ----------------------------------------------------------------------------- parsing
@dataclass(frozen=True)
class ParsedBox:
    """A box found in model text.

    Attributes:
        xyxy_orig_px: (x1, y1, x2, y2) in original-image pixels, clipped to the image.
        label: the object's label when the text gives one.
        source_format: which format it was written in (see the module docstring).
        raw: the matched text.
        span: (start, end) character offsets of ``raw`` in the text.
    """

    xyxy_orig_px: tuple[float, float, float, float]
    label: str | None
    source_format: str
    raw: str
    span: tuple[int, int]


_NUM = r"-?\d+(?:\.\d+)?"
_JSON_OBJECT = re.compile(r"\{[^{}]*?\"(?:bbox_2d|box_2d)\"\s*:\s*\[[^\[\]]*\][^{}]*\}")
_BOX_START = re.compile(
    r"(?:<\|object_ref_start\|>(?P<label>.*?)<\|object_ref_end\|>\s*)?<\|box_start\|>(?P<body>.*?)<\|box_end\|>", re.S)
_BBOX_TAG = re.compile(r"(?:<ref>(?P<label>.*?)</ref>\s*)?<bbox>(?P<body>.*?)</bbox>", re.S)
_PART = re.compile(r"\{\s*\"Part\"\s*:\s*\"(?P<label>[^\"]*)\"\s*,\s*\"bbox\"\s*:\s*\"?(?P<body>\[[^\]]*\])\"?\s*\}")
_WITH_BBOX = re.compile(r"['\"](?P<label>[^'\"\n]{1,80})['\"]\s+with\s+bbox\s*(?P<body>\[[^\]]*\])")


def _numbers(body: str) -> list[float]:
    return [float(x) for x in re.findall(_NUM, body)]


def parse_boxes(text: str, image_size: ImageSize, convention: BoxConvention = CITRUS_V) -> tuple[list[ParsedBox], list[str]]:
    """Find boxes in model text and convert them to original-image pixels.

    Args:
        text: model output.
        image_size: original and resized size of the image the boxes refer to.
        convention: coordinate space per format (``CITRUS_V``, ``QWEN2_VL``, ``QWEN3_VL``, ``MEDGEMMA``).

    Returns:
        ``(boxes, warnings)``: boxes in text order; one warning per malformed or degenerate box.
    """
    found: list[tuple[int, ParsedBox]] = []
    warnings: list[str] = []
    taken: list[tuple[int, int]] = []

    def overlaps(start: int, end: int) -> bool:
        return any(start < hi and lo < end for lo, hi in taken)

    def add(fmt: str, values: list[float], label: str | None, match: re.Match[str], yx: bool = False) -> None:
        start, end = match.span()
        taken.append((start, end))
        raw = match.group(0)
        if len(values) != 4:
            warnings.append(f"{fmt} box with {len(values)} numbers ignored: {raw[:80]!r}")
            return
        if yx:
            values = [values[1], values[0], values[3], values[2]]
        x1, y1, x2, y2 = values
        if x1 > x2 or y1 > y2:
            warnings.append(f"{fmt} box had swapped corners, reordered: {raw[:80]!r}")
            x1, x2, y1, y2 = min(x1, x2), max(x1, x2), min(y1, y2), max(y1, y2)
        box = _to_orig([x1, y1, x2, y2], getattr(convention, fmt), image_size)
        height, width = image_size.orig_hw
        clipped = np.clip(box, 0, [width, height, width, height])
        if not np.allclose(clipped, box):
            warnings.append(f"{fmt} box extends beyond the image and was clipped: {raw[:80]!r}")
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            warnings.append(f"{fmt} box has zero area and was ignored: {raw[:80]!r}")
            return
        label = label.strip() if label else None
        found.append((start, ParsedBox(tuple(float(v) for v in clipped), label or None, fmt, raw, (start, end))))

    for match in _JSON_OBJECT.finditer(text):
        raw = match.group(0)
        fmt = "bbox_2d" if '"bbox_2d"' in raw else "box_2d"
        try:
            obj = json.loads(raw)
            values = obj[fmt]
            values = [float(v) for v in values] if isinstance(values, list) else []
            label = obj.get("label")
            label = str(label) if label is not None else None
        except (json.JSONDecodeError, TypeError, ValueError):
            body = re.search(rf"\"{fmt}\"\s*:\s*\[([^\]]*)\]", raw)
            values = _numbers(body.group(1)) if body else []
            lab = re.search(r"\"label\"\s*:\s*\"([^\"]*)\"", raw)
            label = lab.group(1) if lab else None
            warnings.append(f"{fmt} object is not valid JSON, read leniently: {raw[:80]!r}")
        add(fmt, values, label, match, yx=(fmt == "box_2d"))

    for fmt, pattern in (("box_start", _BOX_START), ("bbox_tag", _BBOX_TAG), ("part", _PART), ("with_bbox", _WITH_BBOX)):
        for match in pattern.finditer(text):
            if overlaps(*match.span()):
                continue
            add(fmt, _numbers(match.group("body")), match.group("label"), match)

    # Unterminated structures the patterns above cannot match.
    for opener, closer, fmt in (("<|box_start|>", "<|box_end|>", "box_start"), ("<bbox>", "</bbox>", "bbox_tag")):
        for match in re.finditer(re.escape(opener), text):
            if not overlaps(match.start(), match.end()) and closer not in text[match.end():]:
                warnings.append(f"unterminated {fmt} at character {match.start()} ignored")
    found.sort(key=lambda item: item[0])
    return [box for _, box in found], warnings
