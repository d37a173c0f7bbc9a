"""Reading from bytes (uploads to the server): DICOM, NIfTI (plain and gzipped), PNG; size guards."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pydicom = pytest.importorskip("pydicom")
nib = pytest.importorskip("nibabel")

from pydicom.data import get_testdata_file

from citrusv.medio import MedicalImageError, is_dicom, is_nifti, read_medical_image
from citrusv.medio.synthetic import synthetic_ct_dataset


def test_dicom_bytes_match_the_file():
    path = get_testdata_file("CT_small.dcm")
    data = Path(path).read_bytes()
    assert is_dicom(data)
    from_bytes = read_medical_image(data, window="mediastinum")
    from_file = read_medical_image(path, window="mediastinum")
    np.testing.assert_array_equal(from_bytes.display, from_file.display)
    assert from_bytes.pixel_spacing_mm == from_file.pixel_spacing_mm
    assert from_bytes.source == "<bytes>"


@pytest.mark.parametrize("compress", [False, True])
def test_nifti_bytes(compress):
    data = np.arange(10 * 12 * 3, dtype=np.float32).reshape(10, 12, 3)
    affine = np.diag([-0.5, -0.5, 2.0, 1.0])
    raw = nib.Nifti1Image(data, affine).to_bytes()
    payload = gzip.compress(raw) if compress else raw
    assert is_nifti(payload)
    image = read_medical_image(payload, slice_index=1)
    assert image.size_hw == (12, 10) and image.pixel_spacing_mm == (0.5, 0.5)
    with pytest.raises(MedicalImageError, match="<bytes>: volume has 3 slices"):
        read_medical_image(payload)


def test_png_bytes():
    buffer = io.BytesIO()
    Image.fromarray(np.full((16, 16), 40000, np.uint16)).save(buffer, format="PNG")
    image = read_medical_image(buffer.getvalue(), pixel_spacing_mm=(1.0, 1.0))
    assert float(image.values[0, 0]) == 40000.0
    with pytest.raises(MedicalImageError, match="<bytes>: not a readable image file"):
        read_medical_image(b"hello world" * 20)


def test_dicom_size_guard_before_decoding():
    ds = synthetic_ct_dataset(np.zeros((8, 8), np.uint16))
    ds.Rows, ds.Columns = 60000, 60000  # header claims 3.6e9 pixels; data is 128 bytes
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with pytest.raises(MedicalImageError, match="exceeds the limit"):
        read_medical_image(buffer.getvalue())
