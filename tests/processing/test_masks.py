import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from citrusv.processing.masks import (
    RLEError,
    mask_bbox_xyxy,
    resize_mask_logits,
    resize_mask_nearest,
    rle_area,
    rle_decode,
    rle_encode,
)

masks = arrays(np.bool_, st.tuples(st.integers(1, 40), st.integers(1, 40)))


@settings(max_examples=200, deadline=None)
@given(masks)
def test_rle_matches_pycocotools(mask):
    coco = pytest.importorskip("pycocotools.mask")
    ours = rle_encode(mask)
    reference = coco.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert ours["counts"] == reference["counts"].decode("ascii")
    assert ours["size"] == list(reference["size"])
    np.testing.assert_array_equal(rle_decode(ours), mask)
    np.testing.assert_array_equal(coco.decode({"size": ours["size"], "counts": ours["counts"]}).astype(bool), mask)
    assert rle_area(ours) == int(mask.sum()) == int(coco.area(reference))


@settings(max_examples=100, deadline=None)
@given(masks)
def test_uncompressed_rle_round_trip(mask):
    rle = rle_encode(mask, compressed=False)
    assert sum(rle["counts"]) == mask.size
    np.testing.assert_array_equal(rle_decode(rle), mask)


@pytest.mark.parametrize("rle, match", [
    ({"size": [2, 2]}, "'size' and 'counts'"),
    ({"size": [2], "counts": [4]}, "height, width"),
    ({"size": [2, 2], "counts": [1, 2]}, "cover 3 pixels"),
    ({"size": [2, 2], "counts": [5, -1]}, "negative"),
    ({"size": [2, 2], "counts": "\x7f"}, "invalid character"),
    ({"size": [2, 2], "counts": 4}, "string"),
])
def test_bad_rle(rle, match):
    with pytest.raises(RLEError, match=match):
        rle_decode(rle)


def test_bbox_and_resizing():
    mask = np.zeros((10, 20), dtype=bool)
    mask[2:5, 3:9] = True
    assert mask_bbox_xyxy(mask) == (3, 2, 9, 5)
    assert mask_bbox_xyxy(np.zeros((4, 4), bool)) is None
    small = resize_mask_nearest(mask, (5, 10))
    assert small.shape == (5, 10) and small[1:3, 2:4].all()
    logits = torch.tensor([[[-5.0, 5.0], [5.0, -5.0]]])
    up = resize_mask_logits(logits, (4, 4))
    assert up.shape == (1, 4, 4) and up[0, 0, 3] > 0 and up[0, 0, 0] < 0
    assert resize_mask_logits(torch.zeros(0, 2, 2), (3, 3)).shape == (0, 3, 3)
