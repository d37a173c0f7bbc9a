"""The one error type of ``citrusv.medio``."""

from __future__ import annotations

__all__ = ["MedicalImageError", "check_image_size", "require"]


class MedicalImageError(ValueError):
    """A medical image (or a mask to write next to one) cannot be used.

    The message names the file (when there is one) and the problem. It never quotes patient
    attributes (names, IDs, dates) from DICOM headers.
    """


def check_image_size(height: int, width: int, name: str, *, frames: int = 1) -> None:
    """The size rules of ``citrusv.processing.load_image`` (max pixels per image, min side,
    aspect ratio), checked on header values before any pixel is decoded.

    Raises:
        MedicalImageError: a size the model path would reject, or a decompression bomb.
    """
    from citrusv.processing.image import DEFAULT_MAX_INPUT_PIXELS, MAX_ASPECT_RATIO, MIN_IMAGE_SIDE

    if height * width > DEFAULT_MAX_INPUT_PIXELS or height * width * frames > 8 * DEFAULT_MAX_INPUT_PIXELS:
        raise MedicalImageError(f"{name}: {frames} x {height}x{width} pixels exceeds the limit (decompression-bomb guard)")
    if min(height, width) < MIN_IMAGE_SIDE:
        raise MedicalImageError(f"{name}: image is {width}x{height} pixels; each side must be at least {MIN_IMAGE_SIDE}")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise MedicalImageError(f"{name}: image is {width}x{height}: aspect ratio over {MAX_ASPECT_RATIO}")


def require(module: str):
    """Import an optional dependency of ``citrusv.medio`` or fail naming the extra to install.

    Raises:
        ImportError: the module is not installed.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"citrusv.medio needs {module.split('.')[0]} for this; install it with pip install 'citrusv[medio]' "
            "(pydicom, nibabel, highdicom)"
        ) from err
