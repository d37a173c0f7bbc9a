#!/usr/bin/env python
"""Throughput and latency of ``citrusv serve`` with the tiny random model, and its overhead.

Workload: one 96×128 PNG sent as a data URL with a segmentation prompt; the model is forced to
write the same answer every time (``--answer-tokens`` tokens ending in ``[SEG]``, so every
request also runs SAM2 and returns a mask as RLE). The server runs in a child process (uvicorn,
default settings except the port) so client threads do not share its interpreter; clients are
threads with one ``httpx.Client`` each, every client sending requests back to back.

Measured:

* ``direct``: ``CitrusVPipeline.chat`` on the already-decoded image in this process, sequentially
  (the floor the server adds to);
* ``server``: at 1, 4 and 16 concurrent clients: throughput (requests/s), p50 / p90 / p99
  latency and the mean batch size the server formed;
* ``overhead``: server p50 at one client minus direct p50, and, per request, the client's latency
  minus the server's own ``pipeline.run`` time read from the ``Server-Timing`` header (HTTP, JSON,
  base64 + PNG decode, tokenisation, the queue's batching wait, the response). The second is
  measured on the same requests, so it does not drift with machine load.

Writes one JSON file (default ``benchmarks/results/serve.json``). Runs in under 2 minutes on two
CPU cores with the defaults.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _report import REPO, write_report

ANSWER = "The liver is here [SEG]"
PROMPT = "Please segment the liver."


def _percentiles(values: list[float]) -> dict[str, float]:
    array = np.asarray(values) * 1000.0
    return {"p50_ms": round(float(np.percentile(array, 50)), 2), "p90_ms": round(float(np.percentile(array, 90)), 2),
            "p99_ms": round(float(np.percentile(array, 99)), 2), "mean_ms": round(float(array.mean()), 2)}


def forced_pipeline(checkpoint: str, answer_tokens: int, threads: int):
    """The tiny pipeline, forced to write ``answer_tokens`` tokens ending in ``[SEG]``."""
    import torch

    from citrusv.inference import CitrusVPipeline
    from citrusv.inference.constraints import ForcedTokens

    torch.set_num_threads(threads)

    class Forced(CitrusVPipeline):
        def run(self, inputs, settings=None, *, logits_processor=None):
            return super().run(inputs, settings, logits_processor=[ForcedTokens(self.schedule), *(logits_processor or [])])

    pipeline = Forced.from_pretrained(checkpoint, device="cpu")
    ids = pipeline.processor.token_ids
    words = pipeline.processor.tokenizer(ANSWER, add_special_tokens=False)["input_ids"][:-1]
    body = (words * answer_tokens)[: max(answer_tokens - 2, 0)]
    pipeline.schedule = body + [ids.seg, ids.im_end]
    return pipeline


def serve_child(checkpoint: str, port: int, answer_tokens: int, threads: int) -> None:
    import uvicorn

    from citrusv.serve import ServeSettings, create_app

    app = create_app(forced_pipeline(checkpoint, answer_tokens, threads), ServeSettings(max_new_tokens_limit=4096))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _image_png() -> bytes:
    from PIL import Image

    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray((rng.random((96, 128, 3)) * 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_clients(url: str, body: dict, clients: int, per_client: int) -> dict:
    import httpx

    latencies: list[float] = []
    overheads: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(timeout=120) as session:
            for _ in range(per_client):
                start = time.perf_counter()
                response = session.post(url, json=body)
                elapsed = time.perf_counter() - start
                with lock:
                    if response.status_code != 200:
                        errors.append(f"{response.status_code}: {response.text[:200]}")
                    else:
                        latencies.append(elapsed)
                        timing = dict(part.strip().split(";dur=") for part in response.headers["server-timing"].split(","))
                        overheads.append(elapsed - float(timing["infer"]) / 1000.0)
                        masks = response.json()["citrusv"]["masks"]
                        assert masks and masks[0]["rle"]["size"] == [96, 128]

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    return {"clients": clients, "requests": clients * per_client, "errors": errors[:5], "error_count": len(errors),
            "wall_s": round(wall, 3), "throughput_rps": round(len(latencies) / wall, 2), **_percentiles(latencies),
            "outside_pipeline": _percentiles(overheads),
            "latencies_s": [round(v, 4) for v in latencies]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "serve.json")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=32, help="requests per concurrency level (rounded up)")
    parser.add_argument("--direct-repeats", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--answer-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the server and the direct run")
    parser.add_argument("--serve-child", nargs=2, metavar=("CHECKPOINT", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_child:
        serve_child(args.serve_child[0], int(args.serve_child[1]), args.answer_tokens, args.threads)
        return 0

    import httpx

    from citrusv.model.tiny import save_tiny_checkpoint
    from citrusv.processing.image import load_image

    png = _image_png()
    body = {"model": "citrus-v", "max_tokens": args.answer_tokens + 4, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(png).decode()}},
        {"type": "text", "text": PROMPT}]}]}
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = str(save_tiny_checkpoint(Path(tmp) / "tiny"))

        # direct pipeline calls, in this process
        pipeline = forced_pipeline(checkpoint, args.answer_tokens, args.threads)
        image = load_image(png).image
        conversation = [{"role": "user", "content": PROMPT}]
        for _ in range(args.warmup):
            pipeline.chat([conversation], [[image]], max_new_tokens=args.answer_tokens + 4)
        direct = []
        for _ in range(args.direct_repeats):
            start = time.perf_counter()
            [result] = pipeline.chat([conversation], [[image]], max_new_tokens=args.answer_tokens + 4)
            direct.append(time.perf_counter() - start)
        assert result.masks and result.num_generated_tokens == args.answer_tokens
        del pipeline

        # the server, in a child process
        port = _free_port()
        child = subprocess.Popen([sys.executable, __file__, "--serve-child", checkpoint, str(port),
                                  "--answer-tokens", str(args.answer_tokens), "--threads", str(args.threads)],
                                 env={**os.environ, "PYTHONPATH": str(REPO / "benchmarks")})
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.time() + 60
            while True:
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.time() > deadline or child.poll() is not None:
                    raise RuntimeError("the server did not start")
                time.sleep(0.2)
            url = f"{base}/v1/chat/completions"
            run_clients(url, body, 1, args.warmup)
            levels = []
            for clients in args.concurrency:
                per_client = max(1, -(-args.requests // clients))
                before = httpx.get(f"{base}/health").json()
                level = run_clients(url, body, clients, per_client)
                after = httpx.get(f"{base}/health").json()
                batches = after["batches_run"] - before["batches_run"]
                level["mean_batch_size"] = round((after["requests_done"] - before["requests_done"]) / max(batches, 1), 2)
                print(f"{clients:3d} client(s): {level['throughput_rps']:7.2f} req/s, p50 {level['p50_ms']:8.1f} ms, "
                      f"p99 {level['p99_ms']:8.1f} ms, mean batch {level['mean_batch_size']}, errors {level['error_count']}")
                levels.append(level)
        finally:
            child.terminate()
            child.wait(30)

    direct_stats = _percentiles(direct)
    single = next((lv for lv in levels if lv["clients"] == 1), None)
    overhead = None
    if single is not None:
        overhead = {"vs_direct_p50_ms": round(single["p50_ms"] - direct_stats["p50_ms"], 2),
                    "vs_direct_p50_ratio": round(single["p50_ms"] / direct_stats["p50_ms"], 3),
                    "outside_pipeline_p50_ms": single["outside_pipeline"]["p50_ms"],
                    "outside_pipeline_p99_ms": single["outside_pipeline"]["p99_ms"],
                    "note": "vs_direct: server p50 at 1 client minus direct pipeline.chat p50 (separate runs, "
                            "sensitive to machine load); outside_pipeline: per request, client latency minus the "
                            "server's own pipeline.run time (Server-Timing header): HTTP, JSON, base64 + PNG "
                            "decode, encoding, queue wait (max_wait_ms 5), RLE serialisation"}
    print(f"direct p50 {direct_stats['p50_ms']:.1f} ms; server overhead {overhead}")
    config = {k: v for k, v in vars(args).items() if k != "serve_child"}
    config.update(image_hw=[96, 128], answer=f"{args.answer_tokens} forced tokens ending in [SEG]",
                  server="uvicorn child process, default ServeSettings (max_batch_size 8, max_wait_ms 5)")
    write_report("bench_serve", args.out, config, {
        "direct": {**direct_stats, "throughput_rps": round(len(direct) / sum(direct), 2),
                   "latencies_s": [round(v, 4) for v in direct]},
        "server": levels, "overhead": overhead})
    return 0


if __name__ == "__main__":
    sys.exit(main())
