"""Unit tests of the UI helpers (no browser): overlays, measurements, windowing of uploads, boxes of
a streaming answer, Markdown tables, token streaming, and the safe-launch checks."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from PIL import Image

from citrusv.inference import CitrusVPipeline
from citrusv.inference.constraints import ForcedTokens
from citrusv.inference.pipeline import CitrusVResult, SegmentationResult
from citrusv.inference.visualize import PALETTE
from citrusv.medio import (
    CT_WINDOW_PRESETS,
    MedicalImageError,
    recist_diameters_mm,
    window,
)
from citrusv.processing.boxes import CITRUS_V
from citrusv.processing.masks import rle_encode
from citrusv.processing.processor import ImageSize
from citrusv.ui.helpers import (
    MEASUREMENT_HEADERS,
    WINDOW_CHOICES,
    complete_boxes,
    display_text,
    extract_markdown_table,
    image_size_for,
    load_upload,
    measurement_rows,
    overlay_for_result,
    parse_spacing,
    partial_overlay,
)
from citrusv.ui.streaming import TokenTap, stream_chat


def _segmentation(mask: np.ndarray, index: int = 0, found: bool = True) -> SegmentationResult:
    return SegmentationResult(index=index, found=found, mask=mask, rle=rle_encode(mask), score=0.9, object_score=0.8,
                              area_px=int(mask.sum()), bbox_xyxy_orig_px=None)


def _rect_mask(shape=(40, 50), rows=(10, 20), cols=(5, 25)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[rows[0]:rows[1], cols[0]:cols[1]] = True
    return mask


class ForcedAnswerPipeline(CitrusVPipeline):
    """The tiny random model forced to say ``forced_text`` (so masks and boxes exist)."""

    forced_text = ""

    def chat(self, conversations, images=None, *, logits_processor=None, **generation):
        ids = self.processor.tokenizer.encode(self.forced_text, add_special_tokens=False)
        forced = ForcedTokens(ids + [self.processor.token_ids.im_end])
        return super().chat(conversations, images, logits_processor=[forced, *(logits_processor or [])], **generation)


# ---------------------------------------------------------------------------- overlay
def test_overlay_colours_the_mask_and_nothing_else():
    base = Image.new("RGB", (50, 40), (0, 0, 0))
    mask = _rect_mask()
    result = CitrusVResult(text="[SEG]", think=None, answer="[SEG]", masks=[_segmentation(mask)])
    out = np.asarray(overlay_for_result(base, result)).astype(int)
    assert out.shape == (40, 50, 3)
    inside = out[15, 15]  # interior pixel: blended towards the first palette colour
    assert inside.sum() > 0
    np.testing.assert_allclose(inside, np.asarray(PALETTE[0]) * 0.45, atol=1.5)
    assert np.array_equal(out[10, 5], PALETTE[0])  # outline pixel: the colour itself
    assert out[~mask].sum() == 0  # outside the mask: untouched


# ---------------------------------------------------------------------------- measurements
def test_measurement_rows_with_spacing():
    mask = _rect_mask()  # 10 rows × 20 cols = 200 px
    spacing = (0.5, 0.25)
    rows = measurement_rows([_segmentation(mask), _segmentation(np.zeros_like(mask), index=1, found=False)], spacing)
    assert len(rows) == 2 and all(len(row) == len(MEASUREMENT_HEADERS) for row in rows)
    name, found, area_px, area_mm2, long_mm, short_mm = rows[0]
    assert (name, found, area_px) == ("[SEG] 1", "yes", 200)
    assert area_mm2 == pytest.approx(200 * 0.5 * 0.25)
    expected = recist_diameters_mm(mask, spacing)
    assert long_mm == pytest.approx(expected.long_axis_mm, abs=0.01)
    assert short_mm == pytest.approx(expected.short_axis_mm, abs=0.01)
    assert long_mm >= np.hypot(9 * 0.5, 19 * 0.25) - 0.01  # corner to corner, pixel centres
    assert rows[1] == ["[SEG] 2", "no", 0, 0.0, "", ""]  # empty mask: no diameters


def test_no_measurement_rows_without_spacing():
    assert measurement_rows([_segmentation(_rect_mask())], None) == []


# ---------------------------------------------------------------------------- uploads and windows
@pytest.fixture
def ct_file(tmp_path):
    from citrusv.medio.synthetic import synthetic_ct_dataset

    hu = np.linspace(-1000, 1000, 32 * 48).round().reshape(32, 48)
    ds = synthetic_ct_dataset((hu + 1024).astype(np.uint16), pixel_spacing_mm=(0.7, 0.8))
    path = tmp_path / "slice.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path, hu


@pytest.mark.parametrize("preset", sorted(CT_WINDOW_PRESETS))
def test_window_presets_applied_to_dicom(ct_file, preset):
    path, hu = ct_file
    image = load_upload(path, preset)
    assert image.window == CT_WINDOW_PRESETS[preset]
    assert image.pixel_spacing_mm == pytest.approx((0.7, 0.8))
    np.testing.assert_array_equal(image.display, window(hu.astype(np.float32), *CT_WINDOW_PRESETS[preset]))


def test_window_choice_changes_the_display(ct_file):
    path, _ = ct_file
    lung, bone = load_upload(path, "lung"), load_upload(path.read_bytes(), "bone")
    assert not np.array_equal(lung.display, bone.display)
    assert set(WINDOW_CHOICES) >= {"auto", "minmax", *CT_WINDOW_PRESETS}


def test_upload_errors(ct_file, tmp_path):
    with pytest.raises(ValueError, match="unknown window"):
        load_upload(ct_file[0], "liver")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises((MedicalImageError, ValueError)):
        load_upload(bad)


def test_plain_image_spacing_is_used(tmp_path):
    path = tmp_path / "plain.png"
    Image.new("L", (20, 10), 128).save(path)
    assert load_upload(path).pixel_spacing_mm is None
    assert load_upload(path, pixel_spacing_mm=parse_spacing("0.7, 0.8")).pixel_spacing_mm == (0.7, 0.8)


@pytest.mark.parametrize(("text", "expected"), [("", None), (None, None), ("0.5", (0.5, 0.5)), ("0.7 x 0.8", (0.7, 0.8)),
                                                ("0.7,0.8", (0.7, 0.8))])
def test_parse_spacing(text, expected):
    assert parse_spacing(text) == expected


@pytest.mark.parametrize("text", ["abc", "0, 1", "-1", "1 2 3", "inf"])
def test_parse_spacing_rejects(text):
    with pytest.raises(ValueError, match="pixel spacing"):
        parse_spacing(text)


def test_nifti_volume_defaults_to_middle_slice(tmp_path):
    nibabel = pytest.importorskip("nibabel")
    volume = np.zeros((8, 6, 5), dtype=np.float32)
    for k in range(5):
        volume[..., k] = k * 10
    path = tmp_path / "vol.nii.gz"
    nibabel.save(nibabel.Nifti1Image(volume, np.diag([0.5, 0.6, 2.0, 1.0])), path)
    image = load_upload(path, "minmax")
    assert image.values.max() == 20  # slice 2 of 0..4
    assert load_upload(path, "minmax", slice_index=4).values.max() == 40


# ---------------------------------------------------------------------------- streaming boxes
def test_complete_boxes_waits_for_closing_tag():
    size = ImageSize(orig_hw=(100, 200), resized_hw=(56, 112))
    assert complete_boxes("Nodule <bbox>[10, 20", size, CITRUS_V) == []
    boxes = complete_boxes("Nodule <bbox>[10, 20, 56, 28]</bbox> and", size, CITRUS_V)
    assert len(boxes) == 1
    assert boxes[0].xyxy_orig_px == pytest.approx((10 * 200 / 112, 20 * 100 / 56, 100, 50))
    image = Image.new("RGB", (200, 100))
    overlay, count = partial_overlay(image, "Nodule <bbox>[10, 20, 56, 28]</bbox>", size, CITRUS_V)
    assert count == 1 and np.asarray(overlay).sum() > 0


def test_image_size_matches_processor(processor):
    from conftest import random_image

    image = random_image(61, 83)
    expected = processor([[{"role": "user", "content": "x"}]], [[image]]).image_sizes[0][0]
    assert image_size_for(processor, (61, 83)) == expected


# ---------------------------------------------------------------------------- text helpers
def test_extract_markdown_table():
    text = "Here:\n```markdown\n| 检验项目 | 结果 | 单位 | 参考范围 |\n|---|---|---|---|\n| 血红蛋白 | 130 | g/L | 115-150 |\n```"
    table = extract_markdown_table(text)
    assert table.splitlines()[0] == "| 检验项目 | 结果 | 单位 | 参考范围 |" and len(table.splitlines()) == 3
    assert extract_markdown_table("no table here") is None
    fixed = extract_markdown_table("| a | b |\n| 1 | 2 |")
    assert fixed.splitlines()[1] == "|---|---|"


def test_display_text_shows_tags_literally():
    assert display_text("<think>x</think> <bbox>[1, 2, 3, 4]</bbox>") == \
        "&lt;think&gt;x&lt;/think&gt; &lt;bbox&gt;[1, 2, 3, 4]&lt;/bbox&gt;"


# ---------------------------------------------------------------------------- token streaming
def test_token_tap_reports_generated_tokens_only():
    import torch

    seen = []
    tap = TokenTap(seen.append)
    scores = torch.zeros(1, 5)
    assert tap(torch.tensor([[1, 2, 3]]), scores) is scores
    tap(torch.tensor([[1, 2, 3, 9]]), scores)
    assert seen == [[], [9]]


@pytest.fixture(scope="module")
def forced_pipeline(native_checkpoint):
    return ForcedAnswerPipeline.from_pretrained(native_checkpoint, device="cpu", gate_by_object_score=False)


def test_stream_chat_yields_growing_text_then_the_result(forced_pipeline):
    from conftest import random_image

    image = random_image(60, 80)
    size = image_size_for(forced_pipeline.processor, (60, 80))
    h, w = size.resized_hw
    forced_pipeline.forced_text = f"A nodule <bbox>[{w // 4}, {h // 4}, {w // 2}, {h // 2}]</bbox> and [SEG]."
    events = list(stream_chat(forced_pipeline, [{"role": "user", "content": "Report."}], [image], max_new_tokens=64))
    assert len(events) >= 3
    assert all(e.result is None for e in events[:-1]) and events[-1].result is not None
    result = events[-1].result
    assert "<bbox>" in result.text and len(result.boxes) == 1 and len(result.masks) == 1
    partial_counts = [len(complete_boxes(e.text, size, forced_pipeline.box_convention)) for e in events[:-1]]
    assert partial_counts[0] == 0 and partial_counts[-1] == 1  # the box appears while streaming
    assert partial_counts == sorted(partial_counts)


def test_stream_chat_reraises_pipeline_errors(forced_pipeline):
    with pytest.raises(ValueError):
        list(stream_chat(forced_pipeline, [{"role": "user", "content": "hi"}], [], max_new_tokens=0))


# ---------------------------------------------------------------------------- launch safety
def test_cli_refuses_public_bind_without_key(monkeypatch, tmp_path):
    from citrusv.cli import ui as ui_cli

    monkeypatch.delenv("CITRUSV_API_KEY", raising=False)
    parser = argparse.ArgumentParser()
    ui_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["ui", "--model", str(tmp_path / "missing"), "--host", "0.0.0.0"])
    assert (args.host, args.port, args.api_key) == ("0.0.0.0", 7860, None)
    with pytest.raises(ValueError, match="without an API key"):
        ui_cli.run(args)  # refused before the (missing) model is loaded
    monkeypatch.setenv("CITRUSV_API_KEY", "s3cret")
    assert ui_cli.resolve_api_key(args) == "s3cret"


def test_launch_refuses_public_bind_and_auth_checks_key():
    from citrusv.ui.app import api_key_auth, launch_ui

    with pytest.raises(ValueError, match="without an API key"):
        launch_ui(object(), host="0.0.0.0", api_key=None)
    check = api_key_auth("s3cret")
    assert check("anyone", "s3cret") and not check("anyone", "wrong") and not check("anyone", "")


def test_build_ui_returns_blocks(forced_pipeline):
    gr = pytest.importorskip("gradio")
    from citrusv.ui import build_ui

    demo = build_ui(forced_pipeline, max_new_tokens=8)
    assert isinstance(demo, gr.Blocks)
    ids = {block.elem_id for block in demo.blocks.values()}
    assert {"chat-upload", "chat-overlay", "chat-measurements", "report-overlay", "doc-table"} <= ids
