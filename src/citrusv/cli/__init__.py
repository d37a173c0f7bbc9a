"""The ``citrusv`` command. Thin: parses arguments and calls the packages."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import __version__

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    from . import convert, curate, demo, enhance, eval, infer, serve, synth, tiny, train, ui

    parser = argparse.ArgumentParser(prog="citrusv", description="Citrus-V: medical multimodal understanding, grounding and segmentation.")
    parser.add_argument("--version", action="version", version=f"citrusv {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (infer, serve, ui, demo, train, eval, curate, synth, enhance, convert, tiny):
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args) or 0)
    except (ValueError, FileNotFoundError) as err:  # user-facing input errors: one clear line
        print(f"citrusv {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
