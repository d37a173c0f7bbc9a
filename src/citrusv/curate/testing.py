"""Synthetic DICOM series for tests and benchmarks (no real patient data).

``write_series`` writes a CT series with chosen geometry, identifying attributes filled with
recognisable fake values (so tests can check none survives), one private block and random pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FAKE_PHI", "write_series"]

#: Identifying values written into every synthetic file (keyword → value).
FAKE_PHI: dict[str, Any] = {
    "PatientName": "Doe^Jane", "PatientBirthDate": "19600102", "PatientSex": "F", "PatientAge": "064Y",
    "PatientAddress": "1 Main Street, Springfield", "OtherPatientIDs": "OTHER-77", "AccessionNumber": "ACC123456",
    "InstitutionName": "Springfield General", "InstitutionAddress": "2 Hospital Road", "ReferringPhysicianName": "House^Greg",
    "PerformingPhysicianName": "Grey^Meredith", "OperatorsName": "Tech^Tom", "StationName": "CT-ROOM-3",
    "StudyDescription": "CT CHEST Jane Doe follow-up", "SeriesDescription": "AXIAL 2.5 Jane", "StudyID": "S-2024-17",
    "DeviceSerialNumber": "SN-998877", "ProtocolName": "Doe chest protocol", "ImageComments": "call Jane at 555-0100",
    "AdditionalPatientHistory": "smoker", "PatientWeight": "70", "PatientSize": "1.7", "EthnicGroup": "X",
    "RequestingPhysician": "Who^Doctor", "InstitutionalDepartmentName": "Radiology 4",
}


def write_series(folder: str | Path, *, patient_id: str = "PAT-001", study_uid: str | None = None,
                 series_uid: str | None = None, num_slices: int = 4, spacing_mm: float = 2.5,
                 thickness_mm: float | None = None, gaps_mm: list[float] | None = None,
                 orientation: tuple[float, ...] = (1, 0, 0, 0, 1, 0), tilt_mm: float = 0.0,
                 pixel_spacing: tuple[float, float] = (0.7, 0.7), size: int = 32, study_date: str = "20240315",
                 burned_in: str | None = None, seed: int = 0) -> list[Path]:
    """Write one CT series (``num_slices`` files) into ``folder``; returns the paths.

    ``gaps_mm`` overrides uniform ``spacing_mm``; ``tilt_mm`` shifts each slice along the row
    direction (positions off the normal); ``orientation`` is written as given (may be non-orthonormal).
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    frame_uid = generate_uid()
    gaps = gaps_mm if gaps_mm is not None else [spacing_mm] * (num_slices - 1)
    row_dir, col_dir = np.array(orientation[:3], float), np.array(orientation[3:], float)
    normal = np.cross(row_dir, col_dir)
    normal = normal / (np.linalg.norm(normal) or 1.0)
    positions = np.concatenate([[0.0], np.cumsum(gaps)])
    paths = []
    for index, z in enumerate(positions):
        meta = FileMetaDataset()
        sop_uid = generate_uid()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop_uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.PatientID = patient_id
        for keyword, value in FAKE_PHI.items():
            setattr(ds, keyword, value)
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = study_date
        ds.StudyTime = ds.SeriesTime = "101500"
        ds.Modality, ds.BodyPartExamined = "CT", "CHEST"
        ds.InstanceNumber = index + 1
        ds.ImageOrientationPatient = [float(v) for v in orientation]
        ds.ImagePositionPatient = [float(v) for v in (normal * z + row_dir * tilt_mm * index - np.array([100, 100, 0]))]
        ds.PixelSpacing = [float(v) for v in pixel_spacing]
        ds.SliceThickness = thickness_mm if thickness_mm is not None else spacing_mm
        if burned_in is not None:
            ds.BurnedInAnnotation = burned_in
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = rng.integers(0, 4096, size=(size, size), dtype=np.uint16).tobytes()
        block = ds.private_block(0x0011, "CITRUSV TEST", create=True)
        block.add_new(0x01, "LO", f"secret {patient_id}")
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = CTImageStorage, generate_uid()
        ds.ReferencedImageSequence = [ref]
        path = folder / f"slice{index:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
