"""Writing masks: PNG, NIfTI on the source geometry, DICOM-SEG (highdicom)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .errors import MedicalImageError, require
from .types import MedicalImage, SliceGeometry, Volume, VolumeGeometry

__all__ = ["save_dicom_seg", "save_mask_nifti", "save_mask_png", "volume_mask_to_dicom_frames"]

logger = logging.getLogger(__name__)


def _binary_or_labels(mask: np.ndarray, what: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype == bool:
        return mask.astype(np.uint8)
    if not np.issubdtype(mask.dtype, np.number) or not np.all(np.isfinite(mask)):
        raise MedicalImageError(f"{what}: mask must be boolean or finite numbers")
    if mask.size and (mask.min() < 0 or mask.max() > 255 or np.any(mask != np.round(mask))):
        raise MedicalImageError(f"{what}: mask values must be integers 0..255 (labels) or booleans")
    return mask.astype(np.uint8)


def save_mask_png(mask_hw: np.ndarray, path: str | Path, *, binary_value: int = 255) -> Path:
    """Write a ``[H, W]`` mask as an 8-bit grayscale PNG: a boolean / 0-1 mask as 0 and
    ``binary_value``; integer labels 0..255 as they are.

    Raises:
        MedicalImageError: not 2-D, or values outside 0..255.
    """
    path = Path(path)
    mask = _binary_or_labels(mask_hw, str(path))
    if mask.ndim != 2:
        raise MedicalImageError(f"{path}: PNG masks must be 2-D [H, W], got shape {mask.shape}")
    if mask.max(initial=0) <= 1:
        mask = mask * np.uint8(binary_value)
    Image.fromarray(mask, mode="L").save(path, format="PNG")
    return path


def save_mask_nifti(
    mask: np.ndarray,
    like: MedicalImage | SliceGeometry | Volume | VolumeGeometry,
    path: str | Path,
    *,
    space: str = "source",
) -> Path:
    """Write a mask as NIfTI on the geometry of the image it was predicted on.

    ``mask`` is ``[H, W]`` on a 2D slice (``like`` is the :class:`MedicalImage` or its
    :class:`SliceGeometry`; the mask is placed back at its slice index, zeros elsewhere) or a
    canonical ``[I, J, K]`` volume (``like`` is the :class:`Volume` or its geometry).
    ``space="source"`` (default) writes in the source file's voxel order with its affine (for a
    NIfTI source: the same affine and grid as the input file); ``"canonical"`` writes the RAS+
    array with the canonical affine. Output is ``uint8``.

    Raises:
        MedicalImageError: an image without geometry (plain PNG / JPEG), a shape that does not
            match, or an unknown ``space``.
    """
    nib = require("nibabel")

    path = Path(path)
    if isinstance(like, MedicalImage):
        if like.geometry is None:
            raise MedicalImageError(
                f"{like.source}: image has no volume geometry (plain image or multi-frame DICOM); cannot write NIfTI"
            )
        like = like.geometry
    if isinstance(like, Volume):
        like = like.geometry
    data = _binary_or_labels(mask, str(path))
    if isinstance(like, SliceGeometry):
        if data.ndim != 2:
            raise MedicalImageError(f"{path}: mask for one slice must be 2-D, got shape {data.shape}")
        grid = like.volume
        data = like.place(data)
    elif isinstance(like, VolumeGeometry):
        grid = like
        if tuple(data.shape) != tuple(grid.shape_ijk):
            raise MedicalImageError(f"{path}: mask has shape {data.shape}, the volume grid is {grid.shape_ijk}")
    else:
        raise MedicalImageError(
            f"like must be a MedicalImage, SliceGeometry, Volume or VolumeGeometry, got {type(like).__name__}"
        )
    if space == "source":
        data, affine = grid.to_source(data), grid.source_affine_ras
    elif space == "canonical":
        affine = grid.affine_ras
    else:
        raise MedicalImageError(f"space must be 'source' or 'canonical', got {space!r}")
    image = nib.Nifti1Image(np.ascontiguousarray(data), affine)
    qcode, scode = grid.source_xform_codes
    image.set_qform(affine, code=int(qcode) or 1)
    image.set_sform(affine, code=int(scode) or 1)
    nib.save(image, str(path))
    return path


def volume_mask_to_dicom_frames(mask_ijk: np.ndarray, volume: Volume) -> np.ndarray:
    """A canonical-grid mask of a DICOM volume → ``[N, rows, cols]`` in each source image's pixel
    layout: in the order of ``volume.source_files`` for a series, in stored frame order for a
    multi-frame object.

    Raises:
        MedicalImageError: the volume is not from DICOM or the shape does not match.
    """
    if not volume.source_files and not volume.source_frames:
        raise MedicalImageError(f"{volume.source}: not a DICOM volume")
    source = volume.geometry.to_source(np.asarray(mask_ijk))  # [cols, rows, sorted planes]
    frames = source.transpose(2, 1, 0)
    if volume.source_frames:
        stored = np.empty_like(frames)
        stored[list(volume.source_frames)] = frames
        frames = stored
    return np.ascontiguousarray(frames)


def save_dicom_seg(
    mask: np.ndarray,
    source_datasets: Sequence[Any],
    path: str | Path,
    *,
    label: str = "finding",
    series_number: int = 300,
    software_version: str = "citrusv",
) -> Path:
    """Write a binary DICOM Segmentation (highdicom) referencing the source images.

    ``mask`` is ``[rows, cols]`` for one source image or ``[N, rows, cols]`` for ``N`` single-frame
    source images in the same order (see :func:`volume_mask_to_dicom_frames`). The SEG keeps the
    source study's patient and study identifiers (so a PACS files it with the study) and gets
    new series / instance UIDs. The segment is labelled ``label`` with SNOMED CT "Tissue" /
    "Lesion" codes and the algorithm type AUTOMATIC.

    Raises:
        MedicalImageError: no source images, a shape that does not match them, or a source that
            highdicom cannot reference (message includes highdicom's reason).
    """
    hd = require("highdicom")
    from pydicom.sr.codedict import codes

    path = Path(path)
    datasets = list(source_datasets)
    if not datasets:
        raise MedicalImageError(f"{path}: no source images for the segmentation")
    array = np.asarray(mask)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[0] != len(datasets):
        raise MedicalImageError(f"{path}: mask shape {np.asarray(mask).shape} does not match {len(datasets)} source image(s)")
    for ds in datasets:
        if (int(ds.Rows), int(ds.Columns)) != tuple(array.shape[1:]):
            raise MedicalImageError(
                f"{path}: mask frames are {array.shape[1:]}, a source image is {(int(ds.Rows), int(ds.Columns))}"
            )
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=label,
        segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Lesion,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="Citrus-V",
            version=software_version,
            family=codes.cid7162.ArtificialIntelligence,
        ),
    )
    try:
        seg = hd.seg.Segmentation(
            source_images=datasets,
            pixel_array=(array != 0),
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=[description],
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="citrusv",
            manufacturer_model_name="Citrus-V",
            software_versions=software_version,
            device_serial_number="none",
            omit_empty_frames=False,
        )
    except (ValueError, TypeError, AttributeError, KeyError) as err:
        raise MedicalImageError(
            f"{path}: cannot build a DICOM-SEG from these source images ({type(err).__name__}: {err})"
        ) from None
    seg.save_as(str(path))
    logger.debug("wrote DICOM-SEG with %d frame(s)", array.shape[0])
    return path
