"""NIfTI: RAS canonicalisation against nibabel, slices, and the mask round trip onto the source
grid (same affine, same voxels) for RAS, LPS, permuted and oblique affines."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

nib = pytest.importorskip("nibabel")
pytest.importorskip("pydicom")

from citrusv.medio import (
    MedicalImageError,
    is_nifti,
    mask_volume_ml,
    read_dicom_series,
    read_medical_image,
    read_nifti,
    read_volume,
    save_mask_nifti,
    slice_volume,
)

SHAPE = (9, 11, 7)
MARKER = 5000.0


def _rotation_z(degrees: float) -> np.ndarray:
    t = np.deg2rad(degrees)
    return np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1.0]])


def _affine(kind: str) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, 3] = [-40.0, 12.5, 70.0]
    if kind == "RAS":
        affine[:3, :3] = np.diag([0.8, 0.9, 2.5])
    elif kind == "LPS":
        affine[:3, :3] = np.diag([-0.8, -0.9, 2.5])
    elif kind == "ASL":  # i → anterior, j → superior, k → patient left
        affine[:3, :3] = np.array([[0, 0, -1.2], [0.7, 0, 0], [0, 3.0, 0]])
    elif kind == "oblique_LPS":
        affine[:3, :3] = _rotation_z(20) @ np.diag([-0.8, -0.9, 2.5])
    return affine


# source axis that ends up as the canonical axis 0 (R), 1 (A), 2 (S), per affine kind
SOURCE_AXIS_OF = {"RAS": (0, 1, 2), "LPS": (0, 1, 2), "ASL": (2, 0, 1), "oblique_LPS": (0, 1, 2)}


def _write(path, data, affine, **header):
    image = nib.Nifti1Image(data, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    nib.save(image, str(path))
    return path


def _volume_data(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-1000, 1000, size=SHAPE).astype(np.float32)


@pytest.mark.parametrize("kind", ["RAS", "LPS", "ASL", "oblique_LPS"])
def test_read_nifti_matches_nibabel_closest_canonical(tmp_path, kind):
    data = _volume_data()
    path = _write(tmp_path / "v.nii.gz", data, _affine(kind))
    volume = read_nifti(path, modality="CT")
    reference = nib.as_closest_canonical(nib.load(str(path)))
    np.testing.assert_array_equal(volume.values, np.asarray(reference.dataobj, dtype=np.float32))
    np.testing.assert_allclose(volume.affine_ras, reference.affine, atol=1e-6)
    assert volume.orientation == "RAS"
    assert volume.value_unit == "HU"
    sizes = np.sqrt((_affine(kind)[:3, :3] ** 2).sum(axis=0))
    assert volume.spacing_mm_ijk == pytest.approx(tuple(sizes[list(SOURCE_AXIS_OF[kind])]))


@pytest.mark.parametrize("kind", ["RAS", "LPS", "ASL", "oblique_LPS"])
@pytest.mark.parametrize("axis", ["axial", "coronal", "sagittal"])
@pytest.mark.parametrize("compressed", [True, False])
def test_mask_on_a_slice_round_trips_to_the_same_voxels(tmp_path, kind, axis, compressed):
    """The issue's acceptance test: a mask predicted on one slice is written back with the same
    affine and lands on the same voxels of the source file."""
    data = _volume_data(1)
    fixed = SOURCE_AXIS_OF[kind][{"sagittal": 0, "coronal": 1, "axial": 2}[axis]]
    marked = [(2, 3, 4), (2, 4, 4), (3, 3, 4), (5, 6, 4), (6, 8, 1)]  # (a, b) in-plane, then the fixed index
    for a_b_c in marked[:-1]:
        index = [0, 0, 0]
        others = [ax for ax in range(3) if ax != fixed]
        index[others[0]], index[others[1]], index[fixed] = a_b_c
        data[tuple(index)] = MARKER
    source = _write(tmp_path / ("v.nii.gz" if compressed else "v.nii"), data, _affine(kind))
    volume = read_volume(source)
    # find the slice holding the markers, as a user would, then "predict" them on it
    canonical_axis = {"sagittal": 0, "coronal": 1, "axial": 2}[axis]
    index = int(np.argwhere(volume.values == MARKER)[0][canonical_axis])
    image = read_medical_image(source, slice_index=index, axis=axis)
    mask_hw = image.values == MARKER
    assert mask_hw.sum() == 4
    out = save_mask_nifti(mask_hw, image, tmp_path / "mask.nii.gz")

    written = nib.load(str(out))
    np.testing.assert_array_equal(written.affine, nib.load(str(source)).affine)
    assert written.shape == SHAPE
    assert written.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.argwhere(np.asarray(written.dataobj)), np.argwhere(data == MARKER))
    assert int(written.header["sform_code"]) == 1


def test_slice_display_is_radiological(tmp_path):
    """Axial display: anterior at the top, patient right on the image left."""
    data = np.zeros(SHAPE, dtype=np.float32)
    data[8, 5, 3] = 1.0  # most patient-left column of an LPS grid (i increases toward L)
    data[4, 0, 3] = 2.0  # most anterior row of an LPS grid (j increases toward P)
    path = _write(tmp_path / "lps.nii", data, _affine("LPS"))
    image = slice_volume(read_nifti(path), 3)
    assert image.size_hw == (11, 9)
    rows, cols = np.nonzero(image.values == 1.0)
    assert cols.tolist() == [8]  # patient left → image right
    rows, cols = np.nonzero(image.values == 2.0)
    assert rows.tolist() == [0]  # anterior → top
    assert image.pixel_spacing_mm == pytest.approx((0.9, 0.8))


def test_volume_mask_and_canonical_space(tmp_path):
    path = _write(tmp_path / "v.nii.gz", _volume_data(), _affine("ASL"))
    volume = read_nifti(path)
    mask = volume.values > 500
    out = save_mask_nifti(mask, volume, tmp_path / "m.nii.gz")
    np.testing.assert_array_equal(np.asarray(nib.load(str(out)).dataobj) != 0, _volume_data() > 500)
    canonical = save_mask_nifti(mask, volume, tmp_path / "c.nii.gz", space="canonical")
    np.testing.assert_allclose(nib.load(str(canonical)).affine, volume.affine_ras)
    expected_ml = mask.sum() * 0.7 * 3.0 * 1.2 / 1000.0
    assert mask_volume_ml(mask, volume.spacing_mm_ijk) == pytest.approx(expected_ml)


def test_dicom_series_mask_to_nifti(tmp_path):
    from citrusv.medio.synthetic import write_ct_series

    slices = [np.full((16, 20), 1024, np.uint16) for _ in range(3)]
    slices[1][4, 7] = 2024  # HU 1000 at row 4, col 7 of the middle slice (z = 2.5)
    write_ct_series(tmp_path / "s", slices, z_positions_mm=[0, 2.5, 5.0], origin_lps=(10.0, 20.0, -30.0))
    image = read_medical_image(tmp_path / "s", slice_index=1)
    out = save_mask_nifti(image.values == 1000, image, tmp_path / "m.nii.gz")
    written = nib.load(str(out))
    ijk = np.argwhere(np.asarray(written.dataobj))
    assert len(ijk) == 1
    world_ras = written.affine @ np.append(ijk[0], 1.0)
    # DICOM LPS position of (row 4, col 7) on slice z = 2.5 is (10 + 7·0.5, 20 + 4·0.5, -27.5)
    np.testing.assert_allclose(world_ras[:3], [-(10 + 3.5), -(20 + 2.0), -27.5])


def test_single_dicom_mask_to_nifti(tmp_path):
    from citrusv.medio.synthetic import synthetic_ct_dataset

    stored = np.full((12, 14), 1024, np.uint16)
    stored[3, 9] = 2000
    path = tmp_path / "one.dcm"
    synthetic_ct_dataset(stored, position_lps=(5, 6, 7)).save_as(str(path), enforce_file_format=True)
    image = read_medical_image(path)
    out = save_mask_nifti(image.values > 500, image, tmp_path / "m.nii")
    written = nib.load(str(out))
    ijk = np.argwhere(np.asarray(written.dataobj))[0]
    np.testing.assert_allclose((written.affine @ np.append(ijk, 1.0))[:3], [-(5 + 9 * 0.5), -(6 + 3 * 0.5), 7])


def test_nifti_errors(tmp_path):
    nan = _volume_data()
    nan[1, 1, 1] = np.nan
    with pytest.raises(MedicalImageError, match=r"bad.nii.gz: 1 voxels are NaN"):
        read_nifti(_write(tmp_path / "bad.nii.gz", nan, _affine("RAS")))
    four_d = np.zeros((8, 8, 8, 2), np.float32)
    with pytest.raises(MedicalImageError, match=r"expected one 3-D volume"):
        read_nifti(_write(tmp_path / "4d.nii.gz", four_d, _affine("RAS")))
    garbage = tmp_path / "junk.nii"
    garbage.write_bytes(b"not a nifti" * 40)
    with pytest.raises(MedicalImageError, match="junk.nii: not a readable NIfTI"):
        read_nifti(garbage)
    path = _write(tmp_path / "v.nii.gz", _volume_data(), _affine("RAS"))
    with pytest.raises(MedicalImageError, match="7 slices along 'axial'"):
        read_medical_image(path)
    with pytest.raises(MedicalImageError, match="out of range"):
        read_medical_image(path, slice_index=7)
    with pytest.raises(MedicalImageError, match="unknown slice axis"):
        read_medical_image(path, slice_index=0, axis="oblique")
    image = read_medical_image(path, slice_index=0)
    with pytest.raises(MedicalImageError, match=r"mask has shape \(3, 3\), the slice is \(11, 9\)"):
        save_mask_nifti(np.zeros((3, 3)), image, tmp_path / "m.nii")
    with pytest.raises(MedicalImageError, match="space must be"):
        save_mask_nifti(np.zeros((11, 9)), image, tmp_path / "m.nii", space="world")


def test_two_d_nifti_and_magic_detection(tmp_path):
    data = np.arange(12 * 10, dtype=np.float32).reshape(12, 10)
    path = _write(tmp_path / "flat.nii", data, _affine("RAS"))
    renamed = tmp_path / "flat.bin"
    renamed.write_bytes(path.read_bytes())
    assert is_nifti(renamed)
    image = read_medical_image(renamed)  # one slice: no slice_index needed
    assert image.size_hw == (10, 12)


@settings(max_examples=30, deadline=None)
@given(
    permutation=st.permutations([0, 1, 2]),
    flips=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    angle=st.floats(-40, 40),
)
def test_canonical_then_back_is_identity(permutation, flips, angle):
    """Orientation then inverse: any axis permutation / flip (plus an oblique tilt) comes back."""
    from citrusv.medio import canonical_volume

    linear = np.eye(3)[:, list(permutation)] * np.where(flips, -1.0, 1.0) * np.array([0.7, 1.1, 2.5])
    affine = np.eye(4)
    affine[:3, :3] = _rotation_z(angle) @ linear
    data = np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)
    volume = canonical_volume(data, affine)
    assert volume.orientation == "RAS"
    np.testing.assert_array_equal(volume.geometry.to_source(volume.values), data)
    # the same voxel value sits at the same world position in both grids
    ijk_source = np.array([1, 2, 3])
    value = data[tuple(ijk_source)]
    ijk_canonical = np.argwhere(volume.values == value)[0]
    np.testing.assert_allclose(volume.affine_ras @ np.append(ijk_canonical, 1.0), affine @ np.append(ijk_source, 1.0), atol=1e-9)


def test_oblique_dicom_series_geometry(tmp_path):
    from citrusv.medio.synthetic import write_ct_series

    t = np.deg2rad(30)
    row_dir, col_dir = np.array([np.cos(t), np.sin(t), 0.0]), np.array([0.0, 0.0, -1.0])  # tilted coronal
    slices = [np.full((16, 20), 1024, np.uint16) for _ in range(3)]
    slices[2][5, 9] = 2024
    origin = np.array([-20.0, 30.0, 40.0])
    write_ct_series(
        tmp_path / "s",
        slices,
        z_positions_mm=[0, 3, 6],
        orientation=[*row_dir, *col_dir],
        origin_lps=origin,
        pixel_spacing_mm=(0.6, 0.4),
        file_names=["b.dcm", "c.dcm", "a.dcm"],
    )
    volume = read_dicom_series(tmp_path / "s")
    assert volume.orientation == "RAS"
    ijk = np.argwhere(volume.values == 1000.0)[0]
    normal = np.cross(row_dir, col_dir)
    expected_lps = origin + 6 * normal + 9 * 0.4 * row_dir + 5 * 0.6 * col_dir
    np.testing.assert_allclose((volume.affine_ras @ np.append(ijk, 1.0))[:3], expected_lps * [-1, -1, 1], atol=1e-6)
