"""Binary masks: COCO run-length encoding and resizing between the mask spaces.

RLE follows the COCO convention (``pycocotools.mask``): runs over the image in column-major
order starting with a run of zeros, stored either as a list of ints ("uncompressed") or as the
compact LEB128-like string ("compressed", the default here and in the released model's output).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch loads only where a resize needs it: RLE tools stay light
    import torch

__all__ = [
    "RLEError",
    "mask_bbox_xyxy",
    "resize_mask_logits",
    "resize_mask_nearest",
    "rle_area",
    "rle_decode",
    "rle_encode",
    "validate_rle",
]


class RLEError(ValueError):
    """A run-length encoding is malformed; the message says how."""


def _counts_to_string(counts: list[int]) -> str:
    chars = []
    for i, count in enumerate(counts):
        x = count - counts[i - 2] if i > 2 else count
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift: negative deltas end at -1
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            chars.append(chr(c + 48))
    return "".join(chars)


def _string_to_counts(text: str) -> list[int]:
    counts: list[int] = []
    pos = 0
    data = text.encode("ascii") if isinstance(text, str) else bytes(text)
    while pos < len(data):
        x, k, more = 0, 0, True
        while more:
            if pos >= len(data):
                raise RLEError("compressed RLE string ends in the middle of a count")
            c = data[pos] - 48
            if c < 0 or c > 63:
                raise RLEError(f"invalid character {chr(data[pos])!r} in compressed RLE")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            pos += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def rle_encode(mask: np.ndarray, compressed: bool = True) -> dict[str, Any]:
    """``[H, W]`` binary mask → ``{"size": [H, W], "counts": str | list[int]}``."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D [H, W], got shape {mask.shape}")
    height, width = mask.shape
    flat = (mask != 0).ravel(order="F").astype(np.int8)
    if flat.size == 0:
        counts: list[int] = []
    else:
        changes = np.flatnonzero(np.diff(flat)) + 1
        bounds = np.concatenate([[0], changes, [flat.size]])
        counts = np.diff(bounds).tolist()
        if flat[0] == 1:
            counts = [0] + counts
    return {"size": [int(height), int(width)], "counts": _counts_to_string(counts) if compressed else counts}


def validate_rle(rle: Any) -> tuple[tuple[int, int], list[int]]:
    """Check an RLE dict; returns ``((H, W), counts)``.

    Raises:
        RLEError: missing keys, bad size, negative runs, or runs that do not cover H·W pixels.
    """
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise RLEError("RLE must be a dict with 'size' and 'counts'")
    size = rle["size"]
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(v, (int, np.integer)) and v >= 0 for v in size)):
        raise RLEError(f"RLE size must be [height, width] of non-negative ints, got {size!r}")
    raw = rle["counts"]
    if isinstance(raw, (str, bytes)):
        counts = _string_to_counts(raw)
    elif isinstance(raw, (list, tuple)) and all(isinstance(v, (int, np.integer)) for v in raw):
        counts = [int(v) for v in raw]
    else:
        raise RLEError("RLE counts must be a string (compressed) or a list of ints")
    if any(c < 0 for c in counts):
        raise RLEError("RLE has a negative run length")
    total = int(size[0]) * int(size[1])
    if sum(counts) != total:
        raise RLEError(f"RLE runs cover {sum(counts)} pixels but size {list(size)} has {total}")
    return (int(size[0]), int(size[1])), counts


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """COCO RLE (compressed or not) → ``[H, W]`` bool mask.

    Raises:
        RLEError: the RLE is malformed (see ``validate_rle``).
    """
    (height, width), counts = validate_rle(rle)
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    return flat.reshape((width, height)).T.copy()


def rle_area(rle: dict[str, Any]) -> int:
    """Number of foreground pixels of an RLE mask."""
    _, counts = validate_rle(rle)
    return int(sum(counts[1::2]))


def mask_bbox_xyxy(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight box ``(x1, y1, x2, y2)`` of a binary mask (x2, y2 exclusive), ``None`` if empty."""
    ys = np.flatnonzero(np.asarray(mask).any(axis=1))
    xs = np.flatnonzero(np.asarray(mask).any(axis=0))
    if ys.size == 0:
        return None
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def resize_mask_logits(mask_logits: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """``[N, h, w]`` logits → ``[N, H, W]`` float32 by bilinear interpolation (threshold afterwards).

    SAM2 saw the whole image squashed into a square, so the square low-resolution grid maps onto
    the full original image.
    """
    import torch
    import torch.nn.functional as F

    if mask_logits.dim() != 3:
        raise ValueError(f"mask logits must be [N, h, w], got shape {tuple(mask_logits.shape)}")
    if mask_logits.shape[0] == 0:
        return mask_logits.new_zeros((0, *out_hw), dtype=torch.float32)
    return F.interpolate(mask_logits[:, None].float(), size=out_hw, mode="bilinear", align_corners=False)[:, 0]


def resize_mask_nearest(mask: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """``[H, W]`` binary mask → ``[h, w]`` by nearest neighbour (how targets reach SAM2's grid)."""
    import torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.asarray(mask, dtype=np.float32))[None, None]
    return (F.interpolate(tensor, size=out_hw, mode="nearest")[0, 0].numpy() > 0.5)
