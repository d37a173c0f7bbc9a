"""Segmentation Dice / IoU and detection Precision@IoU, as the Citrus-V ``eval/`` scripts score them.

Segmentation (MeCoVQA-G+, MedSegBench; ``eval_segmentation*.py``): the **first** predicted mask
only (COCO RLE), an all-zero mask of the image size when there is none, resized to the gold size by
nearest neighbour (OpenCV ``INTER_NEAREST``: source index ``floor(i * in / out)``); gold = the
mask image converted to grayscale, ``> 0``. Dice = 2|A∩B| / (|A| + |B|), 1.0 when both are empty.

Detection ("MedSAM2 (eval)"; ``eval_detection.py``): the first box found in the text (Qwen
``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` integer tokens, else ``{"bbox_2d": [...]}`` objects),
rescaled from the Qwen2.5-VL smart-resized image (factor 28, min 4·28², max 1,003,520 pixels) to
the original size with truncation to int and clamping; no box → ``[0, 0, 0, 0]``. IoU with
torchvision ``box_area`` semantics (no +1); a hit is IoU ≥ 0.5. A degenerate gold box gives
IoU = NaN, which the reference counts as a miss; ``strict=True`` leaves such rows out instead.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...processing.image import smart_resize

__all__ = [
    "DETECTION_MAX_PIXELS",
    "DETECTION_MIN_PIXELS",
    "DetectionScores",
    "SegmentationScores",
    "box_iou_xyxy",
    "dice_score",
    "extract_detection_box",
    "first_prediction_mask",
    "load_gold_mask",
    "mask_iou",
    "resize_nearest_cv2",
    "score_detection",
    "score_segmentation",
]

DETECTION_FACTOR = 28
DETECTION_MIN_PIXELS = 4 * 28 * 28
DETECTION_MAX_PIXELS = 1_003_520

_BOX_TOKENS = re.compile(r"<\|box_start\|>\((\d+),(\d+)\),\((\d+),(\d+)\)<\|box_end\|>")
_BBOX_2D_OBJECT = re.compile(r"\{[^{}]*?\"bbox_2d\"\s*:\s*\[[^\[\]]+\][^{}]*?\}")


# ----------------------------------------------------------------------------- masks
def resize_nearest_cv2(mask_hw: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """``[H, W]`` → ``[h, w]`` nearest neighbour with OpenCV ``INTER_NEAREST`` indexing."""
    mask_hw = np.asarray(mask_hw)
    in_h, in_w = mask_hw.shape[:2]
    out_h, out_w = out_hw
    rows = np.minimum(np.floor(np.arange(out_h) * (in_h / out_h)).astype(np.int64), in_h - 1)
    cols = np.minimum(np.floor(np.arange(out_w) * (in_w / out_w)).astype(np.int64), in_w - 1)
    return mask_hw[rows][:, cols]


def dice_score(pred_mask_hw: np.ndarray, gold_mask_hw: np.ndarray) -> float:
    """Dice of two masks of the same shape (values ``> 0`` are foreground); both empty → 1.0."""
    pred, gold = np.asarray(pred_mask_hw) > 0, np.asarray(gold_mask_hw) > 0
    if pred.shape != gold.shape:
        raise ValueError(f"mask shapes differ: prediction {pred.shape}, gold {gold.shape}")
    denominator = int(pred.sum()) + int(gold.sum())
    if denominator == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, gold).sum()) / denominator


def mask_iou(pred_mask_hw: np.ndarray, gold_mask_hw: np.ndarray) -> float:
    """|A∩B| / |A∪B| of two masks of the same shape; both empty → 1.0 (as Dice)."""
    pred, gold = np.asarray(pred_mask_hw) > 0, np.asarray(gold_mask_hw) > 0
    if pred.shape != gold.shape:
        raise ValueError(f"mask shapes differ: prediction {pred.shape}, gold {gold.shape}")
    union = int(np.logical_or(pred, gold).sum())
    return 1.0 if union == 0 else int(np.logical_and(pred, gold).sum()) / union


def load_gold_mask(path: str | Path) -> np.ndarray:
    """A gold mask image → ``[H, W]`` bool (grayscale ``> 0``). Raises FileNotFoundError."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("L")) > 0


def first_prediction_mask(rles: Sequence[Mapping[str, Any]] | None, image_hw: tuple[int, int],
                          gold_hw: tuple[int, int]) -> np.ndarray:
    """The reference's prediction mask: the first RLE (or zeros of the image size), at the gold size."""
    from ...processing.masks import rle_decode

    mask = rle_decode(dict(rles[0])) if rles else np.zeros(image_hw, dtype=bool)
    if mask.shape != tuple(gold_hw):
        mask = resize_nearest_cv2(mask.astype(np.uint8), gold_hw)
    return mask > 0


@dataclass
class SegmentationScores:
    """Mean Dice (and IoU) on 0–100, with std and breakdowns by modality / dataset / region."""

    mean_dice: float
    std_dice: float
    mean_iou: float
    count: int
    skipped: int
    failed: int
    by_tag: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _summarise(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean() * 100), "std": float(array.std() * 100), "count": len(values)}


def score_segmentation(rows: Sequence[Mapping[str, Any]]) -> SegmentationScores:
    """Score segmentation rows.

    Each row holds ``id``, ``answer`` (the gold mask path), ``prediction_masks`` (a list of COCO RLE
    dicts at the original image size; missing or empty = no mask), ``image_size`` ``[h, w]``
    (needed only when there is no mask) and optional ``tags``. A row whose gold mask file is missing
    is skipped (as the reference); a row that fails otherwise (a corrupt RLE, say) is recorded and
    left out of the mean, as MedSegBench's scorer does.
    """
    dices: list[float] = []
    ious: list[float] = []
    items: list[dict[str, Any]] = []
    by_tag: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    skipped = failed = 0
    for row in rows:
        row_id = str(row["id"])
        gold_path = Path(str(row["answer"]))
        if not gold_path.is_file():
            skipped += 1
            items.append({"id": row_id, "error": f"gold mask not found: {gold_path}"})
            continue
        try:
            gold = load_gold_mask(gold_path)
            image_hw = tuple(row.get("image_size") or gold.shape)
            pred = first_prediction_mask(row.get("prediction_masks"), image_hw, gold.shape)
            dice, iou = dice_score(pred, gold), mask_iou(pred, gold)
        except Exception as err:  # one bad row must not stop the benchmark
            failed += 1
            items.append({"id": row_id, "error": f"{type(err).__name__}: {err}"})
            continue
        dices.append(dice)
        ious.append(iou)
        items.append({"id": row_id, "score": dice * 100, "dice": dice, "iou": iou})
        for key, value in (row.get("tags") or {}).items():
            by_tag[key][str(value)].append(dice)
    if not dices:
        return SegmentationScores(0.0, 0.0, 0.0, 0, skipped, failed, {}, items)
    return SegmentationScores(
        mean_dice=float(np.mean(dices) * 100),
        std_dice=float(np.std(dices) * 100),
        mean_iou=float(np.mean(ious) * 100),
        count=len(dices),
        skipped=skipped,
        failed=failed,
        by_tag={key: {value: _summarise(scores) for value, scores in sorted(groups.items())} for key, groups in by_tag.items()},
        items=items,
    )


# ----------------------------------------------------------------------------- boxes
def box_iou_xyxy(box_a: Sequence[float], box_b: Sequence[float]) -> float:
    """IoU of two ``[x1, y1, x2, y2]`` boxes, torchvision semantics (NaN when the union is 0)."""
    ax1, ay1, ax2, ay2 = (float(v) for v in box_a)
    bx1, by1, bx2, by2 = (float(v) for v in box_b)
    inter = max(min(ax2, bx2) - max(ax1, bx1), 0.0) * max(min(ay2, by2) - max(ay1, by1), 0.0)
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / union if union != 0 else math.nan


def extract_detection_box(response: str, orig_wh: tuple[int, int] | None = None, *,
                          max_pixels: int = DETECTION_MAX_PIXELS,
                          min_pixels: int = DETECTION_MIN_PIXELS) -> list[float]:
    """The first box of the text, in original pixels (``[0, 0, 0, 0]`` when there is none).

    With ``orig_wh`` (original width, height) the box is mapped from the smart-resized image to
    the original one as the reference does (int truncation, then clamping); without it the raw
    numbers are returned (the offline ``calculate_precision.py`` behaviour).
    """
    boxes: list[list[float]] = [[float(v) for v in match] for match in _BOX_TOKENS.findall(response)]
    if not boxes:
        for text in _BBOX_2D_OBJECT.findall(response):
            try:
                value = json.loads(text).get("bbox_2d")
                if isinstance(value, list) and len(value) == 4:
                    boxes.append([float(v) for v in value])
            except (ValueError, TypeError, AttributeError):
                continue
    if not boxes:
        return [0.0, 0.0, 0.0, 0.0]
    box = boxes[0]
    if orig_wh is None:
        return box
    width, height = orig_wh
    resized_h, resized_w = smart_resize(height, width, DETECTION_FACTOR, min_pixels, max_pixels)
    sx, sy = width / resized_w, height / resized_h
    x1 = max(0, min(int(box[0] * sx), width))
    y1 = max(0, min(int(box[1] * sy), height))
    x2 = max(x1, min(int(box[2] * sx), width))
    y2 = max(y1, min(int(box[3] * sy), height))
    return [float(x1), float(y1), float(x2), float(y2)]


@dataclass
class DetectionScores:
    """Precision@IoU (share of rows with IoU ≥ threshold) and mean IoU, on 0–100."""

    precision: float
    mean_iou: float
    threshold: float
    count: int
    skipped: int
    items: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def score_detection(rows: Sequence[Mapping[str, Any]], *, threshold: float = 0.5, rescale: bool = True,
                    strict: bool = False) -> DetectionScores:
    """Score detection rows: ``id``, ``answer`` (gold ``[x1, y1, x2, y2]`` original pixels),
    ``prediction`` (text), ``width`` / ``height`` (original size; also read from ``extra``).

    ``rescale=False`` reproduces the offline rescoring script (no mapping from the resized image).
    """
    hits = 0
    ious: list[float] = []
    items: list[dict[str, Any]] = []
    skipped = 0
    for row in rows:
        extra = row.get("extra") or {}
        width, height = row.get("width", extra.get("width")), row.get("height", extra.get("height"))
        gold = [float(v) for v in row["answer"]]
        if strict and (gold[2] <= gold[0] or gold[3] <= gold[1]):
            skipped += 1
            items.append({"id": str(row["id"]), "error": f"degenerate gold box {gold}"})
            continue
        size = (int(width), int(height)) if rescale and width and height else None
        box = extract_detection_box(str(row.get("prediction") or ""), size)
        iou = box_iou_xyxy(box, gold)
        hit = bool(iou >= threshold)  # NaN compares False: a miss, as the reference
        hits += hit
        ious.append(0.0 if math.isnan(iou) else iou)
        items.append({"id": str(row["id"]), "score": 100.0 * hit, "iou": None if math.isnan(iou) else iou,
                      "box_xyxy_orig_px": box})
    count = len(ious)
    return DetectionScores(
        precision=100.0 * hits / count if count else 0.0,
        mean_iou=100.0 * float(np.mean(ious)) if ious else 0.0,
        threshold=threshold,
        count=count,
        skipped=skipped,
        items=items,
    )
