"""``citrusv ui``: the Gradio web UI (chat with masks and boxes, streamed reports, documents)."""

from __future__ import annotations

import argparse
import os
import sys

from ._common import add_runtime_args, show_progress

API_KEY_ENV = "CITRUSV_API_KEY"


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "ui", help="web UI: chat with masks and boxes, streamed grounded reports, document tables",
        description="A Gradio app with Chat (image / DICOM / NIfTI upload, CT window presets, mask and box overlays, "
                    "measurements), Report (boxes drawn while the answer streams) and Document (Markdown table) "
                    "tabs. Binds 127.0.0.1 by default; any other address needs an API key (--api-key or "
                    f"${API_KEY_ENV}), which the login form then asks for. Never creates a public share link. "
                    "See docs/ui.md.")
    parser.add_argument("--model", required=True, help="checkpoint folder (native or released layout)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--api-key", default=None,
                        help=f"password of the login form (default: ${API_KEY_ENV}; none = no login, loopback only)")
    parser.add_argument("--max-new-tokens", type=int, default=512, help="generation limit per request")
    add_runtime_args(parser)
    parser.set_defaults(run=run)


def resolve_api_key(args: argparse.Namespace) -> str | None:
    """``--api-key``, else ``$CITRUSV_API_KEY``, else ``None``."""
    return args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV) or None


def run(args: argparse.Namespace) -> int:
    from ..inference import CitrusVPipeline
    from ..serve.settings import check_bind_address
    from ..ui import build_ui, launch_ui

    api_key = resolve_api_key(args)
    check_bind_address(args.host, api_key)  # refuse unsafe binds before loading the model
    pipeline = CitrusVPipeline.from_pretrained(args.model, device=args.device, dtype=args.dtype,
                                               min_pixels=args.min_pixels, max_pixels=args.max_pixels,
                                               progress=show_progress())
    demo = build_ui(pipeline, max_new_tokens=args.max_new_tokens)
    auth = "login with the API key" if api_key else "no login"
    print(f"citrusv ui on http://{args.host}:{args.port} ({auth}; no share link)", file=sys.stderr)
    launch_ui(demo, host=args.host, port=args.port, api_key=api_key, block=True)
    return 0
