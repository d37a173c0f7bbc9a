"""Batch inference over a folder: one JSONL row per image plus mask PNGs, resumable.

Output layout under ``out_dir``::

    results.jsonl          one row per answered image (``CitrusVResult.to_dict()`` + ``id``,
                           ``image``, ``prompt``, ``mask_files``), appended as batches finish
    errors.jsonl           one row per image that could not be answered (``id``, ``image``,
                           ``error``); retried by the next run
    masks/<id>_<k>.png     mask ``k`` of image ``id`` (255 = foreground), original size

A rerun skips the ids already in ``results.jsonl`` (a half-written last line of a killed run is
dropped first), so an interrupted folder run continues where it stopped. ``id`` is the image's
path relative to the folder (POSIX separators).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..data.jsonl import JsonlAppender
from ..processing.image import load_image

__all__ = ["IMAGE_SUFFIXES", "BatchSummary", "find_images", "infer_folder", "read_any_image"]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".nii", ".nii.gz")


def find_images(folder: str | Path, suffixes: Sequence[str] = IMAGE_SUFFIXES, *, recursive: bool = True) -> list[Path]:
    """Image files below ``folder``, sorted (so ids and order are stable across runs)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    lowered = tuple(s.lower() for s in suffixes)
    return sorted(p for p in candidates if p.is_file() and p.name.lower().endswith(lowered))


def read_any_image(path: Path) -> Image.Image:
    """PNG / JPEG / TIFF / BMP through ``load_image``; DICOM and 2D NIfTI through ``citrusv.medio``."""
    name = path.name.lower()
    if name.endswith((".dcm", ".nii", ".nii.gz")):
        try:
            from ..medio import read_medical_image
        except ImportError:
            raise ValueError(f"{path.name}: DICOM / NIfTI input needs citrusv[medio]") from None
        return read_medical_image(path).to_loaded_image().image
    return load_image(path).image


def _safe_stem(image_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", image_id)


@dataclass
class BatchSummary:
    answered: int
    skipped: int
    failed: int
    results: str
    errors: str


def _batches(items: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def infer_folder(pipeline: Any, folder: str | Path, prompt: str, out_dir: str | Path, *, batch_size: int = 4,
                 suffixes: Sequence[str] = IMAGE_SUFFIXES, progress: bool = True, **generation: Any) -> BatchSummary:
    """Answer ``prompt`` about every image below ``folder``; see the module docstring for the output.

    An unreadable image goes to ``errors.jsonl`` and the rest of its batch is answered. Generation
    keyword arguments override ``GenerationSettings`` fields.
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    folder, out_dir = Path(folder), Path(out_dir)
    images = find_images(folder, suffixes)
    mask_dir = out_dir / "masks"
    mask_dir.mkdir(parents=True, exist_ok=True)
    answered = failed = 0
    with JsonlAppender(out_dir / "results.jsonl") as results, open(out_dir / "errors.jsonl", "a", encoding="utf-8") as errors:
        todo = [p for p in images if p.relative_to(folder).as_posix() not in results.done_ids]
        skipped = len(images) - len(todo)
        bar = tqdm(total=len(todo), desc="infer", unit="image", disable=not progress)
        for batch in _batches(todo, batch_size):
            loaded: list[tuple[str, Path, Image.Image]] = []
            for path in batch:
                image_id = path.relative_to(folder).as_posix()
                try:
                    loaded.append((image_id, path, read_any_image(path)))
                except (ValueError, OSError) as err:
                    errors.write(json.dumps({"id": image_id, "image": str(path), "error": str(err)}, ensure_ascii=False) + "\n")
                    errors.flush()
                    failed += 1
            if loaded:
                outputs = pipeline([img for _, _, img in loaded], [prompt] * len(loaded), **generation)
                for (image_id, path, _), result in zip(loaded, outputs, strict=True):
                    files = []
                    for mask in result.masks:
                        name = f"{_safe_stem(image_id)}_{mask.index}.png"
                        Image.fromarray(np.asarray(mask.mask, dtype=np.uint8) * 255).save(mask_dir / name)
                        files.append(f"masks/{name}")
                    results.write({"id": image_id, "image": str(path), "prompt": prompt, **result.to_dict(),
                                   "mask_files": files})
                    answered += 1
            bar.update(len(batch))
        bar.close()
    return BatchSummary(answered, skipped, failed, str(out_dir / "results.jsonl"), str(out_dir / "errors.jsonl"))
