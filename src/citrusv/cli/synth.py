"""``citrusv synth``: synthetic and derived training data.

``synth docs``: the medical-document pipeline; ``synth drr``: CT → radiograph with exact structure
boxes (``citrusv.synth.drr``); ``synth register``: template labels warped onto a target volume
(``citrusv.synth.register``).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._common import show_progress


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("synth", help="synthesise training data",
                                 description="Synthesise training data. See docs/documents.md for `synth docs` and "
                                             "docs/synthesis.md for `synth drr`.")
    groups = parser.add_subparsers(dest="synth_command", required=True, metavar="GROUP")
    _add_drr_parser(groups)
    _add_register_parser(groups)
    docs = groups.add_parser("docs", help="medical documents: render, normalize, parse (dual VLM consensus), build-qa",
                             description="Medical-document pipeline: render reports with exact truth, normalise "
                                         "page geometry, dual-parse with two VLM endpoints and keep agreed tables "
                                         "(Easy / Hard buckets), derive QA and a MedDocBench export.")
    sub = docs.add_subparsers(dest="docs_command", required=True, metavar="ACTION")

    render = sub.add_parser("render", help="render documents with ground truth and capture artefacts")
    render.add_argument("--out", type=Path, required=True, help="folder: images/, clean/, manifest.jsonl")
    render.add_argument("--n", type=int, default=100, help="number of documents")
    render.add_argument("--kinds", default="lab", help="comma-separated: lab, general")
    render.add_argument("--languages", default="en,zh", help="comma-separated: en, zh")
    render.add_argument("--artefacts", default="random", choices=["random", "rotate", "none"],
                        help="random photo artefacts, rotation + skew only, or none")
    render.add_argument("--max-skew", type=float, default=10.0, help="largest skew in degrees")
    render.add_argument("--width", type=int, default=900, help="page width in pixels")
    render.add_argument("--seed", type=int, default=0)
    render.set_defaults(run=_render)

    normalize = sub.add_parser("normalize", help="perspective, orientation, deskew and dewarp of page images")
    normalize.add_argument("--input", type=Path, required=True, help="manifest.jsonl or a folder of images")
    normalize.add_argument("--out", type=Path, required=True, help="folder: normalised images and geometry.jsonl")
    normalize.set_defaults(run=_normalize)

    parse = sub.add_parser("parse", help="dual parsing with agreement checking (Easy / Hard / rejected)")
    parse.add_argument("--manifest", type=Path, required=True, help="manifest.jsonl from `render` (or same layout)")
    parse.add_argument("--out", type=Path, required=True, help="folder: consensus.jsonl, normalized/")
    parse.add_argument("--oracle", action="store_true", help="use the manifest's truth as both parsers (demo, check)")
    for name in ("a", "b"):
        parse.add_argument(f"--parser-{name}", default=None, help=f"parser {name.upper()}: OpenAI-compatible API root")
        parse.add_argument(f"--model-{name}", default=None, help=f"parser {name.upper()}: served model name")
    parse.add_argument("--judge", default=None, help="equivalence judge: API root (default: parser A's)")
    parse.add_argument("--judge-model", default=None, help="judge model name (none: exact match only)")
    parse.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    parse.add_argument("--cache", type=Path, default=None, help="disk cache for endpoint answers")
    parse.set_defaults(run=_parse)

    build = sub.add_parser("build-qa", help="QA samples (sample schema) and a MedDocBench export from consensus.jsonl")
    build.add_argument("--consensus", type=Path, required=True, help="consensus.jsonl from `parse`")
    build.add_argument("--out", type=Path, required=True, help="output samples JSONL")
    build.add_argument("--meddoc-out", type=Path, default=None, help="also write a MedDocBench-format folder")
    build.add_argument("--simple-per-doc", type=int, default=3)
    build.add_argument("--compare-per-doc", type=int, default=2)
    build.add_argument("--seed", type=int, default=0)
    build.set_defaults(run=_build_qa)


def _progress(items: Iterable[Any], description: str, total: int) -> Iterable[Any]:
    if not show_progress():
        return items
    from tqdm import tqdm

    return tqdm(items, desc=description, total=total, unit="doc")


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _render(args: argparse.Namespace) -> int:
    from ..synth.docs.pipeline import render_corpus

    counts = render_corpus(args.out, args.n, kinds=_split(args.kinds), languages=_split(args.languages), seed=args.seed,
                           width=args.width, artefacts=args.artefacts, max_skew_deg=args.max_skew, progress=_progress)
    print(json.dumps(counts))
    return 0


def _normalize(args: argparse.Namespace) -> int:
    from ..synth.docs.pipeline import normalize_corpus

    print(json.dumps(normalize_corpus(args.input, args.out, progress=_progress)))
    return 0


def _client(base_url: str, model: str, args: argparse.Namespace) -> Any:
    from ..llm import LLMClient

    return LLMClient(base_url, model, api_key=os.environ.get(args.api_key_env), cache_dir=args.cache)


def _parse(args: argparse.Namespace) -> int:
    from ..synth.docs.consensus import LLMEquivalenceJudge, VLMTableParser
    from ..synth.docs.pipeline import parse_corpus
    from ..synth.docs.qa import general_qa_consensus

    endpoints = (args.parser_a, args.model_a, args.parser_b, args.model_b)
    if args.oracle == any(endpoints):
        raise ValueError("give either --oracle or --parser-a/--model-a/--parser-b/--model-b")
    parser_a = parser_b = judge = general = None
    if not args.oracle:
        if not all(endpoints):
            raise ValueError("--parser-a, --model-a, --parser-b and --model-b are all required")
        client_a, client_b = _client(args.parser_a, args.model_a, args), _client(args.parser_b, args.model_b, args)
        parser_a, parser_b = VLMTableParser(client_a, "a"), VLMTableParser(client_b, "b")
        judge_client = _client(args.judge or args.parser_a, args.judge_model, args) if args.judge_model else None
        judge = LLMEquivalenceJudge(judge_client) if judge_client else None
        if judge_client is not None:
            def general(image: Any, doc_type: str) -> list[dict[str, Any]]:
                return general_qa_consensus(image, doc_type, client_a, [client_a, client_b], judge_client)
    counts = parse_corpus(args.manifest, args.out, parser_a, parser_b, judge=judge, general_qa=general,
                          progress=_progress)
    print(json.dumps(counts))
    return 0


def _build_qa(args: argparse.Namespace) -> int:
    from ..synth.docs.pipeline import build_qa

    counts = build_qa(args.consensus, args.out, meddoc_out=args.meddoc_out, seed=args.seed,
                      simple_per_doc=args.simple_per_doc, compare_per_doc=args.compare_per_doc, progress=_progress)
    print(json.dumps(counts))
    return 0


# ----------------------------------------------------------------------------- synth drr
def _add_drr_parser(groups: argparse._SubParsersAction) -> None:
    drr = groups.add_parser("drr", help="CT → radiograph (DRR) with exact per-structure boxes",
                            description="Render a digitally reconstructed radiograph of a CT (NIfTI file or DICOM "
                                        "series folder) and, with --labels, every structure's footprint box in "
                                        "image pixels. Writes <name>.png and <name>.json (geometry, boxes).")
    drr.add_argument("--ct", type=Path, required=True, help="CT in HU: NIfTI file or DICOM series folder")
    drr.add_argument("--labels", type=Path, default=None, help="label map on the CT's grid (NIfTI / DICOM)")
    drr.add_argument("--label-table", type=Path, default=None,
                     help="CSV of label value → structure name (columns id, structure)")
    drr.add_argument("--out", type=Path, required=True, help="output folder")
    drr.add_argument("--name", default=None, help="output file stem (default: <view>)")
    drr.add_argument("--view", default="PA", help="AP, PA, LAT, RLAT (ignored with --angle)")
    drr.add_argument("--angle", type=float, default=None, help="source angle in degrees from AP (oblique views)")
    drr.add_argument("--tilt", type=float, default=0.0, help="cranio-caudal tilt in degrees")
    drr.add_argument("--geometry", choices=["perspective", "parallel"], default="perspective")
    drr.add_argument("--sid", type=float, default=1000.0, help="source to isocentre, mm")
    drr.add_argument("--sdd", type=float, default=1500.0, help="source to detector, mm")
    drr.add_argument("--size", type=int, nargs=2, default=(512, 512), metavar=("H", "W"), help="detector pixels")
    drr.add_argument("--spacing", type=float, nargs=2, default=(0.8, 0.8), metavar=("ROW", "COL"),
                     help="detector pixel pitch, mm")
    drr.add_argument("--bits", type=int, choices=[8, 16], default=8)
    drr.add_argument("--downsample", type=int, default=1, help="block-average the CT by this factor first (speed)")
    drr.set_defaults(run=_drr)


def _drr(args: argparse.Namespace) -> int:
    from ..synth.drr import (
        ProjectionGeometry,
        load_ct_volume,
        load_label_table,
        load_label_volume,
        project_labels,
        render_drr,
        save_png,
    )

    common = {"kind": args.geometry, "tilt_deg": args.tilt, "sid_mm": args.sid, "sdd_mm": args.sdd,
              "detector_hw": tuple(args.size), "spacing_mm": tuple(args.spacing)}
    if args.angle is not None:
        geometry = ProjectionGeometry(angle_deg=args.angle, **common)
        stem = args.name or f"angle{args.angle:g}"
    else:
        geometry = ProjectionGeometry.view(args.view, **common)
        stem = args.name or args.view.upper()
    names = load_label_table(args.label_table) if args.label_table else None
    volume = load_ct_volume(args.ct)
    drr = render_drr(volume, geometry, downsample=args.downsample)
    args.out.mkdir(parents=True, exist_ok=True)
    image_path = save_png(args.out / f"{stem}.png", drr.to_image(bits=args.bits))
    structures = []
    if args.labels is not None:
        labels, affine = load_label_volume(args.labels)
        if labels.shape != volume.hu.shape:
            raise ValueError(f"--labels grid {labels.shape} differs from the CT's {volume.hu.shape}")
        for found in project_labels(labels, affine, drr.geometry, names):
            structures.append({"label": found.label, "name": found.name, "pixel_count": found.pixel_count,
                               "box_xyxy_px": [int(v) for v in found.box_xyxy_px]})
    summary = {"image": image_path.name, "ct": str(args.ct), "view": args.view if args.angle is None else None,
               "geometry": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(drr.geometry).items()},
               "structures": structures}
    (args.out / f"{stem}.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False, default=float))
    print(f"wrote {image_path} ({len(structures)} structure box(es))")
    return 0


# ----------------------------------------------------------------------------- synth register
def _add_register_parser(groups: argparse._SubParsersAction) -> None:
    reg = groups.add_parser("register", help="warp template labels onto a target volume, with QC",
                            description="Registration-based label transfer: register the template image to the "
                                        "target, warp the template labels (nearest neighbour) and write "
                                        "warped_labels.nii.gz in the target's geometry plus qc.json (Dice when "
                                        "--reference is given, fraction of folded voxels, runtime).")
    reg.add_argument("--template", type=Path, required=True, help="template image (NIfTI / DICOM series)")
    reg.add_argument("--template-labels", type=Path, required=True, help="label map on the template's grid")
    reg.add_argument("--target", type=Path, required=True, help="target image (NIfTI / DICOM series)")
    reg.add_argument("--reference", type=Path, default=None, help="target's own labels, for Dice in qc.json")
    reg.add_argument("--method", choices=["sitk", "bspline", "voxelmorph"], default="sitk",
                     help="sitk: affine + diffeomorphic demons (fast default, same modality); bspline: affine + "
                          "B-spline by mutual information (template of another modality); voxelmorph: a VoxelMorph "
                          "network optimised on this pair, then variational refinement")
    reg.add_argument("--out", type=Path, required=True, help="output folder")
    reg.set_defaults(run=_register)


def _register(args: argparse.Namespace) -> int:
    from ..synth.register import transfer_label_files

    files = transfer_label_files(args.template, args.template_labels, args.target, args.out,
                                 reference_labels=args.reference, method=args.method)
    qc = files.result.qc
    line = f"wrote {files.labels_path}; folded voxels {100 * qc['folding_fraction']:.3f} %, {qc['runtime_s']:.1f} s"
    if "mean_dice" in qc:
        line += f"; mean Dice {qc['mean_dice_before']:.3f} → {qc['mean_dice']:.3f}"
    print(line)
    return 0
