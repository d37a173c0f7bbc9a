"""Projection geometry of a digitally reconstructed radiograph (DRR).

Canonical frame: **RAS patient coordinates in millimetres** (``+x`` towards the patient's Right,
``+y`` Anterior, ``+z`` Superior), the frame of a NIfTI affine as nibabel reads it. Volumes
carry a ``[4, 4]`` voxel-index → RAS-mm affine; voxel ``(i, j, k)`` is a cube centred on its
index.

A view is built from the AP view by rotations:

* **AP** (``angle_deg=0``): the source is anterior, the beam travels posterior (``d = -y``);
  image columns run to the patient's left (``u = -x``), rows run downwards (``v = -z``). Seen
  from the source, so the patient's right is on the image left (radiological display).
* ``angle_deg`` rotates the source about the patient's superior axis (``+z``) by the right-hand
  rule: ``180`` is PA, ``-90`` puts the source on the patient's right (a *left* lateral, the
  standard chest lateral), ``+90`` a right lateral, anything else an oblique.
* ``tilt_deg`` then tilts the beam about the patient's right axis (``+x``): cranio-caudal angles.
* ``mirror_u`` flips the columns after projection. The named views set it so images are shown as
  radiologists hang them: PA and left-lateral films are seen from the detector side (PA: patient's
  right on the image left, like AP; left lateral: anterior on the image left).

Geometry kinds:

* ``"perspective"`` (cone beam): point source at ``sid_mm`` from the isocentre, flat detector at
  ``sdd_mm`` from the source, perpendicular to the central ray; ``spacing_mm`` is the detector
  pixel pitch, so structures at the isocentre are magnified by ``sdd_mm / sid_mm``.
* ``"parallel"``: rays along the beam direction through a detector grid placed at the isocentre;
  ``spacing_mm`` is the pixel pitch there (no magnification; distances are ignored).

Pixel coordinates: column ``c`` / row ``r`` are pixel centres at integer values; a pixel covers
``[c - 0.5, c + 0.5)``. Boxes are ``xyxy`` with exclusive ``x2, y2`` in pixel edges (pixel
``c`` spans ``[c, c + 1)``), the convention of ``citrusv.processing.masks.mask_bbox_xyxy``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

__all__ = ["NAMED_VIEWS", "ProjectionGeometry", "project_points_px", "ray_grid"]

Kind = Literal["perspective", "parallel"]

#: view name → (angle_deg, mirror_u)
NAMED_VIEWS: dict[str, tuple[float, bool]] = {
    "AP": (0.0, False),
    "PA": (180.0, True),
    "LAT": (-90.0, True),   # left lateral: source on the patient's right, anterior on the image left
    "LLAT": (-90.0, True),
    "RLAT": (90.0, False),  # right lateral: source on the patient's left
}


def _rot_z(deg: float) -> np.ndarray:
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rot_x(deg: float) -> np.ndarray:
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


@dataclass(frozen=True)
class ProjectionGeometry:
    """Where the source, patient and detector are (see the module docstring for the frame).

    Attributes:
        kind: ``"perspective"`` (cone beam) or ``"parallel"``.
        angle_deg: rotation of the source about the patient's superior axis from AP (0 AP, 180 PA,
            -90 left lateral, 90 right lateral).
        tilt_deg: cranio-caudal tilt about the patient's right axis, applied after ``angle_deg``.
        sid_mm: source to isocentre distance (perspective only), > 0.
        sdd_mm: source to detector distance (perspective only), > ``sid_mm``.
        detector_hw: detector size ``(H, W)`` in pixels.
        spacing_mm: pixel pitch ``(row, column)`` in mm, at the detector (perspective) or at the
            isocentre (parallel).
        mirror_u: flip the image columns after projection (display convention).
        isocenter_mm: RAS point the central ray passes through; ``None`` = the volume's centre.
        offset_px: ``(row, column)`` shift of the principal point from the detector centre.
    """

    kind: Kind = "perspective"
    angle_deg: float = 0.0
    tilt_deg: float = 0.0
    sid_mm: float = 1000.0
    sdd_mm: float = 1500.0
    detector_hw: tuple[int, int] = (256, 256)
    spacing_mm: tuple[float, float] = (2.0, 2.0)
    mirror_u: bool = False
    isocenter_mm: tuple[float, float, float] | None = None
    offset_px: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if self.kind not in ("perspective", "parallel"):
            raise ValueError(f"kind must be 'perspective' or 'parallel', got {self.kind!r}")
        height, width = self.detector_hw
        if int(height) != height or int(width) != width or height < 1 or width < 1:
            raise ValueError(f"detector_hw must be two positive integers, got {self.detector_hw}")
        if len(self.spacing_mm) != 2 or min(self.spacing_mm) <= 0:
            raise ValueError(f"spacing_mm must be two positive numbers, got {self.spacing_mm}")
        if self.kind == "perspective" and (self.sid_mm <= 0 or self.sdd_mm <= self.sid_mm):
            raise ValueError(f"need 0 < sid_mm < sdd_mm, got sid_mm={self.sid_mm}, sdd_mm={self.sdd_mm}")
        if self.isocenter_mm is not None and len(self.isocenter_mm) != 3:
            raise ValueError(f"isocenter_mm must be 3 numbers, got {self.isocenter_mm}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def view(cls, name: str, **kwargs) -> ProjectionGeometry:
        """A named view (``AP``, ``PA``, ``LAT`` = ``LLAT``, ``RLAT``); ``kwargs`` set the other fields.

        Raises:
            ValueError: an unknown view name.
        """
        key = name.upper()
        if key not in NAMED_VIEWS:
            raise ValueError(f"unknown view {name!r}; expected one of {sorted(NAMED_VIEWS)} or use angle_deg")
        angle, mirror = NAMED_VIEWS[key]
        return cls(angle_deg=angle, mirror_u=mirror, **kwargs)

    def with_isocenter(self, isocenter_mm) -> ProjectionGeometry:
        return replace(self, isocenter_mm=tuple(float(v) for v in isocenter_mm))

    # ------------------------------------------------------------------ derived frame
    @property
    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(d, u, v)``: beam direction, image column axis, image row axis (unit RAS vectors).

        ``u`` is the direction of increasing column *before* ``mirror_u``.
        """
        rotation = _rot_z(self.angle_deg) @ _rot_x(self.tilt_deg)
        d = rotation @ np.array([0.0, -1.0, 0.0])
        u = rotation @ np.array([-1.0, 0.0, 0.0])
        v = rotation @ np.array([0.0, 0.0, -1.0])
        return d, u, v

    @property
    def magnification(self) -> float:
        """Detector / isocentre scale (1 for parallel)."""
        return self.sdd_mm / self.sid_mm if self.kind == "perspective" else 1.0

    def _iso(self) -> np.ndarray:
        if self.isocenter_mm is None:
            raise ValueError("the geometry has no isocentre; call with_isocenter() (render_drr does it for you)")
        return np.asarray(self.isocenter_mm, dtype=np.float64)

    def source_mm(self) -> np.ndarray:
        """RAS position of the point source (perspective only)."""
        d, _, _ = self.axes
        return self._iso() - d * self.sid_mm

    def _pixel_offsets(self) -> tuple[float, float]:
        height, width = self.detector_hw
        return (height - 1) / 2.0 + self.offset_px[0], (width - 1) / 2.0 + self.offset_px[1]


def ray_grid(geometry: ProjectionGeometry, rows: slice | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rays for detector rows ``rows`` (all by default), one per pixel centre.

    Returns:
        ``(origins_mm [h, W, 3], directions [h, W, 3])`` in RAS mm; directions are unit vectors.
        Perspective: origins are the source. Parallel: origins lie in the plane through the
        isocentre, and rays extend both ways (callers clip them to the volume).
    """
    height, width = geometry.detector_hw
    rows = rows or slice(0, height)
    r = np.arange(height, dtype=np.float64)[rows]
    c = np.arange(width, dtype=np.float64)
    if geometry.mirror_u:
        c = c[::-1].copy()  # output column c shows the un-mirrored column W-1-c
    r0, c0 = geometry._pixel_offsets()
    d, u, v = geometry.axes
    dv = (r - r0)[:, None, None] * geometry.spacing_mm[0] * v
    du = (c - c0)[None, :, None] * geometry.spacing_mm[1] * u
    plane = du + dv  # [h, W, 3] offsets in the detector plane
    iso = geometry._iso()
    if geometry.kind == "parallel":
        origins = iso + plane
        directions = np.broadcast_to(d, origins.shape).copy()
        return origins, directions
    source = geometry.source_mm()
    targets = source + d * geometry.sdd_mm + plane
    directions = targets - source
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    return np.broadcast_to(source, directions.shape).copy(), directions


def project_points_px(geometry: ProjectionGeometry, points_mm) -> np.ndarray:
    """``[N, 3]`` RAS points → ``[N, 2]`` continuous ``(column, row)`` pixel coordinates
    (pixel centres at integers; ``mirror_u`` applied).

    Raises:
        ValueError: a point at or behind the source (perspective).
    """
    points = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
    d, u, v = geometry.axes
    iso = geometry._iso()
    if geometry.kind == "parallel":
        rel = points - iso
        a, b = rel @ u, rel @ v
    else:
        rel = points - geometry.source_mm()
        depth = rel @ d
        if np.any(depth <= 0):
            raise ValueError("a point lies at or behind the source")
        scale = geometry.sdd_mm / depth
        a, b = (rel @ u) * scale, (rel @ v) * scale
    r0, c0 = geometry._pixel_offsets()
    col = a / geometry.spacing_mm[1] + c0
    row = b / geometry.spacing_mm[0] + r0
    if geometry.mirror_u:
        col = (geometry.detector_hw[1] - 1) - col
    return np.stack([col, row], axis=1)

