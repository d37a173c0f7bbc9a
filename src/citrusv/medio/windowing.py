"""Intensity windowing: raw values (HU for CT) → 8-bit display values.

Pure functions on NumPy arrays. ``window`` implements the three VOI LUT functions of DICOM
PS3.3 C.11.2.1.2 (``LINEAR``, ``LINEAR_EXACT``, ``SIGMOID``) with output 0..255; the CT presets
are the standard ones listed by Radiopaedia, "Windowing (CT)"
(https://radiopaedia.org/articles/windowing-ct): brain W:80 L:40, lungs W:1500 L:-600,
mediastinum W:350 L:50, bone W:1800 L:400, soft tissue / abdomen W:400 L:40.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from .errors import MedicalImageError

__all__ = [
    "CT_WINDOW_PRESETS",
    "VoiFunction",
    "invert_display",
    "minmax_to_uint8",
    "resolve_window",
    "window",
]

VoiFunction = Literal["LINEAR", "LINEAR_EXACT", "SIGMOID"]

#: CT window presets as ``(center_hu, width_hu)`` (Radiopaedia, "Windowing (CT)").
CT_WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
    "abdomen": (40.0, 400.0),
}


def window(values: np.ndarray, center: float, width: float, *, function: VoiFunction = "LINEAR") -> np.ndarray:
    """Map raw values to display values 0..255 (``uint8``) through a VOI window.

    ``LINEAR`` is the DICOM default: values ``<= c - 0.5 - (w - 1) / 2`` map to 0, values
    ``> c - 0.5 + (w - 1) / 2`` to 255, linear in between. ``LINEAR_EXACT`` uses ``c ± w / 2``;
    ``SIGMOID`` is ``255 / (1 + exp(-4 (x - c) / w))``. NaN values map to 0.

    Raises:
        MedicalImageError: ``width`` below 1 for ``LINEAR`` or not positive for the others, a
            non-finite center / width, or an unknown function.
    """
    center, width = float(center), float(width)
    if not (math.isfinite(center) and math.isfinite(width)):
        raise MedicalImageError(f"window center / width must be finite, got ({center}, {width})")
    x = np.asarray(values, dtype=np.float64)
    if function == "LINEAR":
        if width < 1:
            raise MedicalImageError(f"LINEAR window width must be >= 1, got {width}")
        y = ((x - (center - 0.5)) / (width - 1) + 0.5) if width > 1 else (x > center - 0.5).astype(np.float64)
    elif function == "LINEAR_EXACT":
        if width <= 0:
            raise MedicalImageError(f"LINEAR_EXACT window width must be > 0, got {width}")
        y = (x - center) / width + 0.5
    elif function == "SIGMOID":
        if width <= 0:
            raise MedicalImageError(f"SIGMOID window width must be > 0, got {width}")
        with np.errstate(over="ignore"):
            y = 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    else:
        raise MedicalImageError(f"unknown VOI LUT function {function!r}; expected LINEAR, LINEAR_EXACT or SIGMOID")
    y = np.nan_to_num(np.clip(y, 0.0, 1.0), nan=0.0)
    return np.round(y * 255.0).astype(np.uint8)


def minmax_to_uint8(values: np.ndarray) -> np.ndarray:
    """Linear rescale of the finite min..max to 0..255 (what ``load_image`` does for 16-bit
    images). A constant image becomes 0; NaN becomes 0.

    Raises:
        MedicalImageError: no finite value.
    """
    x = np.asarray(values, dtype=np.float64)
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        raise MedicalImageError("image has no finite pixel values")
    low, high = float(finite.min()), float(finite.max())
    if high == low:
        return np.zeros(x.shape, dtype=np.uint8)
    y = np.nan_to_num((x - low) / (high - low), nan=0.0, posinf=1.0, neginf=0.0)
    return np.round(np.clip(y, 0.0, 1.0) * 255.0).astype(np.uint8)


def invert_display(display_u8: np.ndarray) -> np.ndarray:
    """``255 - x``: MONOCHROME1 images show low values as white."""
    return (255 - np.asarray(display_u8, dtype=np.uint8)).astype(np.uint8)


def resolve_window(spec: object) -> tuple[float, float]:
    """A preset name or a ``(center, width)`` pair → ``(center, width)``.

    Raises:
        MedicalImageError: unknown preset or a malformed pair.
    """
    if isinstance(spec, str):
        key = spec.lower()
        if key not in CT_WINDOW_PRESETS:
            raise MedicalImageError(
                f"unknown window preset {spec!r}; expected one of {sorted(CT_WINDOW_PRESETS)}, 'auto', 'minmax' "
                "or a (center, width) pair"
            )
        return CT_WINDOW_PRESETS[key]
    try:
        center, width = (float(v) for v in spec)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise MedicalImageError(f"window must be a preset name or a (center, width) pair, got {spec!r}") from None
    return center, width
