#!/usr/bin/env python
"""Best-fit packing: rows used, padding, packing time, and training throughput packed vs padded.

Part 1 (packing quality and speed). A realistic mixed length distribution of 1M samples (short
text QA, image VQA, segmentation, long reports / chain-of-thought, a tail longer than a row),
packed into rows of 8192 tokens: rows used against the lower bound ceil(total / 8192), the share
of row slots left as padding, and the time to pack.

Part 2 (training throughput). The same mixture, scaled to the tiny model (text, image and
segmentation samples with real images and masks), trained on CPU with the real collators and
forward / backward / AdamW step: non-padding tokens per second for packed rows against padded
batches of random samples (the usual unpacked setting), for several packed row lengths. Without
variable-length attention kernels (CPU SDPA), a packed row still computes attention across its
whole length, masked; the longer the row, the more of that work is thrown away.

Writes one JSON file (default ``benchmarks/results/bench_packing.json``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _report import REPO, write_report


def mixed_lengths(count: int, seed: int, scale: float = 1.0, cap: int = 40000) -> tuple[np.ndarray, np.ndarray]:
    """Token lengths and kinds (0 text, 1 VQA, 2 segmentation, 3 long report) of a training mixture."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(4, size=count, p=[0.45, 0.30, 0.15, 0.10])
    lengths = np.select([kind == 0, kind == 1, kind == 2],
                        [rng.lognormal(5.5, 0.6, count), rng.lognormal(6.6, 0.4, count), rng.lognormal(7.0, 0.3, count)],
                        rng.lognormal(8.0, 0.6, count))
    return np.clip((lengths * scale).astype(np.int64), 10, cap), kind


def bench_packing(count: int, max_length: int) -> dict:
    from citrusv.data.packing import pack_best_fit, packing_stats

    lengths, _ = mixed_lengths(count, seed=0)
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        rows = pack_best_fit(lengths, max_length)
        timings.append(time.perf_counter() - start)
    stats = packing_stats(lengths, rows, max_length)
    return {"samples": count, "max_length": max_length, "total_tokens": int(lengths.sum()),
            "rows": stats.rows, "lower_bound": stats.lower_bound, "rows_over_lower_bound": stats.rows_over_bound,
            "padding_fraction": stats.padding_fraction, "split_samples": stats.split_samples,
            "pack_seconds_median": float(np.median(timings)), "pack_seconds": timings}


def _training_samples(processor, folder: Path, count: int, seed: int):
    """Encoded samples of the mixture, scaled for the tiny model (text lengths / 4)."""
    from citrusv.data import parse_sample
    from citrusv.data.collate import encode_sample
    from citrusv.processing.masks import rle_encode

    rng = np.random.default_rng(seed)
    words = "the liver kidney heart lung lesion scan normal enlarged contrast finding report measures mm".split()
    lengths, kinds = mixed_lengths(count, seed, scale=0.25, cap=1800)
    samples = []
    for i, (length, kind) in enumerate(zip(lengths.tolist(), kinds.tolist())):
        answer = " ".join(rng.choice(words, size=max(3, length // 2)))
        row = {"id": str(i), "messages": [{"role": "user", "content": "Describe the findings."},
                                          {"role": "assistant", "content": answer}]}
        if kind in (1, 2):
            height, width = (int(v) for v in rng.integers(48, 97, size=2))
            path = folder / f"{i}.png"
            from PIL import Image

            Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)
            row["images"] = [str(path)]
            row["messages"][0]["content"] = "<image>" + row["messages"][0]["content"]
            if kind == 2:
                masks = []
                for k in range(1 + i % 2):
                    mask = np.zeros((height, width), dtype=bool)
                    mask[k * 4: height // 2 + k * 4, 5: width // 2] = True
                    masks.append(rle_encode(mask))
                row["masks"] = masks
                row["messages"][1]["content"] = " ".join(["[SEG]"] * len(masks)) + " " + answer
        samples.append(encode_sample(parse_sample(row), processor))
    return samples


def bench_throughput(count: int, max_length: int, padded_batch: int, packed_rows: int, seed: int, hidden: int) -> dict:
    from citrusv.data.collate import collate_packed, collate_samples
    from citrusv.data.packing import pack_best_fit
    from citrusv.model.tiny import tiny_model
    from citrusv.processing import CitrusVProcessor

    torch.manual_seed(seed)
    model, tokenizer = tiny_model(hidden_size=hidden)
    processor = CitrusVProcessor.for_model_config(model.config, tokenizer)
    with tempfile.TemporaryDirectory() as tmp:
        samples = _training_samples(processor, Path(tmp), count, seed)
    # As the training index does: samples with images or masks longer than a row cannot be split.
    samples = [s for s in samples
               if len(s.encoded.input_ids) <= max_length or (s.encoded.pixel_values is None and not s.num_masks)]
    lengths = np.array([len(s.encoded.input_ids) for s in samples])
    rows = pack_best_fit(lengths, max_length)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(samples))
    padded_batches = [collate_samples([samples[i] for i in order[k:k + padded_batch]], processor)
                      for k in range(0, len(order), padded_batch)]
    packed_batches = [collate_packed([[(samples[i], s, e) for i, s, e in row] for row in rows[k:k + packed_rows]], processor)
                      for k in range(0, len(rows), packed_rows)]

    def run(batches: list[dict], label: str) -> dict:
        """One epoch over all batches (the same tokens either way), after two warm-up steps."""
        trained = tiny_model(seed=seed, hidden_size=hidden)[0]
        trained.train()
        optimizer = torch.optim.AdamW(trained.parameters(), lr=1e-4)

        def step(batch: dict) -> None:
            out = trained(**batch)
            out.loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        for batch in batches[:2]:
            step(batch)
        real_tokens, slots = 0, 0
        start = time.perf_counter()
        for batch in batches:
            step(batch)
            mask = batch["segment_ids"] >= 0 if "segment_ids" in batch else batch["attention_mask"] > 0
            real_tokens += int(mask.sum())
            slots += mask.numel()
        elapsed = time.perf_counter() - start
        return {"steps": len(batches), "epoch_seconds": elapsed, "non_padding_tokens": real_tokens,
                "non_padding_tokens_per_s": real_tokens / elapsed, "padding_fraction": 1 - real_tokens / slots}

    single_batches = [collate_samples([samples[i]], processor) for i in order]
    packed = run(packed_batches, "packed")
    padded = run(padded_batches, "padded")
    single = run(single_batches, "batch of 1")
    return {"samples": len(samples), "max_length": max_length, "hidden_size": hidden, "padded_batch_size": padded_batch,
            "packed_rows_per_batch": packed_rows, "packed_rows": len(rows), "batch_of_1": single,
            "speedup_vs_batch_of_1": packed["non_padding_tokens_per_s"] / single["non_padding_tokens_per_s"],
            "mean_length": float(lengths.mean()), "packed": packed, "padded": padded,
            "speedup_tokens_per_s": packed["non_padding_tokens_per_s"] / padded["non_padding_tokens_per_s"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_packing.json")
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--max-length", type=int, default=8192)
    parser.add_argument("--train-samples", type=int, default=160)
    parser.add_argument("--train-max-length", type=int, nargs="+", default=[1024, 2048],
                        help="packed row lengths to measure (one throughput comparison each)")
    parser.add_argument("--padded-batch", type=int, default=8, help="samples per padded batch")
    parser.add_argument("--hidden-sizes", type=int, nargs="+", default=[64, 512],
                        help="LLM widths of the tiny model (64: attention-dominated; 512: closer to a real model's "
                             "MLP-dominated profile)")
    parser.add_argument("--packed-rows", type=int, default=4, help="packed rows per batch")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)

    packing = bench_packing(args.samples, args.max_length)
    print(f"packing {packing['samples']:,} samples into {packing['max_length']}-token rows: {packing['rows']:,} rows "
          f"({packing['rows_over_lower_bound']:.5f}x the lower bound), padding {packing['padding_fraction']:.4%}, "
          f"{packing['pack_seconds_median']:.2f} s")
    throughputs = []
    for hidden, max_length in [(h, m) for h in args.hidden_sizes for m in args.train_max_length]:
        throughput = bench_throughput(args.train_samples, max_length, args.padded_batch, args.packed_rows, args.seed, hidden)
        throughputs.append(throughput)
        print(f"training throughput (LLM width {hidden}, CPU): packed ({args.packed_rows} rows of {max_length}) "
              f"{throughput['packed']['non_padding_tokens_per_s']:.0f} tok/s "
              f"(padding {throughput['packed']['padding_fraction']:.1%}), padded batches of {args.padded_batch} "
              f"{throughput['padded']['non_padding_tokens_per_s']:.0f} tok/s "
              f"(padding {throughput['padded']['padding_fraction']:.1%}): {throughput['speedup_tokens_per_s']:.2f}x; "
              f"batch of 1 {throughput['batch_of_1']['non_padding_tokens_per_s']:.0f} tok/s: "
              f"{throughput['speedup_vs_batch_of_1']:.2f}x")
    write_report("bench_packing", args.out, vars(args), {"packing": packing, "throughput": throughputs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
