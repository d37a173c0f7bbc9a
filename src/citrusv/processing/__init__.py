"""Turning conversations and images into model inputs, and model text back into structure.

Names load lazily: ``citrusv.processing.masks`` and ``.image`` need no torch, so data tools
(schema validation, curation workers) import them without paying for the processor's torch import.
"""

from __future__ import annotations

from .._lazy import lazy_attributes

__all__ = ["CitrusVInputs", "CitrusVProcessor", "ImageLoadError", "ImageSize", "load_image", "smart_resize"]

_HOMES = {
    "ImageLoadError": ".image", "load_image": ".image", "smart_resize": ".image",
    "CitrusVInputs": ".processor", "CitrusVProcessor": ".processor", "ImageSize": ".processor",
}


__getattr__, __dir__ = lazy_attributes(__name__, _HOMES, globals())
