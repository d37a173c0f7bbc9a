"""Medical image IO: DICOM (single files, multi-frame, series), NIfTI and plain images with their
spacing and orientation; masks written as PNG, NIfTI on the source geometry and DICOM-SEG;
physical measurements.

Requires ``pydicom`` and ``nibabel`` (DICOM-SEG also ``highdicom``); they are imported where used.
"""

from __future__ import annotations

from .dicom import dicom_affine_ras, is_dicom, read_dicom, read_dicom_dataset, read_dicom_series, read_dicom_volume
from .errors import MedicalImageError
from .measure import RecistMeasurement, mask_area_mm2, mask_volume_ml, recist_diameters_mm
from .nifti import is_nifti, read_nifti
from .raster import read_raster
from .read import read_medical_image, read_volume
from .types import AXIS_NAMES, MedicalImage, SliceGeometry, Volume, VolumeGeometry
from .volume import canonical_volume, slice_volume
from .windowing import CT_WINDOW_PRESETS, invert_display, minmax_to_uint8, resolve_window, window
from .writers import save_dicom_seg, save_mask_nifti, save_mask_png, volume_mask_to_dicom_frames

__all__ = [
    "AXIS_NAMES",
    "CT_WINDOW_PRESETS",
    "MedicalImage",
    "MedicalImageError",
    "RecistMeasurement",
    "SliceGeometry",
    "Volume",
    "VolumeGeometry",
    "canonical_volume",
    "dicom_affine_ras",
    "invert_display",
    "is_dicom",
    "is_nifti",
    "mask_area_mm2",
    "mask_volume_ml",
    "minmax_to_uint8",
    "read_dicom",
    "read_dicom_dataset",
    "read_dicom_series",
    "read_dicom_volume",
    "read_medical_image",
    "read_nifti",
    "read_raster",
    "read_volume",
    "recist_diameters_mm",
    "resolve_window",
    "save_dicom_seg",
    "save_mask_nifti",
    "save_mask_png",
    "slice_volume",
    "volume_mask_to_dicom_frames",
    "window",
]
