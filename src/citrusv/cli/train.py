"""``citrusv train``: one of the four training stages."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path
from typing import Any

_SKIP = {"learning_rates", "adam_betas", "stage", "name"}


def _field_type(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if args else annotation


def _rate(value: str) -> float | None:
    if value.lower() in ("frozen", "none", "null"):
        return None
    return float(value)


def add_parser(commands: argparse._SubParsersAction) -> None:
    from ..train.config import COMPONENTS, TrainConfig

    parser = commands.add_parser(
        "train", help="run a training stage (1-4)",
        description="Train Citrus-V. Settings come from configs/train/stage<N>.yaml (or --config); every field can be "
                    "overridden below or with --set key=value. Multi-GPU: `accelerate launch --config_file "
                    "configs/accelerate/<ddp|fsdp|deepspeed_zero2>.yaml -m citrusv train ...`.")
    parser.add_argument("--stage", type=int, required=True, choices=[1, 2, 3, 4])
    parser.add_argument("--model", required=True, help="checkpoint to start from (native or released layout)")
    parser.add_argument("--data", nargs="+", type=Path, help="JSONL files in the sample schema")
    parser.add_argument("--out", type=Path, help="run folder (checkpoints, final model, logs, plots)")
    parser.add_argument("--config", type=Path, default=None, help="YAML replacing the stage preset")
    parser.add_argument("--dry-run", action="store_true", help="print trainable / frozen parameters per component and "
                                                               "per learning-rate group, then exit")
    parser.add_argument("--resume", default="auto", help="auto (latest checkpoint in --out if any), never, or a checkpoint folder")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config field, e.g. --set learning_rates.seg=1e-4 (repeatable)")
    group = parser.add_argument_group("config overrides")
    for component in COMPONENTS:
        group.add_argument(f"--lr-{component}", type=_rate, default=argparse.SUPPRESS, metavar="LR",
                           help=f"learning rate of the {component} component, or 'frozen'")
    hints = typing.get_type_hints(TrainConfig)
    for spec in dataclasses.fields(TrainConfig):
        if spec.name in _SKIP:
            continue
        kind = _field_type(hints[spec.name])
        flag = "--" + spec.name.replace("_", "-")
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS)
        else:
            group.add_argument(flag, type=kind, default=argparse.SUPPRESS, metavar=spec.name.upper())
    parser.set_defaults(run=run)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    import yaml

    from ..train.config import COMPONENTS, TrainConfig

    values: dict[str, Any] = {}
    for spec in dataclasses.fields(TrainConfig):
        if spec.name not in _SKIP and hasattr(args, spec.name):
            values[spec.name] = getattr(args, spec.name)
    for component in COMPONENTS:
        key = f"lr_{component}"
        if hasattr(args, key):
            values[f"learning_rates.{component}"] = getattr(args, key)
    for item in args.set:
        if "=" not in item:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        values[key.strip()] = yaml.safe_load(raw)
    return values


def run(args: argparse.Namespace) -> int:
    from ..train.config import load_stage_config
    from ..train.trainer import train
    from ._common import show_progress

    config = load_stage_config(args.stage, args.config, _overrides(args))
    if config.stage != args.stage:
        raise ValueError(f"--config describes stage {config.stage} but --stage is {args.stage}")
    if not args.dry_run and (not args.data or args.out is None):
        raise ValueError("--data and --out are required unless --dry-run")
    resume: Any = {"auto": "auto", "never": False}.get(args.resume, Path(args.resume))
    result = train(config, args.model, args.data or [], args.out or Path("."), resume=resume, dry_run=args.dry_run,
                   progress=show_progress())
    if not args.dry_run:
        print(f"stage {config.stage} done: {result.global_step} steps; final model in {result.final_dir}; "
              f"log {result.log_file}")
    return 0
