"""Overlays of masks and boxes on the original image, and mask files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..processing.boxes import ParsedBox
from .pipeline import CitrusVResult, SegmentationResult

__all__ = ["PALETTE", "draw_overlay", "save_result_files"]

#: Colour per mask / box, cycled (colour-blind-friendly Okabe–Ito order).
PALETTE = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0), (204, 121, 167)]


def draw_overlay(image: Image.Image, masks: Sequence[SegmentationResult] = (), boxes: Sequence[ParsedBox] = (),
                 alpha: float = 0.45) -> Image.Image:
    """The image with masks blended in colour (outlined) and boxes drawn with their labels."""
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    for k, result in enumerate(masks):
        if result.mask.shape != base.shape[:2]:
            raise ValueError(f"mask {k} is {result.mask.shape} but the image is {base.shape[:2]}")
        colour = np.asarray(PALETTE[k % len(PALETTE)], dtype=np.float32)
        base[result.mask] = (1 - alpha) * base[result.mask] + alpha * colour
        edge = result.mask & ~_eroded(result.mask)
        base[edge] = colour
    out = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(out)
    for k, box in enumerate(boxes):
        colour = PALETTE[(k + len(masks)) % len(PALETTE)]
        draw.rectangle(box.xyxy_orig_px, outline=colour, width=max(1, round(min(out.size) / 200)))
        if box.label:
            draw.text((box.xyxy_orig_px[0] + 2, box.xyxy_orig_px[1] + 1), box.label, fill=colour)
    return out


def _eroded(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return inner


def save_result_files(result: CitrusVResult, image: Image.Image, out_dir: str | Path) -> list[Path]:
    """Write ``mask_<k>.png`` per mask (0 / 255), ``overlay.png`` and ``result.json`` into ``out_dir``."""
    import json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for mask in result.masks:
        path = out_dir / f"mask_{mask.index}.png"
        Image.fromarray(mask.mask.astype(np.uint8) * 255).save(path)
        written.append(path)
    overlay = out_dir / "overlay.png"
    draw_overlay(image, result.masks, result.boxes).save(overlay)
    written.append(overlay)
    summary = out_dir / "result.json"
    summary.write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    written.append(summary)
    return written
