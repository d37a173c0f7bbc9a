"""Rendering, capture artefacts and geometry normalisation (citrusv.synth.docs.geometry)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image

from citrusv.synth.docs.artefacts import Artefacts, apply_artefacts, random_artefacts
from citrusv.synth.docs.geometry import (
    Orientation,
    detect_orientation,
    find_page_quad,
    normalize_page,
    rotate_upright,
)
from citrusv.synth.docs.render import (
    font_report,
    random_general_document,
    random_lab_report,
    render_general_document,
    render_lab_report,
)


def _pages(n: int, seed: int) -> list[Image.Image]:
    rng = random.Random(seed)
    pages = []
    for i in range(n):
        language = "zh" if i % 2 else "en"
        if i % 4 == 3:
            pages.append(render_general_document(random_general_document(rng, language), width=600, rng=rng))
        else:
            pages.append(render_lab_report(random_lab_report(rng, language), width=600, rng=rng))
    return pages


def test_font_report_names_the_cjk_fallback():
    report = font_report()
    assert report["latin"] == "pillow-builtin" and report["cjk"]  # a font path or "pseudo-glyphs"


def test_orientation_and_deskew_on_rendered_pages():
    """All four quarter turns with up to ±10 degrees of skew (the benchmark runs a larger sample)."""
    rng = random.Random(7)
    pages = _pages(12, seed=3)
    for i, page in enumerate(pages):
        truth = Artefacts(rotation=(0, 90, 180, 270)[i % 4], skew_deg=rng.uniform(-10, 10), seed=i)
        found = detect_orientation(apply_artefacts(page, truth))
        assert found.orientation == truth.rotation, (i, truth, found)
        assert abs(found.skew_deg - truth.skew_deg) <= 1.0, (i, truth, found)


def test_orientation_survives_photo_artefacts():
    rng = random.Random(11)
    for i, page in enumerate(_pages(4, seed=5)):
        truth = random_artefacts(rng, p_perspective=0.0, p_curl=0.0)
        found = detect_orientation(apply_artefacts(page, truth))
        assert found.orientation == truth.rotation and abs(found.skew_deg - truth.skew_deg) <= 1.0, (truth, found)


def test_blank_page_is_left_alone():
    found = detect_orientation(Image.new("RGB", (300, 400), "white"))
    assert (found.orientation, found.skew_deg) == (0, 0.0)


def test_rotate_upright_quarter_turn_is_exact():
    page = _pages(1, seed=0)[0]
    rotated = apply_artefacts(page, Artefacts(rotation=90))
    found = detect_orientation(rotated)
    assert found.orientation == 90 and abs(found.skew_deg) < 0.2
    restored = normalize_page(rotated, perspective=False, unwarp=False).image  # skews < 0.2 degrees are ignored
    assert restored.size == page.size
    assert np.array_equal(np.asarray(restored), np.asarray(page.convert("RGB")))
    restored = rotate_upright(rotated, Orientation(90, 0.0, found.line_score, found.flip_margin))
    assert restored.size == page.size
    assert np.array_equal(np.asarray(restored), np.asarray(page.convert("RGB")))


def test_perspective_correction_recovers_an_upright_page():
    page = _pages(1, seed=1)[0]
    photo = apply_artefacts(page, Artefacts(perspective=0.05, background=90, rotation=180, skew_deg=4, seed=2))
    assert find_page_quad(page) is None  # white border: nothing to correct
    result = normalize_page(photo)
    steps = {s.name: s for s in result.steps}
    assert steps["perspective"].applied and steps["orientation"].params["orientation"] == 180
    w, h = result.image.size
    assert abs(h / w - page.height / page.width) < 0.08
    assert abs(detect_orientation(result.image).skew_deg) <= 1.0


def test_dewarp_reduces_curl():
    page = _pages(1, seed=2)[0]
    curled = apply_artefacts(page, Artefacts(curl=0.02))
    result = normalize_page(curled, perspective=False)
    dewarp_step = result.step("dewarp")
    assert dewarp_step.applied and dewarp_step.params["max_shift_px"] > 0.01 * page.height * 0.5
    flat = normalize_page(page, perspective=False)
    assert not flat.step("dewarp").applied and not flat.step("orientation").applied


def test_artefacts_reject_bad_values():
    with pytest.raises(ValueError, match="rotation"):
        Artefacts(rotation=45)
    with pytest.raises(ValueError, match="jpeg_quality"):
        Artefacts(jpeg_quality=0)


def test_normalize_page_with_full_photo_artefacts():
    """Perspective, curl, crop, blur, shadow and JPEG together: the reported orientation is right,
    and without perspective the output has no skew left (the benchmark runs more pages; a strong
    shadow across a page on a background can leave a few degrees, see docs/documents.md)."""
    rng = random.Random(21)
    for i, page in enumerate(_pages(4, seed=9)):
        truth = random_artefacts(rng, p_perspective=0.5, p_curl=0.5)
        truth.rotation = (0, 90, 180, 270)[i]
        result = normalize_page(apply_artefacts(page, truth))
        assert result.step("orientation").params["orientation"] == truth.rotation, (truth, result.report())
        if not truth.perspective:
            assert abs(detect_orientation(result.image).skew_deg) <= 1.0
