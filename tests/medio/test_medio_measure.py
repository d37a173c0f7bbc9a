"""Measurements in mm: hand-checkable masks, anisotropic spacing, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from citrusv.medio import MedicalImageError, mask_area_mm2, mask_volume_ml, recist_diameters_mm


def _rect(h: int, w: int, shape=(20, 20), top=2, left=3) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[top : top + h, left : left + w] = True
    return mask


@pytest.mark.parametrize(
    "mask, spacing, area",
    [
        (_rect(4, 5), (1.0, 1.0), 20.0),  # 20 pixels
        (_rect(4, 5), (0.5, 2.0), 20.0),  # 20 × 0.5 × 2
        (_rect(1, 1), (0.7, 0.7), 0.49),
        (np.zeros((5, 5)), (1.0, 1.0), 0.0),
    ],
)
def test_area(mask, spacing, area):
    assert mask_area_mm2(mask, spacing) == pytest.approx(area)


@pytest.mark.parametrize(
    "mask, spacing, long_mm, short_mm",
    [
        # 1 × 10 line: centres 9 px apart; perpendicular extent 0
        (_rect(1, 10), (1.0, 1.0), 9.0, 0.0),
        # 4 × 5 rectangle, spacing (2, 1) mm: diagonal between corner centres sqrt(6² + 4²)
        (_rect(4, 5), (2.0, 1.0), math.hypot(6.0, 4.0), None),
        # a single pixel
        (_rect(1, 1), (1.0, 1.0), 0.0, 0.0),
        # vertical 8-pixel bar, 3 wide, rows at 0.5 mm: long axis is the diagonal
        (_rect(8, 3), (0.5, 0.5), math.hypot(3.5, 1.0), None),
    ],
)
def test_recist_hand_cases(mask, spacing, long_mm, short_mm):
    result = recist_diameters_mm(mask, spacing)
    assert result.long_axis_mm == pytest.approx(long_mm)
    if short_mm is not None:
        assert result.short_axis_mm == pytest.approx(short_mm)
    assert result.short_axis_mm <= result.long_axis_mm + 1e-9


def test_recist_ellipse_axes():
    # ellipse with semi-axes 30 px (cols) and 12 px (rows) at 0.5 mm: axes ≈ 30 mm and 12 mm
    rows, cols = np.mgrid[0:64, 0:96]
    mask = ((cols - 48) / 30.0) ** 2 + ((rows - 32) / 12.0) ** 2 <= 1.0
    result = recist_diameters_mm(mask, (0.5, 0.5))
    assert result.long_axis_mm == pytest.approx(30.0, abs=0.6)
    assert result.short_axis_mm == pytest.approx(12.0, abs=0.6)
    (r0, c0), (r1, c1) = result.long_axis_rc
    assert abs(r0 - r1) <= 1  # horizontal long axis
    (r0, c0), (r1, c1) = result.short_axis_rc
    assert abs(c0 - c1) <= 1  # vertical short axis


def test_recist_rotated_rectangle_anisotropic():
    # a 40 × 10 mm bar along the image diagonal, drawn on a 0.5 × 0.25 mm grid
    rows, cols = np.mgrid[0:200, 0:400]
    y, x = rows * 0.5, cols * 0.25
    u = np.array([1.0, 1.0]) / math.sqrt(2)
    t = (y - 50) * u[0] + (x - 50) * u[1]
    s = -(y - 50) * u[1] + (x - 50) * u[0]
    mask = (np.abs(t) <= 20) & (np.abs(s) <= 5)
    result = recist_diameters_mm(mask, (0.5, 0.25))
    assert result.long_axis_mm == pytest.approx(math.hypot(40, 10), abs=1.0)
    # the short axis is measured perpendicular to the (slightly tilted) long axis: within a pixel of 10 mm
    assert result.short_axis_mm == pytest.approx(10.0, abs=1.0)


@settings(max_examples=40, deadline=None)
@given(
    mask=hnp.arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12))),
    spacing=st.tuples(st.floats(0.1, 3.0), st.floats(0.1, 3.0)),
)
def test_measurements_are_invariant_under_flips_and_transpose(mask, spacing):
    if not mask.any():
        return
    flipped_spacing = (spacing[1], spacing[0])
    base = recist_diameters_mm(mask, spacing)
    for other, other_spacing in ((mask[::-1], spacing), (mask[:, ::-1], spacing), (mask.T, flipped_spacing)):
        assert mask_area_mm2(other, other_spacing) == pytest.approx(mask_area_mm2(mask, spacing))
        assert recist_diameters_mm(other, other_spacing).long_axis_mm == pytest.approx(base.long_axis_mm)
    assert 0.0 <= base.short_axis_mm <= base.long_axis_mm + 1e-9


def test_volume_ml():
    mask = np.zeros((10, 10, 10), bool)
    mask[:5, :4, :2] = True  # 40 voxels
    assert mask_volume_ml(mask, (1.0, 2.0, 2.5)) == pytest.approx(40 * 5.0 / 1000.0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: mask_area_mm2(np.ones((3, 3)), None), "no pixel spacing"),
        (lambda: mask_area_mm2(np.ones((3, 3)), (1.0, 0.0)), "positive numbers"),
        (lambda: mask_area_mm2(np.ones((3, 3, 3)), (1.0, 1.0)), "must be 2-D"),
        (lambda: mask_volume_ml(np.ones((3, 3)), (1.0, 1.0, 1.0)), "must be 3-D"),
        (lambda: mask_volume_ml(np.ones((3, 3, 3)), (1.0, 1.0)), "3 positive numbers"),
        (lambda: recist_diameters_mm(np.zeros((3, 3)), (1.0, 1.0)), "empty mask"),
    ],
)
def test_measure_errors(call, message):
    with pytest.raises(MedicalImageError, match=message):
        call()
