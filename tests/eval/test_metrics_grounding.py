"""Reference tests for segmentation Dice / IoU and detection Precision@0.5 (docs/evaluation.md §5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from citrusv.eval.metrics.grounding import (
    box_iou_xyxy,
    dice_score,
    extract_detection_box,
    first_prediction_mask,
    mask_iou,
    resize_nearest_cv2,
    score_detection,
    score_segmentation,
)
from citrusv.processing.masks import rle_encode


def test_dice_and_iou_hand_computed():
    pred = np.zeros((4, 4), bool)
    gold = np.zeros((4, 4), bool)
    pred[0, :3] = True  # 3 px
    gold[0, 1:] = True  # 3 px, overlap 2
    assert dice_score(pred, gold) == pytest.approx(2 * 2 / 6)
    assert mask_iou(pred, gold) == pytest.approx(2 / 4)


def test_dice_empty_cases():
    empty = np.zeros((3, 3), bool)
    full = np.ones((3, 3), bool)
    assert dice_score(empty, empty) == 1.0 and mask_iou(empty, empty) == 1.0
    assert dice_score(empty, full) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        dice_score(empty, np.zeros((2, 2)))


def test_resize_nearest_matches_opencv_indexing():
    source = np.arange(4 * 6).reshape(4, 6)
    out = resize_nearest_cv2(source, (2, 3))
    assert out.tolist() == [[0, 2, 4], [12, 14, 16]]  # floor(i * 2)
    up = resize_nearest_cv2(np.array([[1, 2], [3, 4]]), (3, 3))
    assert up.tolist() == [[1, 1, 2], [1, 1, 2], [3, 3, 4]]  # floor(i * 2/3)


def test_first_mask_rule_and_missing_prediction():
    first = np.zeros((8, 8), bool)
    first[:4] = True
    second = np.ones((8, 8), bool)
    mask = first_prediction_mask([rle_encode(first), rle_encode(second)], (8, 8), (4, 4))
    assert mask.shape == (4, 4) and mask[:2].all() and not mask[2:].any()
    assert not first_prediction_mask(None, (8, 8), (4, 4)).any()
    assert not first_prediction_mask([], (8, 8), (8, 8)).any()


def _write_mask(path, mask):
    Image.fromarray((mask * 255).astype(np.uint8)).save(path)
    return str(path)


def test_score_segmentation_breakdowns_skips_and_failures(tmp_path):
    gold = np.zeros((8, 8), bool)
    gold[2:6, 2:6] = True
    gold_path = _write_mask(tmp_path / "g.png", gold)
    empty_path = _write_mask(tmp_path / "e.png", np.zeros((8, 8), bool))
    rows = [
        {"id": "CT_1", "answer": gold_path, "prediction_masks": [rle_encode(gold)], "tags": {"modality": "CT"}},
        {"id": "MR_1", "answer": gold_path, "prediction_masks": [], "image_size": [8, 8], "tags": {"modality": "MR"}},
        {"id": "MR_2", "answer": empty_path, "prediction_masks": None, "image_size": [8, 8], "tags": {"modality": "MR"}},
        {"id": "CT_missing", "answer": str(tmp_path / "nope.png"), "prediction_masks": []},
        {"id": "CT_bad", "answer": gold_path, "prediction_masks": [{"size": [8, 8], "counts": "!!"}]},
    ]
    scores = score_segmentation(rows)
    assert scores.count == 3 and scores.skipped == 1 and scores.failed == 1
    assert scores.mean_dice == pytest.approx(100 * (1 + 0 + 1) / 3)
    assert scores.std_dice == pytest.approx(100 * np.std([1, 0, 1]))
    assert scores.by_tag["modality"]["MR"]["mean"] == pytest.approx(50.0)
    assert scores.by_tag["modality"]["CT"]["count"] == 1
    errors = {item["id"]: item.get("error", "") for item in scores.items}
    assert "not found" in errors["CT_missing"] and errors["CT_bad"]


# ----------------------------------------------------------------------------- detection
def test_box_iou_torchvision_semantics():
    assert box_iou_xyxy([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert box_iou_xyxy([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert math.isnan(box_iou_xyxy([0, 0, 0, 0], [0, 0, 0, 0]))


def test_extract_box_formats_first_box_and_none():
    assert extract_detection_box("<|box_start|>(1,2),(30,40)<|box_end|> <|box_start|>(5,5),(9,9)<|box_end|>") == [1, 2, 30, 40]
    assert extract_detection_box('[{"bbox_2d": [3, 4, 50.5, 60], "label": "x"}]') == [3, 4, 50.5, 60]
    assert extract_detection_box("<|box_start|>(1, 2),(3,4)<|box_end|>") == [0, 0, 0, 0]  # spaces: no match
    assert extract_detection_box('{"bbox_2d": [1, 2, 3]}') == [0, 0, 0, 0]
    assert extract_detection_box("nothing") == [0, 0, 0, 0]


def test_extract_box_rescales_from_smart_resized_image():
    # 1000 x 500 original → smart_resize(500, 1000, 28, 3136, 1003520) = (504, 1008) (both round).
    box = extract_detection_box('{"bbox_2d": [100, 50, 1008, 504]}', (1000, 500))
    assert box == [int(100 * 1000 / 1008), int(50 * 500 / 504), 1000, 500]
    # A box beyond the image is clamped; x2 never below x1.
    assert extract_detection_box('{"bbox_2d": [2000, 10, 5, 20]}', (1000, 500))[:3] == [1000, 9, 1000]


def test_score_detection_precision_and_nan_gold(tmp_path):
    rows = [
        {"id": "a", "answer": [0, 0, 100, 100], "prediction": '{"bbox_2d": [0, 0, 100, 100]}', "width": 100, "height": 100},
        {"id": "b", "answer": [0, 0, 100, 100], "prediction": '{"bbox_2d": [60, 0, 100, 100]}', "width": 100, "height": 100},
        {"id": "c", "answer": [0, 0, 0, 0], "prediction": "none", "extra": {"width": 100, "height": 100}},
    ]
    scores = score_detection(rows)
    # 100x100 → smart_resize → 112x112: [0,0,100,100] maps to [0,0,89,89]; IoU 0.792 ≥ 0.5.
    assert scores.count == 3 and scores.items[0]["score"] == 100.0
    assert scores.items[1]["score"] == 0.0
    assert scores.items[2]["iou"] is None  # NaN: a miss
    assert scores.precision == pytest.approx(100 / 3)
    strict = score_detection(rows, strict=True)
    assert strict.count == 2 and strict.skipped == 1 and strict.precision == pytest.approx(50.0)
    raw = score_detection(rows[:1], rescale=False)
    assert raw.items[0]["iou"] == pytest.approx(1.0)
