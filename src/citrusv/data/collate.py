"""From samples to training batches for ``CitrusVForConditionalGeneration.forward``.

Every sample's masks are read at the original size of its first image and resized (nearest) to
SAM2's low-resolution grid; each segmentation sample contributes one SAM image.
``collate_samples`` pads one sample per row; ``collate_packed`` lays several samples (or chunks
of a long text sample) end to end per row, following a plan from ``citrusv.data.packing``.
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


def _chunk(sample: EncodedSample, start: int, end: int) -> EncodedConversation:
    """Tokens [start, end) of a sample; only text-only samples may be cut."""
    encoded = sample.encoded
    if (start, end) == (0, len(encoded.input_ids)):
        return encoded
    if encoded.pixel_values is not None or sample.num_masks:
        raise ValueError(f"sample {sample.sample_id} has images or masks and cannot be split into chunks")
    return EncodedConversation(input_ids=encoded.input_ids[start:end], mm_token_type_ids=encoded.mm_token_type_ids[start:end],
                               labels=None if encoded.labels is None else encoded.labels[start:end])


def collate_packed(rows: Sequence[Sequence[tuple[EncodedSample, int, int]]], processor: CitrusVProcessor) -> dict[str, Any]:
    """Packed rows → a batch for ``CitrusVForConditionalGeneration.forward``.

    Each row is a list of ``(sample, start, end)`` spans laid end to end. Per row the batch holds
    the concatenated tokens (right-padded to the longest row), ``segment_ids`` (which span each
    token belongs to, -1 on padding; the model derives per-sample positions from it so that no
    token attends across samples), and labels with the first token of every span masked (the
    previous sample must not learn to predict it). Images are concatenated row-major.
    Segmentation tensors, N = most segmentation samples in a row and M = most masks in a row:

    * ``sam_pixel_values [B, N, 3, S, S]`` (zero-padded),
    * ``gt_masks [B, M, 1, h, w]`` (zero-padded),
    * ``seg_image_index [B, M]``: for the m-th ``[SEG]`` of row b, the index of its SAM image in
      ``sam_pixel_values[b]``; -1 marks padding. The m-th ``[SEG]`` pairs with ``gt_masks[b, m]``.
    """
    if not rows:
        raise ValueError("cannot collate an empty batch")
    pad = processor.token_ids.pad
    side = processor.image_config.sam_image_size
    low = side // 4
    width = max(1, max(sum(end - start for _, start, end in row) for row in rows))  # empty rows: one pad token
    input_ids, labels, mm_types, segments = [], [], [], []
    pixels, grids = [], []
    row_images: list[list[torch.Tensor]] = []
    row_masks: list[list[torch.Tensor]] = []
    row_owner: list[list[int]] = []
    for row in rows:
        ids: list[int] = []
        lab: list[int] = []
        mm: list[int] = []
        seg: list[int] = []
        images: list[torch.Tensor] = []
        masks: list[torch.Tensor] = []
        owners: list[int] = []
        for index, (sample, start, end) in enumerate(row):
            piece = _chunk(sample, start, end)
            piece_labels = list(piece.labels) if piece.labels is not None else [-100] * len(piece.input_ids)
            piece_labels[0] = -100
            ids += piece.input_ids
            lab += piece_labels
            mm += piece.mm_token_type_ids
            seg += [index] * len(piece.input_ids)
            if piece.pixel_values is not None:
                pixels.append(piece.pixel_values)
                grids += piece.image_grid_thw
            if sample.num_masks:
                owners += [len(images)] * sample.num_masks
                images.append(torch.from_numpy(sample.encoded.sam_pixel_values))
                masks.append(torch.from_numpy(sample.masks_lowres))
        gap = width - len(ids)
        input_ids.append(ids + [pad] * gap)
        labels.append(lab + [-100] * gap)
        mm_types.append(mm + [0] * gap)
        segments.append(seg + [-1] * gap)
        row_images.append(images)
        row_masks.append(masks)
        row_owner.append(owners)
    batch: dict[str, Any] = {
        "input_ids": torch.tensor(input_ids, dtype=torch.long),
        "labels": torch.tensor(labels, dtype=torch.long),
        "mm_token_type_ids": torch.tensor(mm_types, dtype=torch.int32),
        "segment_ids": torch.tensor(segments, dtype=torch.long),
    }
    if pixels:
        batch["pixel_values"] = torch.from_numpy(np.concatenate(pixels))
        batch["image_grid_thw"] = torch.tensor(grids, dtype=torch.long)
    most_images = max(len(images) for images in row_images)
    if most_images:
        most_masks = max(len(owners) for owners in row_owner)
        sam = torch.zeros(len(rows), most_images, 3, side, side)
        gt = torch.zeros(len(rows), most_masks, 1, low, low)
        owner = torch.full((len(rows), most_masks), -1, dtype=torch.long)
        for b, (images, masks, owners) in enumerate(zip(row_images, row_masks, row_owner)):
            if images:
                sam[b, : len(images)] = torch.stack(images)
                gt[b, : len(owners), 0] = torch.cat(masks).float()
                owner[b, : len(owners)] = torch.tensor(owners)
        batch.update(sam_pixel_values=sam, gt_masks=gt, seg_image_index=owner)
    return batch
