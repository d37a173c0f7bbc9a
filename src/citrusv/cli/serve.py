"""``citrusv serve``: the OpenAI-compatible HTTP server (``docs/serving.md``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ._common import add_runtime_args, show_progress

API_KEY_ENV = "CITRUSV_API_KEY"


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "serve", help="serve the model over an OpenAI-compatible HTTP API (masks and boxes included)",
        description="Serve /v1/chat/completions, /v1/models and /health. Binds 127.0.0.1 by default; binding any "
                    f"other address needs an API key (--api-key or ${API_KEY_ENV}). See docs/serving.md.")
    parser.add_argument("--model", required=True, help="checkpoint folder (native or released layout) or hub id")
    parser.add_argument("--model-name", default="citrus-v", help="model id clients send and /v1/models lists")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api-key", default=None,
                        help=f"bearer token clients must send (default: ${API_KEY_ENV}; none = no auth, loopback only)")
    parser.add_argument("--allowed-dir", action="append", type=Path, default=[], metavar="DIR",
                        help="folder whose image files requests may name by path (repeatable; default: none)")
    parser.add_argument("--allow-remote-urls", action="store_true", help="fetch http(s) image URLs (off by default)")
    parser.add_argument("--max-body-mb", type=float, default=32.0, help="largest request body in MiB")
    parser.add_argument("--max-image-mb", type=float, default=20.0, help="largest image in MiB")
    parser.add_argument("--max-image-pixels", type=int, default=50_000_000, help="largest image, width x height")
    parser.add_argument("--max-images", type=int, default=4, help="images per request")
    parser.add_argument("--max-prompt-tokens", type=int, default=16384, help="prompt tokens per request, images included")
    parser.add_argument("--max-tokens-limit", type=int, default=2048, help="largest max_tokens a request may ask for")
    parser.add_argument("--default-max-tokens", type=int, default=512, help="max_tokens when a request gives none")
    parser.add_argument("--max-batch-size", type=int, default=8, help="requests generated together")
    parser.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a batch waits for more requests")
    parser.add_argument("--max-pending", type=int, default=64, help="requests queued or running; more get HTTP 429")
    parser.add_argument("--log-content", action="store_true",
                        help="DEBUG ONLY: log prompt text (may hold patient data; image bytes are never logged)")
    add_runtime_args(parser)
    parser.set_defaults(run=run)


def settings_from_args(args: argparse.Namespace):
    """``ServeSettings`` from parsed arguments (the API key falls back to ``$CITRUSV_API_KEY``).

    Raises:
        ValueError: an invalid limit, a missing allowed folder, or a non-loopback ``--host``
            without an API key.
    """
    from ..serve.settings import ServeSettings, check_bind_address

    api_key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV) or None
    check_bind_address(args.host, api_key)
    return ServeSettings(
        model_name=args.model_name, api_key=api_key, allowed_dirs=tuple(args.allowed_dir),
        allow_remote_urls=args.allow_remote_urls, max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        max_image_bytes=int(args.max_image_mb * 1024 * 1024), max_image_pixels=args.max_image_pixels,
        max_images_per_request=args.max_images, max_prompt_tokens=args.max_prompt_tokens,
        max_new_tokens_limit=args.max_tokens_limit, default_max_tokens=args.default_max_tokens,
        max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms, max_pending=args.max_pending,
        log_content=args.log_content)


def _access_log_to_stderr() -> None:
    access = logging.getLogger("citrusv.serve.access")
    if not access.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ..inference import CitrusVPipeline
    from ..serve import create_app

    settings = settings_from_args(args)  # refuse unsafe binds before loading the model
    if settings.log_content:
        print("warning: --log-content writes prompt text to the log", file=sys.stderr)
    pipeline = CitrusVPipeline.from_pretrained(args.model, device=args.device, dtype=args.dtype,
                                               min_pixels=args.min_pixels, max_pixels=args.max_pixels,
                                               progress=show_progress())
    app = create_app(pipeline, settings)
    _access_log_to_stderr()
    auth = "bearer-token auth" if settings.api_key else "no auth"
    print(f"serving {settings.model_name!r} on http://{args.host}:{args.port} ({auth})", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")
    return 0
