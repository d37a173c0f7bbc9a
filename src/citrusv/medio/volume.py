"""Volumes: canonical reorientation and 2D slices for the model."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import MedicalImageError, require
from .types import MedicalImage, SliceGeometry, Volume, VolumeGeometry, axis_index
from .windowing import minmax_to_uint8, resolve_window
from .windowing import window as apply_window

__all__ = ["WindowSpec", "canonical_volume", "display_from_values", "slice_volume"]

#: ``"auto"``, ``"minmax"``, a preset name from ``CT_WINDOW_PRESETS`` or ``(center, width)``.
WindowSpec = Any


def canonical_volume(
    values_source: np.ndarray,
    affine_source_ras: np.ndarray,
    *,
    modality: str | None = None,
    value_unit: str = "stored",
    source: str = "<array>",
    source_files: tuple[str, ...] = (),
    source_frames: tuple[int, ...] = (),
    uids: dict[str, str] | None = None,
    xform_codes: tuple[int, int] = (1, 1),
) -> Volume:
    """Reorient a volume given in its source voxel order to the closest RAS+ frame (axis
    permutations and flips only; no resampling) and wrap it in a :class:`Volume`.

    Raises:
        MedicalImageError: not 3-D, non-finite values or a singular affine.
    """
    nib = require("nibabel")

    values_source = np.asarray(values_source)
    affine = np.asarray(affine_source_ras, dtype=np.float64)
    if values_source.ndim != 3:
        raise MedicalImageError(f"{source}: a volume must be 3-D, got shape {values_source.shape}")
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise MedicalImageError(f"{source}: the voxel-to-world affine is singular or not finite")
    if not np.all(np.isfinite(values_source)):
        raise MedicalImageError(f"{source}: volume contains NaN or infinite values")
    ornt = nib.orientations.io_orientation(affine)
    values = nib.orientations.apply_orientation(values_source, ornt)
    canonical_affine = affine @ nib.orientations.inv_ornt_aff(ornt, values_source.shape)
    geometry = VolumeGeometry(
        shape_ijk=tuple(int(n) for n in values.shape),  # type: ignore[arg-type]
        affine_ras=canonical_affine,
        source_shape_ijk=tuple(int(n) for n in values_source.shape),  # type: ignore[arg-type]
        source_affine_ras=affine,
        source_to_canonical=ornt,
        source_xform_codes=xform_codes,
    )
    return Volume(
        values=np.ascontiguousarray(values, dtype=np.float32),
        geometry=geometry,
        modality=modality,
        value_unit=value_unit,
        source=source,
        source_files=source_files,
        source_frames=source_frames,
        uids=dict(uids or {}),
    )


def display_from_values(
    values: np.ndarray,
    spec: WindowSpec,
    *,
    modality: str | None,
    file_window: tuple[float, float] | None = None,
    voi_function: str = "LINEAR",
) -> tuple[np.ndarray, tuple[float, float] | None, str]:
    """Raw values → ``uint8`` display, the window used and a note.

    ``"auto"``: the file's own window (DICOM WindowCenter / WindowWidth) when given, else the
    finite min..max. ``"minmax"``: always min..max. A preset name or a pair: that window
    (presets assume HU; using one on a non-CT image is allowed but noted).
    """
    if isinstance(spec, str) and spec.lower() in ("auto", "minmax"):
        if spec.lower() == "auto" and file_window is not None:
            center, width = file_window
            return (
                apply_window(values, center, width, function=voi_function),
                file_window,
                f"file window {center:g}/{width:g} ({voi_function})",
            )  # type: ignore[arg-type]
        return minmax_to_uint8(values), None, "min..max rescale"
    center, width = resolve_window(spec)
    note = f"window {center:g}/{width:g}"
    if isinstance(spec, str):
        note = f"{spec.lower()} window {center:g}/{width:g}"
        if modality not in (None, "CT"):
            note += f" (a CT preset on a {modality} image)"
    return apply_window(values, center, width, function=voi_function), (center, width), note  # type: ignore[arg-type]


def slice_volume(volume: Volume, index: int, *, axis: int | str = "axial", window: WindowSpec = "auto") -> MedicalImage:
    """One slice of a canonical volume as a :class:`MedicalImage` in radiological display
    layout, with its in-plane spacing and the geometry to write masks back.

    Raises:
        MedicalImageError: index out of range, unknown axis or window.
    """
    ax = axis_index(axis)
    count = volume.shape_ijk[ax]
    if not isinstance(index, (int, np.integer)) or not 0 <= int(index) < count:
        raise MedicalImageError(f"{volume.source}: slice index {index!r} is out of range; axis {ax} has {count} slices")
    geometry = SliceGeometry(volume=volume.geometry, axis=ax, index=int(index), radiological=True)
    take: list[Any] = [slice(None)] * 3
    take[ax] = int(index)
    values = geometry.plane_to_display(volume.values[tuple(take)]).astype(np.float32)
    a, b = (s for i, s in enumerate(volume.spacing_mm_ijk) if i != ax)
    display, used, note = display_from_values(values, window, modality=volume.modality)
    return MedicalImage(
        display=display,
        values=values,
        pixel_spacing_mm=(b, a),
        spacing_source="volume affine",
        modality=volume.modality,
        value_unit=volume.value_unit,
        window=used,
        source=volume.source,
        geometry=geometry,
        uids=dict(volume.uids),
        notes=(f"slice {int(index)} of {count} along axis {ax} ({volume.orientation})", note),
    )
