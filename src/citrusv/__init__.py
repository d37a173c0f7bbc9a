"""citrusv: Citrus-V, a medical multimodal model for understanding, grounding and segmentation.

Public names are imported lazily so that ``import citrusv`` (and the CLI) start fast; touching
any of them imports torch and transformers and registers ``citrus_v`` with transformers' Auto
classes.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "CitrusVConfig": "citrusv.model",
    "CitrusVForConditionalGeneration": "citrusv.model",
    "register_auto_classes": "citrusv.model",
    "CitrusVProcessor": "citrusv.processing",
    "CitrusVPipeline": "citrusv.inference",
    "CitrusVResult": "citrusv.inference",
}

__all__ = [*sorted(_LAZY), "__version__"]  # noqa: PLE0605 - built from the lazy table


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'citrusv' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
