"""citrusv: Citrus-V, a medical multimodal model for understanding, grounding and segmentation.

Public names are imported lazily so that ``import citrusv`` (and the CLI) start fast; touching
any of them imports torch and transformers and registers ``citrus_v`` with transformers' Auto
classes.
"""

from __future__ import annotations

from ._lazy import lazy_attributes

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


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
