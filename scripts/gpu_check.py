#!/usr/bin/env python
"""Accelerator check: the tiny random model of the real architecture on CUDA against CPU.

Run it on a GPU machine (``PYTHONPATH=src python scripts/gpu_check.py --out gpu_check.json``);
with ``--device cpu`` it runs anywhere and compares CPU with CPU. Nothing here needs real weights.

1. Inference: one forced answer with a grounding box and two ``[SEG]`` tokens through
   ``CitrusVPipeline`` on CPU (float32) and on the device (float32, then bfloat16): the text, the
   parsed boxes, SAM2's IoU / object scores and the masks must agree (float32 closely, bfloat16
   loosely); generation and mask decoding time per call on the device.
2. Training: a short stage-3 run (LM loss + mask loss, per-component learning rates, bf16 through
   Accelerate where the device supports it): every loss finite, the LM loss falling.

Writes one JSON report and exits non-zero when a check fails.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # conftest's data builders


def _pipeline_results(checkpoint: Path, device: str, dtype: torch.dtype, answer: str, image) -> tuple[object, float]:
    from citrusv.inference import CitrusVPipeline
    from citrusv.inference.constraints import ForcedTokens

    pipeline = CitrusVPipeline.from_pretrained(checkpoint, device=device, dtype=dtype)
    pipeline.gate_by_object_score = False  # random weights say "absent"; compare the masks themselves
    processor = pipeline.processor
    forced = processor.tokenizer(answer, add_special_tokens=False)["input_ids"] + [processor.token_ids.im_end]
    pipeline(image, "Find the liver and the spleen.", logits_processor=[ForcedTokens(forced)], max_new_tokens=64)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = pipeline(image, "Find the liver and the spleen.", logits_processor=[ForcedTokens(forced)], max_new_tokens=64)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def _compare(reference, other) -> dict:
    agreement = [float((a.mask == b.mask).mean()) for a, b in zip(reference.masks, other.masks)]
    return {
        "text_equal": reference.text == other.text,
        "boxes_equal": [b.xyxy_orig_px for b in reference.boxes] == [b.xyxy_orig_px for b in other.boxes],
        "masks": len(other.masks),
        "max_score_diff": max((abs(a.score - b.score) for a, b in zip(reference.masks, other.masks)), default=0.0),
        "max_object_score_diff": max((abs(a.object_score - b.object_score) for a, b in zip(reference.masks, other.masks)),
                                     default=0.0),
        "min_mask_pixel_agreement": min(agreement, default=1.0),
        "foreground_px": [int(m.area_px) for m in other.masks],
    }


def check_inference(checkpoint: Path, device: str) -> dict:
    from conftest import random_image

    image = random_image(96, 128, 7)
    answer = 'The liver is at [{"bbox_2d": [10, 20, 60, 70], "label": "liver"}] [SEG] and the spleen [SEG].'
    reference, cpu_s = _pipeline_results(checkpoint, "cpu", torch.float32, answer, image)
    fp32, fp32_s = _pipeline_results(checkpoint, device, torch.float32, answer, image)
    report = {"cpu_seconds": round(cpu_s, 4), "float32": {**_compare(reference, fp32), "seconds": round(fp32_s, 4)}}
    bf16_ok = device == "cpu" or torch.cuda.is_bf16_supported()
    if bf16_ok:
        bf16, bf16_s = _pipeline_results(checkpoint, device, torch.bfloat16, answer, image)
        report["bfloat16"] = {**_compare(reference, bf16), "seconds": round(bf16_s, 4)}
    f = report["float32"]
    report["ok"] = bool(f["text_equal"] and f["boxes_equal"] and f["masks"] == 2 and f["max_score_diff"] < 1e-3
                        and f["max_object_score_diff"] < 1e-3 and f["min_mask_pixel_agreement"] > 0.995)
    if "bfloat16" in report:
        b = report["bfloat16"]
        report["ok"] = report["ok"] and bool(b["text_equal"] and b["masks"] == 2 and b["max_score_diff"] < 0.05
                                             and b["min_mask_pixel_agreement"] > 0.9)
    return report


def check_training(checkpoint: Path, work: Path) -> dict:
    from conftest import write_training_data

    from citrusv.train.config import load_stage_config
    from citrusv.train.trainer import train

    data = write_training_data(work / "data", count=16)
    config = load_stage_config(3, overrides={
        "max_length": 512, "warmup_steps": 1, "logging_steps": 1, "image_min_pixels": 1024, "image_max_pixels": 4096,
        "gradient_checkpointing": False, "per_device_batch_size": 2, "gradient_accumulation_steps": 2, "epochs": 3,
        "save_steps": 1000, "mixed_precision": "auto", "learning_rates.llm": 1e-3, "learning_rates.seg": 1e-3})
    start = time.perf_counter()
    result = train(config, checkpoint, [data], work / "run", progress=False)
    seconds = time.perf_counter() - start
    records = [json.loads(line) for line in result.log_file.read_text().splitlines()]
    losses = [r["lm_loss"] for r in records]
    mask_losses = [r["mask_bce_loss"] + r["mask_dice_loss"] for r in records if r.get("masks", 0) > 0]
    finite = all(math.isfinite(v) for v in losses + mask_losses)
    return {"steps": result.global_step, "seconds": round(seconds, 2), "first_lm_loss": losses[0], "last_lm_loss": losses[-1],
            "mask_losses": len(mask_losses), "all_finite": finite,
            "ok": bool(finite and losses[-1] < losses[0] and len(mask_losses) > 0)}


def _checkpoint_with_spread_masks(path: Path) -> Path:
    """A tiny checkpoint whose SAM2 weights are spread so that masks are not all empty."""
    from conftest import spread_sam_weights

    from citrusv.model.tiny import tiny_model, tiny_tokenizer
    from citrusv.processing.processor import CitrusVProcessor

    model, tokenizer = tiny_model("qwen2_5_vl", seed=0, tokenizer=tiny_tokenizer("bpe", backbone="qwen2_5_vl"))
    spread_sam_weights(model)
    model.save_pretrained(path)
    CitrusVProcessor.for_model_config(model.config, tokenizer).save_pretrained(path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    args = parser.parse_args()
    report: dict = {"device": args.device, "torch": torch.__version__,
                    "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None}
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = _checkpoint_with_spread_masks(Path(tmp) / "ckpt")
        for name, check in (("inference", lambda: check_inference(checkpoint, args.device)),
                            ("training", lambda: check_training(checkpoint, Path(tmp)))):
            try:
                report[name] = check()
            except Exception as err:  # noqa: BLE001 - report every check, then fail
                report[name] = {"ok": False, "error": f"{type(err).__name__}: {err}"}
            print(name, json.dumps(report[name]), flush=True)
    report["ok"] = all(report[k]["ok"] for k in ("inference", "training"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print("ok" if report["ok"] else "FAILED", "->", args.out)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
