"""Small synthetic DICOM objects with known geometry, for tests, demos and benchmarks.

Nothing here is real patient data; identifiers are fixed placeholders.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["synthetic_ct_dataset", "write_ct_series"]

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def synthetic_ct_dataset(
    stored: np.ndarray,
    *,
    position_lps: Sequence[float] = (0.0, 0.0, 0.0),
    orientation: Sequence[float] = (1, 0, 0, 0, 1, 0),
    pixel_spacing_mm: tuple[float, float] = (0.5, 0.5),
    slice_thickness_mm: float = 2.0,
    rescale: tuple[float, float] = (1.0, -1024.0),
    study_uid: str | None = None,
    series_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    instance_number: int = 1,
    photometric: str = "MONOCHROME2",
):
    """A single-frame CT Image Storage dataset (uint16 stored values, explicit VR little endian)
    with the attributes highdicom needs to reference it."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    stored = np.asarray(stored, dtype=np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.FrameOfReferenceUID = frame_of_reference_uid or generate_uid()
    ds.PatientName = "Synthetic^Phantom"
    ds.PatientID = "SYNTH-0001"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyDate = "20260101"
    ds.StudyTime = "120000"
    ds.StudyID = "1"
    ds.AccessionNumber = "ACC0001"
    ds.ReferringPhysicianName = ""
    ds.Modality = "CT"
    ds.Manufacturer = "citrusv-synthetic"
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance_number
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ImagePositionPatient = [float(v) for v in position_lps]
    ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.PixelSpacing = [float(v) for v in pixel_spacing_mm]
    ds.SliceThickness = float(slice_thickness_mm)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = (int(n) for n in stored.shape)
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleSlope = float(rescale[0])
    ds.RescaleIntercept = float(rescale[1])
    ds.RescaleType = "HU"
    ds.PixelData = stored.tobytes()
    return ds


def write_ct_series(
    folder: str | Path,
    stored_slices: Sequence[np.ndarray],
    *,
    z_positions_mm: Sequence[float],
    pixel_spacing_mm: tuple[float, float] = (0.5, 0.5),
    orientation: Sequence[float] = (1, 0, 0, 0, 1, 0),
    origin_lps: Sequence[float] = (0.0, 0.0, 0.0),
    file_names: Sequence[str] | None = None,
) -> list[Path]:
    """Write one CT series: slice ``n`` at ``origin + z_positions_mm[n] · normal`` (one study,
    one series, one frame of reference). Returns the paths in the order of ``stored_slices``."""
    from pydicom.uid import generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    study, series, frame_of_reference = generate_uid(), generate_uid(), generate_uid()
    iop = np.asarray(orientation, dtype=np.float64)
    normal = np.cross(iop[:3], iop[3:])
    gaps = np.diff(sorted(z_positions_mm))
    thickness = float(np.median(gaps)) if len(gaps) else 1.0
    paths = []
    for n, (stored, z) in enumerate(zip(stored_slices, z_positions_mm)):
        ds = synthetic_ct_dataset(
            stored,
            position_lps=np.asarray(origin_lps, dtype=np.float64) + float(z) * normal,
            orientation=orientation,
            pixel_spacing_mm=pixel_spacing_mm,
            slice_thickness_mm=thickness,
            study_uid=study,
            series_uid=series,
            frame_of_reference_uid=frame_of_reference,
            instance_number=n + 1,
        )
        path = folder / (file_names[n] if file_names else f"slice_{n:03d}.dcm")
        ds.save_as(str(path), enforce_file_format=True)
        paths.append(path)
    return paths
