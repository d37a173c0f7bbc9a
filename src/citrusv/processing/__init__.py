"""Turning conversations and images into model inputs, and model text back into structure.

Names load lazily: ``citrusv.processing.masks`` and ``.image`` need no torch, so data tools
(schema validation, curation workers) import them without paying for the processor's torch import.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["CitrusVInputs", "CitrusVProcessor", "ImageLoadError", "ImageSize", "load_image", "smart_resize"]

_HOMES = {
    "ImageLoadError": ".image", "load_image": ".image", "smart_resize": ".image",
    "CitrusVInputs": ".processor", "CitrusVProcessor": ".processor", "ImageSize": ".processor",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
