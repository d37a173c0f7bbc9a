"""Pure helpers behind the web UI: reading uploads, overlays, measurement rows, boxes of a partial
(streaming) answer, and the Markdown table of a document answer.

Nothing here imports Gradio, so every function is unit-testable without a browser.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from ..inference.pipeline import CitrusVResult, SegmentationResult
from ..inference.visualize import draw_overlay
from ..medio import (
    CT_WINDOW_PRESETS,
    MedicalImage,
    MedicalImageError,
    mask_area_mm2,
    read_medical_image,
    recist_diameters_mm,
)
from ..processing.boxes import BoxConvention, ParsedBox, parse_boxes
from ..processing.image import smart_resize
from ..processing.processor import CitrusVProcessor, ImageSize

__all__ = [
    "MEASUREMENT_HEADERS",
    "WINDOW_CHOICES",
    "complete_boxes",
    "display_rgb",
    "display_text",
    "extract_markdown_table",
    "image_size_for",
    "load_upload",
    "measurement_note",
    "measurement_rows",
    "overlay_for_result",
    "parse_spacing",
    "partial_overlay",
]

#: Window choices of the upload dropdowns: automatic, min..max, then the CT presets.
WINDOW_CHOICES: list[str] = ["auto", "minmax", *CT_WINDOW_PRESETS]

#: Column names of the measurements table.
MEASUREMENT_HEADERS: list[str] = ["object", "found", "area (px)", "area (mm²)", "long axis (mm)", "short axis (mm)"]


def parse_spacing(text: str | None) -> tuple[float, float] | None:
    """``"0.7, 0.7"`` / ``"0.7 x 0.8"`` / ``"0.5"`` → ``(row_mm, col_mm)``; empty → ``None``.

    Raises:
        ValueError: not one or two positive numbers.
    """
    if text is None or not str(text).strip():
        return None
    parts = [p for p in re.split(r"[\s,x×;]+", str(text).strip()) if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or not all(v > 0 and v < float("inf") for v in values):
        raise ValueError(f"pixel spacing must be one or two positive numbers in mm (row, col), got {text!r}")
    return (values[0], values[-1])


def load_upload(source: str | Path | bytes, window: str = "auto", slice_index: int | None = None,
                pixel_spacing_mm: tuple[float, float] | None = None) -> MedicalImage:
    """An uploaded file (plain image, DICOM, NIfTI) → :class:`MedicalImage` with ``window`` applied.

    A NIfTI volume with several axial slices and no ``slice_index`` is shown at its middle slice.
    ``pixel_spacing_mm`` is used for plain images only (DICOM and NIfTI carry their own).

    Raises:
        ValueError: an unknown window name.
        MedicalImageError: what ``read_medical_image`` raises (unreadable file, slice out of range).
    """
    if window not in WINDOW_CHOICES:
        raise ValueError(f"unknown window {window!r}; expected one of {WINDOW_CHOICES}")
    try:
        return read_medical_image(source, window=window, slice_index=slice_index, pixel_spacing_mm=pixel_spacing_mm)
    except MedicalImageError as err:
        count = _slice_count(str(err))
        if slice_index is not None or count is None:
            raise
        return read_medical_image(source, window=window, slice_index=count // 2, pixel_spacing_mm=pixel_spacing_mm)


def _slice_count(message: str) -> int | None:
    match = re.search(r"volume has (\d+) slices", message)
    return int(match.group(1)) if match else None


def display_rgb(image: MedicalImage) -> Image.Image:
    """The 8-bit RGB image the model sees (and masks are drawn on), at original size."""
    return image.to_loaded_image().image.convert("RGB")


def image_size_for(processor: CitrusVProcessor, orig_hw: tuple[int, int]) -> ImageSize:
    """Original and smart-resized size of an image, as the processor will compute them."""
    config = processor.image_config
    resized = smart_resize(int(orig_hw[0]), int(orig_hw[1]), config.factor, config.min_pixels, config.max_pixels)
    return ImageSize(orig_hw=(int(orig_hw[0]), int(orig_hw[1])), resized_hw=tuple(int(v) for v in resized))


def overlay_for_result(image: Image.Image, result: CitrusVResult) -> Image.Image:
    """``image`` with the result's masks and boxes drawn (``draw_overlay``)."""
    return draw_overlay(image, result.masks, result.boxes)


def complete_boxes(partial_text: str, size: ImageSize, convention: BoxConvention) -> list[ParsedBox]:
    """Boxes of an answer that is still being generated: only boxes whose markup is complete.

    A box cut off mid-way (``<bbox>[12, 3`` without ``</bbox>``) is left out until its closing
    markup arrives; parse warnings are ignored while streaming (the final result reports them).
    """
    boxes, _ = parse_boxes(partial_text, size, convention)
    return boxes


def partial_overlay(image: Image.Image, partial_text: str, size: ImageSize, convention: BoxConvention) -> tuple[Image.Image, int]:
    """``image`` with the complete boxes of ``partial_text`` drawn; also how many were drawn."""
    boxes = complete_boxes(partial_text, size, convention)
    return draw_overlay(image, (), boxes), len(boxes)


def measurement_note(spacing_mm: tuple[float, float] | None) -> str:
    """One line saying whether physical measurements are available."""
    if spacing_mm is None:
        return "No pixel spacing in this image: areas and diameters in mm are not shown."
    return f"Pixel spacing {spacing_mm[0]:g} × {spacing_mm[1]:g} mm (row × column)."


def measurement_rows(masks: Sequence[SegmentationResult], spacing_mm: tuple[float, float] | None) -> list[list[Any]]:
    """One row per mask (see :data:`MEASUREMENT_HEADERS`): area in px and mm², RECIST long and
    short axes in mm (the whole mask measured as one lesion). No rows when ``spacing_mm`` is
    ``None``; an empty mask gets area 0 and blank diameters.
    """
    if spacing_mm is None:
        return []
    rows = []
    for mask in masks:
        area = round(mask_area_mm2(mask.mask, spacing_mm), 2)
        long_mm = short_mm = ""
        if mask.area_px:
            recist = recist_diameters_mm(mask.mask, spacing_mm)
            long_mm, short_mm = round(recist.long_axis_mm, 2), round(recist.short_axis_mm, 2)
        rows.append([f"[SEG] {mask.index + 1}", "yes" if mask.found else "no", int(mask.area_px), area, long_mm, short_mm])
    return rows


def display_text(text: str) -> str:
    """Model text for a Markdown view: ``<think>``, ``<bbox>`` and other tags shown literally."""
    return html.escape(text, quote=False)


_TABLE_LINE = re.compile(r"^\s*\|.*\|\s*$")


def extract_markdown_table(text: str) -> str | None:
    """The first Markdown table in ``text`` (consecutive ``| ... |`` lines, code fences ignored),
    or ``None`` when there is none. Literal ``\\n`` sequences are treated as line breaks."""
    lines = text.replace("\\n", "\n").splitlines()
    block: list[str] = []
    for line in lines:
        if _TABLE_LINE.match(line):
            block.append(line.strip())
        elif block:
            break
    if len(block) < 2:
        return None
    if not re.fullmatch(r"\|[\s:|-]*\|", block[1]):
        columns = block[0].count("|") - 1
        block.insert(1, "|" + "---|" * max(columns, 1))
    return "\n".join(block)

