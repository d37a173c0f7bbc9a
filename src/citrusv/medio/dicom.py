"""DICOM single images (incl. multi-frame) and series (pydicom).

Pixel pipeline for grayscale images, in DICOM order: stored values → modality LUT (rescale
slope / intercept, or a Modality LUT Sequence; HU for CT) → VOI (a VOI LUT Sequence, the file's
window with its ``VOILUTFunction``, or a requested window / preset) → MONOCHROME1 inversion →
``uint8`` display. Colour images (RGB, YBR decoded to RGB, PALETTE COLOR) are shown as stored.

Logs and error messages name files and tags, never patient attributes.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MedicalImageError, check_image_size, require
from .types import MedicalImage, SliceGeometry, Volume, VolumeGeometry
from .volume import WindowSpec, canonical_volume, display_from_values
from .windowing import invert_display, minmax_to_uint8

__all__ = ["dicom_affine_ras", "is_dicom", "read_dicom", "read_dicom_dataset", "read_dicom_series", "read_dicom_volume"]

logger = logging.getLogger(__name__)

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_UID_KEYS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID")


def is_dicom(path: str | Path | bytes) -> bool:
    """``True`` when the file (or bytes) has the DICOM Part 10 preamble (``"DICM"`` at byte 128)."""
    if isinstance(path, (bytes, bytearray)):
        return len(path) >= 132 and bytes(path[128:132]) == b"DICM"
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def read_dicom_dataset(path: str | Path | bytes, *, stop_before_pixels: bool = False):
    """``pydicom.dcmread`` of a file or of bytes, with the module's errors.

    Raises:
        MedicalImageError: missing file or not a DICOM Part 10 file.
    """
    pydicom = require("pydicom")
    from pydicom.errors import InvalidDicomError

    if isinstance(path, (bytes, bytearray)):
        handle: Any = io.BytesIO(bytes(path))
        path = "<bytes>"
    else:
        path = Path(path)
        if not path.is_file():
            raise MedicalImageError(f"no DICOM file at {path}")
        handle = str(path)
    if not is_dicom(handle.getvalue() if isinstance(handle, io.BytesIO) else path):
        raise MedicalImageError(f"{path}: not a DICOM file (no 'DICM' marker at byte 128)")
    try:
        return pydicom.dcmread(handle, stop_before_pixels=stop_before_pixels)
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError) as err:
        raise MedicalImageError(f"{path}: unreadable DICOM file ({type(err).__name__})") from None


def _uids(ds: Any) -> dict[str, str]:
    return {key: str(ds.get(key)) for key in _UID_KEYS if ds.get(key)}


def _frame_groups(ds: Any, frame: int) -> list[Any]:
    """Functional group items that apply to ``frame``: per-frame first, then shared."""
    groups = []
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and frame < len(per_frame):
        groups.append(per_frame[frame])
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        groups.append(shared[0])
    return groups


def _lookup(ds: Any, frame: int, sequence: str, keyword: str) -> Any:
    """A value from the per-frame / shared functional groups, else the top level."""
    for group in _frame_groups(ds, frame):
        items = group.get(sequence)
        if items and keyword in items[0]:
            return items[0].get(keyword)
    return ds.get(keyword)


def _pixel_spacing(ds: Any, frame: int) -> tuple[tuple[float, float] | None, str]:
    spacing = _lookup(ds, frame, "PixelMeasuresSequence", "PixelSpacing")
    source = "PixelSpacing"
    if spacing is None and ds.get("ImagerPixelSpacing") is not None:
        spacing, source = ds.get("ImagerPixelSpacing"), "ImagerPixelSpacing (at the detector)"
    if spacing is None and ds.get("NominalScannedPixelSpacing") is not None:
        spacing, source = ds.get("NominalScannedPixelSpacing"), "NominalScannedPixelSpacing"
    if spacing is None:
        return None, "unknown"
    try:
        row, col = (float(v) for v in spacing)
    except (TypeError, ValueError):
        return None, "unknown"
    if not (row > 0 and col > 0):
        return None, "unknown"
    return (row, col), source


def _decode(ds: Any, path: str) -> np.ndarray:
    if not any(key in ds for key in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise MedicalImageError(f"{path}: no pixel data (SOP class {ds.get('SOPClassUID', 'unknown')})")
    try:
        rows, cols, frames = int(ds.Rows), int(ds.Columns), int(ds.get("NumberOfFrames") or 1)
    except (AttributeError, TypeError, ValueError):
        raise MedicalImageError(f"{path}: pixel data without valid Rows / Columns") from None
    check_image_size(rows, cols, path, frames=frames)
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    try:
        return np.asarray(ds.pixel_array)
    except (RuntimeError, NotImplementedError) as err:
        if syntax is not None and syntax.is_compressed:
            raise MedicalImageError(
                f"{path}: compressed transfer syntax '{syntax.name}' ({syntax}) and no installed decoder can "
                "read it (install pylibjpeg with pylibjpeg-openjpeg / pylibjpeg-libjpeg, or pyjpegls for JPEG-LS)"
            ) from None
        raise MedicalImageError(f"{path}: pixel data cannot be decoded ({type(err).__name__}: {err})") from None
    except (ValueError, AttributeError, KeyError, EOFError) as err:
        raise MedicalImageError(
            f"{path}: pixel data is truncated or inconsistent with the header ({type(err).__name__})"
        ) from None


def _modality_lut(ds: Any, stored: np.ndarray, frame: int) -> tuple[np.ndarray, str]:
    """Stored values → modality values (HU for CT)."""
    from pydicom.pixels import apply_modality_lut

    modality = ds.get("Modality")
    if "ModalityLUTSequence" in ds:
        values = np.asarray(apply_modality_lut(stored, ds), dtype=np.float32)
        return values, "modality LUT"
    slope = _lookup(ds, frame, "PixelValueTransformationSequence", "RescaleSlope")
    intercept = _lookup(ds, frame, "PixelValueTransformationSequence", "RescaleIntercept")
    rescale_type = _lookup(ds, frame, "PixelValueTransformationSequence", "RescaleType")
    values = stored.astype(np.float32)
    if slope is not None or intercept is not None:
        values = values * np.float32(float(slope if slope is not None else 1.0)) + np.float32(float(intercept or 0.0))
    if modality == "CT" and (rescale_type in (None, "", "HU")):
        return values, "HU"
    if slope is not None or intercept is not None:
        return values, str(rescale_type) if rescale_type else "rescaled"
    return values, "stored"


def _file_window(ds: Any, frame: int) -> tuple[tuple[float, float] | None, str]:
    center = _lookup(ds, frame, "FrameVOILUTSequence", "WindowCenter")
    width = _lookup(ds, frame, "FrameVOILUTSequence", "WindowWidth")
    function = _lookup(ds, frame, "FrameVOILUTSequence", "VOILUTFunction") or "LINEAR"
    if center is None or width is None:
        return None, "LINEAR"

    def first(value: Any) -> float:  # multi-valued windows: the first one is the default
        return float(value[0]) if hasattr(value, "__len__") and not isinstance(value, str) else float(value)

    try:
        return (first(center), first(width)), str(function).upper()
    except (TypeError, ValueError, IndexError):
        return None, "LINEAR"


def _voi_lut_display(ds: Any, values: np.ndarray, path: str) -> np.ndarray:
    """Apply the first item of a VOI LUT Sequence (PS3.3 C.11.2.1.1: values below the first
    mapped value take the first entry, above the last the last one) and scale the LUT's output
    range (``2**bits - 1``) to 0..255."""
    item = ds.VOILUTSequence[0]
    try:
        entries, first_mapped, bits = (int(v) for v in item.LUTDescriptor)
        lut = np.asarray(item.LUTData, dtype=np.float64).ravel()
    except (AttributeError, TypeError, ValueError):
        raise MedicalImageError(f"{path}: malformed VOI LUT Sequence (LUTDescriptor / LUTData)") from None
    entries = entries or 65536
    if lut.size < entries or not 1 <= bits <= 16:
        raise MedicalImageError(f"{path}: VOI LUT has {lut.size} entries for a descriptor of {entries} at {bits} bits")
    index = np.clip(np.round(np.nan_to_num(values)).astype(np.int64) - first_mapped, 0, entries - 1)
    out = lut[:entries][index]
    return np.round(np.clip(out / float(2**bits - 1), 0.0, 1.0) * 255.0).astype(np.uint8)


def _affine_ras(orientation: np.ndarray, spacing_rc: np.ndarray, position: np.ndarray, step_lps: np.ndarray) -> np.ndarray:
    """Voxel ``(col, row, slice)`` → RAS+ mm from DICOM LPS geometry."""
    row_dir, col_dir = orientation[:3], orientation[3:]  # direction of increasing column index, of increasing row index
    affine_lps = np.eye(4)
    affine_lps[:3, 0] = row_dir * spacing_rc[1]
    affine_lps[:3, 1] = col_dir * spacing_rc[0]
    affine_lps[:3, 2] = step_lps
    affine_lps[:3, 3] = position
    return _LPS_TO_RAS @ affine_lps


def dicom_affine_ras(ds: Any, *, frame: int = 0) -> np.ndarray | None:
    """``[4, 4]`` affine of one image (or frame): voxel ``(col, row, slice)`` → RAS+ mm, from
    ImageOrientationPatient, ImagePositionPatient and PixelSpacing (top level or functional
    groups); the slice axis is the normal times SpacingBetweenSlices / SliceThickness (or 1 mm).
    ``None`` when any of them is missing.
    """
    orientation = _lookup(ds, frame, "PlaneOrientationSequence", "ImageOrientationPatient")
    position = _lookup(ds, frame, "PlanePositionSequence", "ImagePositionPatient")
    spacing, source = _pixel_spacing(ds, frame)
    if orientation is None or position is None or spacing is None or source != "PixelSpacing":
        return None
    try:
        iop = _floats(orientation, 6, "", "ImageOrientationPatient")
        ipp = _floats(position, 3, "", "ImagePositionPatient")
    except MedicalImageError:
        return None
    normal = np.cross(iop[:3], iop[3:])
    thickness = ds.get("SpacingBetweenSlices") or _lookup(ds, frame, "PixelMeasuresSequence", "SliceThickness") or 1.0
    return _affine_ras(iop, np.asarray(spacing), ipp, normal * float(thickness))


def read_dicom(path: str | Path | bytes, *, frame: int | None = None, window: WindowSpec = "auto") -> MedicalImage:
    """Read one DICOM image (one frame of a multi-frame object) as a :class:`MedicalImage`.

    ``frame`` (0-based) is required when the object has more than one frame. ``window``:
    ``"auto"`` uses the file's VOI LUT Sequence, else its WindowCenter / WindowWidth (with
    ``VOILUTFunction`` LINEAR / LINEAR_EXACT / SIGMOID), else min..max; ``"minmax"``; a preset
    name (``"lung"``, ``"mediastinum"``, ``"bone"``, ``"brain"``, ``"abdomen"``); or
    ``(center, width)`` in modality units (HU for CT).

    Raises:
        MedicalImageError: not DICOM, no pixel data, a compressed transfer syntax without a
            decoder, a frame out of range or not given, an unknown window.
    """
    ds = read_dicom_dataset(path)
    name = "<bytes>" if isinstance(path, (bytes, bytearray)) else str(path)
    pixels = _decode(ds, name)
    frames = int(ds.get("NumberOfFrames") or 1)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    color = photometric not in ("MONOCHROME1", "MONOCHROME2")
    notes: list[str] = []
    if frames > 1:
        if frame is None:
            raise MedicalImageError(f"{name}: multi-frame object with {frames} frames; pass frame=0..{frames - 1}")
        if not 0 <= frame < frames:
            raise MedicalImageError(f"{name}: frame {frame} is out of range (0..{frames - 1})")
        pixels = pixels[frame]
        notes.append(f"frame {frame} of {frames}")
    elif frame not in (None, 0):
        raise MedicalImageError(f"{name}: single-frame object, frame {frame} does not exist")
    frame_index = frame or 0
    spacing, spacing_source = _pixel_spacing(ds, frame_index)
    modality = ds.get("Modality") or None
    if color:
        if photometric == "PALETTE COLOR":
            from pydicom.pixels import apply_color_lut

            pixels = apply_color_lut(pixels, ds)
            notes.append("palette colour applied")
        values = np.asarray(pixels, dtype=np.float32)
        display = pixels.astype(np.uint8) if pixels.dtype == np.uint8 else minmax_to_uint8(values)
        used, unit = None, "stored"
        if not (isinstance(window, str) and window.lower() == "auto"):
            notes.append("window ignored: colour image shown as stored")
    else:
        values, unit = _modality_lut(ds, pixels, frame_index)
        use_lut = isinstance(window, str) and window.lower() == "auto" and "VOILUTSequence" in ds
        if use_lut:
            display, used = _voi_lut_display(ds, values, name), None
            notes.append("VOI LUT Sequence applied")
        else:
            file_window, function = _file_window(ds, frame_index)
            custom = not (isinstance(window, str) and window.lower() in ("auto", "minmax"))
            display, used, note = display_from_values(
                values,
                window,
                modality=modality,
                file_window=file_window,
                voi_function=function if (file_window is not None and not custom) else "LINEAR",
            )
            notes.append(note)
        if photometric == "MONOCHROME1":
            display = invert_display(display)
            notes.append("MONOCHROME1 inverted")
    geometry = None
    affine = dicom_affine_ras(ds) if frames == 1 else None
    if affine is not None:
        rows, cols = values.shape[:2]
        grid = VolumeGeometry(
            shape_ijk=(cols, rows, 1),
            affine_ras=affine,
            source_shape_ijk=(cols, rows, 1),
            source_affine_ras=affine,
            source_to_canonical=np.array([[0, 1], [1, 1], [2, 1]], dtype=float),
        )
        geometry = SliceGeometry(volume=grid, axis=2, index=0, radiological=False)
    logger.debug("read DICOM %s image %s", modality, values.shape)
    return MedicalImage(
        display=display,
        values=values,
        pixel_spacing_mm=spacing,
        spacing_source=spacing_source,
        modality=modality,
        value_unit=unit,
        window=used,
        source=name,
        geometry=geometry,
        uids=_uids(ds),
        notes=tuple(notes),
    )


def _series_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.upper() != "DICOMDIR" and is_dicom(p))
    if not files:
        raise MedicalImageError(f"{folder}: no DICOM files in the folder")
    return files


@dataclass
class _Plane:
    """One 2D plane to stack: a slice file or a frame of a multi-frame object."""

    label: str  # names the file (and frame) in errors
    orientation: np.ndarray  # ImageOrientationPatient [6]
    position: np.ndarray  # ImagePositionPatient [3] (LPS mm)
    spacing_rc: np.ndarray  # PixelSpacing [2]
    matrix: tuple[int, int]
    load: Callable[[], tuple[np.ndarray, str]]  # → (values [rows, cols], unit)
    frame: int = 0


def _floats(values: Any, count: int, label: str, key: str) -> np.ndarray:
    try:
        array = np.asarray([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise MedicalImageError(f"{label}: {key} is not numeric") from None
    if array.shape != (count,) or not np.all(np.isfinite(array)):
        raise MedicalImageError(f"{label}: {key} must hold {count} finite numbers")
    return array


def _stack_planes(planes: list[_Plane], tolerance_mm: float) -> tuple[np.ndarray, np.ndarray, list[_Plane], str]:
    """Check, sort along the slice normal and stack planes → (source array [cols, rows, n],
    affine RAS, sorted planes, value unit)."""
    first = planes[0]
    for plane in planes[1:]:
        for key, value, expected in (
            ("ImageOrientationPatient", plane.orientation, first.orientation),
            ("PixelSpacing", plane.spacing_rc, first.spacing_rc),
            ("matrix", np.asarray(plane.matrix), np.asarray(first.matrix)),
        ):
            if not np.allclose(value, expected, atol=1e-4):
                raise MedicalImageError(
                    f"{plane.label}: {key} {value.tolist()} differs from {Path(first.label).name}'s {expected.tolist()} "
                    "(inconsistent series)"
                )
    normal = np.cross(first.orientation[:3], first.orientation[3:])
    planes = sorted(planes, key=lambda plane: float(plane.position @ normal))
    along = np.asarray([float(plane.position @ normal) for plane in planes])
    gaps = np.diff(along)
    for i, gap in enumerate(gaps):
        if gap < tolerance_mm:
            raise MedicalImageError(
                f"{planes[i + 1].label}: same position as {Path(planes[i].label).name} along the slice normal"
            )
    if gaps.size:
        median = float(np.median(gaps))
        for i, gap in enumerate(gaps):
            if abs(gap - median) > max(tolerance_mm, 0.01 * median):
                raise MedicalImageError(
                    f"{planes[i + 1].label}: slice gap {gap:.3f} mm differs from the series' {median:.3f} mm "
                    "(missing or extra slice?)"
                )
    step = (planes[-1].position - planes[0].position) / (len(planes) - 1) if len(planes) > 1 else normal
    affine = _affine_ras(first.orientation, first.spacing_rc, planes[0].position, step)
    slices, units = [], set()
    for plane in planes:
        values, unit = plane.load()
        slices.append(values.T)  # [cols, rows]
        units.add(unit)
    return np.stack(slices, axis=2), affine, planes, (units.pop() if len(units) == 1 else "mixed")


def read_dicom_series(folder: str | Path, *, series_uid: str | None = None, tolerance_mm: float = 0.01) -> Volume:
    """Read a single-frame DICOM series from a folder into a canonical RAS+ :class:`Volume`.

    Slices are sorted by ImagePositionPatient projected on the slice normal (file names and
    InstanceNumber are ignored). Values go through each slice's rescale (HU for CT).

    Raises:
        MedicalImageError: no DICOM files; several series and no ``series_uid``; a slice without
            geometry or pixels; differing orientation, pixel spacing or matrix size; two slices
            at one position; uneven slice gaps (beyond ``tolerance_mm`` and 1 %). The message
            names the offending file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MedicalImageError(f"no DICOM series folder at {folder}")
    datasets = [(p, read_dicom_dataset(p)) for p in _series_files(folder)]
    series = sorted({str(ds.get("SeriesInstanceUID", "")) for _, ds in datasets})
    if series_uid is None and len(series) > 1:
        raise MedicalImageError(f"{folder}: {len(series)} series in one folder; pass series_uid=")
    if series_uid is not None:
        datasets = [(p, ds) for p, ds in datasets if str(ds.get("SeriesInstanceUID", "")) == series_uid]
        if not datasets:
            raise MedicalImageError(f"{folder}: no file of the requested series")
    planes = []
    for path, ds in datasets:
        if int(ds.get("NumberOfFrames") or 1) != 1:
            raise MedicalImageError(f"{path}: multi-frame object in a series folder; read it with read_dicom_volume()")
        for key in ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing", "Rows", "Columns"):
            if ds.get(key) is None:
                raise MedicalImageError(f"{path}: missing {key}; cannot place the slice in a volume")
        planes.append(
            _Plane(
                label=str(path),
                orientation=_floats(ds.ImageOrientationPatient, 6, str(path), "ImageOrientationPatient"),
                position=_floats(ds.ImagePositionPatient, 3, str(path), "ImagePositionPatient"),
                spacing_rc=_floats(ds.PixelSpacing, 2, str(path), "PixelSpacing"),
                matrix=(int(ds.Rows), int(ds.Columns)),
                load=lambda ds=ds, path=path: _modality_lut(ds, _decode(ds, str(path)), 0),
            )
        )
    source, affine, planes, unit = _stack_planes(planes, tolerance_mm)
    first = datasets[0][1]
    volume = canonical_volume(
        source,
        affine,
        modality=first.get("Modality") or None,
        value_unit=unit,
        source=str(folder),
        source_files=tuple(plane.label for plane in planes),
        uids={k: v for k, v in _uids(first).items() if k != "SOPInstanceUID"},
    )
    logger.debug("read DICOM series: %d slices, %s", len(planes), volume.orientation)
    return volume


def read_dicom_volume(path: str | Path | bytes, *, tolerance_mm: float = 0.01) -> Volume:
    """Read a multi-frame DICOM object whose frames are parallel planes (enhanced CT / MR, or
    classic multi-frame with per-frame PlanePositionSequence) into a canonical RAS+ :class:`Volume`.

    Geometry and rescale come from the per-frame / shared functional groups (or the top level);
    frames are sorted along the slice normal with the same checks as a series.

    Raises:
        MedicalImageError: a frame without position / orientation / spacing, inconsistent or
            duplicate frames, uneven gaps, or what ``read_dicom`` raises for the pixel data.
    """
    ds = read_dicom_dataset(path)
    name = "<bytes>" if isinstance(path, (bytes, bytearray)) else str(path)
    frames = int(ds.get("NumberOfFrames") or 1)
    pixels = _decode(ds, name)
    if frames == 1:
        pixels = pixels[None]
    planes = []
    for n in range(frames):
        label = f"{name} frame {n}"
        orientation = _lookup(ds, n, "PlaneOrientationSequence", "ImageOrientationPatient")
        position = _lookup(ds, n, "PlanePositionSequence", "ImagePositionPatient")
        spacing = _lookup(ds, n, "PixelMeasuresSequence", "PixelSpacing")
        for key, value in (
            ("ImageOrientationPatient", orientation),
            ("ImagePositionPatient", position),
            ("PixelSpacing", spacing),
        ):
            if value is None:
                raise MedicalImageError(f"{label}: missing {key}; cannot place the frame in a volume")
        planes.append(
            _Plane(
                label=label,
                orientation=_floats(orientation, 6, label, "ImageOrientationPatient"),
                position=_floats(position, 3, label, "ImagePositionPatient"),
                spacing_rc=_floats(spacing, 2, label, "PixelSpacing"),
                matrix=(int(ds.Rows), int(ds.Columns)),
                load=lambda n=n: _modality_lut(ds, pixels[n], n),
                frame=n,
            )
        )
    source, affine, planes, unit = _stack_planes(planes, tolerance_mm)
    volume = canonical_volume(
        source,
        affine,
        modality=ds.get("Modality") or None,
        value_unit=unit,
        source=name,
        source_frames=tuple(plane.frame for plane in planes),
        uids=_uids(ds),
    )
    logger.debug("read DICOM multi-frame volume: %d frames, %s", frames, volume.orientation)
    return volume
