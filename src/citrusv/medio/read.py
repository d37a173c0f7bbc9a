"""``read_medical_image``: one entry point that dispatches on the file's content."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .dicom import is_dicom, read_dicom, read_dicom_series, read_dicom_volume
from .errors import MedicalImageError
from .nifti import is_nifti, read_nifti
from .raster import read_raster
from .types import MedicalImage, Volume, axis_index
from .volume import WindowSpec, slice_volume

__all__ = ["read_medical_image", "read_volume"]


def read_volume(path: str | Path, *, modality: str | None = None) -> Volume:
    """A NIfTI file, a DICOM series folder or a multi-frame DICOM file → canonical RAS+ :class:`Volume`.

    Raises:
        MedicalImageError: neither a NIfTI file nor a folder of DICOM files, or what the readers
            raise.
    """
    path = Path(path)
    if path.is_dir():
        volume = read_dicom_series(path)
        return volume if modality is None else replace(volume, modality=modality)
    if not path.exists():
        raise MedicalImageError(f"no file or folder at {path}")
    if is_dicom(path):
        volume = read_dicom_volume(path)
        return volume if modality is None else replace(volume, modality=modality)
    if is_nifti(path):
        return read_nifti(path, modality=modality)
    raise MedicalImageError(f"{path}: not a NIfTI file, a DICOM file or a DICOM series folder")


def read_medical_image(
    path: str | Path | bytes,
    *,
    window: WindowSpec = "auto",
    frame: int | None = None,
    slice_index: int | None = None,
    axis: int | str = "axial",
    modality: str | None = None,
    pixel_spacing_mm: tuple[float, float] | None = None,
) -> MedicalImage:
    """Read one 2D image from a DICOM file, a DICOM series folder, a NIfTI file or a plain image
    (or from the bytes of a DICOM, NIfTI or plain image file, e.g. an upload).

    Dispatch is by content: a folder is a DICOM series; ``"DICM"`` at byte 128 is DICOM; a
    ``.nii`` / ``.nii.gz`` name or a NIfTI magic is NIfTI; anything else is read by Pillow.

    Args:
        window: ``"auto"``, ``"minmax"``, a CT preset (``"lung"``, ``"mediastinum"``, ``"bone"``,
            ``"brain"``, ``"abdomen"``) or ``(center, width)`` in modality units.
        frame: frame of a multi-frame DICOM / multi-page TIFF (required when there are several).
        slice_index: slice of a volume (required when the volume has more than one slice along
            ``axis``).
        axis: ``"axial"``, ``"coronal"``, ``"sagittal"`` (canonical RAS axes 2, 1, 0).
        modality: for NIfTI, which does not record it (``"CT"`` marks values as HU).
        pixel_spacing_mm: ``(row, col)`` for plain images, whose files do not carry a physical
            spacing.

    Raises:
        MedicalImageError: see the readers; also a missing path, or a volume without
            ``slice_index``.
    """
    if isinstance(path, (bytes, bytearray)):
        data = bytes(path)
        if is_dicom(data):
            if slice_index not in (None, 0):
                raise MedicalImageError(f"<bytes>: a 2D image has no slice {slice_index}")
            return read_dicom(data, frame=frame, window=window)
        if is_nifti(data):
            return _slice_of(read_nifti(data, modality=modality), "<bytes>", slice_index, axis, window)
        if slice_index not in (None, 0):
            raise MedicalImageError(f"<bytes>: a 2D image has no slice {slice_index}")
        return read_raster(data, frame=frame, window=window, pixel_spacing_mm=pixel_spacing_mm)
    path = Path(path)
    if not path.exists():
        raise MedicalImageError(f"no file or folder at {path}")
    if path.is_dir() or (path.is_file() and not is_dicom(path) and is_nifti(path)):
        return _slice_of(read_volume(path, modality=modality), str(path), slice_index, axis, window)
    if slice_index not in (None, 0):
        raise MedicalImageError(f"{path}: a 2D image has no slice {slice_index}")
    if is_dicom(path):
        return read_dicom(path, frame=frame, window=window)
    return read_raster(path, frame=frame, window=window, pixel_spacing_mm=pixel_spacing_mm)


def _slice_of(volume: Volume, name: str, slice_index: int | None, axis: int | str, window: WindowSpec) -> MedicalImage:
    count = volume.shape_ijk[axis_index(axis)]
    if slice_index is None:
        if count != 1:
            raise MedicalImageError(f"{name}: volume has {count} slices along {axis!r}; pass slice_index=0..{count - 1}")
        slice_index = 0
    return slice_volume(volume, slice_index, axis=axis, window=window)
