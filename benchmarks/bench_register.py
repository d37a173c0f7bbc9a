"""Registration label transfer: Dice before / after, folding and time per method.

Workloads:
* ``phantom``: ``citrusv.synth.register.synthetic_pair`` (48³, 2 mm, four labels, a known smooth
  sine displacement of 3 voxels peak).
* ``mni152`` (only when nilearn is importable): nilearn's MNI152 T1 at 2 mm (99 × 117 × 95),
  target = the same image warped by a seeded random smooth field (5³ control grid, cubic
  upsampling, σ 2.5 mm per axis) and scaled ×1.1; labels 1 = brain outside GM / WM, 2 = GM,
  3 = WM (nilearn's masks), plus the whole brain.

Writes ``benchmarks/results/register.json``. Run: ``python benchmarks/bench_register.py``
(about 2 minutes on 2 CPU threads; ``--no-mni`` for the phantom only).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _report import REPO, write_report

from citrusv.synth.register import (
    RegistrationOptions,
    dice_per_label,
    synthetic_pair,
    transfer_labels,
)


def mni_pair(seed: int = 0):
    from nilearn.datasets import (
        load_mni152_brain_mask,
        load_mni152_gm_mask,
        load_mni152_template,
        load_mni152_wm_mask,
    )
    from scipy.ndimage import map_coordinates, zoom

    template = load_mni152_template(resolution=2)
    image = np.asarray(template.get_fdata(), dtype=np.float32)
    labels = np.zeros(image.shape, np.uint8)
    labels[np.asarray(load_mni152_brain_mask(resolution=2).get_fdata()) > 0] = 1
    labels[np.asarray(load_mni152_gm_mask(resolution=2).get_fdata()) > 0] = 2
    labels[np.asarray(load_mni152_wm_mask(resolution=2).get_fdata()) > 0] = 3
    rng = np.random.default_rng(seed)
    spacing = np.sqrt((template.affine[:3, :3] ** 2).sum(axis=0))
    coarse = rng.normal(0.0, 2.5, size=(3, 5, 5, 5))
    ddf_vox = np.stack(
        [
            zoom(coarse[c], np.array(image.shape) / 5, order=3) / spacing[c]
            for c in range(3)
        ]
    )
    grid = np.stack(
        np.meshgrid(
            *[np.arange(n, dtype=np.float64) for n in image.shape], indexing="ij"
        )
    )
    target = 1.1 * map_coordinates(image, grid + ddf_vox, order=1).astype(np.float32)
    target_labels = map_coordinates(labels, grid + ddf_vox, order=0).astype(np.uint8)
    return image, labels, target, target_labels, template.affine


def run(
    name, template, template_labels, target, target_labels, affine, methods, options
) -> dict:
    entry: dict = {"shape": list(target.shape)}
    for method in methods:
        start = time.perf_counter()
        result = transfer_labels(
            template,
            template_labels,
            target,
            method,
            template_affine_ras=affine,
            target_affine_ras=affine,
            reference_labels=target_labels,
            options=options[method],
        )
        wall = time.perf_counter() - start
        qc = result.qc
        entry[method] = {
            "time_s": round(wall, 2),
            "dice_before": {str(k): round(v, 4) for k, v in qc["dice_before"].items()},
            "dice_after": {str(k): round(v, 4) for k, v in qc["dice"].items()},
            "mean_dice_before": round(qc["mean_dice_before"], 4),
            "mean_dice_after": round(qc["mean_dice"], 4),
            "whole_dice_before": round(
                dice_per_label(template_labels > 0, target_labels > 0, [1])[1], 4
            ),
            "whole_dice_after": round(
                dice_per_label(result.warped_labels > 0, target_labels > 0, [1])[1], 4
            ),
            "folding_fraction": qc["folding_fraction"],
            "jacobian_min": round(qc["jacobian_min"], 4),
        }
        print(name, method, entry[method], flush=True)
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", type=int, default=48)
    parser.add_argument("--methods", nargs="+", default=["sitk", "bspline", "voxelmorph"])
    parser.add_argument(
        "--no-mni", action="store_true", help="skip the nilearn MNI152 pair"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "register.json"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="monai")
    import SimpleITK as sitk

    torch.set_num_threads(args.threads)
    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(args.threads)
    defaults = RegistrationOptions(num_threads=args.threads)
    options = {"sitk": defaults, "bspline": defaults, "voxelmorph": defaults}
    results: dict = {"workloads": {}}
    p = synthetic_pair(args.side)
    results["workloads"]["phantom"] = run(
        "phantom",
        p.template_image,
        p.template_labels,
        p.target_image,
        p.target_labels,
        p.affine_ras,
        args.methods,
        options,
    )
    # the same phantom with the template in another "modality": tissue contrasts swapped (not a
    # monotonic remap, so histogram matching cannot undo it)
    other = np.array([0.0, 0.9, 0.2, 0.05, 0.6], np.float32)[p.template_labels]
    other = other + 0.02 * np.random.default_rng(5).standard_normal(other.shape).astype(np.float32)
    results["workloads"]["phantom_other_contrast"] = run(
        "phantom_other_contrast", other, p.template_labels, p.target_image, p.target_labels, p.affine_ras,
        args.methods, options,
    )
    if not args.no_mni and importlib.util.find_spec("nilearn") is not None:
        results["workloads"]["mni152"] = run(
            "mni152", *mni_pair(), args.methods, options
        )
    else:
        results["workloads"]["mni152"] = "skipped (nilearn not installed or --no-mni)"
    results["load_average_1_5_15"] = list(
        os.getloadavg()
    )  # other jobs on the CPU inflate the timings
    import monai

    results["versions_extra"] = {
        "SimpleITK": sitk.Version_VersionString(),
        "monai": monai.__version__,
    }
    write_report(
        "register",
        args.out,
        {
            "side": args.side,
            "threads": args.threads,
            "methods": args.methods,
            "options": defaults.__dict__,
        },
        results,
    )


if __name__ == "__main__":
    main()
