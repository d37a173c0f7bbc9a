"""Argument helpers shared by subcommands."""

from __future__ import annotations

import argparse
import sys


def add_runtime_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: cuda if available, else cpu)")
    parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16", "auto"],
                        help="weights dtype (default: float32 on CPU, the checkpoint's elsewhere)")
    parser.add_argument("--min-pixels", type=int, default=None, help="override the smart-resize pixel floor")
    parser.add_argument("--max-pixels", type=int, default=None, help="override the smart-resize pixel budget")


def add_generation_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--seed", type=int, default=None)


def generation_kwargs(args: argparse.Namespace) -> dict:
    return {"max_new_tokens": args.max_new_tokens, "do_sample": args.sample, "temperature": args.temperature,
            "top_p": args.top_p, "top_k": args.top_k, "seed": args.seed}


def show_progress() -> bool:
    return sys.stderr.isatty()
