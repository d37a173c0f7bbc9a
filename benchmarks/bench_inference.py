#!/usr/bin/env python
"""Inference latency of CitrusVPipeline vs. the release's two-pass approach, and loading memory.

Part 1, latency. For answers with 1 and 4 ``[SEG]`` tokens (decoding forced to the same token
schedule in both), on the same tiny random model:

* ours: ``CitrusVPipeline.run``: one ``generate()`` with hooks capturing ``[SEG]`` states, SAM2's
  image encoder once per image, masks upsampled to the original size, RLE, box parsing;
* release: a faithful re-implementation of the released ``CitrusV.generate`` (reference-release
  §2.4, §2.8): ``generate()`` once; if the answer holds ``[SEG]``, ``generate()`` again with
  ``output_hidden_states=True``; the last-layer states of every step are concatenated and the
  ``[SEG]`` rows projected; for EACH ``[SEG]`` SAM2's image encoder re-runs and one mask is
  decoded; masks are thresholded on SAM2's low-resolution grid, RLE-encoded, and resized to the
  original size with nearest neighbour by the client. The second pass gets the same generation
  settings (the release passes none, which would cap it at transformers' default 20 tokens).

The speedup depends on how SAM2's image encoding compares with generation: with G the cost of
one generation and E of one SAM2 encoding, the release costs about 2G + N·E and ours G + E. The
benchmark therefore runs several SAM2 sizes of the same tiny LLM ("sam_configs").

Part 2, memory. A larger tiny checkpoint is written, then loaded in a fresh process; the peak
resident-memory growth during ``from_pretrained`` is divided by the checkpoint's size on disk.
The same is measured for the usual "read the whole state dict, then load it" approach.

Writes one JSON file (default ``benchmarks/results/bench_inference.json``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _report import REPO, write_report


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _stats(samples: list[float]) -> dict:
    return {"median_s": statistics.median(samples), "p90_s": _percentile(samples, 90), "min_s": min(samples),
            "samples_s": samples}


# ------------------------------------------------------------------------- the release, re-implemented
@torch.no_grad()
def release_generate(model, processor, inputs, generation_config, logits_processor, orig_hw):
    """The released two-pass generation (batch size 1), with the client's mask post-processing."""
    from transformers import LogitsProcessorList

    from citrusv.processing.masks import resize_mask_nearest, rle_decode, rle_encode

    seg = model.config.seg_token_id
    kwargs = inputs.model_inputs()
    first = model.mllm.generate(**kwargs, generation_config=generation_config,
                                logits_processor=LogitsProcessorList(logits_processor()))
    if not (first[0, :-1] == seg).any():
        return first, []
    with_states = copy.deepcopy(generation_config)
    with_states.output_hidden_states = True
    with_states.return_dict_in_generate = True
    second = model.mllm.generate(**kwargs, generation_config=with_states,
                                 logits_processor=LogitsProcessorList(logits_processor()))
    sequence = second.sequences[0]
    states = torch.cat([step[-1][0] for step in second.hidden_states], dim=0)  # [L - 1, D]
    rows = (sequence[:-1] == seg).nonzero()[:, 0]  # prompt [SEG]s included, a trailing one dropped
    masks = []
    for row in rows.tolist():
        prompt = model.project_seg_hidden_states(states[row][None])
        out = model.segment(inputs.sam_pixel_values, prompt[None])  # re-encodes the image every time
        low = (out.mask_logits_lowres[0, 0] > 0).cpu().numpy()
        rle = rle_encode(low)
        masks.append(resize_mask_nearest(rle_decode(rle), orig_hw))
    return sequence, masks


# ------------------------------------------------------------------------- part 1
def bench_latency(sam_name: str, sam_node: dict, num_seg: int, new_tokens: int, repeats: int, warmup: int) -> dict:
    from transformers import GenerationConfig

    from citrusv.inference import CitrusVPipeline, GenerationSettings
    from citrusv.inference.constraints import ForcedTokens
    from citrusv.model.tiny import tiny_model
    from citrusv.processing import CitrusVProcessor
    from citrusv.processing.image import load_image

    model, tokenizer = tiny_model(sam2_model_node=sam_node)
    processor = CitrusVProcessor.for_model_config(model.config, tokenizer)
    pipeline = CitrusVPipeline(model, processor)
    rng = np.random.default_rng(0)
    image = load_image((rng.random((240, 320, 3)) * 255).astype(np.uint8)).image
    ids = processor.token_ids
    filler = tokenizer.convert_tokens_to_ids("Ġthe")
    positions = set(np.linspace(2, new_tokens - 3, num_seg).round().astype(int).tolist())
    schedule = [ids.seg if i in positions else filler for i in range(new_tokens - 1)] + [ids.im_end]
    inputs = processor([{"role": "user", "content": "Please segment the organs."}], [image])
    settings = GenerationSettings(max_new_tokens=new_tokens)
    config = GenerationConfig(max_new_tokens=new_tokens, do_sample=False, eos_token_id=[ids.im_end, ids.endoftext],
                              pad_token_id=ids.pad)

    def ours():
        return pipeline.run(inputs, settings, logits_processor=[ForcedTokens(schedule)])[0]

    def release():
        return release_generate(model, processor, inputs, config, lambda: [ForcedTokens(schedule)], (240, 320))

    check_ours, (_, check_release) = ours(), release()
    assert len(check_ours.masks) == num_seg and len(check_release) == num_seg, (len(check_ours.masks), len(check_release))
    timings: dict[str, list[float]] = {"ours": [], "release": []}
    for k in range(warmup + repeats):
        for name, fn in (("ours", ours), ("release", release)) if k % 2 == 0 else (("release", release), ("ours", ours)):
            start = time.perf_counter()
            fn()
            if k >= warmup:
                timings[name].append(time.perf_counter() - start)
    # Components, to explain the ratio: one generation and one SAM2 encoding.
    gen, enc = [], []
    for _ in range(max(3, repeats // 2)):
        start = time.perf_counter()
        model.mllm.generate(**inputs.model_inputs(), generation_config=config, logits_processor=[ForcedTokens(schedule)])
        gen.append(time.perf_counter() - start)
        start = time.perf_counter()
        with torch.no_grad():
            model.encode_sam_images(inputs.sam_pixel_values)
        enc.append(time.perf_counter() - start)
    ours_s, release_s = _stats(timings["ours"]), _stats(timings["release"])
    return {
        "sam": sam_name, "sam_image_size": model.config.sam_image_size, "num_seg": num_seg, "new_tokens": new_tokens,
        "ours": ours_s, "release": release_s, "speedup_median": release_s["median_s"] / ours_s["median_s"],
        "generate_median_s": statistics.median(gen), "sam_encode_median_s": statistics.median(enc),
    }


# ------------------------------------------------------------------------- part 2
_LOAD_CHILD = r"""
import json, os, sys, time
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
import torch, transformers, safetensors.torch
from citrusv.model import CitrusVForConditionalGeneration, CitrusVConfig
path, mode = sys.argv[1], sys.argv[2]
config = CitrusVConfig.from_pretrained(path)
before = rss("VmRSS:")
start = time.perf_counter()
if mode == "citrusv":
    model = CitrusVForConditionalGeneration.from_pretrained(path, dtype=torch.float32)
else:  # read the whole state dict, then build and load (the common pattern)
    state = safetensors.torch.load_file(os.path.join(path, "model.safetensors"))
    config._attn_implementation = "sdpa"
    model = CitrusVForConditionalGeneration(config)
    model.load_state_dict(state, strict=True)
    del state
elapsed = time.perf_counter() - start
print(json.dumps({"rss_before": before, "rss_peak": rss("VmHWM:"), "rss_after": rss("VmRSS:"), "seconds": elapsed,
                  "params": sum(p.numel() for p in model.parameters())}))
"""


def bench_loading(hidden: int, layers: int) -> dict:
    from citrusv.model.tiny import save_tiny_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ckpt"
        save_tiny_checkpoint(path, tokenizer="qwen", hidden_size=hidden, num_layers=layers)
        size = sum(f.stat().st_size for f in path.glob("*.safetensors"))
        results = {}
        for mode in ("citrusv", "naive"):
            out = subprocess.run([sys.executable, "-c", _LOAD_CHILD, str(path), mode], capture_output=True, text=True,
                                 check=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
            data = json.loads(out.stdout.strip().splitlines()[-1])
            growth = data["rss_peak"] - data["rss_before"]
            results[mode] = {**data, "peak_growth_bytes": growth, "peak_growth_over_checkpoint": growth / size}
        return {"checkpoint_bytes": size, "hidden_size": hidden, "num_layers": layers, "tokenizer": "qwen (151,668 tokens)",
                **results}


def main() -> int:
    from citrusv.model.sam2_conversion import SAM2_VARIANTS
    from citrusv.model.tiny import TINY_SAM2_MODEL_NODE

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_inference.json")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--sam", nargs="+", default=["tiny-128", "tiny-512", "hiera_t-1024"],
                        help="SAM2 configurations: tiny-<size> (the test SAM2 at that input size) or hiera_t-1024")
    parser.add_argument("--load-hidden", type=int, default=512)
    parser.add_argument("--load-layers", type=int, default=8)
    parser.add_argument("--skip-loading", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)

    sam_nodes = {}
    for name in args.sam:
        if name.startswith("tiny-"):
            sam_nodes[name] = {**TINY_SAM2_MODEL_NODE, "image_size": int(name.split("-")[1])}
        elif name == "hiera_t-1024":
            sam_nodes[name] = SAM2_VARIANTS["sam2.1_hiera_t"]
        else:
            parser.error(f"unknown SAM configuration {name}")
    latency = []
    for name, node in sam_nodes.items():
        for num_seg in (1, 4):
            row = bench_latency(name, node, num_seg, args.new_tokens, args.repeats, args.warmup)
            latency.append(row)
            print(f"{name:>14} {num_seg} [SEG]: ours {row['ours']['median_s'] * 1e3:8.1f} ms, release "
                  f"{row['release']['median_s'] * 1e3:8.1f} ms, speedup {row['speedup_median']:.2f}x "
                  f"(generate {row['generate_median_s'] * 1e3:.1f} ms, SAM2 encode {row['sam_encode_median_s'] * 1e3:.1f} ms)")
    loading = None if args.skip_loading else bench_loading(args.load_hidden, args.load_layers)
    if loading:
        print(f"loading {loading['checkpoint_bytes'] / 2**20:.1f} MiB: citrusv peak growth "
              f"{loading['citrusv']['peak_growth_over_checkpoint']:.2f}x, naive "
              f"{loading['naive']['peak_growth_over_checkpoint']:.2f}x")
    write_report("bench_inference", args.out, vars(args), {"latency": latency, "loading": loading})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
