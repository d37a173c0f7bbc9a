#!/usr/bin/env python
"""Document geometry and pipeline exactness on rendered reports with known truth.

Part 1 (orientation and deskew). Rendered pages (lab reports and general documents, English and
Chinese, one- and two-column tables) rotated by 0 / 90 / 180 / 270 degrees in equal shares plus a
uniform skew in ±``--max-skew`` degrees; condition ``clean`` has nothing else, condition
``photo`` adds random blur, shadow and JPEG noise (no perspective, no curl: their truth is not a
single angle). Reports orientation accuracy (target >= 99 %), skew residual |found - true| in
degrees (median / p90 / max; target <= 1) and time per page.

Part 2 (full photo artefacts). ``normalize_page`` on random captures with perspective on a
background and page curl on half of them, plus blur, shadow, JPEG and partial crops: orientation
accuracy of the whole normalisation, and the skew left on its output as our own detector measures
it (the truth skew of a perspective capture is not one angle).

Part 3 (exactness). Lab reports through ``consensus`` with two oracle parsers, from captures with
rotation, skew and perspective: the agreed table scored against the truth with the evaluation
suite's full-parse scorer (strict), and the abnormality labels recomputed from the agreed table
against the rendered ones (target: F1 = 1.0, labels 100 %).

Writes one JSON file (default ``benchmarks/results/docs_geometry.json``). Runs in about 1.5 minutes
with the defaults on one CPU core.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np
from _report import REPO, write_report

from citrusv.eval.metrics.meddoc_full import score_full_parse
from citrusv.synth.docs.artefacts import Artefacts, apply_artefacts, random_artefacts
from citrusv.synth.docs.consensus import OracleParser, consensus, entries_to_markdown
from citrusv.synth.docs.geometry import detect_orientation, normalize_page
from citrusv.synth.docs.normalize import abnormality
from citrusv.synth.docs.render import (
    font_report,
    random_general_document,
    random_lab_report,
    render_general_document,
    render_lab_report,
)


def _page(rng: random.Random, i: int, width: int):
    language = "zh" if i % 2 else "en"
    if i % 5 == 4:
        return render_general_document(random_general_document(rng, language), width=width, rng=rng), "general", language
    return render_lab_report(random_lab_report(rng, language), width=width, rng=rng), "lab", language


def orientation_part(n: int, width: int, max_skew: float, seed: int, photo: bool) -> dict:
    rng = random.Random(seed)
    correct, residuals, seconds, failures = 0, [], [], []
    for i in range(n):
        page, kind, language = _page(rng, i, width)
        truth = Artefacts(rotation=(0, 90, 180, 270)[i % 4], skew_deg=rng.uniform(-max_skew, max_skew),
                          blur=rng.uniform(0.3, 1.2) if photo and rng.random() < 0.5 else 0.0,
                          shadow=rng.uniform(0.1, 0.35) if photo and rng.random() < 0.4 else 0.0,
                          jpeg_quality=rng.randint(40, 90) if photo and rng.random() < 0.6 else None, seed=i)
        image = apply_artefacts(page, truth)
        start = time.perf_counter()
        found = detect_orientation(image)
        seconds.append(time.perf_counter() - start)
        ok = found.orientation == truth.rotation
        correct += ok
        if ok:
            residuals.append(abs(found.skew_deg - truth.skew_deg))
        else:
            failures.append({"i": i, "kind": kind, "language": language, "rotation": truth.rotation,
                             "skew_deg": round(truth.skew_deg, 2), "found": found.orientation})
    r = np.asarray(residuals)
    return {"pages": n, "orientation_accuracy": correct / n, "failures": failures,
            "skew_residual_deg": {"median": float(np.median(r)), "p90": float(np.percentile(r, 90)), "max": float(r.max())},
            "seconds_per_page": {"median": float(np.median(seconds)), "p90": float(np.percentile(seconds, 90))}}


def pipeline_part(n: int, width: int, seed: int) -> dict:
    """``normalize_page`` on full random photo artefacts (perspective, curl, crop included)."""
    rng = random.Random(seed)
    correct, residuals, seconds = 0, [], []
    for i in range(n):
        page, _, _ = _page(rng, i, width)
        truth = random_artefacts(rng, p_perspective=0.5, p_curl=0.5)
        truth.rotation = (0, 90, 180, 270)[i % 4]
        image = apply_artefacts(page, truth)
        start = time.perf_counter()
        result = normalize_page(image)
        seconds.append(time.perf_counter() - start)
        correct += result.step("orientation").params["orientation"] == truth.rotation
        residuals.append(abs(detect_orientation(result.image).skew_deg))
    r = np.asarray(residuals)
    return {"pages": n, "orientation_accuracy": correct / n,
            "self_measured_residual_skew_deg": {"median": float(np.median(r)), "max": float(r.max())},
            "seconds_per_page": {"median": float(np.median(seconds)), "p90": float(np.percentile(seconds, 90))}}


def exactness_part(n: int, width: int, seed: int) -> dict:
    rng = random.Random(seed)
    scores, labels_ok, labels, buckets = [], 0, 0, {}
    for i in range(n):
        report = random_lab_report(rng, "zh" if i % 2 else "en", p_abnormal=0.4)
        truth = [e.table_row() for e in report.entries]
        perspective = 0.04 if i % 3 == 0 else 0.0
        art = Artefacts(rotation=(0, 90, 180, 270)[i % 4], skew_deg=rng.uniform(-10, 10), perspective=perspective,
                        background=100 if perspective else None, seed=i)
        image = apply_artefacts(render_lab_report(report, width=width, rng=rng), art)
        oracle = OracleParser(lambda _image, truth=truth: truth)
        result = consensus(image, oracle, oracle)
        buckets[result.bucket] = buckets.get(result.bucket, 0) + 1
        score = score_full_parse(entries_to_markdown(result.entries), truth, strict=True)
        scores.append(min(f.f1 for f in score.fields.values()))
        for agreed, rendered in zip(result.entries, report.entries):
            labels += 1
            labels_ok += abnormality(agreed["result"], agreed["reference"]) == rendered.status
    return {"documents": n, "oracle_min_field_f1": min(scores), "oracle_mean_field_f1": float(np.mean(scores)),
            "abnormality_label_accuracy": labels_ok / labels, "abnormality_labels": labels, "buckets": buckets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=100, help="pages per orientation condition (multiple of 4)")
    parser.add_argument("--pipeline-pages", type=int, default=40, help="pages for the full-artefact normalize_page part")
    parser.add_argument("--documents", type=int, default=30, help="documents for the exactness part")
    parser.add_argument("--width", type=int, default=700, help="page width in pixels")
    parser.add_argument("--max-skew", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "docs_geometry.json")
    args = parser.parse_args()
    start = time.perf_counter()
    results = {
        "orientation_clean": orientation_part(args.pages, args.width, args.max_skew, args.seed, photo=False),
        "orientation_photo": orientation_part(args.pages, args.width, args.max_skew, args.seed + 1, photo=True),
        "pipeline_photo": pipeline_part(args.pipeline_pages, args.width, args.seed + 3),
        "exactness": exactness_part(args.documents, args.width, args.seed + 2),
        "fonts": font_report(),
    }
    results["wall_seconds"] = round(time.perf_counter() - start, 1)
    for key in ("orientation_clean", "orientation_photo"):
        part = results[key]
        print(f"{key}: accuracy {part['orientation_accuracy']:.4f}, skew residual max {part['skew_residual_deg']['max']:.3f} deg")
    print(f"pipeline_photo: {results['pipeline_photo']}")
    print(f"exactness: {results['exactness']}")
    write_report("docs_geometry", args.out, vars(args), results)


if __name__ == "__main__":
    main()
