import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from citrusv.processing.image import (
    ImageLoadError,
    load_image,
    qwen_pixel_values,
    sam_pixel_values,
    smart_resize,
)


def _png_bytes(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_corrupt_file(tmp_path):
    path = tmp_path / "bad.png"
    path.write_bytes(b"not an image at all")
    with pytest.raises(ImageLoadError, match="not a readable image"):
        load_image(path)


def test_truncated_file(tmp_path):
    data = _png_bytes(Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)))
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="truncated or corrupt"):
        load_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(ImageLoadError, match="no image file"):
        load_image(tmp_path / "nope.png")


@pytest.mark.parametrize("size", [(1, 1), (7, 100)])
def test_tiny_images_rejected(size):
    with pytest.raises(ImageLoadError, match="at least 8"):
        load_image(Image.new("RGB", size))


def test_extreme_aspect_ratio_rejected():
    with pytest.raises(ImageLoadError, match="aspect ratio"):
        load_image(Image.new("L", (8, 2000)))


def test_decompression_bomb_rejected_before_decoding():
    data = _png_bytes(Image.new("L", (3000, 3000)))
    with pytest.raises(ImageLoadError, match="exceeds the limit of 1000000"):
        load_image(data, max_input_pixels=1_000_000)
    assert load_image(data).image.size == (3000, 3000)


def test_sixteen_bit_rescaled_from_its_range():
    array = np.linspace(1000, 3000, 16 * 16, dtype=np.uint16).reshape(16, 16)
    loaded = load_image(_png_bytes(Image.fromarray(array)))
    rgb = np.asarray(loaded.image)
    assert loaded.image.mode == "RGB" and rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255
    assert loaded.source_mode.startswith("I") and any("rescaled" in n for n in loaded.notes)


def test_constant_sixteen_bit_image_is_black():
    loaded = load_image(_png_bytes(Image.fromarray(np.full((16, 16), 4000, dtype=np.uint16))))
    assert np.asarray(loaded.image).max() == 0


def test_palette_rgba_and_grayscale():
    palette = Image.new("P", (10, 10))
    palette.putpalette([255, 0, 0] * 256)
    assert np.asarray(load_image(palette).image)[0, 0].tolist() == [255, 0, 0]
    rgba = Image.new("RGBA", (10, 10), (0, 0, 255, 0))  # fully transparent → white
    loaded = load_image(rgba)
    assert np.asarray(loaded.image)[0, 0].tolist() == [255, 255, 255] and "alpha composited on white" in loaded.notes
    gray = load_image(Image.new("L", (10, 10), 77))
    assert np.asarray(gray.image)[0, 0].tolist() == [77, 77, 77]


def test_float_array_and_bad_array():
    array = np.zeros((20, 30), dtype=np.float32)
    array[:, 15:] = 2.5
    rgb = np.asarray(load_image(array).image)
    assert rgb[0, 0, 0] == 0 and rgb[0, -1, 0] == 255
    with pytest.raises(ImageLoadError, match="HxW"):
        load_image(np.zeros((4, 4, 4, 4)))


def test_exif_orientation_applied():
    image = Image.new("RGB", (40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    loaded = load_image(_png_bytes(image, "JPEG", exif=exif.tobytes()))
    assert loaded.image.size == (20, 40) and "applied EXIF orientation" in loaded.notes


@settings(max_examples=200, deadline=None)
@given(st.integers(8, 5000), st.integers(8, 5000), st.sampled_from([(28, 3136, 1003520), (32, 65536, 16777216), (8, 1024, 9216)]))
def test_smart_resize_matches_transformers(height, width, params):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as reference

    factor, low, high = params
    if max(height, width) / min(height, width) > 200:
        with pytest.raises(ValueError):
            smart_resize(height, width, factor, low, high)
        return
    assert smart_resize(height, width, factor, low, high) == reference(height, width, factor, low, high)


@pytest.mark.parametrize("size, patch, mean, std", [
    ((75, 100), 14, (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    ((300, 97), 16, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
])
def test_pixel_values_match_transformers_qwen_processor(size, patch, mean, std):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    rng = np.random.default_rng(1)
    image = Image.fromarray((rng.random((*size, 3)) * 255).astype(np.uint8))
    low, high = 56 * 56, 256 * 28 * 28
    ours, grid, resized = qwen_pixel_values(image, patch_size=patch, merge_size=2, temporal_patch_size=2,
                                            min_pixels=low, max_pixels=high, mean=mean, std=std)
    # The release resizes with PIL first (qwen-vl-utils), then runs the processor (a no-op resize).
    reference = Qwen2VLImageProcessorPil(min_pixels=low, max_pixels=high, patch_size=patch, merge_size=2,
                                         image_mean=list(mean), image_std=list(std))(resized, return_tensors="np")
    assert tuple(reference["image_grid_thw"][0]) == grid
    np.testing.assert_allclose(ours, reference["pixel_values"], atol=1e-5, rtol=0)


def test_sam_pixel_values_normalisation():
    image = Image.new("RGB", (37, 19), (124, 116, 104))  # ≈ ImageNet mean
    values = sam_pixel_values(image, 64)
    assert values.shape == (3, 64, 64) and values.dtype == np.float32
    np.testing.assert_allclose(values[:, 0, 0], [(124 / 255 - 0.485) / 0.229, (116 / 255 - 0.456) / 0.224,
                                                 (104 / 255 - 0.406) / 0.225], atol=1e-6)
