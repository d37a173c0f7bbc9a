"""The web UI (``citrusv ui``): a Gradio app with Chat, Report and Document tabs.

``build_ui(pipeline)`` builds it and ``launch_ui`` serves it (loopback by default, never a public
share link). Gradio is imported only when the app is built; the helpers in
``citrusv.ui.helpers`` and ``citrusv.ui.streaming`` work without it. See ``docs/ui.md``.
"""

from __future__ import annotations

from .app import DEFAULT_DOCUMENT_PROMPT, DEFAULT_REPORT_PROMPT, build_ui, launch_ui
from .streaming import StreamEvent, TokenTap, stream_chat

__all__ = ["DEFAULT_DOCUMENT_PROMPT", "DEFAULT_REPORT_PROMPT", "StreamEvent", "TokenTap", "build_ui", "launch_ui",
           "stream_chat"]
