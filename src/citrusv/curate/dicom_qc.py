"""DICOM series consistency checks: accept or reject a series with reasons.

Checks (tolerances in ``QCConfig``):

* ``missing_geometry``: a multi-slice series without ImageOrientationPatient /
  ImagePositionPatient / PixelSpacing on every slice.
* ``orientation_inconsistent``: ImageOrientationPatient differs between slices.
* ``orientation_not_orthonormal``: row / column direction cosines not unit length or not orthogonal.
* ``positions_off_normal``: slice positions do not lie on a line along the normal row × column
  (gantry tilt, mixed stacks).
* ``duplicate_positions``: two slices at the same position along the normal.
* ``nonuniform_spacing``: gaps between consecutive slices differ.
* ``spacing_exceeds_thickness``: the gap is larger than SliceThickness (coverage holes); a gap
  smaller than the thickness (overlapping reconstruction) is a warning only.
* ``bad_pixel_spacing`` / ``bad_extent``: PixelSpacing not two positive numbers, or the physical
  extent (rows × spacing, columns × spacing, slice span) outside ``[min_extent_mm, max_extent_mm]``.
* ``inconsistent_matrix``: Rows / Columns / PixelSpacing differ between slices.

Single images (projection radiographs, photographs) are checked only for pixel spacing and extent
when they carry PixelSpacing or ImagerPixelSpacing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["QCConfig", "QCResult", "check_series"]


@dataclass
class QCConfig:
    """Tolerances of the series checks."""

    orientation_tol: float = 1e-3
    """Largest difference of direction cosines between slices, and deviation from orthonormality."""
    position_tol_mm: float = 0.1
    """Largest in-plane offset of a slice position from the line along the normal."""
    spacing_rel_tol: float = 0.01
    """Largest relative difference of a gap from the median gap (plus ``position_tol_mm``)."""
    thickness_rel_tol: float = 0.1
    min_extent_mm: float = 5.0
    max_extent_mm: float = 2000.0


@dataclass
class QCResult:
    """The verdict on one series: ``accepted`` when ``reasons`` is empty."""

    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return not self.reasons


def _floats(value: Any) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(v) for v in (value if isinstance(value, (list, tuple)) or hasattr(value, "__iter__") and not isinstance(value, str) else [value])]
    except (TypeError, ValueError):
        return None


def _pixel_spacing(ds: Any) -> list[float] | None:
    spacing = _floats(ds.get("PixelSpacing"))
    return spacing if spacing is not None else _floats(ds.get("ImagerPixelSpacing"))


def check_series(datasets: list[Any], config: QCConfig | None = None) -> QCResult:
    """Check the slices (pydicom datasets, headers suffice) of one series, in any order.

    Raises:
        ValueError: ``datasets`` is empty.
    """
    if not datasets:
        raise ValueError("a series needs at least one dataset")
    cfg = config or QCConfig()
    result = QCResult()
    result.metrics["num_files"] = len(datasets)

    spacings = [_pixel_spacing(ds) for ds in datasets]
    matrices = {(int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)) for ds in datasets}
    if len(matrices) > 1 or len({tuple(s) if s else None for s in spacings}) > 1:
        result.reasons.append("inconsistent_matrix")
    rows, cols = min(matrices)
    spacing = spacings[0]
    if spacing is not None:
        if len(spacing) != 2 or min(spacing) <= 0:
            result.reasons.append("bad_pixel_spacing")
        else:
            extent = [rows * spacing[0], cols * spacing[1]]
            result.metrics["pixel_spacing_mm"] = spacing
            result.metrics["extent_mm"] = extent
            if rows == 0 or cols == 0 or not all(cfg.min_extent_mm <= e <= cfg.max_extent_mm for e in extent):
                result.reasons.append("bad_extent")

    geometry = [(ds.get("ImageOrientationPatient"), ds.get("ImagePositionPatient")) for ds in datasets]
    if len(datasets) == 1 and any(g is None for g in geometry[0]):
        return result
    if any(iop is None or ipp is None for iop, ipp in geometry) or spacing is None:
        result.reasons.append("missing_geometry")
        return result
    iops = np.array([_floats(iop) for iop, _ in geometry], dtype=np.float64)
    ipps = np.array([_floats(ipp) for _, ipp in geometry], dtype=np.float64)
    if iops.shape[1] != 6 or ipps.shape[1] != 3:
        result.reasons.append("missing_geometry")
        return result
    if np.abs(iops - iops[0]).max() > cfg.orientation_tol:
        result.reasons.append("orientation_inconsistent")
    row_dir, col_dir = iops[0, :3], iops[0, 3:]
    if (abs(np.linalg.norm(row_dir) - 1) > cfg.orientation_tol or abs(np.linalg.norm(col_dir) - 1) > cfg.orientation_tol
            or abs(float(row_dir @ col_dir)) > cfg.orientation_tol):
        result.reasons.append("orientation_not_orthonormal")
    if len(datasets) == 1:
        return result
    normal = np.cross(row_dir, col_dir)
    normal /= np.linalg.norm(normal) or 1.0
    along = ipps @ normal
    order = np.argsort(along, kind="stable")
    along, ipps = along[order], ipps[order]
    off_line = ipps - ipps[0] - np.outer(along - along[0], normal)
    if np.linalg.norm(off_line, axis=1).max() > cfg.position_tol_mm:
        result.reasons.append("positions_off_normal")
    gaps = np.diff(along)
    result.metrics["slice_gaps_mm"] = [round(float(g), 4) for g in gaps]
    if (gaps < cfg.position_tol_mm).any():
        result.reasons.append("duplicate_positions")
        return result
    median = float(np.median(gaps))
    result.metrics["slice_spacing_mm"] = median
    if np.abs(gaps - median).max() > cfg.spacing_rel_tol * median + cfg.position_tol_mm:
        result.reasons.append("nonuniform_spacing")
    thickness = _floats(datasets[0].get("SliceThickness"))
    if thickness and thickness[0] > 0:
        t = thickness[0]
        result.metrics["slice_thickness_mm"] = t
        if median > t * (1 + cfg.thickness_rel_tol) + cfg.position_tol_mm:
            result.reasons.append("spacing_exceeds_thickness")
        elif median < t * (1 - cfg.thickness_rel_tol) - cfg.position_tol_mm:
            result.warnings.append("overlapping_slices")
    span = float(along[-1] - along[0])
    result.metrics["extent_mm"] = result.metrics.get("extent_mm", []) + [span]
    if span > cfg.max_extent_mm:
        result.reasons.append("bad_extent")
    return result
