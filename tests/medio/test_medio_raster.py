"""Plain images: 16-bit PNG / TIFF keep their values, multi-page TIFF, colour, spacing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from citrusv.medio import MedicalImageError, read_medical_image, window


def _ramp16() -> np.ndarray:
    return (np.arange(20 * 30, dtype=np.uint32).reshape(20, 30) * 100).astype(np.uint16)  # 0..59900


@pytest.mark.parametrize("suffix", ["png", "tif"])
def test_16bit_values_are_kept(tmp_path, suffix):
    ramp = _ramp16()
    path = tmp_path / f"x.{suffix}"
    Image.fromarray(ramp).save(path)
    image = read_medical_image(path)
    np.testing.assert_array_equal(image.values, ramp.astype(np.float32))
    assert image.display.dtype == np.uint8
    assert image.display.min() == 0 and image.display.max() == 255
    assert image.pixel_spacing_mm is None and image.spacing_source == "unknown"
    windowed = read_medical_image(path, window=(30000, 20000))
    np.testing.assert_array_equal(windowed.display, window(ramp, 30000, 20000))
    assert windowed.to_loaded_image().image.mode == "RGB"


def test_8bit_gray_kept_as_stored_and_spacing_given(tmp_path):
    gray = (np.arange(16 * 16) % 200).reshape(16, 16).astype(np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    image = read_medical_image(tmp_path / "g.png", pixel_spacing_mm=(0.2, 0.3))
    np.testing.assert_array_equal(image.display, gray)
    assert image.pixel_spacing_mm == (0.2, 0.3) and image.spacing_source == "given"
    with pytest.raises(MedicalImageError, match="must be positive"):
        read_medical_image(tmp_path / "g.png", pixel_spacing_mm=(0, 1))


def test_rgb_jpeg(tmp_path):
    rgb = np.zeros((24, 32, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "c.jpg", quality=95)
    image = read_medical_image(tmp_path / "c.jpg")
    assert image.display.shape == (24, 32, 3) and abs(int(image.display[..., 0].mean()) - 200) <= 2


def test_multipage_tiff(tmp_path):
    pages = [Image.fromarray(np.full((10, 12), v, np.uint16)) for v in (100, 200, 300)]
    pages[0].save(tmp_path / "m.tif", save_all=True, append_images=pages[1:])
    assert float(read_medical_image(tmp_path / "m.tif", frame=2).values[0, 0]) == 300.0
    with pytest.raises(MedicalImageError, match="3 pages / frames; pass frame=0..2"):
        read_medical_image(tmp_path / "m.tif")


def test_raster_errors(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    with pytest.raises(MedicalImageError, match="bad.png"):
        read_medical_image(bad)
    Image.fromarray(np.zeros((4, 40), np.uint8)).save(tmp_path / "tiny.png")
    with pytest.raises(MedicalImageError, match="at least 8"):
        read_medical_image(tmp_path / "tiny.png")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "ok.png")
    with pytest.raises(MedicalImageError, match="no slice 3"):
        read_medical_image(tmp_path / "ok.png", slice_index=3)
