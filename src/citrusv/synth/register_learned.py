"""The learned deformable stage of ``citrusv.synth.register`` (``method="voxelmorph"``).

1. **VoxelMorph, instance-optimised.** MONAI's ``VoxelMorph`` (a slim ``VoxelMorphUNet``,
   stationary velocity field integrated by scaling and squaring, ``DVF2DDF``) is trained on the
   one image pair it registers, on a grid whose longest side is at most
   ``options.learned_max_side``. No pretrained registration weights ship with MONAI or exist
   offline, so there is no amortised (single forward pass) mode.
2. **Variational refinement.** The network's field, upsampled to the target grid, becomes the
   free variable: Adam on similarity (local NCC or MSE) + ``smoothness`` × mean squared gradient
   of the field (MONAI ``DiffusionLoss``).

Both images arrive on the target grid (the template already affinely resampled and
histogram-matched). The result is ``[3, I, J, K]`` displacement in target voxels (MONAI ``Warp``
convention: sample the template at ``index + ddf``).
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .register import RegistrationOptions

__all__ = ["learned_displacement_vox"]

logger = logging.getLogger(__name__)

_NATIVE_GRID_SAMPLE = "monai.networks.blocks.Warp: Using PyTorch native grid_sample"


def _require():
    try:
        import monai  # noqa: F401
        import torch
    except ImportError as err:  # pragma: no cover - environment
        raise ImportError(
            "method='voxelmorph' needs torch and monai: pip install 'monai>=1.6' (torch is already a dependency)"
        ) from err
    return torch


def _normalise01(x):
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else x * 0


def _grid(shape: tuple[int, ...], max_side: int, multiple: int) -> tuple[int, ...]:
    """A grid with the aspect of ``shape``, longest side <= ``max_side`` (never upsampled), sides
    rounded to ``multiple``."""
    factor = max(1.0, max(shape) / max_side)
    return tuple(max(multiple, round(n / factor / multiple) * multiple) for n in shape)


def _resize_field(ddf, size: tuple[int, ...]):
    """``[1, 3, *grid]`` voxel displacement → the same field on ``size`` (rescaled per axis,
    corner-aligned grids)."""
    import torch
    import torch.nn.functional as F

    if tuple(ddf.shape[2:]) == tuple(size):
        return ddf
    scale = torch.tensor(
        [(n - 1) / max(c - 1, 1) for n, c in zip(size, ddf.shape[2:])], dtype=ddf.dtype
    )
    return F.interpolate(
        ddf, size=size, mode="trilinear", align_corners=True
    ) * scale.view(1, 3, 1, 1, 1)


def _diffusion(ddf):
    """Mean over interior voxels of ``Σ_axes |central difference of u|²`` (voxel units): MONAI's
    ``DiffusionLoss()`` value, without its list indexing that torch deprecates."""
    inner = [slice(None), slice(None), slice(1, -1), slice(1, -1), slice(1, -1)]
    total = 0
    for axis in (2, 3, 4):
        ahead, behind = list(inner), list(inner)
        ahead[axis], behind[axis] = slice(2, None), slice(None, -2)
        total = total + ((ddf[tuple(ahead)] - ddf[tuple(behind)]) / 2.0) ** 2
    return total.mean()


def learned_displacement_vox(
    fixed_ijk: np.ndarray, moving_ijk: np.ndarray, options: RegistrationOptions
) -> np.ndarray:
    """VoxelMorph instance optimisation + variational refinement.

    Args:
        fixed_ijk: ``[I, J, K]`` target intensities.
        moving_ijk: ``[I, J, K]`` template intensities already on the target grid.
        options: the learned-stage fields of :class:`RegistrationOptions`.

    Returns:
        ``[3, I, J, K]`` float32 displacement in target voxel units.
    """
    torch = _require()
    import torch.nn.functional as F
    from monai.losses import LocalNormalizedCrossCorrelationLoss
    from monai.networks.blocks import Warp
    from monai.networks.nets import VoxelMorph, VoxelMorphUNet

    if fixed_ijk.shape != moving_ijk.shape:
        raise ValueError(
            f"fixed {fixed_ijk.shape} and moving {moving_ijk.shape} must share the target grid"
        )
    shape = tuple(int(n) for n in fixed_ijk.shape)
    fixed = _normalise01(
        torch.from_numpy(np.ascontiguousarray(fixed_ijk, dtype=np.float32))[None, None]
    )
    moving = _normalise01(
        torch.from_numpy(np.ascontiguousarray(moving_ijk, dtype=np.float32))[None, None]
    )

    if options.similarity == "lncc":
        similarity = LocalNormalizedCrossCorrelationLoss(spatial_dims=3, kernel_size=7)
    else:
        similarity = torch.nn.MSELoss()
    smooth = _diffusion

    # 1. network on a coarse grid: sides multiples of 2**depth, longest <= learned_max_side
    coarse = _grid(
        shape, options.learned_max_side, 2 ** (len(options.learned_channels) // 2 + 1)
    )
    fixed_c = F.interpolate(fixed, size=coarse, mode="trilinear", align_corners=True)
    moving_c = F.interpolate(moving, size=coarse, mode="trilinear", align_corners=True)

    generator_state = torch.random.get_rng_state()
    torch.manual_seed(options.seed)
    try:
        backbone = VoxelMorphUNet(
            spatial_dims=3,
            in_channels=2,
            unet_out_channels=options.learned_channels[0],
            channels=options.learned_channels,
            final_conv_channels=(options.learned_channels[0],),
        )
        with (
            warnings.catch_warnings()
        ):  # MONAI notes its fallback to torch's grid_sample: expected here
            warnings.filterwarnings("ignore", message=_NATIVE_GRID_SAMPLE)
            net = VoxelMorph(backbone=backbone, integration_steps=7)
        # start from (almost) the identity: tiny weights on the layer that outputs the velocity
        last = [m for m in net.backbone.modules() if isinstance(m, torch.nn.Conv3d)][-1]
        torch.nn.init.normal_(last.weight, std=1e-5)
        if last.bias is not None:
            torch.nn.init.zeros_(last.bias)
    finally:
        torch.random.set_rng_state(generator_state)
    optimiser = torch.optim.Adam(net.parameters(), lr=options.learned_lr)
    ddf_c = torch.zeros((1, 3, *coarse))
    for step in range(options.learned_iterations):
        optimiser.zero_grad()
        warped, ddf_c = net(moving_c, fixed_c)
        loss = similarity(warped, fixed_c) + options.smoothness * smooth(ddf_c)
        loss.backward()
        optimiser.step()
        if step % 50 == 0:
            logger.debug("voxelmorph step %d: loss %.4f", step, loss.item())
    with torch.no_grad():
        if options.learned_iterations:
            _, ddf_c = net(moving_c, fixed_c)
        fine = _grid(shape, options.refine_max_side, 1)
        ddf = _resize_field(ddf_c, fine)

    # 2. variational refinement: the field itself is the variable
    if options.refine_iterations:
        fixed_f = (
            F.interpolate(fixed, size=fine, mode="trilinear", align_corners=True)
            if fine != shape
            else fixed
        )
        moving_f = (
            F.interpolate(moving, size=fine, mode="trilinear", align_corners=True)
            if fine != shape
            else moving
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_NATIVE_GRID_SAMPLE)
            warp = Warp(mode="bilinear", padding_mode="border")
        ddf = ddf.clone().requires_grad_(True)
        optimiser = torch.optim.Adam([ddf], lr=options.refine_lr)
        for _ in range(options.refine_iterations):
            optimiser.zero_grad()
            loss = similarity(
                warp(moving_f, ddf), fixed_f
            ) + options.smoothness * smooth(ddf)
            loss.backward()
            optimiser.step()
        logger.debug("refinement: final loss %.4f", loss.item())
    with torch.no_grad():
        out = _resize_field(ddf.detach(), shape)[0].numpy().astype(np.float32)
    if not np.all(np.isfinite(out)):
        raise FloatingPointError(
            "the learned displacement field diverged (NaN / inf); lower learned_lr / refine_lr"
        )
    logger.debug(
        "learned field: max |u| %.2f voxels",
        float(math.sqrt((out**2).sum(axis=0).max())),
    )
    return out
