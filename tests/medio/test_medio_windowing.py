"""Windowing: closed-form cases, pydicom's apply_windowing as the oracle, presets, errors."""

from __future__ import annotations

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from citrusv.medio import CT_WINDOW_PRESETS, MedicalImageError, invert_display, minmax_to_uint8, resolve_window, window


@pytest.mark.parametrize(
    "values, center, width, function, expected",
    [
        # LINEAR, c=40 w=400: lower edge 40-0.5-199.5 = -160, upper edge 239
        ([-1000, -160, 39.5, 239, 240, 3000], 40, 400, "LINEAR", [0, 0, 128, 255, 255, 255]),
        # LINEAR_EXACT: c ± w/2 = -160..240, midpoint 40 -> 127.5 -> 128
        ([-160, 40, 240, 241], 40, 400, "LINEAR_EXACT", [0, 128, 255, 255]),
        # SIGMOID: x = c gives 0.5
        ([40, -1e6, 1e6], 40, 400, "SIGMOID", [128, 0, 255]),
        # width 1 LINEAR is a threshold at c - 0.5
        ([9, 9.5, 10], 10, 1, "LINEAR", [0, 0, 255]),
    ],
)
def test_window_closed_form(values, center, width, function, expected):
    out = window(np.asarray(values, dtype=np.float64), center, width, function=function)
    assert out.dtype == np.uint8
    assert out.tolist() == expected


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize("center, width", [(40.0, 400.0), (-600.0, 1500.0), (300.0, 7.0)])
def test_window_matches_pydicom(function, center, width):
    from pydicom.dataset import Dataset
    from pydicom.pixels import apply_windowing

    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsStored = 16
    ds.PixelRepresentation = 1
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = center, width, function
    hu = np.linspace(-1500, 2000, 701)
    with np.errstate(over="ignore"):
        expected = apply_windowing(hu.copy(), ds)  # output range -32768..32767
    expected = (expected + 32768.0) / 65535.0 * 255.0
    ours = window(hu, center, width, function=function).astype(np.float64)
    assert np.max(np.abs(ours - expected)) <= 0.5 + 1e-6


def test_presets_are_the_cited_values():
    assert CT_WINDOW_PRESETS == {
        "lung": (-600.0, 1500.0),
        "mediastinum": (50.0, 350.0),
        "bone": (400.0, 1800.0),
        "brain": (40.0, 80.0),
        "abdomen": (40.0, 400.0),
    }
    assert resolve_window("LUNG") == (-600.0, 1500.0)
    assert resolve_window((1, 2)) == (1.0, 2.0)


ILL_CASES = [
    (lambda: window(np.zeros(3), 0, 0), "width must be >= 1"),
    (lambda: window(np.zeros(3), 0, 0, function="SIGMOID"), "must be > 0"),
    (lambda: window(np.zeros(3), float("nan"), 10), "finite"),
    (lambda: window(np.zeros(3), 0, 10, function="GAMMA"), "unknown VOI LUT function"),
    (lambda: resolve_window("liver"), "unknown window preset"),
    (lambda: resolve_window((1, 2, 3)), "preset name or a"),
    (lambda: minmax_to_uint8(np.full(3, np.nan)), "no finite"),
]


@pytest.mark.parametrize("call, message", ILL_CASES)
def test_window_errors(call, message):
    with pytest.raises(MedicalImageError, match=message):
        call()


def test_minmax_and_invert():
    assert minmax_to_uint8(np.array([2.0, 4.0, np.nan, 3.0])).tolist() == [0, 255, 0, 128]
    assert minmax_to_uint8(np.full((2, 2), 7.0)).tolist() == [[0, 0], [0, 0]]
    assert invert_display(np.array([0, 10, 255], dtype=np.uint8)).tolist() == [255, 245, 0]
