"""Physical measurements of binary masks. Spacing is always required (no unit default).

Pixel ``(r, c)`` stands for its centre at ``(r · row_mm, c · col_mm)``; distances are between
pixel centres, so a one-pixel object has diameter 0 and an ``n``-pixel line ``(n - 1)`` pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import MedicalImageError

__all__ = ["RecistMeasurement", "mask_area_mm2", "mask_volume_ml", "recist_diameters_mm"]


def _spacing(spacing_mm, count: int) -> np.ndarray:
    if spacing_mm is None:
        raise MedicalImageError("the image has no pixel spacing; physical measurements need one")
    values = np.asarray([float(v) for v in spacing_mm], dtype=np.float64)
    if values.shape != (count,) or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise MedicalImageError(f"spacing must be {count} positive numbers in mm, got {spacing_mm!r}")
    return values


def _binary(mask, ndim: int) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != ndim:
        raise MedicalImageError(f"mask must be {ndim}-D, got shape {mask.shape}")
    return mask != 0


def mask_area_mm2(mask_hw: np.ndarray, spacing_mm_yx: tuple[float, float]) -> float:
    """Area of a ``[H, W]`` mask (non-zero = inside) in mm²: pixel count × row × col spacing.

    Raises:
        MedicalImageError: not 2-D, or a missing / non-positive spacing.
    """
    spacing = _spacing(spacing_mm_yx, 2)
    return float(_binary(mask_hw, 2).sum() * spacing[0] * spacing[1])


def mask_volume_ml(mask_ijk: np.ndarray, spacing_mm_ijk: tuple[float, float, float]) -> float:
    """Volume of a 3-D mask in millilitres (voxel count × voxel volume in mm³ / 1000).

    Raises:
        MedicalImageError: not 3-D, or a missing / non-positive spacing.
    """
    spacing = _spacing(spacing_mm_ijk, 3)
    return float(_binary(mask_ijk, 3).sum() * float(np.prod(spacing)) / 1000.0)


@dataclass(frozen=True)
class RecistMeasurement:
    """RECIST-style axes of one 2D mask.

    Attributes:
        long_axis_mm: longest distance between two boundary pixel centres.
        short_axis_mm: longest extent of the mask perpendicular to the long axis, measured on
            chords perpendicular to it (pixel centres binned along the long axis at the finest
            pixel spacing, so exact to about one pixel).
        long_axis_rc: the long axis end points ``((r0, c0), (r1, c1))`` in pixels.
        short_axis_rc: the short axis end points in pixels (their offset along the long axis is
            within one bin).
    """

    long_axis_mm: float
    short_axis_mm: float
    long_axis_rc: tuple[tuple[int, int], tuple[int, int]]
    short_axis_rc: tuple[tuple[int, int], tuple[int, int]]


def _hull(points: np.ndarray) -> np.ndarray:
    """Convex hull (Andrew's monotone chain) of ``[N, 2]`` points, as indices."""
    order = np.lexsort((points[:, 1], points[:, 0]))
    if len(order) < 3:
        return order

    def half(indices):
        chain: list[int] = []
        for i in indices:
            while len(chain) >= 2:
                o, a = points[chain[-2]], points[chain[-1]]
                b = points[i]
                if (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]) <= 0:
                    chain.pop()
                else:
                    break
            chain.append(int(i))
        return chain

    lower, upper = half(order), half(order[::-1])
    return np.asarray(lower[:-1] + upper[:-1], dtype=np.int64)


def recist_diameters_mm(mask_hw: np.ndarray, spacing_mm_yx: tuple[float, float]) -> RecistMeasurement:
    """Long axis and perpendicular short axis of a 2D mask in mm (RECIST 1.1 style).

    Use one connected lesion per call; for several lesions measure each component.

    Raises:
        MedicalImageError: not 2-D, an empty mask, or a missing / non-positive spacing.
    """
    spacing = _spacing(spacing_mm_yx, 2)
    mask = _binary(mask_hw, 2)
    rc = np.argwhere(mask)
    if rc.size == 0:
        raise MedicalImageError("empty mask: no diameter to measure")
    points = rc * spacing  # [N, 2] in mm
    padded = np.pad(mask, 1)
    interior = padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    boundary = np.flatnonzero((mask & ~interior)[mask])  # indices into rc of boundary pixels
    hull = boundary[_hull(points[boundary])] if len(boundary) > 2 else boundary
    hull_points = points[hull]
    diff = hull_points[:, None, :] - hull_points[None, :, :]
    dist = np.sqrt((diff**2).sum(-1))
    a, b = np.unravel_index(int(np.argmax(dist)), dist.shape)
    long_mm = float(dist[a, b])
    p, q = rc[hull[a]], rc[hull[b]]
    if long_mm == 0.0:
        return RecistMeasurement(0.0, 0.0, ((int(p[0]), int(p[1])),) * 2, ((int(p[0]), int(p[1])),) * 2)
    u = (points[hull[b]] - points[hull[a]]) / long_mm
    v = np.array([-u[1], u[0]])
    t = points @ u
    s = points @ v
    bins = np.floor((t - t.min()) / float(spacing.min()) + 0.5).astype(np.int64)
    order = np.argsort(bins, kind="stable")
    edges = np.flatnonzero(np.diff(bins[order])) + 1
    best, best_pair = -1.0, (0, 0)
    for group in np.split(order, edges):
        lo, hi = group[np.argmin(s[group])], group[np.argmax(s[group])]
        extent = float(s[hi] - s[lo])
        if extent > best:
            best, best_pair = extent, (lo, hi)
    r0, r1 = rc[best_pair[0]], rc[best_pair[1]]
    return RecistMeasurement(
        long_axis_mm=long_mm,
        short_axis_mm=best,
        long_axis_rc=((int(p[0]), int(p[1])), (int(q[0]), int(q[1]))),
        short_axis_rc=((int(r0[0]), int(r0[1])), (int(r1[0]), int(r1[1]))),
    )
