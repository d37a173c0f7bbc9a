"""``citrusv.serve``: the OpenAI-compatible HTTP server (see ``docs/serving.md``).

``create_app(pipeline_or_engine, settings)`` builds the FastAPI app; ``BatchingEngine`` is the
batching request queue; ``ServeSettings`` holds every limit. FastAPI and uvicorn are imported only
when an app is built.
"""

from __future__ import annotations

from .engine import BatchingEngine, EngineOutput, QueueFullError
from .errors import APIError
from .settings import ServeSettings, check_bind_address

__all__ = ["APIError", "BatchingEngine", "EngineOutput", "QueueFullError", "ServeSettings", "check_bind_address",
           "create_app"]


def create_app(pipeline_or_engine, settings: ServeSettings | None = None):
    """See ``citrusv.serve.app.create_app``."""
    from .app import create_app as _create_app

    return _create_app(pipeline_or_engine, settings)
