"""From samples to a padded training batch for ``CitrusVForConditionalGeneration.forward``.

Every sample's masks are read at the original size of its first image and resized (nearest) to
SAM2's low-resolution grid; each segmentation sample contributes one SAM image. Sequence
packing (several samples per row) is built on top of this in ``citrusv.data.packing``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..processing.masks import resize_mask_nearest, rle_decode
from ..processing.processor import CitrusVProcessor, EncodedConversation
from .schema import Sample, SampleError

__all__ = ["EncodedSample", "collate_samples", "encode_sample", "load_mask"]


def load_mask(mask: dict[str, Any] | str, where: str = "mask") -> np.ndarray:
    """A COCO RLE dict or a mask image path → ``[H, W]`` bool (non-zero pixels are foreground)."""
    if isinstance(mask, dict):
        return rle_decode(mask)
    path = Path(mask)
    if not path.is_file():
        raise SampleError(where, "masks", f"no mask file at {path}")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("L")) > 0
    except OSError as err:
        raise SampleError(where, "masks", f"unreadable mask file {path}: {err}") from None


class EncodedSample:
    """A sample ready for collation: encoded text + images, and its masks on SAM2's grid."""

    def __init__(self, encoded: EncodedConversation, masks_lowres: np.ndarray, sample_id: str | None):
        self.encoded = encoded
        self.masks_lowres = masks_lowres  # [n, h, w] bool
        self.sample_id = sample_id

    @property
    def num_masks(self) -> int:
        return int(self.masks_lowres.shape[0])


def encode_sample(sample: Sample, processor: CitrusVProcessor, root: str | Path | None = None,
                  where: str | None = None) -> EncodedSample:
    """Encode one sample for training (labels on assistant tokens).

    Raises:
        SampleError: a mask's size differs from its image's, or a file is unreadable.
    """
    where = where or (f"sample {sample.id}" if sample.id else "sample")
    if root is not None:
        sample = sample.resolve_paths(root)
    try:
        encoded = processor.encode(sample.messages, sample.images, add_generation_prompt=False, return_labels=True)
    except ValueError as err:  # includes ImageLoadError
        raise SampleError(where, "images/messages", str(err)) from None
    side = processor.image_config.sam_image_size // 4
    masks = []
    for k, ref in enumerate(sample.masks):
        mask = load_mask(ref, where)
        orig = encoded.image_sizes[0].orig_hw
        if mask.shape != orig:
            raise SampleError(where, f"masks[{k}]", f"mask is {mask.shape[0]}x{mask.shape[1]} but the first image is "
                              f"{orig[0]}x{orig[1]}")
        masks.append(resize_mask_nearest(mask, (side, side)))
    masks_lowres = np.stack(masks) if masks else np.zeros((0, side, side), dtype=bool)
    return EncodedSample(encoded, masks_lowres, sample.id)


def collate_samples(samples: Sequence[EncodedSample], processor: CitrusVProcessor) -> dict[str, Any]:
    """Right-padded batch: backbone inputs, ``labels``, ``sam_pixel_values [K, 3, S, S]`` for the K
    samples with masks, ``gt_masks [M, h, w]`` and ``mask_image_index [M]``."""
    batch = processor.collate([s.encoded for s in samples], padding_side="right")
    sam_images, masks, owners = [], [], []
    for sample in samples:
        if sample.num_masks:
            owners += [len(sam_images)] * sample.num_masks
            sam_images.append(torch.from_numpy(sample.encoded.sam_pixel_values))
            masks.append(torch.from_numpy(sample.masks_lowres))
    out: dict[str, Any] = {**batch.model_inputs(), "labels": batch.labels}
    if masks:
        out["sam_pixel_values"] = torch.stack(sam_images)
        out["gt_masks"] = torch.cat(masks).float()
        out["mask_image_index"] = torch.tensor(owners, dtype=torch.long)
    return out
