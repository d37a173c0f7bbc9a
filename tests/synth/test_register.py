"""Registration label transfer: QC functions against hand-checkable answers, both methods on a
synthetic phantom deformed by a known smooth field, file IO in the target's geometry."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("SimpleITK")

from citrusv.synth.register import (
    RegistrationOptions,
    dice_per_label,
    folding_fraction,
    jacobian_determinant,
    synthetic_pair,
    transfer_label_files,
    transfer_labels,
)

FAST_SITK = RegistrationOptions(
    linear_iterations=30, demons_levels=((4, 30), (2, 30), (1, 10)), num_threads=2
)
FAST_VM = RegistrationOptions(
    linear_iterations=20,
    learned_max_side=16,
    learned_iterations=10,
    refine_iterations=30,
    smoothness=20.0,
    num_threads=2,
)


@pytest.fixture(scope="module")
def pair():
    return synthetic_pair(40, amplitude_vox=2.5)


@pytest.fixture(scope="module")
def sitk_result(pair):
    return transfer_labels(
        pair.template_image,
        pair.template_labels,
        pair.target_image,
        "sitk",
        template_affine_ras=pair.affine_ras,
        target_affine_ras=pair.affine_ras,
        reference_labels=pair.target_labels,
        options=FAST_SITK,
    )


# --- QC functions --------------------------------------------------------------------------------

_A = np.array([[1, 1, 0, 0], [2, 2, 0, 0]])  # [2, 4]


@pytest.mark.parametrize(
    ("b", "labels", "expected"),
    [
        (_A, None, {1: 1.0, 2: 1.0}),  # identical
        (
            np.array([[0, 1, 1, 0], [0, 0, 2, 2]]),
            None,
            {1: 0.5, 2: 0.0},
        ),  # half overlap / disjoint
        (
            np.zeros((2, 4), int),
            [1, 3],
            {1: 0.0, 3: math.nan},
        ),  # empty prediction; absent from both
    ],
)
def test_dice_per_label(b, labels, expected):
    got = dice_per_label(_A, b, labels)
    assert got.keys() == expected.keys()
    for label, value in expected.items():
        assert (math.isnan(got[label]) and math.isnan(value)) or got[
            label
        ] == pytest.approx(value)
    assert dice_per_label(b, _A, labels).keys() == got.keys()  # symmetric


def test_jacobian_identity_and_affine():
    shape = (6, 7, 8)
    spacing = (1.5, 2.0, 0.8)
    assert np.allclose(jacobian_determinant(np.zeros((3, *shape)), spacing), 1.0)
    a = np.array([[1.1, 0.2, 0.0], [0.0, 0.9, 0.1], [0.05, 0.0, 1.2]])
    x = np.stack(
        np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij")
    )  # mm
    ddf = (
        np.einsum("ab,bijk->aijk", a - np.eye(3), x)
        + np.array([3.0, -1.0, 2.0])[:, None, None, None]
    )
    det = jacobian_determinant(ddf, spacing)
    assert np.allclose(det, np.linalg.det(a))
    assert folding_fraction(det) == 0.0


def test_folding_fraction_of_a_fold():
    ddf = np.zeros((3, 8, 4, 4))
    ddf[0] = -2.0 * np.arange(8)[:, None, None]  # x → −x: every voxel folded
    det = jacobian_determinant(ddf, 1.0)
    assert np.allclose(det, -1.0)
    assert folding_fraction(det) == 1.0
    mask = np.zeros(det.shape, bool)
    assert math.isnan(folding_fraction(det, mask))
    with pytest.raises(ValueError, match="mask shape"):
        folding_fraction(det, np.ones((2, 2, 2), bool))
    with pytest.raises(ValueError, match=r"\[3, I, J, K\]"):
        jacobian_determinant(np.zeros((2, 4, 4, 4)), 1.0)


# --- registration ---------------------------------------------------------------------------------


def test_sitk_improves_dice_without_folding(sitk_result, pair):
    qc = sitk_result.qc
    assert qc["method"] == "sitk"
    assert qc["mean_dice"] > qc["mean_dice_before"] + 0.15, qc
    assert qc["mean_dice"] > 0.85
    assert qc["folding_fraction"] < 1e-3
    assert sitk_result.warped_labels.shape == pair.target_labels.shape
    assert sitk_result.warped_labels.dtype == pair.template_labels.dtype
    assert set(np.unique(sitk_result.warped_labels)) <= {0, 1, 2, 3, 4}
    assert np.array_equal(sitk_result.target_affine_ras, pair.affine_ras)
    assert sitk_result.ddf_mm_ijk.shape == (3, *pair.target_labels.shape)
    # the recovered field points the same way as the known one (mm = voxels × 2 mm)
    inside = pair.target_labels > 0
    truth = pair.ddf_vox[:, inside] * 2.0
    est = sitk_result.ddf_mm_ijk[:, inside]
    assert np.mean(np.sum(truth * est, axis=0)) > 0.5 * np.mean(
        np.sum(truth * truth, axis=0)
    )


def test_bspline_registers_across_modalities(pair):
    """The template from another 'modality' (tissue contrasts swapped, not monotonic): mutual
    information B-spline recovers the deformation; demons, which assumes equal intensities after
    histogram matching, does clearly worse on the same pair."""
    rng = np.random.default_rng(5)
    other_contrast = np.array([0.0, 0.9, 0.2, 0.05, 0.6], np.float32)[pair.template_labels]
    template = (other_contrast + 0.02 * rng.standard_normal(other_contrast.shape)).astype(np.float32)
    results = {method: transfer_labels(template, pair.template_labels, pair.target_image, method,
                                       template_affine_ras=pair.affine_ras, target_affine_ras=pair.affine_ras,
                                       reference_labels=pair.target_labels)
               for method in ("bspline", "sitk")}
    qc = results["bspline"].qc
    assert qc["method"] == "bspline"
    assert qc["mean_dice"] > qc["mean_dice_before"] + 0.15, qc
    assert qc["mean_dice"] > 0.83 and qc["folding_fraction"] < 1e-3
    assert qc["mean_dice"] > results["sitk"].qc["mean_dice"] + 0.04, (qc, results["sitk"].qc)


def test_voxelmorph_improves_dice():
    pytest.importorskip("monai")
    torch = pytest.importorskip("torch")
    p = synthetic_pair(24, amplitude_vox=1.5)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        result = transfer_labels(
            p.template_image,
            p.template_labels,
            p.target_image,
            "voxelmorph",
            template_affine_ras=p.affine_ras,
            target_affine_ras=p.affine_ras,
            reference_labels=p.target_labels,
            options=FAST_VM,
        )
    finally:
        torch.set_num_threads(threads)
    qc = result.qc
    assert qc["method"] == "voxelmorph"
    assert qc["mean_dice"] > qc["mean_dice_before"] + 0.1, qc
    assert qc["folding_fraction"] < 0.01
    assert result.warped_labels.shape == p.target_labels.shape


def test_files_land_in_target_geometry(tmp_path, pair):
    nib = pytest.importorskip("nibabel")
    affine = pair.affine_ras
    # the target file is stored left-right flipped (LAS) with another origin: read_volume makes it RAS
    flip = affine.copy()
    flip[:3, 0] *= -1
    flip[:3, 3] = affine[:3, 3] + np.array(
        [(pair.target_image.shape[0] - 1) * 2.0, 0, 0]
    )
    nib.save(nib.Nifti1Image(pair.template_image, affine), tmp_path / "t.nii.gz")
    nib.save(nib.Nifti1Image(pair.template_labels, affine), tmp_path / "tl.nii.gz")
    nib.save(
        nib.Nifti1Image(pair.target_image[::-1].copy(), flip), tmp_path / "x.nii.gz"
    )
    nib.save(
        nib.Nifti1Image(pair.target_labels[::-1].copy(), flip), tmp_path / "xl.nii.gz"
    )
    files = transfer_label_files(
        tmp_path / "t.nii.gz",
        tmp_path / "tl.nii.gz",
        tmp_path / "x.nii.gz",
        tmp_path / "out",
        reference_labels=tmp_path / "xl.nii.gz",
        options=FAST_SITK,
    )
    out = nib.load(files.labels_path)
    assert np.allclose(out.affine, flip)
    assert out.shape == pair.target_image.shape
    written = np.asarray(out.dataobj)
    assert dice_per_label(written, pair.target_labels[::-1], [1])[1] > 0.9
    qc = json.loads(files.qc_path.read_text())
    assert qc["method"] == "sitk" and qc["mean_dice"] > qc["mean_dice_before"]
    assert set(qc["dice"]) == {"1", "2", "3", "4"}


# --- errors ---------------------------------------------------------------------------------------


def test_errors(pair):
    img, lab = pair.template_image, pair.template_labels
    with pytest.raises(ValueError, match="unknown registration method"):
        transfer_labels(img, lab, img, "ants")
    with pytest.raises(ValueError, match="differs from its image grid"):
        transfer_labels(img, lab[:-1], img)
    with pytest.raises(ValueError, match="all background"):
        transfer_labels(img, np.zeros_like(lab), img)
    with pytest.raises(ValueError, match="integers"):
        transfer_labels(img, lab + 0.5, img)
    with pytest.raises(ValueError, match="reference labels"):
        transfer_labels(img, lab, img, reference_labels=lab[1:])
    with pytest.raises(ValueError, match="3-D"):
        transfer_labels(img[0], lab[0], img)
    with pytest.raises(ValueError, match="invertible"):
        transfer_labels(img, lab, img, target_affine_ras=np.zeros((4, 4)))
    with pytest.raises(ValueError, match="initial"):
        RegistrationOptions(initial="bspline")
    with pytest.raises(ValueError, match="shape"):
        dice_per_label(lab, lab[1:])


# --- real anatomy (nilearn MNI152, optional) -----------------------------------------------------


@pytest.mark.slow
def test_mni152_pair():
    pytest.importorskip("nilearn")
    from nilearn.datasets import load_mni152_brain_mask, load_mni152_template
    from scipy.ndimage import map_coordinates

    template = load_mni152_template(resolution=2)
    image = np.asarray(template.get_fdata(), dtype=np.float32)
    brain = np.asarray(load_mni152_brain_mask(resolution=2).get_fdata()) > 0
    grid = np.stack(
        np.meshgrid(
            *[np.arange(n, dtype=np.float64) for n in image.shape], indexing="ij"
        )
    )
    t = 2 * np.pi * grid / 64
    ddf = 2.0 * np.stack([np.sin(t[1]), np.sin(t[2]), np.sin(t[0])])
    target = map_coordinates(image, grid + ddf, order=1)
    target_brain = map_coordinates(brain.astype(np.float32), grid + ddf, order=0) > 0
    result = transfer_labels(
        image,
        brain.astype(np.uint8),
        target,
        template_affine_ras=template.affine,
        target_affine_ras=template.affine,
        reference_labels=target_brain.astype(np.uint8),
    )
    assert result.qc["dice"][1] > result.qc["dice_before"][1]
    assert result.qc["dice"][1] > 0.95
    assert result.qc["folding_fraction"] < 1e-3


def test_smoothness_term_matches_monai_diffusion_loss():
    pytest.importorskip("monai")
    torch = pytest.importorskip("torch")
    import warnings

    from monai.losses import DiffusionLoss

    from citrusv.synth.register_learned import _diffusion

    ddf = torch.randn(1, 3, 5, 6, 7, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():  # MONAI's list indexing, deprecated by torch
        warnings.simplefilter("ignore")
        expected = DiffusionLoss()(ddf)
    assert float(_diffusion(ddf)) == pytest.approx(float(expected), rel=1e-6)


def test_cli_synth_register(tmp_path, pair, capsys):
    nib = pytest.importorskip("nibabel")
    from citrusv.cli import main

    for name, array in (("t", pair.template_image), ("tl", pair.template_labels), ("x", pair.target_image),
                        ("xl", pair.target_labels)):
        nib.save(nib.Nifti1Image(array, pair.affine_ras), tmp_path / f"{name}.nii.gz")
    code = main(["synth", "register", "--template", str(tmp_path / "t.nii.gz"), "--template-labels",
                 str(tmp_path / "tl.nii.gz"), "--target", str(tmp_path / "x.nii.gz"), "--reference",
                 str(tmp_path / "xl.nii.gz"), "--out", str(tmp_path / "out")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "warped_labels.nii.gz" in printed and "mean Dice" in printed
    qc = json.loads((tmp_path / "out" / "qc.json").read_text())
    assert qc["mean_dice"] > qc["mean_dice_before"]
    # Labels that are not integers (an image passed as labels) end with one clear error line.
    assert main(["synth", "register", "--template", str(tmp_path / "t.nii.gz"), "--template-labels",
                 str(tmp_path / "x.nii.gz"), "--target", str(tmp_path / "x.nii.gz"), "--out", str(tmp_path / "o2")]) == 2
    assert "label" in capsys.readouterr().err
