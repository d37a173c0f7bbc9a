"""``citrusv infer``: one image + one prompt → answer, masks and an overlay."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ._common import add_generation_args, add_runtime_args, generation_kwargs, show_progress


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("infer", help="answer a prompt about an image (or every image of a folder)",
                                 description="Run Citrus-V on one image and print the answer. With --out, write "
                                             "mask_<k>.png, overlay.png and result.json. With a folder as --image, "
                                             "answer every image in it (PNG/JPEG/TIFF/BMP, DICOM, 2D NIfTI) into "
                                             "--out/results.jsonl plus mask PNGs; a rerun resumes.")
    parser.add_argument("--model", required=True, help="checkpoint folder (native or released layout) or hub id")
    parser.add_argument("--image", required=True, help="PNG / JPEG / TIFF / BMP image, or a folder of images")
    parser.add_argument("--batch-size", type=int, default=4, help="images per batch (folder mode)")
    parser.add_argument("--prompt", required=True, help='e.g. "Please segment the liver in this scan."')
    parser.add_argument("--out", type=Path, default=None, help="folder for mask PNGs, overlay.png and result.json")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    add_runtime_args(parser)
    add_generation_args(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..inference import CitrusVPipeline
    from ..inference.visualize import save_result_files
    from ..processing.image import load_image

    if Path(args.image).is_dir():
        return _run_folder(args)
    loaded = load_image(args.image)  # validate before loading the model
    dtype = None if args.dtype is None else args.dtype
    pipeline = CitrusVPipeline.from_pretrained(args.model, device=args.device, dtype=dtype,
                                               min_pixels=args.min_pixels, max_pixels=args.max_pixels,
                                               progress=show_progress())
    result = pipeline(loaded.image, args.prompt, **generation_kwargs(args))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(result.answer)
        for mask in result.masks:
            state = "found" if mask.found else "not found"
            print(f"[SEG] {mask.index}: {state}, area {mask.area_px} px, IoU score {mask.score:.3f}, "
                  f"object score {mask.object_score:.3f}")
        for box in result.boxes:
            print(f"box {box.label or ''} {[round(v, 1) for v in box.xyxy_orig_px]}")
        for warning in result.warnings:
            print(f"warning: {warning}")
    if args.out is not None:
        files = save_result_files(result, loaded.image, args.out)
        print(f"wrote {len(files)} file(s) to {args.out}")
    return 0


def _run_folder(args: argparse.Namespace) -> int:
    from ..inference import CitrusVPipeline
    from ..inference.batch import find_images, infer_folder

    if args.out is None:
        raise ValueError("a folder of images needs --out (results.jsonl and masks/ go there)")
    if not find_images(args.image):
        raise FileNotFoundError(f"no images found in {args.image}")
    pipeline = CitrusVPipeline.from_pretrained(args.model, device=args.device, dtype=args.dtype,
                                               min_pixels=args.min_pixels, max_pixels=args.max_pixels,
                                               progress=show_progress())
    summary = infer_folder(pipeline, args.image, args.prompt, args.out, batch_size=args.batch_size,
                           progress=show_progress(), **generation_kwargs(args))
    print(f"answered {summary.answered}, skipped {summary.skipped} (already done), failed {summary.failed}; "
          f"results: {summary.results}" + (f"; errors: {summary.errors}" if summary.failed else ""))
    return 0 if summary.failed == 0 else 1
