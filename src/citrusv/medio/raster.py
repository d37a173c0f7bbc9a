"""Plain images (PNG / JPEG / TIFF, including 16-bit grayscale) with their raw values."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import MedicalImageError, check_image_size
from .types import MedicalImage
from .volume import WindowSpec, display_from_values

__all__ = ["read_raster"]

_GRAY_MODES = ("1", "L", "I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def read_raster(
    path: str | Path | bytes,
    *,
    frame: int | None = None,
    window: WindowSpec = "auto",
    pixel_spacing_mm: tuple[float, float] | None = None,
) -> MedicalImage:
    """Read a PNG / JPEG / TIFF / ... image keeping its raw values.

    Grayscale images keep their stored values (16-bit included) in ``values``; ``display`` is the
    8-bit image as stored for 8-bit files, else min..max (``"auto"``) or the requested window.
    Colour images go through ``load_image`` (alpha on white, palette expanded). The file's DPI is
    not taken as a physical spacing (it is nominal in almost every exported image): the spacing
    is ``pixel_spacing_mm`` when given, else unknown.

    Raises:
        MedicalImageError: unreadable file, a size ``load_image`` rejects, a page out of range.
    """
    from citrusv.processing.image import ImageLoadError, load_image

    if isinstance(path, (bytes, bytearray)):
        handle: Any = io.BytesIO(bytes(path))
        path = "<bytes>"
    else:
        path = handle = Path(path)
        if not path.is_file():
            raise MedicalImageError(f"no image file at {path}")
    try:
        with Image.open(handle) as opened:
            check_image_size(opened.height, opened.width, str(path))
            pages = int(getattr(opened, "n_frames", 1))
            notes: list[str] = []
            if pages > 1:
                if frame is None:
                    raise MedicalImageError(f"{path}: {pages} pages / frames; pass frame=0..{pages - 1}")
                if not 0 <= frame < pages:
                    raise MedicalImageError(f"{path}: frame {frame} is out of range (0..{pages - 1})")
                opened.seek(frame)
                notes.append(f"frame {frame} of {pages}")
            elif frame not in (None, 0):
                raise MedicalImageError(f"{path}: single-frame image, frame {frame} does not exist")
            opened.load()
            image = ImageOps.exif_transpose(opened) or opened
            mode = image.mode
            if mode in _GRAY_MODES:
                values = np.asarray(image.convert("L") if mode == "1" else image).astype(np.float32)
                if mode in ("1", "L") and isinstance(window, str) and window.lower() == "auto":
                    display, used, note = values.astype(np.uint8), None, "8-bit values as stored"
                else:
                    display, used, note = display_from_values(values, window, modality=None)
                notes.append(f"{mode} image: {note}")
            else:
                rgb = load_image(image.copy()).image
                values = np.asarray(rgb, dtype=np.float32)
                display, used = np.asarray(rgb, dtype=np.uint8), None
                notes.append(f"{mode} image converted to RGB")
                if not (isinstance(window, str) and window.lower() == "auto"):
                    notes.append("window ignored: colour image shown as stored")
    except ImageLoadError as err:
        raise MedicalImageError(str(err)) from None
    except MedicalImageError:
        raise
    except UnidentifiedImageError:
        raise MedicalImageError(f"{path}: not a readable image file") from None
    except Image.DecompressionBombError as err:
        raise MedicalImageError(f"{path}: {err}") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise MedicalImageError(f"{path}: image is truncated or corrupt ({err})") from None
    spacing, source = None, "unknown"
    if pixel_spacing_mm is not None:
        row, col = (float(v) for v in pixel_spacing_mm)
        if not (row > 0 and col > 0):
            raise MedicalImageError(f"pixel_spacing_mm must be positive, got {pixel_spacing_mm}")
        spacing, source = (row, col), "given"
    return MedicalImage(
        display=display,
        values=values,
        pixel_spacing_mm=spacing,
        spacing_source=source,
        value_unit="stored",
        window=used,
        source=str(path),
        notes=tuple(notes),
    )
