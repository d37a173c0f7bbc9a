"""Mask losses of Citrus-V, as the release computes them (mmdet ``CrossEntropyLoss`` and ``DiceLoss``).

Both take low-resolution mask logits ``[M, h, w]`` and binary targets of the same shape.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["mask_bce_loss", "mask_dice_loss"]


def _check(mask_logits: torch.Tensor, target_masks: torch.Tensor) -> None:
    if mask_logits.shape != target_masks.shape:
        raise ValueError(f"mask logits {tuple(mask_logits.shape)} and targets {tuple(target_masks.shape)} differ in shape")
    if mask_logits.dim() < 2:
        raise ValueError(f"expected [M, h, w] masks, got shape {tuple(mask_logits.shape)}")


def mask_bce_loss(mask_logits: torch.Tensor, target_masks: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Per-pixel sigmoid BCE, averaged over the pixels of each mask, then over masks (a scalar).

    Masks share one size, so the ``"mean"`` equals the release's mean over every pixel of every
    mask. ``reduction="sum"`` sums the per-mask means (for normalising by a mask count taken
    over a whole accumulated, distributed batch).

    Args:
        mask_logits: ``[M, h, w]`` logits.
        target_masks: ``[M, h, w]`` with values in {0, 1} (bool, int or float).
        reduction: ``"mean"`` or ``"sum"`` over masks.
    """
    _check(mask_logits, target_masks)
    per_mask = F.binary_cross_entropy_with_logits(mask_logits.float(), target_masks.float(), reduction="none")
    return _reduce(per_mask.flatten(1).mean(dim=1), reduction)


def mask_dice_loss(mask_logits: torch.Tensor, target_masks: torch.Tensor, eps: float = 1.0,
                   reduction: str = "mean") -> torch.Tensor:
    """Naive Dice loss ``1 - (2·Σpt + eps) / (Σp + Σt + eps)`` per mask on sigmoid probabilities,
    averaged over masks (a scalar). ``eps=1.0`` is the released configuration.

    Args:
        mask_logits: ``[M, h, w]`` logits.
        target_masks: ``[M, h, w]`` with values in {0, 1}.
        eps: smoothing term added to numerator and denominator.
        reduction: ``"mean"`` or ``"sum"`` over masks.
    """
    _check(mask_logits, target_masks)
    prob = mask_logits.float().sigmoid().flatten(1)
    target = target_masks.float().flatten(1)
    numerator = 2 * (prob * target).sum(dim=1) + eps
    denominator = prob.sum(dim=1) + target.sum(dim=1) + eps
    return _reduce(1 - numerator / denominator, reduction)


def _reduce(per_mask: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_mask.mean()
    if reduction == "sum":
        return per_mask.sum()
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
