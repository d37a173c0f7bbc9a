#!/usr/bin/env python
"""Curation throughput and memory: MinHash deduplication, perceptual hashing, and a whole run.

Part 1 (MinHash deduplication, texts/s). A synthetic corpus shaped like the training data's text
(a Zipf vocabulary of 20,000 words; 70 % short QA of about 25 words, 30 % reports of about 90),
with 10 % exact and 10 % near (one word changed) duplicates planted. Measured:

* ``signature_kernel``: ``minhash_signatures`` alone, per worker busy time.
* ``signatures``: ``fingerprints`` (row text, normalised-text hash, MinHash signature) for
  shards of 1,000 rows in ``--workers`` spawned processes, each reading its own JSONL shard, as
  the pipeline's workers do; wall clock from first submit to last result.
* ``index``: ``Deduplicator.process`` of those fingerprints in one process (the driver's part),
  with ``save_state`` after every shard as in a run.
* ``end_to_end``: both at once, the driver deduplicating shards as workers finish them (on a
  2-core machine the driver and the workers share the cores).
* the planted duplicates' precision and recall.

Part 2 (perceptual hashing, images/s). ``phash_file`` of 256×256 8-bit PNG files (decode,
resize, DCT) in ``--workers`` processes, and ``phash`` of in-memory arrays in one.

Part 3 (a whole run, peak memory). ``run_curation`` over ``--rows`` synthetic JSONL rows (every
filter, PHI scrubbing, tagging, deduplication) with ``--workers`` workers; peak resident memory
of the driver and of driver plus workers together (sampled every 0.2 s), rows/s, and the
deduplication index's own bytes per kept row.

Writes one JSON file (default ``benchmarks/results/bench_curate.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from _report import REPO, write_report


def corpus(count: int, seed: int) -> tuple[list[str], list[tuple[str, str] | None]]:
    """``(texts, planted)``: ``planted[i]`` is ``("exact" | "near", id of the original)`` for a
    planted duplicate, else None."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = np.array(sorted({"".join(rng.choice(letters, size=int(rng.integers(2, 12)))) for _ in range(21000)})[:20000])
    weights = 1.0 / np.arange(1, vocab.size + 1) ** 1.1
    weights /= weights.sum()
    texts: list[str] = []
    original: list[tuple[str, str] | None] = []
    for i in range(count):
        roll = rng.random()
        if i > 100 and roll < 0.1:  # exact duplicate, case and spacing changed
            j = int(rng.integers(0, i))
            while original[j] is not None:
                j = int(rng.integers(0, i))
            texts.append("  " + texts[j].upper())
            original.append(("exact", f"r{j}"))
        elif i > 100 and roll < 0.2:  # near duplicate: one word replaced
            j = int(rng.integers(0, i))
            while original[j] is not None:
                j = int(rng.integers(0, i))
            words = texts[j].split()
            words[int(rng.integers(len(words)))] = str(rng.choice(vocab, p=weights))
            texts.append(" ".join(words))
            original.append(("near", f"r{j}"))
        else:
            length = int(rng.lognormal(np.log(25), 0.3)) if rng.random() < 0.7 else int(rng.lognormal(np.log(90), 0.3))
            texts.append(" ".join(rng.choice(vocab, size=max(length, 8), p=weights)))
            original.append(None)
    return texts, original


def _row(i: int, text: str) -> dict:
    question, _, answer = text.partition(" ")
    return {"id": f"r{i}", "messages": [{"role": "user", "content": "Question: " + question},
                                        {"role": "assistant", "content": answer}]}


def _signature_kernel(path: str) -> tuple[int, float]:
    """Seconds of ``minhash_signatures`` alone (JSON reading and row handling excluded)."""
    from citrusv.curate.dedup import row_text
    from citrusv.curate.minhash import minhash_signatures

    with open(path, encoding="utf-8") as handle:
        texts = [row_text(json.loads(line)) for line in handle]
    start = time.perf_counter()
    minhash_signatures(texts)
    return len(texts), time.perf_counter() - start


def _fingerprint_shard(path: str) -> tuple[list[str], list]:
    from citrusv.curate.dedup import DedupConfig, fingerprints

    with open(path, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    return [r["id"] for r in rows], fingerprints(rows, DedupConfig(), None)


def bench_minhash(texts: list[str], original: list[str | None], workers: int, tmp: Path) -> dict:
    from citrusv.curate.dedup import DedupConfig, Deduplicator

    shards = []
    for start in range(0, len(texts), 1000):
        path = tmp / f"text-{start:08d}.jsonl"
        path.write_text("".join(json.dumps(_row(i, texts[i])) + "\n" for i in range(start, min(start + 1000, len(texts)))))
        shards.append(str(path))
    context = __import__("multiprocessing").get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        list(pool.map(_fingerprint_shard, shards[:workers]))  # start the workers and import numpy once
        start = time.perf_counter()
        results = list(pool.map(_fingerprint_shard, shards))
        signature_s = time.perf_counter() - start
        kernel_s = sum(seconds for _, seconds in pool.map(_signature_kernel, shards)) / workers
    state = tmp / "state"
    dedup = Deduplicator(DedupConfig())
    verdicts = {}
    start = time.perf_counter()
    for index, (ids, fps) in enumerate(results):
        verdicts.update(zip(ids, dedup.process(ids, fps)))
        dedup.save_state(state / f"{index:06d}.npz")
    index_s = time.perf_counter() - start
    index_bytes = dedup.nbytes
    del results

    dedup = Deduplicator(DedupConfig())
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        list(pool.map(_fingerprint_shard, shards[:workers]))
        start = time.perf_counter()
        for index, (ids, fps) in enumerate(pool.map(_fingerprint_shard, shards)):
            dedup.process(ids, fps)
            dedup.save_state(state / f"e2e-{index:06d}.npz")
        end_to_end_s = time.perf_counter() - start

    # A planted near duplicate is a duplicate by definition only when its shingle Jaccard with the
    # original reaches the threshold (one word changed in a 20-word text is about 0.75).
    from citrusv.curate.minhash import shingles

    threshold = DedupConfig().text_threshold
    positives, below, similarity = {}, 0, {}
    for i, planted in enumerate(original):
        if planted is None:
            continue
        if planted[0] == "near":
            a, b = shingles(texts[i]), shingles(texts[int(planted[1][1:])])
            similarity[f"r{i}"] = len(a & b) / len(a | b)
            if similarity[f"r{i}"] < threshold:
                below += 1
                continue
        positives[f"r{i}"] = planted[0]
    recall = {kind: round(sum(1 for rid, k in positives.items() if k == kind and verdicts[rid] is not None)
                          / max(sum(1 for k in positives.values() if k == kind), 1), 4) for kind in ("exact", "near")}
    near_by_jaccard = {}
    for lo, hi in ((threshold, 0.85), (0.85, 0.9), (0.9, 1.01)):
        bucket = [rid for rid, j in similarity.items() if lo <= j < hi]
        near_by_jaccard[f"{lo:.2f}-{min(hi, 1.0):.2f}"] = {
            "pairs": len(bucket), "recall": round(sum(verdicts[r] is not None for r in bucket) / max(len(bucket), 1), 4)}
    flagged = [rid for rid, v in verdicts.items() if v is not None]
    # a flag is right when the row was planted as a duplicate (its representative may be the
    # original or an earlier copy of it: the same text)
    correct = sum(1 for rid in flagged if original[int(rid[1:])] is not None)
    words = np.array([len(t.split()) for t in texts])
    n = len(texts)
    return {
        "texts": n, "mean_words": round(float(words.mean()), 1), "median_words": float(np.median(words)),
        "workers": workers,
        "signature_kernel_texts_per_s": round(n / kernel_s),
        "signatures_texts_per_s": round(n / signature_s), "index_texts_per_s": round(n / index_s),
        "end_to_end_texts_per_s": round(n / end_to_end_s),
        "planted_exact": sum(1 for k in positives.values() if k == "exact"),
        "planted_near_at_or_above_threshold": sum(1 for k in positives.values() if k == "near"),
        "planted_near_below_threshold": below, "threshold": threshold,
        "recall": recall, "near_recall_by_jaccard": near_by_jaccard, "precision": round(correct / max(len(flagged), 1), 4),
        "index_bytes_per_kept_row": round(index_bytes / len(dedup)),
    }


def _phash_files(paths: list[str]) -> list[int]:
    from citrusv.curate.phash import phash_file

    return [phash_file(p) for p in paths]


def bench_phash(count: int, workers: int, tmp: Path) -> dict:
    from PIL import Image

    from citrusv.curate.phash import phash

    rng = np.random.default_rng(1)
    folder = tmp / "images"
    folder.mkdir()
    arrays = []
    yy, xx = np.mgrid[:256, :256]
    for i in range(count):
        img = np.zeros((256, 256))
        for _ in range(5):
            cy, cx, r = rng.integers(0, 256, 2).tolist() + [int(rng.integers(10, 80))]
            img += ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r) * rng.uniform(0.3, 1.0)
        array = np.clip(img / max(img.max(), 1e-6) * 200 + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(array).save(folder / f"{i:05d}.png")
        arrays.append(array)
    paths = sorted(str(p) for p in folder.glob("*.png"))
    chunks = [paths[i:i + 64] for i in range(0, len(paths), 64)]
    context = __import__("multiprocessing").get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        list(pool.map(_phash_files, chunks[:workers]))
        start = time.perf_counter()
        list(pool.map(_phash_files, chunks))
        files_s = time.perf_counter() - start
    start = time.perf_counter()
    for array in arrays:
        phash(array)
    arrays_s = time.perf_counter() - start
    return {"images": count, "size": [256, 256], "workers": workers,
            "files_images_per_s": round(count / files_s), "arrays_images_per_s_one_process": round(count / arrays_s)}


def _peak_memory(process) -> tuple[int, int]:
    """Poll a running ``subprocess.Popen`` every 0.2 s until it exits: the peak resident memory of
    the process itself and of the process with all its descendants (its workers)."""
    import psutil

    root = psutil.Process(process.pid)
    driver = total = 0
    while process.poll() is None:
        try:
            own = root.memory_info().rss
            children = sum(c.memory_info().rss for c in root.children(recursive=True))
        except psutil.Error:
            continue
        driver, total = max(driver, own), max(total, own + children)
        time.sleep(0.2)
    return driver, total


def bench_run(rows: int, workers: int, tmp: Path) -> dict:
    """``citrusv curate run`` in a fresh process (so the benchmark's own memory does not count)."""
    import subprocess
    import sys

    texts, _ = corpus(rows, seed=2)
    source = tmp / "rows.jsonl"
    with open(source, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(_row(i, text)) + "\n" for i, text in enumerate(texts))
    del texts
    config = tmp / "run.yaml"
    config.write_text(json.dumps({"workers": workers, "charts": False, "filters": {"min_tokens": 5}, "dicom_deid": False}))
    out = tmp / "run"
    command = [sys.executable, "-c", "import sys; from citrusv.cli import main; sys.exit(main())",
               "curate", "run", "--config", str(config), "--source", str(source), "--out", str(out)]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    driver, total = _peak_memory(process)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"curate run failed: {process.stderr.read().decode()[-2000:]}")
    summary = json.loads((out / "report.json").read_text())
    return {"rows": rows, "workers": workers, "seconds": round(seconds, 1), "rows_per_s": round(rows / seconds),
            "kept": summary.get("kept"), "peak_rss_driver_mb": round(driver / 2**20), "peak_rss_total_mb": round(total / 2**20),
            "state_mb_on_disk": round(sum(p.stat().st_size for p in (out / "state").iterdir()) / 2**20)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_curate.json")
    parser.add_argument("--texts", type=int, default=200_000)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        texts, original = corpus(args.texts, args.seed)
        results["minhash"] = bench_minhash(texts, original, args.workers, Path(tmp))
        print("minhash", results["minhash"])
        del texts, original
        results["phash"] = bench_phash(args.images, args.workers, Path(tmp))
        print("phash", results["phash"])
        if args.rows:
            results["run"] = bench_run(args.rows, args.workers, Path(tmp))
            print("run", results["run"])
    write_report("bench_curate", args.out, vars(args), results)


if __name__ == "__main__":
    main()
