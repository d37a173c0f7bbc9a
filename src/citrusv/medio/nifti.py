"""NIfTI volumes (nibabel) in the canonical RAS+ frame."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .errors import MedicalImageError, require
from .types import Volume
from .volume import canonical_volume

__all__ = ["is_nifti", "read_nifti"]

logger = logging.getLogger(__name__)

_NIFTI_MAGICS = (b"n+1\0", b"ni1\0", b"n+2\0", b"ni2\0")
#: Largest volume read (voxels), checked on the header before the data is loaded.
_MAX_VOXELS = 1_000_000_000
_MAX_INFLATED_BYTES = 4 << 30


def is_nifti(path: str | Path | bytes) -> bool:
    """``True`` for ``.nii`` / ``.nii.gz`` names or a NIfTI-1 / NIfTI-2 magic in the header."""
    if isinstance(path, (bytes, bytearray)):
        head = bytes(path[:544])
        if head[:2] == b"\x1f\x8b":
            import zlib

            try:
                head = zlib.decompressobj(31).decompress(bytes(path[:65536]), 544)
            except zlib.error:
                return False
        return head[344:348] in _NIFTI_MAGICS or head[4:8] in _NIFTI_MAGICS
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(544)
    except OSError:
        return False
    if head[:2] == b"\x1f\x8b":
        import gzip

        try:
            with gzip.open(path, "rb") as handle:
                head = handle.read(544)
        except OSError:
            return False
    return head[344:348] in _NIFTI_MAGICS or head[4:8] in _NIFTI_MAGICS


def _load_by_magic(source: Path | bytes):
    """nibabel picks the format from the extension; a renamed file or bytes are read from the bytes."""
    import zlib

    nib = require("nibabel")

    raw = source.read_bytes() if isinstance(source, Path) else bytes(source)
    if raw[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(31)
        raw = inflater.decompress(raw, _MAX_INFLATED_BYTES)
        if inflater.unconsumed_tail:
            raise MedicalImageError(f"gzip data inflates beyond {_MAX_INFLATED_BYTES} bytes (decompression-bomb guard)")
    cls = nib.Nifti2Image if raw[4:8] in (b"n+2\0", b"ni2\0") else nib.Nifti1Image
    return cls.from_bytes(raw)


def read_nifti(path: str | Path | bytes, *, modality: str | None = None) -> Volume:
    """Read a 3-D NIfTI file (a 4-D file with one volume, or a 2-D file as one slice) into the
    closest RAS+ frame. Values are scaled by the header's ``scl_slope`` / ``scl_inter``.

    ``modality="CT"`` marks the values as HU (NIfTI does not say).

    Raises:
        MedicalImageError: missing or unreadable file, more than one volume, NaN / infinite
            values, or a singular affine.
    """
    import zlib

    nib = require("nibabel")
    from nibabel.filebasedimages import ImageFileError
    from nibabel.spatialimages import HeaderDataError

    if isinstance(path, (bytes, bytearray)):
        source: Path | bytes = bytes(path)
        path = Path("<bytes>")
    else:
        path = source = Path(path)
        if not path.is_file():
            raise MedicalImageError(f"no NIfTI file at {path}")
    try:
        if isinstance(source, Path) and path.name.lower().endswith((".nii", ".nii.gz")):
            image = nib.load(str(path))
        else:
            image = _load_by_magic(source)
        shape = tuple(int(n) for n in image.shape)
        if int(np.prod(shape, dtype=np.int64)) > _MAX_VOXELS:
            raise MedicalImageError(f"{path}: {shape} voxels exceed the limit of {_MAX_VOXELS}")
        data = np.asarray(image.dataobj, dtype=np.float32)
    except MedicalImageError:
        raise
    except (ImageFileError, HeaderDataError, OSError, EOFError, ValueError, TypeError, zlib.error) as err:
        raise MedicalImageError(f"{path}: not a readable NIfTI file ({type(err).__name__}: {err})") from None
    if data.ndim == 2:
        data = data[:, :, None]
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise MedicalImageError(f"{path}: expected one 3-D volume, got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        bad = int((~np.isfinite(data)).sum())
        raise MedicalImageError(f"{path}: {bad} voxels are NaN or infinite")
    header = image.header
    codes = (int(header["qform_code"]), int(header["sform_code"])) if "qform_code" in header else (1, 1)
    volume = canonical_volume(
        data,
        image.affine,
        modality=modality,
        value_unit="HU" if modality == "CT" else "stored",
        source=str(path),
        xform_codes=codes,
    )
    logger.debug("read NIfTI volume %s -> %s", data.shape, volume.orientation)
    return volume
