"""``citrusv convert``: assemble a new checkpoint from parts, or convert a released one."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("convert", help="assemble or convert checkpoints",
                                 description="Build checkpoints in citrusv's layout.")
    sub = parser.add_subparsers(dest="convert_command", required=True, metavar="WHAT")
    assemble = sub.add_parser("assemble", help="Qwen2.5-VL / Qwen3-VL folder + SAM2 checkpoint → new Citrus-V",
                              description="Assemble a fresh Citrus-V (random segmentation projector) from a "
                                          "transformers Qwen2.5-VL or Qwen3-VL folder and an original SAM2 .pt "
                                          "(its file name picks the architecture) or a transformers SAM2 folder.")
    assemble.add_argument("--mllm", required=True, type=Path, help="Qwen2.5-VL / Qwen3-VL checkpoint folder")
    assemble.add_argument("--sam2", required=True, type=Path, help="sam2_hiera_large.pt, sam2.1_hiera_t.pt, ... or a folder")
    assemble.add_argument("--sam2-variant", default=None,
                          help="architecture of the .pt when its file name does not say (e.g. sam2.1_hiera_t for MedSAM2)")
    assemble.add_argument("--out", required=True, type=Path)
    assemble.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    assemble.add_argument("--min-pixels", type=int, default=None, help="training smart-resize floor to record")
    assemble.add_argument("--max-pixels", type=int, default=None, help="training smart-resize budget to record")
    assemble.set_defaults(run=run_assemble)
    released = sub.add_parser("released", help="released Citrus-V folder → citrusv layout",
                              description="Convert a released Citrus-V checkpoint (grounding_encoder.sam2_model.* "
                                          "with original SAM2 names) into citrusv's layout.")
    released.add_argument("--src", required=True, type=Path)
    released.add_argument("--out", required=True, type=Path)
    released.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    released.set_defaults(run=run_released)


def run_assemble(args: argparse.Namespace) -> int:
    from ..model.checkpoint import assemble_citrus_v
    from ..processing import CitrusVProcessor

    model, tokenizer = assemble_citrus_v(args.mllm, args.sam2, sam2_variant=args.sam2_variant, dtype=args.dtype,
                                         image_min_pixels=args.min_pixels,
                                         image_max_pixels=args.max_pixels)
    model.save_pretrained(args.out)
    CitrusVProcessor.for_model_config(model.config, tokenizer).save_pretrained(args.out)
    print(f"assembled Citrus-V ({model.config.backbone}) in {args.out}; [SEG] id {model.config.seg_token_id}")
    return 0


def run_released(args: argparse.Namespace) -> int:
    from ..model.checkpoint import load_citrus_v
    from ..processing import CitrusVProcessor

    model, report = load_citrus_v(args.src, dtype=args.dtype, return_report=True, progress=True)
    if report.layout != "released":
        print(f"note: {args.src} is already in citrusv's layout; writing a copy")
    model.save_pretrained(args.out)
    CitrusVProcessor.from_pretrained(args.src, config=model.config).save_pretrained(args.out)
    print(f"converted {report.loaded} tensors ({len(report.dropped)} video-only SAM2 weights dropped) into {args.out}")
    return 0
