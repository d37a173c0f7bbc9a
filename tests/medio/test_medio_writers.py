"""Mask writers: PNG and DICOM-SEG (highdicom) keeping the source study's identifiers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("nibabel")

from citrusv.medio import (
    MedicalImageError,
    read_dicom_series,
    read_medical_image,
    save_dicom_seg,
    save_mask_nifti,
    save_mask_png,
    slice_volume,
    volume_mask_to_dicom_frames,
)
from citrusv.medio.synthetic import write_ct_series


@pytest.mark.parametrize(
    "mask, expected",
    [
        (np.array([[True, False], [False, True]]), [[255, 0], [0, 255]]),
        (np.array([[1, 0], [0, 1]]), [[255, 0], [0, 255]]),
        (np.array([[0, 2], [3, 0]]), [[0, 2], [3, 0]]),  # labels kept
    ],
)
def test_save_mask_png(tmp_path, mask, expected):
    path = save_mask_png(mask, tmp_path / "m.png")
    read = Image.open(path)
    assert read.mode == "L"
    assert np.asarray(read).tolist() == expected


@pytest.mark.parametrize(
    "mask, message",
    [(np.zeros((2, 2, 2)), "must be 2-D"), (np.array([[0.5, 0]]), "integers 0..255"), (np.array([[300, 0]]), "integers 0..255")],
)
def test_save_mask_png_errors(tmp_path, mask, message):
    with pytest.raises(MedicalImageError, match=message):
        save_mask_png(mask, tmp_path / "m.png")


def test_plain_image_has_no_geometry_for_nifti(tmp_path):
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "p.png")
    image = read_medical_image(tmp_path / "p.png")
    with pytest.raises(MedicalImageError, match="no volume geometry"):
        save_mask_nifti(np.zeros((10, 10)), image, tmp_path / "m.nii")


@pytest.fixture
def series(tmp_path):
    slices = [np.full((16, 20), 1024, np.uint16) for _ in range(3)]
    write_ct_series(tmp_path / "s", slices, z_positions_mm=[5.0, 0.0, 10.0], file_names=["x.dcm", "y.dcm", "z.dcm"])
    return read_dicom_series(tmp_path / "s")


def test_dicom_seg_round_trip(tmp_path, series):
    highdicom = pytest.importorskip("highdicom")
    mask = np.zeros(series.shape_ijk, bool)
    mask[2:6, 3:5, 1] = True  # canonical slice 1 = z 5 mm = x.dcm
    frames = volume_mask_to_dicom_frames(mask, series)
    assert frames.shape == (3, 16, 20)
    assert frames.sum(axis=(1, 2)).tolist() == [0, 8, 0]
    sources = [pydicom.dcmread(p) for p in series.source_files]
    assert [p.split("/")[-1] for p in series.source_files] == ["y.dcm", "x.dcm", "z.dcm"]
    out = save_dicom_seg(frames, sources, tmp_path / "seg.dcm", label="nodule")

    seg = highdicom.seg.segread(str(out))
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID
    assert seg.PatientID == sources[0].PatientID
    assert seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    assert seg.SeriesInstanceUID != sources[0].SeriesInstanceUID
    assert seg.get_segment_description(1).SegmentLabel == "nodule"
    for source, expected in zip(sources, frames):
        got = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=[source.SOPInstanceUID], segment_numbers=[1], assert_missing_frames_are_empty=True
        )
        np.testing.assert_array_equal(got[0, :, :, 0] != 0, expected)


def test_dicom_seg_single_image(tmp_path, series):
    pytest.importorskip("highdicom")
    source = pydicom.dcmread(series.source_files[0])
    mask = np.zeros((16, 20), np.uint8)
    mask[1:3, 1:3] = 1
    assert save_dicom_seg(mask, [source], tmp_path / "one.dcm").is_file()


def test_dicom_seg_errors(tmp_path, series):
    pytest.importorskip("highdicom")
    sources = [pydicom.dcmread(p) for p in series.source_files]
    with pytest.raises(MedicalImageError, match="does not match 3 source image"):
        save_dicom_seg(np.zeros((2, 16, 20)), sources, tmp_path / "s.dcm")
    with pytest.raises(MedicalImageError, match="mask frames are"):
        save_dicom_seg(np.zeros((3, 10, 20)), sources, tmp_path / "s.dcm")
    with pytest.raises(MedicalImageError, match="no source images"):
        save_dicom_seg(np.zeros((16, 20)), [], tmp_path / "s.dcm")


def test_dicom_seg_from_a_slice_mask(tmp_path, series):
    """The usual serving path: a mask predicted on one displayed slice of a series."""
    highdicom = pytest.importorskip("highdicom")
    image = slice_volume(series, 2)  # z = 10 mm: z.dcm
    mask_hw = np.zeros(image.size_hw, bool)
    mask_hw[4:7, 10:12] = True  # rows 4..6, cols 10..11 of the displayed slice
    frames = volume_mask_to_dicom_frames(image.geometry.place(mask_hw), series)
    assert frames.sum(axis=(1, 2)).tolist() == [0, 0, 6]
    np.testing.assert_array_equal(frames[2], mask_hw)  # axial LPS series: display = stored layout
    sources = [pydicom.dcmread(p) for p in series.source_files]
    seg = highdicom.seg.segread(str(save_dicom_seg(frames, sources, tmp_path / "seg.dcm")))
    assert seg.StudyInstanceUID == sources[2].StudyInstanceUID


def test_dicom_seg_on_a_real_ct_file(tmp_path):
    pytest.importorskip("highdicom")
    from pydicom.data import get_testdata_file

    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    mask = np.zeros((128, 128), bool)
    mask[40:60, 50:70] = True
    out = save_dicom_seg(mask, [source], tmp_path / "seg.dcm")
    seg = pydicom.dcmread(out)
    assert seg.Modality == "SEG"
    assert seg.StudyInstanceUID == source.StudyInstanceUID and seg.PatientID == source.PatientID
