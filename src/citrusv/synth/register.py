"""Registration-based label transfer: warp template labels onto a target volume.

Issue 5, item 4. Three methods, one result type:

* ``method="sitk"`` (default, classical): SimpleITK affine (or rigid) registration with Mattes
  mutual information on a 3-level pyramid, then multi-resolution diffeomorphic demons on the
  histogram-matched, affinely resampled template.
* ``method="bspline"`` (classical, multi-modal): the same affine stage, then a free-form B-spline
  deformation, also by Mattes mutual information, so the template may come from another modality
  (a CT atlas onto an MR, a T1 template onto a T2): demons and histogram matching assume a tissue
  has the same intensity in both images, mutual information does not.
* ``method="voxelmorph"`` (learned): the same affine initialisation, then a small VoxelMorph
  network (MONAI ``VoxelMorph`` with a slim ``VoxelMorphUNet``) optimised on this one pair
  (instance optimisation: no pretrained registration weights exist offline), followed by a
  variational refinement: gradient descent on image similarity + smoothness directly on the
  full-resolution displacement field (``citrusv.synth.register_learned``).

Both end in one transform ``target mm → template mm``; the template labels are resampled once,
nearest neighbour, onto the target grid. Coordinates: arrays are ``[I, J, K]`` with a ``[4, 4]``
voxel → RAS+ mm affine (``citrusv.medio.Volume`` canonical arrays). The displacement field
``ddf_mm_ijk [3, I, J, K]`` holds, for each target voxel centre, the vector to the template
point it samples, in mm, with components along the target's array axes (for a canonical RAS
volume: R, A, S).

QC is pure functions: :func:`dice_per_label`, :func:`jacobian_determinant`,
:func:`folding_fraction`.

Needs the ``register`` dependencies: ``SimpleITK`` (both methods), ``torch`` + ``monai``
(``voxelmorph``); file helpers need ``nibabel`` (``medio`` extra).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from citrusv.medio import Volume

__all__ = [
    "METHODS",
    "RegistrationOptions",
    "RegistrationResult",
    "SyntheticPair",
    "TransferredFiles",
    "dice_per_label",
    "folding_fraction",
    "jacobian_determinant",
    "synthetic_pair",
    "transfer_label_files",
    "transfer_labels",
]

logger = logging.getLogger(__name__)

METHODS = ("sitk", "bspline", "voxelmorph")


# ----------------------------------------------------------------------------------------------
# QC: pure functions
# ----------------------------------------------------------------------------------------------


def dice_per_label(
    a: np.ndarray, b: np.ndarray, labels: Any = None
) -> dict[int, float]:
    """Dice of each label value between two label maps on the same grid.

    Args:
        a, b: integer label maps of equal shape (0 = background).
        labels: label values to score; ``None`` = every non-zero value present in either map.

    Returns:
        ``{label: dice}``. A label absent from both maps scores NaN (MONAI's ``ignore_empty``
        policy: leave it out of means); absent from one only scores 0.

    Raises:
        ValueError: shapes differ.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"label maps differ in shape: {a.shape} vs {b.shape}")
    if labels is None:
        labels = np.union1d(np.unique(a), np.unique(b))
        labels = labels[labels != 0]
    out: dict[int, float] = {}
    for label in labels:
        in_a, in_b = a == label, b == label
        total = int(in_a.sum()) + int(in_b.sum())
        out[int(label)] = (
            float("nan") if total == 0 else 2.0 * int((in_a & in_b).sum()) / total
        )
    return out


def jacobian_determinant(ddf_mm: np.ndarray, spacing_mm: Any) -> np.ndarray:
    """Jacobian determinant of the map ``x → x + u(x)``.

    Args:
        ddf_mm: ``[3, I, J, K]`` displacement in mm, component ``c`` along array axis ``c``.
        spacing_mm: voxel size along ``I, J, K`` (one number or three).

    Returns:
        ``[I, J, K]`` float64 determinants (central differences inside, one-sided at the faces):
        1 for the identity, ``det(A)`` for an affine field ``u(x) = (A − 1) x + t``; ``≤ 0``
        marks a folded voxel.

    Raises:
        ValueError: ``ddf_mm`` is not ``[3, I, J, K]`` with every side ≥ 2, or a spacing is not
            positive.
    """
    ddf = np.asarray(ddf_mm, dtype=np.float64)
    if ddf.ndim != 4 or ddf.shape[0] != 3 or min(ddf.shape[1:]) < 2:
        raise ValueError(
            f"ddf must be [3, I, J, K] with sides >= 2, got shape {ddf.shape}"
        )
    spacing = np.broadcast_to(np.asarray(spacing_mm, dtype=np.float64), (3,))
    if np.any(spacing <= 0):
        raise ValueError(f"spacing must be positive, got {tuple(spacing)}")
    # g[c][a] = ∂u_c / ∂x_a
    g = [np.gradient(ddf[c], *spacing) for c in range(3)]
    j = [[g[c][a] + (1.0 if a == c else 0.0) for a in range(3)] for c in range(3)]
    return (
        j[0][0] * (j[1][1] * j[2][2] - j[1][2] * j[2][1])
        - j[0][1] * (j[1][0] * j[2][2] - j[1][2] * j[2][0])
        + j[0][2] * (j[1][0] * j[2][1] - j[1][1] * j[2][0])
    )


def folding_fraction(det: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Fraction of voxels whose Jacobian determinant is ``≤ 0`` (folded), optionally inside a
    boolean ``mask`` of the same shape. An empty selection gives NaN.

    Raises:
        ValueError: ``mask`` shape differs from ``det``.
    """
    det = np.asarray(det)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != det.shape:
            raise ValueError(
                f"mask shape {mask.shape} differs from det shape {det.shape}"
            )
        det = det[mask]
    return float("nan") if det.size == 0 else float(np.mean(det <= 0))


# ----------------------------------------------------------------------------------------------
# Options and result
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistrationOptions:
    """Settings of both methods (defaults: measured on 48³–128³ CPU volumes, see docs/synthesis.md)."""

    initial: str = "affine"
    """Linear initialisation: ``"affine"``, ``"rigid"`` or ``"none"`` (images already aligned)."""
    linear_iterations: int = 100
    """Gradient-descent iterations per pyramid level of the linear stage (levels: shrink 4, 2, 1)."""
    linear_sampling: float = 0.25
    """Fraction of voxels sampled (randomly, seeded) by the mutual-information metric."""
    demons_levels: tuple[tuple[int, int], ...] = ((4, 40), (2, 40), (1, 20))
    """``sitk``: demons pyramid as ``(shrink factor, iterations)`` pairs, coarse to fine."""
    demons_sigma_vox: float = 1.0
    """``sitk``: Gaussian smoothing (voxels) of the displacement field after each demons step."""
    bspline_mesh: int = 6
    """``bspline``: B-spline control-point mesh per axis (the image pyramid shrinks 4, 2, 1)."""
    bspline_iterations: int = 30
    """``bspline``: L-BFGS-B iterations per pyramid level."""
    bspline_sampling: float = 0.1
    """``bspline``: fraction of voxels sampled (randomly, seeded) by the mutual-information metric."""
    learned_iterations: int = 30
    """``voxelmorph``: Adam steps training the network on this pair."""
    learned_lr: float = 3e-3
    """``voxelmorph``: network learning rate."""
    learned_max_side: int = 24
    """``voxelmorph``: the network runs on a grid whose longest side is about this (multiples of 8;
    a training step costs ~0.5 s at 24³ on 2 CPU threads)."""
    learned_channels: tuple[int, ...] = (8, 16, 16, 16)
    """``voxelmorph``: UNet encoder channels (each extra entry halves the grid once more)."""
    refine_iterations: int = 30
    """``voxelmorph``: variational refinement steps on the full-resolution field (0 = skip)."""
    refine_max_side: int = 64
    """``voxelmorph``: the refinement runs on a grid whose longest side is at most this (the
    field is then upsampled to the target grid)."""
    refine_lr: float = 0.05
    """``voxelmorph``: refinement step size (Adam, voxels)."""
    smoothness: float = 10.0
    """``voxelmorph``: weight of the diffusion regulariser (mean squared field gradient)."""
    similarity: str = "lncc"
    """``voxelmorph``: ``"lncc"`` (local NCC, window 7) or ``"mse"``."""
    seed: int = 0
    """Seeds the metric sampling and the network initialisation."""
    num_threads: int | None = None
    """Threads for SimpleITK filters; ``None`` = SimpleITK's default (torch threads are the caller's)."""

    def __post_init__(self) -> None:
        problems = []
        if self.initial not in ("affine", "rigid", "none"):
            problems.append(
                f"initial must be 'affine', 'rigid' or 'none', got {self.initial!r}"
            )
        if self.similarity not in ("lncc", "mse"):
            problems.append(
                f"similarity must be 'lncc' or 'mse', got {self.similarity!r}"
            )
        if not self.demons_levels or any(s < 1 or n < 0 for s, n in self.demons_levels):
            problems.append(
                f"demons_levels must be (shrink >= 1, iterations >= 0) pairs, got {self.demons_levels}"
            )
        if not 0 < self.linear_sampling <= 1 or not 0 < self.bspline_sampling <= 1:
            problems.append(
                f"linear_sampling and bspline_sampling must be in (0, 1], got {self.linear_sampling}, {self.bspline_sampling}"
            )
        if self.bspline_mesh < 1 or self.bspline_iterations < 0:
            problems.append(
                f"bspline_mesh must be >= 1 and bspline_iterations >= 0, got {self.bspline_mesh}, {self.bspline_iterations}"
            )
        if (
            self.learned_max_side < 8
            or self.refine_max_side < 4
            or self.learned_iterations < 0
            or self.refine_iterations < 0
        ):
            problems.append(
                "learned_max_side must be >= 8, refine_max_side >= 4 and iteration counts >= 0"
            )
        if problems:
            raise ValueError("; ".join(problems))


@dataclass
class RegistrationResult:
    """Template labels warped onto the target grid.

    Attributes:
        warped_labels: ``[I, J, K]`` integer labels on the target grid (dtype of the template labels).
        ddf_mm_ijk: ``[3, I, J, K]`` float32: target voxel → template point, mm along target axes.
        target_affine_ras: ``[4, 4]`` voxel → RAS+ mm of the target grid.
        qc: ``method``, ``runtime_s``, ``folding_fraction``, ``jacobian_min`` / ``jacobian_max``,
            and with reference labels ``dice`` / ``dice_before`` (per label) and their means.
    """

    warped_labels: np.ndarray = field(repr=False)
    ddf_mm_ijk: np.ndarray = field(repr=False)
    target_affine_ras: np.ndarray = field(repr=False)
    qc: dict[str, Any]


class TransferredFiles(NamedTuple):
    labels_path: Path
    qc_path: Path
    result: RegistrationResult


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------


def _array_and_affine(
    image: Any, affine: Any, what: str
) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(image, "values") and hasattr(image, "geometry"):  # citrusv.medio.Volume
        values, vol_affine = (
            np.asarray(image.values),
            np.asarray(image.geometry.affine_ras, dtype=np.float64),
        )
        if affine is not None and not np.allclose(np.asarray(affine), vol_affine):
            raise ValueError(
                f"{what}: a Volume carries its own affine; do not pass a different one"
            )
        affine = vol_affine
    else:
        values = np.asarray(image)
        affine = np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64)
    if values.ndim != 3:
        raise ValueError(
            f"{what}: expected a 3-D [I, J, K] array, got shape {values.shape}"
        )
    if min(values.shape) < 4:
        raise ValueError(
            f"{what}: every side must be >= 4 voxels, got shape {values.shape}"
        )
    if (
        affine.shape != (4, 4)
        or not np.all(np.isfinite(affine))
        or abs(np.linalg.det(affine[:3, :3])) < 1e-9
    ):
        raise ValueError(f"{what}: affine must be a finite, invertible [4, 4] matrix")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what}: image holds NaN or infinite values")
    return values, affine


def _labels_array(labels: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    values = np.asarray(
        labels.values
        if hasattr(labels, "values") and hasattr(labels, "geometry")
        else labels
    )
    if values.shape != tuple(shape):
        raise ValueError(
            f"{what}: shape {values.shape} differs from its image grid {tuple(shape)}"
        )
    if values.dtype == bool:
        return values.astype(np.uint8)
    if not np.issubdtype(values.dtype, np.number) or not np.all(np.isfinite(values)):
        raise ValueError(f"{what}: labels must be finite numbers")
    if np.issubdtype(values.dtype, np.floating):
        if np.any(values != np.round(values)):
            raise ValueError(f"{what}: labels must be integers")
        top = float(np.abs(values).max(initial=0))
        values = values.astype(
            np.uint8 if top <= 255 and values.min(initial=0) >= 0 else np.int32
        )
    return values


# ----------------------------------------------------------------------------------------------
# SimpleITK plumbing (RAS mm used as ITK's physical space; both images share it)
# ----------------------------------------------------------------------------------------------


def _sitk():
    try:
        import SimpleITK as sitk
    except ImportError as err:  # pragma: no cover - environment
        raise ImportError(
            "citrusv.synth.register needs SimpleITK: pip install 'SimpleITK>=2.5'"
        ) from err
    return sitk


def _direction_spacing(affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = affine[:3, :3]
    spacing = np.sqrt((m**2).sum(axis=0))
    return m / spacing, spacing


def _to_sitk(values: np.ndarray, affine: np.ndarray, pixel: str = "float"):
    sitk = _sitk()
    direction, spacing = _direction_spacing(affine)
    array = values.astype(np.float32 if pixel == "float" else np.int32).transpose(
        2, 1, 0
    )
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetOrigin(tuple(float(o) for o in affine[:3, 3]))
    image.SetDirection(tuple(float(d) for d in direction.ravel()))
    return image


def _from_sitk(image) -> np.ndarray:
    return _sitk().GetArrayFromImage(image).transpose(2, 1, 0)


def _normalise(values: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(values, [0.5, 99.5])
    if hi <= lo:
        return np.zeros_like(values, dtype=np.float32)
    return np.clip((values - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def _sitk_seed(seed: int) -> int:
    """SimpleITK reads a sampling seed of 0 as "seed from the wall clock": shift ours by one so
    that every seed, 0 included, gives a repeatable run."""
    return seed + 1


def _mutual_information_method(options: RegistrationOptions, sampling: float):
    """An ``ImageRegistrationMethod`` with what the linear and B-spline stages share: Mattes mutual
    information (32 bins) on seeded random samples, linear interpolation, a shrink 4 / 2 / 1
    pyramid smoothed by 2 / 1 / 0 voxels."""
    sitk = _sitk()
    reg = sitk.ImageRegistrationMethod()
    if options.num_threads:
        reg.SetNumberOfThreads(options.num_threads)
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(sampling, _sitk_seed(options.seed))
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2, 1, 0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    return reg


def _linear_stage(fixed, moving, options: RegistrationOptions):
    """Affine / rigid ``target mm → template mm`` by Mattes MI on a 3-level pyramid."""
    sitk = _sitk()
    if options.initial == "none":
        return sitk.AffineTransform(3)
    base = (
        sitk.AffineTransform(3)
        if options.initial == "affine"
        else sitk.Euler3DTransform()
    )
    init = sitk.CenteredTransformInitializer(
        fixed, moving, base, sitk.CenteredTransformInitializerFilter.MOMENTS
    )
    reg = _mutual_information_method(options, options.linear_sampling)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0,
        minStep=1e-4,
        numberOfIterations=options.linear_iterations,
        relaxationFactor=0.5,
        gradientMagnitudeTolerance=1e-8,
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetInitialTransform(init, inPlace=False)
    transform = reg.Execute(fixed, moving)
    logger.debug(
        "linear stage: %s, metric %.4f",
        reg.GetOptimizerStopConditionDescription(),
        reg.GetMetricValue(),
    )
    return transform


def _demons_stage(fixed, moving_aligned, options: RegistrationOptions):
    """Multi-resolution diffeomorphic demons → displacement field image on the fixed grid (mm)."""
    sitk = _sitk()
    field_image = None
    for shrink, iterations in options.demons_levels:
        if shrink > 1:
            sigma = [0.5 * shrink * s for s in fixed.GetSpacing()]
            f = sitk.Shrink(sitk.SmoothingRecursiveGaussian(fixed, sigma), [shrink] * 3)
            m = sitk.Shrink(
                sitk.SmoothingRecursiveGaussian(moving_aligned, sigma), [shrink] * 3
            )
        else:
            f, m = fixed, moving_aligned
        if field_image is None:
            init = sitk.Image(f.GetSize(), sitk.sitkVectorFloat64, 3)
            init.CopyInformation(f)
        else:
            init = sitk.Resample(
                field_image,
                f,
                sitk.Transform(),
                sitk.sitkLinear,
                0.0,
                sitk.sitkVectorFloat64,
            )
        if iterations == 0:
            field_image = init
            continue
        demons = sitk.DiffeomorphicDemonsRegistrationFilter()
        if options.num_threads:
            demons.SetNumberOfThreads(options.num_threads)
        demons.SetNumberOfIterations(iterations)
        demons.SetSmoothDisplacementField(True)
        demons.SetStandardDeviations(options.demons_sigma_vox)
        field_image = demons.Execute(f, m, init)
    if field_image.GetSize() != fixed.GetSize():
        field_image = sitk.Resample(
            field_image,
            fixed,
            sitk.Transform(),
            sitk.sitkLinear,
            0.0,
            sitk.sitkVectorFloat64,
        )
    return field_image


def _bspline_stage(fixed, moving_aligned, options: RegistrationOptions):
    """Free-form B-spline deformation by Mattes mutual information on a 3-level pyramid: the
    multi-modal deformable stage (MI does not assume that a tissue has the same intensity in both
    images, which demons and histogram matching do)."""
    sitk = _sitk()
    transform = sitk.BSplineTransformInitializer(fixed, [options.bspline_mesh] * 3)
    reg = _mutual_information_method(options, options.bspline_sampling)
    reg.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=options.bspline_iterations,
                             maximumNumberOfCorrections=5, maximumNumberOfFunctionEvaluations=4 * options.bspline_iterations,
                             costFunctionConvergenceFactor=1e7)
    reg.SetInitialTransform(transform, inPlace=True)
    reg.Execute(fixed, moving_aligned)
    result = transform
    logger.debug("b-spline stage: %s, metric %.4f", reg.GetOptimizerStopConditionDescription(), reg.GetMetricValue())
    return result


def _field_transform(field_world_zyx3: np.ndarray, reference):
    """``[K, J, I, 3]`` world-mm displacement array on ``reference``'s grid → a sitk transform."""
    sitk = _sitk()
    image = sitk.GetImageFromArray(
        np.ascontiguousarray(field_world_zyx3, dtype=np.float64), isVector=True
    )
    image.CopyInformation(reference)
    return sitk.DisplacementFieldTransform(image)


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------


def transfer_labels(
    template_image: Volume | np.ndarray,
    template_labels: Volume | np.ndarray,
    target_image: Volume | np.ndarray,
    method: str = "sitk",
    *,
    template_affine_ras: np.ndarray | None = None,
    target_affine_ras: np.ndarray | None = None,
    reference_labels: np.ndarray | None = None,
    labels: Any = None,
    options: RegistrationOptions | None = None,
) -> RegistrationResult:
    """Register the template image to the target image and warp the template labels onto the
    target grid (nearest neighbour).

    Args:
        template_image, target_image: ``citrusv.medio.Volume`` (canonical array + affine) or
            ``[I, J, K]`` arrays with ``*_affine_ras`` (voxel → RAS+ mm; identity if omitted).
            The grids may differ; registration runs in millimetres.
        template_labels: integer labels ``[I, J, K]`` on the template image's grid (0 = background).
        method: ``"sitk"`` (affine + diffeomorphic demons), ``"bspline"`` (affine + B-spline, both by
            mutual information: for images of different modalities) or ``"voxelmorph"`` (affine +
            VoxelMorph instance optimisation + variational refinement).
        reference_labels: labels on the target grid; when given, ``qc`` holds Dice before
            (template labels placed on the target grid with no registration) and after.
        labels: label values for Dice; default every non-zero template label.
        options: :class:`RegistrationOptions`.

    Returns:
        :class:`RegistrationResult`.

    Raises:
        ValueError: unknown method; not 3-D; labels not on the template grid, not integers or
            all background; reference labels not on the target grid; a singular affine.
        ImportError: SimpleITK (or, for ``voxelmorph``, torch / monai) missing.
    """
    if method not in METHODS:
        raise ValueError(
            f"unknown registration method {method!r}; choose one of {METHODS}"
        )
    options = options or RegistrationOptions()
    template, template_affine = _array_and_affine(
        template_image, template_affine_ras, "template image"
    )
    target, target_affine = _array_and_affine(
        target_image, target_affine_ras, "target image"
    )
    template_lab = _labels_array(template_labels, template.shape, "template labels")
    if not np.any(template_lab):
        raise ValueError("template labels are all background (0): nothing to transfer")
    reference = None
    if reference_labels is not None:
        reference = _labels_array(reference_labels, target.shape, "reference labels")
    if labels is None:
        labels = [int(v) for v in np.unique(template_lab) if v != 0]

    sitk = _sitk()
    start = time.perf_counter()
    fixed = _to_sitk(_normalise(target), target_affine)
    moving = _to_sitk(_normalise(template), template_affine)
    linear = _linear_stage(fixed, moving, options)
    moving_aligned = sitk.Resample(
        moving, fixed, linear, sitk.sitkLinear, 0.0, sitk.sitkFloat32
    )
    if method == "bspline":  # mutual information: intensities may differ between the images
        deformable = _bspline_stage(fixed, moving_aligned, options)
    elif method == "sitk":
        moving_aligned = sitk.HistogramMatching(moving_aligned, fixed, 128, 7, True)
        deformable = sitk.DisplacementFieldTransform(
            _demons_stage(fixed, moving_aligned, options)
        )
    else:
        moving_aligned = sitk.HistogramMatching(moving_aligned, fixed, 128, 7, True)
        from .register_learned import learned_displacement_vox

        ddf_vox = learned_displacement_vox(
            _from_sitk(fixed), _from_sitk(moving_aligned), options
        )  # [3, I, J, K]
        world = np.einsum("ab,bijk->ijka", target_affine[:3, :3], ddf_vox).transpose(
            2, 1, 0, 3
        )
        deformable = _field_transform(world, fixed)
    # ITK applies the last-added transform first: x → linear(x + d(x))
    transform = sitk.CompositeTransform([linear, deformable])

    label_image = _to_sitk(template_lab, template_affine, pixel="int")
    warped = _from_sitk(
        sitk.Resample(
            label_image, fixed, transform, sitk.sitkNearestNeighbor, 0, sitk.sitkInt32
        )
    )
    warped = warped.astype(template_lab.dtype)
    runtime_s = time.perf_counter() - start

    field_world = sitk.GetArrayFromImage(
        sitk.TransformToDisplacementField(
            transform,
            sitk.sitkVectorFloat64,
            fixed.GetSize(),
            fixed.GetOrigin(),
            fixed.GetSpacing(),
            fixed.GetDirection(),
        )
    ).transpose(3, 2, 1, 0)  # [3, I, J, K], world mm
    direction, spacing = _direction_spacing(target_affine)
    ddf_mm_ijk = np.einsum("ba,bijk->aijk", direction, field_world).astype(np.float32)
    det = jacobian_determinant(ddf_mm_ijk, spacing)
    qc: dict[str, Any] = {
        "method": method,
        "runtime_s": round(runtime_s, 3),
        "folding_fraction": folding_fraction(det),
        "jacobian_min": float(det.min()),
        "jacobian_max": float(det.max()),
    }
    if reference is not None:
        before = _from_sitk(
            sitk.Resample(
                label_image,
                fixed,
                sitk.Transform(),
                sitk.sitkNearestNeighbor,
                0,
                sitk.sitkInt32,
            )
        )
        qc["dice_before"] = dice_per_label(before, reference, labels)
        qc["dice"] = dice_per_label(warped, reference, labels)
        qc["mean_dice_before"] = _nanmean(qc["dice_before"].values())
        qc["mean_dice"] = _nanmean(qc["dice"].values())
    logger.info(
        "label transfer (%s): %.1f s, folding %.2e%s",
        method,
        runtime_s,
        qc["folding_fraction"],
        f", mean Dice {qc['mean_dice_before']:.3f} → {qc['mean_dice']:.3f}"
        if reference is not None
        else "",
    )
    return RegistrationResult(warped, ddf_mm_ijk, target_affine.copy(), qc)


def _nanmean(values: Any) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def transfer_label_files(
    template_img: str | Path,
    template_lab: str | Path,
    target_img: str | Path,
    out_dir: str | Path,
    reference_labels: str | Path | None = None,
    *,
    method: str = "sitk",
    options: RegistrationOptions | None = None,
) -> TransferredFiles:
    """File-level :func:`transfer_labels`: NIfTI / DICOM in (``citrusv.medio.read_volume``),
    ``out_dir/warped_labels.nii.gz`` (in the target file's own voxel order and affine) and
    ``out_dir/qc.json`` out.

    Raises:
        ValueError: as :func:`transfer_labels` (labels on another grid than their image, ...).
        citrusv.medio.MedicalImageError: unreadable inputs.
    """
    from citrusv.medio import read_volume, save_mask_nifti

    template = read_volume(template_img)
    template_labels = read_volume(template_lab)
    target = read_volume(target_img)
    if not np.allclose(
        template_labels.geometry.affine_ras, template.geometry.affine_ras, atol=1e-3
    ):
        raise ValueError(
            f"{template_lab}: the label file's grid differs from {template_img}'s"
        )
    reference = None
    if reference_labels is not None:
        ref_volume = read_volume(reference_labels)
        if not np.allclose(
            ref_volume.geometry.affine_ras, target.geometry.affine_ras, atol=1e-3
        ) or (ref_volume.values.shape != target.values.shape):
            raise ValueError(
                f"{reference_labels}: the reference labels' grid differs from {target_img}'s"
            )
        reference = ref_volume.values
    result = transfer_labels(
        template,
        template_labels.values,
        target,
        method,
        reference_labels=reference,
        options=options,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels_path = out_dir / "warped_labels.nii.gz"
    warped = result.warped_labels
    if warped.min(initial=0) >= 0 and warped.max(initial=0) <= 255:
        save_mask_nifti(warped.astype(np.uint8), target, labels_path)
    else:  # labels beyond uint8: same geometry, wider type
        import nibabel as nib

        grid = target.geometry
        image = nib.Nifti1Image(
            np.ascontiguousarray(grid.to_source(warped).astype(np.int32)),
            grid.source_affine_ras,
        )
        image.set_qform(grid.source_affine_ras, code=1)
        image.set_sform(grid.source_affine_ras, code=1)
        nib.save(image, str(labels_path))
    qc = dict(result.qc)
    qc.update(
        template_image=str(template_img),
        template_labels=str(template_lab),
        target_image=str(target_img),
        reference_labels=None if reference_labels is None else str(reference_labels),
        target_shape_ijk=list(target.values.shape),
        options=asdict(options or RegistrationOptions()),
    )
    qc_path = out_dir / "qc.json"
    qc_path.write_text(json.dumps(_json_ready(qc), indent=2) + "\n", encoding="utf-8")
    return TransferredFiles(labels_path, qc_path, result)


# ----------------------------------------------------------------------------------------------
# Synthetic pair (tests, benchmarks)
# ----------------------------------------------------------------------------------------------


class SyntheticPair(NamedTuple):
    template_image: np.ndarray
    template_labels: np.ndarray
    target_image: np.ndarray
    target_labels: np.ndarray
    affine_ras: np.ndarray
    ddf_vox: np.ndarray


def synthetic_pair(
    side: int = 48,
    *,
    spacing_mm: float = 2.0,
    amplitude_vox: float = 3.0,
    noise: float = 0.02,
    seed: int = 0,
) -> SyntheticPair:
    """A phantom (body ellipsoid = label 1 holding two spheres = labels 2, 3 and an ellipsoid =
    label 4, distinct intensities, Gaussian noise) and its copy deformed by a known smooth
    displacement (sines of period ``side`` voxels, peak ``amplitude_vox`` per axis):
    ``target(x) = template(x + ddf_vox(x))``. Both share ``affine_ras`` (``spacing_mm`` voxels,
    centred on the origin).
    """

    rng = np.random.default_rng(seed)
    n = side
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64)] * 3, indexing="ij"))
    c = (n - 1) / 2

    def phantom(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y, z = (points - c) / n
        labels = np.zeros(points.shape[1:], dtype=np.uint8)
        labels[(x / 0.40) ** 2 + (y / 0.33) ** 2 + (z / 0.38) ** 2 <= 1] = 1
        labels[(x + 0.15) ** 2 + (y - 0.05) ** 2 + z**2 <= 0.12**2] = 2
        labels[(x - 0.17) ** 2 + (y + 0.08) ** 2 + (z - 0.10) ** 2 <= 0.10**2] = 3
        labels[
            ((x - 0.05) / 0.22) ** 2
            + ((y - 0.17) / 0.07) ** 2
            + ((z + 0.14) / 0.10) ** 2
            <= 1
        ] = 4
        return labels, np.array([0.0, 0.4, 1.0, 0.7, 0.15], dtype=np.float32)[labels]

    t = 2 * np.pi * grid / n
    ddf = amplitude_vox * np.stack(
        [
            np.sin(t[1]) * np.cos(t[2]),
            np.sin(t[2]) * np.cos(t[0]),
            np.sin(t[0]) * np.cos(t[1]),
        ]
    )
    template_labels, template_image = phantom(grid)
    target_labels, target_clean = phantom(grid + ddf)
    template_image = template_image + noise * rng.standard_normal(
        template_image.shape
    ).astype(np.float32)
    target_image = target_clean + noise * rng.standard_normal(
        target_clean.shape
    ).astype(np.float32)
    affine = np.diag([spacing_mm, spacing_mm, spacing_mm, 1.0])
    affine[:3, 3] = -spacing_mm * c
    return SyntheticPair(
        template_image.astype(np.float32),
        template_labels,
        target_image.astype(np.float32),
        target_labels,
        affine,
        ddf.astype(np.float32),
    )
