import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citrusv.processing.boxes import (
    CITRUS_V,
    MEDGEMMA,
    QWEN2_VL,
    QWEN3_VL,
    boxes_norm1000_to_orig_px,
    boxes_orig_px_to_norm1000,
    boxes_orig_px_to_resized_px,
    boxes_resized_px_to_orig_px,
    parse_boxes,
)
from citrusv.processing.processor import ImageSize

# original 600x800 (h x w), resized 300x400: every resized coordinate doubles.
SIZE = ImageSize(orig_hw=(600, 800), resized_hw=(300, 400))


@pytest.mark.parametrize("text, convention, expected, label, fmt", [
    ('```json\n[{"bbox_2d": [10, 20, 110, 220], "label": "liver"}]\n```', CITRUS_V, (20, 40, 220, 440), "liver", "bbox_2d"),
    ('[{"bbox_2d": [100, 200, 500, 700], "label": "liver"}]', QWEN3_VL, (80, 120, 400, 420), "liver", "bbox_2d"),
    ("<|object_ref_start|>heart<|object_ref_end|><|box_start|>(10,20),(110,220)<|box_end|>", CITRUS_V,
     (20, 40, 220, 440), "heart", "box_start"),
    ("<|box_start|>(100,200),(500,700)<|box_end|>", QWEN2_VL, (80, 120, 400, 420), None, "box_start"),
    ("the heart <bbox>[10, 20, 110, 220]</bbox> is normal", CITRUS_V, (20, 40, 220, 440), None, "bbox_tag"),
    ("<ref>rib</ref><bbox>10,20,110,220</bbox>", CITRUS_V, (20, 40, 220, 440), "rib", "bbox_tag"),
    ('{"box_2d": [200, 100, 700, 500], "label": "nodule"}', MEDGEMMA, (80, 120, 400, 420), "nodule", "box_2d"),
    ('{"Part": "heart", "bbox": "[10, 20, 110, 220]"}', CITRUS_V, (20, 40, 220, 440), "heart", "part"),
    ("'left lung' with bbox [10, 20, 110, 220]", CITRUS_V, (20, 40, 220, 440), "left lung", "with_bbox"),
])
def test_formats(text, convention, expected, label, fmt):
    boxes, warnings = parse_boxes(text, SIZE, convention)
    assert warnings == []
    assert len(boxes) == 1
    assert boxes[0].xyxy_orig_px == pytest.approx(expected)
    assert boxes[0].label == label and boxes[0].source_format == fmt


def test_several_boxes_keep_text_order():
    text = ('<bbox>[1, 1, 5, 5]</bbox> then ```json\n[{"bbox_2d": [10, 10, 20, 20], "label": "a"}, '
            '{"bbox_2d": [30, 30, 40, 40], "label": "b"}]```')
    boxes, warnings = parse_boxes(text, SIZE)
    assert [b.source_format for b in boxes] == ["bbox_tag", "bbox_2d", "bbox_2d"]
    assert [b.label for b in boxes] == [None, "a", "b"] and warnings == []


@pytest.mark.parametrize("text, warning", [
    ('{"bbox_2d": [1, 2, 3], "label": "x"}', "3 numbers"),
    ('{"bbox_2d": [50, 60, 10, 20], "label": "x"}', "swapped corners"),
    ('{"bbox_2d": [10, 10, 10, 50]}', "zero area"),
    ("<bbox>[10, 20, 900, 30]</bbox>", "clipped"),
    ("<|box_start|>(10,20),(30", "unterminated box_start"),
    ("{'bbox_2d': [1, 2, 30, 40], 'label': 'x',}", None),
    ('{"bbox_2d": [1, 2, 30, 40], "label": "x",}', "not valid JSON"),
])
def test_malformed_boxes_warn(text, warning):
    boxes, warnings = parse_boxes(text, SIZE)
    if warning is None:
        assert boxes == [] and warnings == []
    else:
        assert any(warning in w for w in warnings), warnings


def test_swapped_and_clipped_values():
    boxes, _ = parse_boxes('{"bbox_2d": [50, 60, 10, 20]}', SIZE)
    assert boxes[0].xyxy_orig_px == pytest.approx((20, 40, 100, 120))
    boxes, _ = parse_boxes("<bbox>[10, 20, 900, 30]</bbox>", SIZE)
    assert boxes[0].xyxy_orig_px == pytest.approx((20, 40, 800, 60))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list('{}[]()<>|",:0123456789 -.abx_') + ['"bbox_2d"', "<bbox>", "</bbox>",
                "<|box_start|>", "<|box_end|>", '"box_2d"', '"label"', "'x' with bbox "]), max_size=40).map("".join))
def test_parser_never_raises(text):
    boxes, warnings = parse_boxes(text, SIZE)
    for box in boxes:
        x1, y1, x2, y2 = box.xyxy_orig_px
        assert 0 <= x1 < x2 <= 800 and 0 <= y1 < y2 <= 600


coords = st.floats(0, 1000, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(coords, coords, coords, coords), min_size=1, max_size=5),
       st.tuples(st.integers(8, 4000), st.integers(8, 4000)), st.tuples(st.integers(8, 4000), st.integers(8, 4000)))
def test_conversions_round_trip(boxes, orig_hw, resized_hw):
    boxes = np.asarray(boxes)
    np.testing.assert_allclose(
        boxes_resized_px_to_orig_px(boxes_orig_px_to_resized_px(boxes, orig_hw, resized_hw), resized_hw, orig_hw),
        boxes, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(boxes_norm1000_to_orig_px(boxes_orig_px_to_norm1000(boxes, orig_hw), orig_hw),
                               boxes, rtol=1e-9, atol=1e-6)


def test_conversion_shape_check():
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        boxes_norm1000_to_orig_px([1, 2, 3], (10, 10))
