"""``citrusv demo``: the whole inference pipeline on a tiny random checkpoint.

Until a trained demo model exists this is the project's main job: it writes a tiny RANDOM
checkpoint, loads it like a real one, and runs a question, a segmentation request and a
grounding request on a synthetic phantom image. The answers are meaningless; two of the three
answers are forced token by token so that the mask and box paths run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

BANNER = """\
citrusv demo: a tiny RANDOM Citrus-V checkpoint (LLM width 64, SAM2 at 128 px).
Its answers are MEANINGLESS. The demo shows the pipeline end to end: checkpoint writing and
loading, chat template, dual image encoders, one generation pass capturing [SEG] states, SAM2
masks at original resolution, box parsing, overlays. Load a real checkpoint with `citrusv infer`."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("demo", help="run the whole pipeline on a tiny random checkpoint (meaningless answers)",
                                 description=BANNER, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default: demo-output)")
    parser.add_argument("--backbone", default="qwen2_5_vl", choices=["qwen2_5_vl", "qwen3_vl"])
    parser.add_argument("--image", default=None, help="use this image instead of the synthetic phantom")
    parser.set_defaults(run=run)


def phantom(height: int = 240, width: int = 320) -> np.ndarray:
    """A synthetic axial 'CT slice': body ellipse, a liver-like and a kidney-like blob (uint8)."""
    yy, xx = np.mgrid[0:height, 0:width]

    def ellipse(cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
        return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1

    image = np.full((height, width), 10, dtype=np.float32)
    image[ellipse(height / 2, width / 2, height * 0.42, width * 0.45)] = 90
    image[ellipse(height * 0.45, width * 0.33, height * 0.17, width * 0.16)] = 150  # "liver"
    image[ellipse(height * 0.6, width * 0.68, height * 0.08, width * 0.06)] = 180  # "kidney"
    noise = np.random.default_rng(0).normal(0, 6, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from ..inference import CitrusVPipeline
    from ..inference.constraints import ForcedTokens
    from ..inference.visualize import save_result_files
    from ..model.tiny import save_tiny_checkpoint
    from ..processing.image import load_image

    print(BANNER, "\n")
    out: Path = args.out
    checkpoint = out / "tiny-checkpoint"
    started = time.perf_counter()
    save_tiny_checkpoint(checkpoint, backbone=args.backbone)
    print(f"[1/4] wrote a tiny random checkpoint to {checkpoint}")

    # Random SAM2 weights rarely score an object as present; draw the masks anyway (the scores
    # are still printed) so that the overlay shows the original-resolution masks.
    pipeline = CitrusVPipeline.from_pretrained(checkpoint, device="cpu", gate_by_object_score=False)
    print(f"[2/4] loaded it ({sum(p.numel() for p in pipeline.model.parameters()) / 1e6:.2f} M parameters)")

    if args.image:
        image = load_image(args.image).image
    else:
        image = Image.fromarray(phantom()).convert("RGB")
        out.mkdir(parents=True, exist_ok=True)
        image.save(out / "phantom.png")
    size = pipeline.processor(([{"role": "user", "content": "x"}]), [image]).image_sizes[0][0]
    tokenizer = pipeline.processor.tokenizer
    end = pipeline.processor.token_ids.im_end

    def forced(text: str) -> list[ForcedTokens]:
        return [ForcedTokens(tokenizer.encode(text, add_special_tokens=False) + [end])]

    # A box in the resized image (the model's own coordinate space), mapped back by the parser.
    h, w = size.resized_hw
    box = [round(w * 0.17), round(h * 0.28), round(w * 0.5), round(h * 0.62)]
    runs = [
        ("question", "What modality is this image?", None),
        ("segmentation", "Please segment the liver and the right kidney in this scan.",
         forced("Sure, the liver is [SEG] and the right kidney is [SEG].")),
        ("grounding", "Locate the liver, output its bbox coordinates using JSON format.",
         forced('```json\n[{"bbox_2d": [' + ", ".join(map(str, box)) + '], "label": "liver"}]\n```')),
    ]
    print("[3/4] running three prompts (answers 2 and 3 are forced token by token)")
    for name, prompt, processors in runs:
        t0 = time.perf_counter()
        result = pipeline(image, prompt, logits_processor=processors, max_new_tokens=48)
        files = save_result_files(result, image, out / name)
        print(f"\n--- {name}: {prompt}")
        print(f"answer ({time.perf_counter() - t0:.2f} s, {result.num_generated_tokens} tokens): {result.text!r}")
        for mask in result.masks:
            print(f"  mask {mask.index}: {'object present' if mask.found else 'object score says absent'} (object score {mask.object_score:.3f}), "
                  f"{mask.area_px} px at {mask.mask.shape[1]}x{mask.mask.shape[0]}, IoU score {mask.score:.3f}")
        for parsed in result.boxes:
            print(f"  box {parsed.label!r}: {[round(v, 1) for v in parsed.xyxy_orig_px]} (original pixels)")
        print(f"  files: {', '.join(str(f) for f in files)}")
    print(f"\n[4/4] done in {time.perf_counter() - started:.1f} s. Reminder: random weights, meaningless answers.")
    return 0
