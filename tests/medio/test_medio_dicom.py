"""DICOM reading: pydicom's bundled files plus synthetic objects with known values and geometry."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("nibabel")

from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from citrusv.medio import (
    MedicalImageError,
    is_dicom,
    read_dicom,
    read_dicom_series,
    read_medical_image,
    slice_volume,
    window,
)
from citrusv.medio.synthetic import synthetic_ct_dataset, write_ct_series

PATIENT_STRINGS = ("Synthetic", "Phantom", "SYNTH-0001", "ACC0001", "CompressedSamples")


def _save(ds, path: Path) -> Path:
    ds.save_as(str(path), enforce_file_format=True)
    return path


# ----------------------------------------------------------------------------- single files
def test_ct_small_hu_spacing_and_geometry():
    path = get_testdata_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    image = read_medical_image(path)
    expected_hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert image.modality == "CT" and image.value_unit == "HU"
    np.testing.assert_allclose(image.values, expected_hu)
    assert image.pixel_spacing_mm == (0.661468, 0.661468)
    assert image.spacing_source == "PixelSpacing"
    assert image.size_hw == (128, 128)
    assert image.uids["SOPInstanceUID"] == ds.SOPInstanceUID
    # The affine puts pixel (row 0, col 0) at ImagePositionPatient (LPS → RAS flips x and y).
    affine = image.geometry.volume.affine_ras
    ipp = np.asarray([float(v) for v in ds.ImagePositionPatient])
    np.testing.assert_allclose(affine[:3, 3], ipp * [-1, -1, 1])
    loaded = image.to_loaded_image()
    assert loaded.image.mode == "RGB" and loaded.size_hw == (128, 128)


@pytest.mark.parametrize("preset, center, width", [("lung", -600, 1500), ("bone", 400, 1800), ("brain", 40, 80)])
def test_ct_presets(preset, center, width):
    image = read_medical_image(get_testdata_file("CT_small.dcm"), window=preset)
    assert image.window == (center, width)
    np.testing.assert_array_equal(image.display, window(image.values, center, width))


def test_file_window_is_used_by_auto():
    path = get_testdata_file("MR_small.dcm")
    ds = pydicom.dcmread(path)
    image = read_dicom(path)
    assert image.window == (float(ds.WindowCenter), float(ds.WindowWidth))
    np.testing.assert_array_equal(image.display, window(image.values, *image.window))
    assert read_dicom(path, window="minmax").window is None


def test_file_window_sigmoid(tmp_path):
    stored = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 2000
    ds = synthetic_ct_dataset(stored)
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = 0.0, 500.0, "SIGMOID"
    image = read_dicom(_save(ds, tmp_path / "s.dcm"))
    np.testing.assert_array_equal(image.display, window(image.values, 0, 500, function="SIGMOID"))
    # an explicit window replaces the file's window and function
    explicit = read_dicom(tmp_path / "s.dcm", window=(0, 500))
    np.testing.assert_array_equal(explicit.display, window(image.values, 0, 500))


def test_monochrome1_is_inverted(tmp_path):
    stored = np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 3
    mono2 = read_dicom(_save(synthetic_ct_dataset(stored), tmp_path / "m2.dcm"), window="abdomen")
    ds = synthetic_ct_dataset(stored, photometric="MONOCHROME1")
    mono1 = read_dicom(_save(ds, tmp_path / "m1.dcm"), window="abdomen")
    np.testing.assert_array_equal(mono1.values, mono2.values)  # raw values untouched
    np.testing.assert_array_equal(mono1.display, 255 - mono2.display)
    assert "MONOCHROME1 inverted" in mono1.notes


def test_voi_lut_sequence(tmp_path):
    stored = np.tile(np.arange(0, 320, 10, dtype=np.uint16), (16, 1))  # 0..310
    ds = synthetic_ct_dataset(stored, rescale=(1.0, 0.0))
    ds.Modality = "MR"
    item = Dataset()
    item.add_new(0x00283002, "US", [256, 0, 8])  # LUTDescriptor: 256 entries from 0, 8 bits
    item.add_new(0x00283006, "US", list(range(255, -1, -1)))  # LUTData: inverted ramp
    ds.VOILUTSequence = [item]
    ds.WindowCenter, ds.WindowWidth = 100.0, 50.0  # ignored: the LUT wins under "auto"
    image = read_dicom(_save(ds, tmp_path / "lut.dcm"))
    expected = np.where(stored > 255, 0, 255 - stored.astype(np.int64))
    np.testing.assert_array_equal(image.display, expected)
    assert "VOI LUT Sequence applied" in image.notes
    assert read_dicom(tmp_path / "lut.dcm", window=(100, 50)).window == (100.0, 50.0)


def test_multiframe_frame_selection():
    path = get_testdata_file("rtdose.dcm")
    ds = pydicom.dcmread(path)
    image = read_medical_image(path, frame=3)
    np.testing.assert_allclose(image.values, ds.pixel_array[3])
    assert image.pixel_spacing_mm == (10.0, 10.0)
    assert "frame 3 of 15" in image.notes
    with pytest.raises(MedicalImageError, match="15 frames; pass frame=0..14"):
        read_medical_image(path)
    with pytest.raises(MedicalImageError, match="frame 15 is out of range"):
        read_medical_image(path, frame=15)


def test_functional_groups_spacing_and_rescale(tmp_path):
    frames = np.stack([np.full((12, 12), 100, np.uint16), np.full((12, 12), 200, np.uint16)])
    ds = synthetic_ct_dataset(frames[0])
    for key in ("PixelSpacing", "RescaleSlope", "RescaleIntercept", "RescaleType"):
        delattr(ds, key)
    ds.NumberOfFrames = 2
    ds.PixelData = frames.tobytes()
    measures, shared = Dataset(), Dataset()
    measures.PixelSpacing = [0.7, 0.8]
    shared.PixelMeasuresSequence = [measures]
    ds.SharedFunctionalGroupsSequence = [shared]
    per_frame = []
    for slope in (1.0, 2.0):
        transform, group = Dataset(), Dataset()
        transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = slope, -1000.0, "HU"
        group.PixelValueTransformationSequence = [transform]
        per_frame.append(group)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    image = read_dicom(_save(ds, tmp_path / "mf.dcm"), frame=1)
    assert image.pixel_spacing_mm == (0.7, 0.8)
    assert image.value_unit == "HU"
    assert float(image.values[0, 0]) == 200 * 2.0 - 1000.0


def test_colour_dicom():
    image = read_medical_image(get_testdata_file("SC_rgb_rle.dcm"))
    assert image.display.shape == (100, 100, 3) and image.display.dtype == np.uint8
    palette = read_medical_image(get_testdata_file("examples_palette.dcm"))
    assert palette.display.shape[2] == 3 and palette.pixel_spacing_mm is None


def test_rle_and_jpegls_decode_like_uncompressed():
    reference = read_dicom(get_testdata_file("MR_small.dcm")).values
    np.testing.assert_array_equal(read_dicom(get_testdata_file("MR_small_RLE.dcm")).values, reference)


# ------------------------------------------------------------------------------- bad input
def test_not_dicom(tmp_path):
    path = tmp_path / "x.dcm"
    path.write_bytes(b"\0" * 200)
    assert not is_dicom(path)
    with pytest.raises(MedicalImageError, match="not a DICOM file"):
        read_dicom(path)


def test_no_pixel_data():
    with pytest.raises(MedicalImageError, match="no pixel data"):
        read_medical_image(get_testdata_file("rtplan.dcm"))


def test_compressed_without_decoder(tmp_path):
    from pydicom.uid import HTJ2KLossless

    ds = pydicom.dcmread(get_testdata_file("MR_small_jp2klossless.dcm"))
    ds.file_meta.TransferSyntaxUID = HTJ2KLossless  # no HTJ2K decoder is installed
    path = _save(ds, tmp_path / "htj2k.dcm")
    with pytest.raises(MedicalImageError, match=r"htj2k.dcm: compressed transfer syntax .*High-Throughput"):
        read_dicom(path)


def test_truncated_pixel_data():
    with pytest.raises(MedicalImageError, match="MR_truncated.dcm"):
        read_dicom(get_testdata_file("MR_truncated.dcm"))


def test_missing_path(tmp_path):
    with pytest.raises(MedicalImageError, match="no file or folder"):
        read_medical_image(tmp_path / "nope.dcm")


# ----------------------------------------------------------------------------------- series
def _series(folder: Path, **kwargs) -> list[Path]:
    slices = []
    for n in range(4):
        stored = np.full((16, 20), 1024 + 100 * n, dtype=np.uint16)  # HU 0, 100, 200 by z
        stored[2, 3] = 3000  # a marker at row 2, col 3 of every slice
        slices.append(stored)
    # written shuffled on disk: file names sort as z = 5, 10, 0, 15
    return write_ct_series(
        folder, slices, z_positions_mm=[0.0, 5.0, 10.0, 15.0], file_names=["c.dcm", "a.dcm", "b.dcm", "d.dcm"], **kwargs
    )


def test_series_sorted_by_position(tmp_path):
    _series(tmp_path)
    volume = read_dicom_series(tmp_path)
    assert volume.shape_ijk == (20, 16, 4) and volume.orientation == "RAS"
    assert volume.spacing_mm_ijk == pytest.approx((0.5, 0.5, 5.0))
    assert volume.modality == "CT" and volume.value_unit == "HU"
    assert [Path(p).name for p in volume.source_files] == ["c.dcm", "a.dcm", "b.dcm", "d.dcm"]
    for k, hu in enumerate((0.0, 100.0, 200.0, 300.0)):  # inferior → superior
        image = slice_volume(volume, k)
        assert image.values[0, 0] == hu
        # axial display of an LPS-stored axial series = the stored pixel layout
        assert image.values[2, 3] == 3000 - 1024
        assert image.pixel_spacing_mm == (0.5, 0.5)
    # voxel of the marker maps to the DICOM position of (row 2, col 3) on the middle slice
    ijk = np.argwhere(volume.values[:, :, 1] == 3000 - 1024)[0]
    world = volume.affine_ras @ np.array([ijk[0], ijk[1], 1, 1.0])
    np.testing.assert_allclose(world[:3], [-(3 * 0.5), -(2 * 0.5), 5.0])
    via_reader = read_medical_image(tmp_path, slice_index=2, window="abdomen")
    assert via_reader.window == (40.0, 400.0)
    with pytest.raises(MedicalImageError, match="4 slices along 'axial'; pass slice_index"):
        read_medical_image(tmp_path)


def _modify(path: Path, **attrs) -> None:
    ds = pydicom.dcmread(path)
    for key, value in attrs.items():
        setattr(ds, key, value)
    ds.save_as(str(path), enforce_file_format=True)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"ImageOrientationPatient": [1, 0, 0, 0, 0.8, 0.6]}, r"b.dcm: ImageOrientationPatient .* differs"),
        ({"PixelSpacing": [0.6, 0.5]}, r"b.dcm: PixelSpacing .* differs"),
        ({"ImagePositionPatient": [0.0, 0.0, 5.0]}, r"same position as"),
        ({"ImagePositionPatient": [0.0, 0.0, 12.5]}, r"b.dcm: slice gap 7.500 mm differs"),
        ({"SeriesInstanceUID": "1.2.3.4"}, r"2 series in one folder"),
    ],
)
def test_series_errors_name_the_file(tmp_path, change, message):
    paths = _series(tmp_path)
    _modify(paths[2], **change)  # b.dcm (z = 10)
    with pytest.raises(MedicalImageError, match=message) as info:
        read_dicom_series(tmp_path)
    assert not any(s in str(info.value) for s in PATIENT_STRINGS)


def test_series_missing_geometry(tmp_path):
    paths = _series(tmp_path)
    ds = pydicom.dcmread(paths[0])
    del ds.ImagePositionPatient
    ds.save_as(str(paths[0]), enforce_file_format=True)
    with pytest.raises(MedicalImageError, match="c.dcm: missing ImagePositionPatient"):
        read_dicom_series(tmp_path)


def test_empty_series_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(MedicalImageError, match="no DICOM files"):
        read_dicom_series(tmp_path)


def test_logs_never_contain_patient_attributes(tmp_path, caplog):
    _series(tmp_path / "series")
    single = tmp_path / "one.dcm"
    shutil.copy(tmp_path / "series" / "a.dcm", single)
    with caplog.at_level(logging.DEBUG, logger="citrusv"):
        read_medical_image(single)
        volume = read_dicom_series(tmp_path / "series")
        slice_volume(volume, 1)
    assert caplog.records, "expected debug records"
    assert not any(s in caplog.text for s in PATIENT_STRINGS)


def test_imager_pixel_spacing_fallback(tmp_path):
    ds = synthetic_ct_dataset(np.zeros((10, 10), np.uint16))
    ds.Modality = "DX"
    del ds.PixelSpacing
    ds.ImagerPixelSpacing = [0.15, 0.15]
    image = read_dicom(_save(ds, tmp_path / "dx.dcm"))
    assert image.pixel_spacing_mm == (0.15, 0.15)
    assert image.spacing_source.startswith("ImagerPixelSpacing")
    assert image.geometry is None  # no patient-space pixel spacing: no NIfTI geometry


def test_series_rescale_per_slice(tmp_path):
    paths = _series(tmp_path)
    ds = pydicom.dcmread(paths[1])  # a.dcm, z = 5: stored 1124 → HU 100
    ds.RescaleIntercept = -2048.0
    ds.PixelData = (ds.pixel_array.astype(np.int32) + 1024).astype(np.uint16).tobytes()
    ds.save_as(str(paths[1]), enforce_file_format=True)
    volume = read_dicom_series(tmp_path)
    assert float(volume.values[0, 0, 1]) == 100.0


def _multiframe(tmp_path, z_positions, *, drop=None):
    frames = np.stack([np.full((12, 14), 1024 + 10 * n, np.uint16) for n in range(len(z_positions))])
    frames[:, 3, 5] = 3000 + np.arange(len(z_positions))  # a distinct marker per stored frame
    ds = synthetic_ct_dataset(frames[0])
    for key in ("PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient"):
        delattr(ds, key)
    ds.NumberOfFrames = len(z_positions)
    ds.PixelData = frames.tobytes()
    shared, measures, orientation = Dataset(), Dataset(), Dataset()
    measures.PixelSpacing, measures.SliceThickness = [0.5, 0.5], 2.0
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared.PixelMeasuresSequence, shared.PlaneOrientationSequence = [measures], [orientation]
    ds.SharedFunctionalGroupsSequence = [shared]
    per_frame = []
    for n, z in enumerate(z_positions):
        group, position = Dataset(), Dataset()
        if n != drop:
            position.ImagePositionPatient = [0.0, 0.0, float(z)]
            group.PlanePositionSequence = [position]
        per_frame.append(group)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    return _save(ds, tmp_path / "mf.dcm")


def test_multiframe_volume_sorted_by_position(tmp_path):
    from citrusv.medio import read_dicom_volume, read_volume, volume_mask_to_dicom_frames

    path = _multiframe(tmp_path, [4.0, 0.0, 2.0])  # stored frames 0, 1, 2 at z = 4, 0, 2
    volume = read_dicom_volume(path)
    assert volume.shape_ijk == (14, 12, 3) and volume.source_frames == (1, 2, 0)
    assert [float(volume.values[0, 0, k]) for k in range(3)] == [10.0, 20.0, 0.0]  # HU of frames 1, 2, 0
    assert volume.spacing_mm_ijk == pytest.approx((0.5, 0.5, 2.0))
    assert read_volume(path).shape_ijk == volume.shape_ijk
    mask = volume.values == 3001 - 1024  # the marker of stored frame 1 only
    frames = volume_mask_to_dicom_frames(mask, volume)
    assert frames.sum(axis=(1, 2)).tolist() == [0, 1, 0] and frames[1, 3, 5]


def test_multiframe_volume_errors(tmp_path):
    from citrusv.medio import read_dicom_volume

    with pytest.raises(MedicalImageError, match="mf.dcm frame 1: missing ImagePositionPatient"):
        read_dicom_volume(_multiframe(tmp_path, [0.0, 2.0, 4.0], drop=1))
    with pytest.raises(MedicalImageError, match="mf.dcm frame 2: slice gap 3.000 mm differs"):
        read_dicom_volume(_multiframe(tmp_path, [0.0, 2.0, 5.0, 7.0]))
