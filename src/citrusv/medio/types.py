"""Data carried by ``citrusv.medio``: 2D images with their spacing, volumes with their geometry.

Coordinate conventions:

* A :class:`Volume` array is indexed ``[i, j, k]`` in a canonical frame: for NIfTI and DICOM
  series the closest RAS+ frame (``i`` → patient right, ``j`` → anterior, ``k`` → superior;
  axes are permuted / flipped, never resampled, so an oblique acquisition stays oblique).
  ``affine_ras`` maps ``(i, j, k, 1)`` to RAS+ millimetres.
* A 2D slice of a canonical volume is shown in radiological convention: for the fixed axis,
  the two remaining axes ``(a, b)`` become ``display[r, c] = plane[na - 1 - c, nb - 1 - r]``
  (axial: anterior at the top, patient right on the image left; coronal: superior at the top;
  sagittal: superior at the top, anterior on the left). For the usual axial DICOM series this
  is exactly the stored pixel layout.
* 2D arrays are ``[H, W]`` = ``[rows, cols]``; spacings of 2D images are ``(row, col)`` in mm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import MedicalImageError

__all__ = ["AXIS_NAMES", "MedicalImage", "SliceGeometry", "Volume", "VolumeGeometry", "axis_index"]

#: Plane names → the fixed axis of a canonical RAS array.
AXIS_NAMES: dict[str, int] = {"sagittal": 0, "coronal": 1, "axial": 2}


def axis_index(axis: int | str) -> int:
    """``"axial" | "coronal" | "sagittal" | 0 | 1 | 2`` → the fixed array axis.

    Raises:
        MedicalImageError: anything else.
    """
    if isinstance(axis, str):
        if axis.lower() not in AXIS_NAMES:
            raise MedicalImageError(f"unknown slice axis {axis!r}; expected one of {sorted(AXIS_NAMES)} or 0 / 1 / 2")
        return AXIS_NAMES[axis.lower()]
    if axis not in (0, 1, 2):
        raise MedicalImageError(f"slice axis must be 0, 1 or 2, got {axis!r}")
    return int(axis)


@dataclass(frozen=True, eq=False)
class VolumeGeometry:
    """The voxel grid of a volume and how it relates to the grid stored in its source file.

    Attributes:
        shape_ijk: shape of the canonical array.
        affine_ras: ``[4, 4]`` canonical voxel index → RAS+ mm.
        source_shape_ijk: shape of the array as stored in the source (NIfTI voxel order; for
            DICOM: ``(cols, rows, slices)`` with slices in the sorted series order).
        source_affine_ras: ``[4, 4]`` source voxel index → RAS+ mm (the NIfTI file's affine).
        source_to_canonical: nibabel orientation array ``[3, 2]`` taking the source array to the
            canonical one.
        source_xform_codes: ``(qform_code, sform_code)`` to write back (1 = scanner).
    """

    shape_ijk: tuple[int, int, int]
    affine_ras: np.ndarray = field(repr=False)
    source_shape_ijk: tuple[int, int, int]
    source_affine_ras: np.ndarray = field(repr=False)
    source_to_canonical: np.ndarray = field(repr=False)
    source_xform_codes: tuple[int, int] = (1, 1)

    @property
    def spacing_mm_ijk(self) -> tuple[float, float, float]:
        """Voxel size along the canonical array axes, in mm."""
        return tuple(float(v) for v in np.sqrt((self.affine_ras[:3, :3] ** 2).sum(axis=0)))  # type: ignore[return-value]

    @property
    def orientation(self) -> str:
        """Axis codes of the canonical array, e.g. ``"RAS"``."""
        from .errors import require

        return "".join(require("nibabel").aff2axcodes(self.affine_ras))

    def to_source(self, array_ijk: np.ndarray) -> np.ndarray:
        """A canonical-grid array → the same data in the source file's voxel order.

        Raises:
            MedicalImageError: shape differs from ``shape_ijk``.
        """
        array_ijk = np.asarray(array_ijk)
        if tuple(array_ijk.shape) != tuple(self.shape_ijk):
            raise MedicalImageError(f"array has shape {array_ijk.shape}, the volume grid is {self.shape_ijk}")
        back = np.zeros_like(self.source_to_canonical)
        for axis, (target, flip) in enumerate(self.source_to_canonical):
            back[int(target)] = (axis, flip)
        from .errors import require

        return np.ascontiguousarray(require("nibabel").orientations.apply_orientation(array_ijk, back))


@dataclass(frozen=True, eq=False)
class SliceGeometry:
    """Where a 2D image lies in a volume grid, so a mask drawn on it can be put back.

    Attributes:
        volume: the grid of the whole volume.
        axis: the fixed canonical axis (0 sagittal, 1 coronal, 2 axial for RAS volumes).
        index: the slice index along ``axis``.
        radiological: ``True`` when the display is ``plane.T`` flipped on both axes (volume
            slices, see the module docstring); ``False`` when it is ``plane.T`` (a single DICOM
            image in its stored layout).
    """

    volume: VolumeGeometry
    axis: int
    index: int
    radiological: bool = True

    @property
    def display_shape_hw(self) -> tuple[int, int]:
        a, b = (n for ax, n in enumerate(self.volume.shape_ijk) if ax != self.axis)
        return b, a

    def plane_to_display(self, plane_ab: np.ndarray) -> np.ndarray:
        display = np.asarray(plane_ab).T
        return np.ascontiguousarray(display[::-1, ::-1] if self.radiological else display)

    def display_to_plane(self, display_hw: np.ndarray) -> np.ndarray:
        display_hw = np.asarray(display_hw)
        if self.radiological:
            display_hw = display_hw[::-1, ::-1]
        return np.ascontiguousarray(display_hw.T)

    def place(self, mask_hw: np.ndarray) -> np.ndarray:
        """A ``[H, W]`` mask on this slice → a canonical-grid volume (zeros elsewhere).

        Raises:
            MedicalImageError: the mask shape is not the slice's display shape.
        """
        mask_hw = np.asarray(mask_hw)
        if tuple(mask_hw.shape) != self.display_shape_hw:
            raise MedicalImageError(f"mask has shape {mask_hw.shape}, the slice is {self.display_shape_hw} (rows, cols)")
        out = np.zeros(self.volume.shape_ijk, dtype=mask_hw.dtype)
        index: list[Any] = [slice(None)] * 3
        index[self.axis] = self.index
        out[tuple(index)] = self.display_to_plane(mask_hw)
        return out


@dataclass(frozen=True, eq=False)
class MedicalImage:
    """One 2D medical image, ready for the model and for physical measurements.

    Attributes:
        display: ``uint8`` ``[H, W]`` (grayscale) or ``[H, W, 3]`` (RGB): what the model sees,
            after rescale, windowing and MONOCHROME1 inversion. ``to_loaded_image()`` passes it
            through ``citrusv.processing.load_image``.
        values: raw values ``[H, W]`` float32 (HU for CT, rescaled values for other DICOM,
            stored values for plain images) or ``[H, W, 3]`` for colour images.
        pixel_spacing_mm: ``(row, col)`` spacing in mm, or ``None`` when the source does not
            say (plain PNG / JPEG / TIFF without an explicit ``pixel_spacing_mm``).
        spacing_source: where the spacing came from (``"PixelSpacing"``,
            ``"ImagerPixelSpacing"``, ``"NIfTI affine"``, ``"given"``, ``"unknown"``, ...).
        modality: DICOM modality (``"CT"``, ``"MR"``, ...) or ``None``.
        value_unit: unit of ``values`` (``"HU"``, ``"rescaled"``, ``"stored"``, ...).
        window: ``(center, width)`` applied to make ``display``; ``None`` for min..max or LUTs.
        source: the file the image came from (a path, never header content).
        geometry: where the image lies in a volume grid (volume slices, DICOM with geometry),
            needed to write masks back as NIfTI; ``None`` otherwise.
        uids: ``StudyInstanceUID``, ``SeriesInstanceUID``, ``SOPInstanceUID`` of a DICOM source
            (for DICOM-SEG references; never logged).
        notes: what the reader did (frame chosen, inversion, window used, ...).
    """

    display: np.ndarray = field(repr=False)
    values: np.ndarray = field(repr=False)
    pixel_spacing_mm: tuple[float, float] | None
    spacing_source: str
    modality: str | None = None
    value_unit: str = "stored"
    window: tuple[float, float] | None = None
    source: str = "<array>"
    geometry: SliceGeometry | None = field(default=None, repr=False)
    uids: dict[str, str] = field(default_factory=dict, repr=False)
    notes: tuple[str, ...] = ()

    @property
    def size_hw(self) -> tuple[int, int]:
        return int(self.display.shape[0]), int(self.display.shape[1])

    def to_loaded_image(self):
        """The display image through ``citrusv.processing.load_image`` (validation + 8-bit RGB),
        the one path by which images reach the model."""
        from citrusv.processing.image import load_image

        return load_image(self.display)


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D image in a canonical frame.

    Attributes:
        values: ``[I, J, K]`` float32 in the canonical frame (HU for CT).
        geometry: grid, affine and the way back to the source file's voxel order.
        modality: ``"CT"``, ``"MR"``, ... or ``None`` when unknown (NIfTI).
        value_unit: ``"HU"`` for rescaled CT, else ``"rescaled"`` / ``"stored"``.
        source: path of the file or folder.
        source_files: DICOM series: the slice files in sorted order (``k`` of the source grid).
        source_frames: multi-frame DICOM: the frame numbers (0-based) in sorted order.
        uids: study / series UIDs of a DICOM series.
    """

    values: np.ndarray = field(repr=False)
    geometry: VolumeGeometry
    modality: str | None = None
    value_unit: str = "stored"
    source: str = "<array>"
    source_files: tuple[str, ...] = field(default=(), repr=False)
    source_frames: tuple[int, ...] = field(default=(), repr=False)
    uids: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def affine_ras(self) -> np.ndarray:
        return self.geometry.affine_ras

    @property
    def spacing_mm_ijk(self) -> tuple[float, float, float]:
        return self.geometry.spacing_mm_ijk

    @property
    def orientation(self) -> str:
        return self.geometry.orientation

    @property
    def shape_ijk(self) -> tuple[int, int, int]:
        return self.geometry.shape_ijk
