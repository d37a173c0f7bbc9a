"""The stage-3 gradient scale on the segmentation modules.

The paper updates all MLLM parameters and the segmentation modules in stage 3 "while the
gradient of segmentation modules is scaled by 0.001 with a hook function" (the release only has
commented-out lines for it). Here the hook sits on each parameter of the projector and of SAM2:
their gradients are multiplied by the scale, while the gradient that the mask losses send back
into the MLLM through the ``[SEG]`` hidden states is left as it is.

Note: AdamW normalises each parameter's update by its own gradient statistics, so a constant
gradient scale mostly acts through global-norm clipping (the segmentation gradients count
1000× less towards the norm) and AdamW's epsilon, not through the step size itself.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["SegmentationGradientScale"]


class SegmentationGradientScale:
    """Multiply the gradients of ``seg_projector`` and ``sam2`` parameters by ``scale``.

    Usable as a context manager or with ``attach`` / ``remove``.
    """

    def __init__(self, model: nn.Module, scale: float):
        if not 0 < scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {scale}")
        self.model, self.scale = model, scale
        self._handles: list[Any] = []

    def parameters(self) -> list[nn.Parameter]:
        modules = [self.model.seg_projector, self.model.sam2]
        return [p for m in modules for p in m.parameters() if p.requires_grad]

    def attach(self) -> SegmentationGradientScale:
        if self._handles or self.scale == 1:
            return self
        scale = self.scale

        def hook(grad: torch.Tensor | None) -> torch.Tensor | None:
            # DDP with find_unused_parameters hands undefined gradients of unused parameters on.
            return None if grad is None else grad * scale

        self._handles = [p.register_hook(hook) for p in self.parameters()]
        return self

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> SegmentationGradientScale:
        return self.attach()

    def __exit__(self, *exc: Any) -> None:
        self.remove()
