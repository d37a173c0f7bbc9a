"""Loading images safely and preparing them for the two image encoders.

``load_image`` turns a path, bytes, a PIL image or an array into an 8-bit RGB PIL image and
rejects what cannot be a meaningful input, with the reason in the message. The Qwen side
smart-resizes to multiples of ``patch · merge`` within a pixel budget and flattens patches; the
SAM2 side squashes the (Qwen-resized) image to S×S with LANCZOS and normalises with ImageNet
statistics, as the released model was trained.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "DEFAULT_MAX_INPUT_PIXELS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageLoadError",
    "ImageSource",
    "MIN_IMAGE_SIDE",
    "load_image",
    "patchify",
    "peek_image_size",
    "qwen_pixel_values",
    "sam_pixel_values",
    "smart_resize",
]

ImageSource = Union[str, Path, bytes, Image.Image, np.ndarray]

#: Largest input accepted before decoding (width · height), checked on the header so the error
#: names the size. Pillow refuses more than twice ``Image.MAX_IMAGE_PIXELS`` on its own.
DEFAULT_MAX_INPUT_PIXELS = 128_000_000
#: Smallest side accepted: below this an image carries no usable content.
MIN_IMAGE_SIDE = 8
#: Qwen's smart resize cannot keep aspect ratios beyond this.
MAX_ASPECT_RATIO = 200

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageLoadError(ValueError):
    """An input image cannot be used; the message says why."""


@dataclass(frozen=True)
class LoadedImage:
    """An input image as the model sees it.

    Attributes:
        image: 8-bit RGB PIL image (EXIF orientation applied).
        source_mode: PIL mode before conversion (``"I;16"``, ``"P"``, ``"RGBA"``, ...).
        notes: what the conversion did, for logs and results.
    """

    image: Image.Image
    source_mode: str
    notes: tuple[str, ...] = ()

    @property
    def size_hw(self) -> tuple[int, int]:
        return self.image.height, self.image.width


def _open(source: ImageSource, max_pixels: int) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        handle: Any = io.BytesIO(bytes(source))
        name = "<bytes>"
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ImageLoadError(f"no image file at {path}")
        handle, name = path, str(path)
    else:
        raise ImageLoadError(f"cannot read an image from a {type(source).__name__}")
    # No global Pillow / warnings state is touched (servers load images from many threads): the
    # size check below runs on the header, before any pixel is decoded; Pillow's own guard (twice
    # Image.MAX_IMAGE_PIXELS) still stops anything larger while the header is read.
    try:
        image = Image.open(handle)
        width, height = image.size
        if width * height > max_pixels:
            raise ImageLoadError(
                f"{name}: {width}x{height} = {width * height} pixels exceeds the limit of {max_pixels} "
                "(decompression-bomb guard; raise max_input_pixels to accept it)"
            )
        image.load()
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as err:
        raise ImageLoadError(f"{name}: {err}") from None
    except UnidentifiedImageError:
        raise ImageLoadError(f"{name}: not a readable image file") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageLoadError(f"{name}: image is truncated or corrupt ({err})") from None
    return image


def _from_array(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        return Image.fromarray(array) if array.dtype == np.uint8 else _rescaled_to_uint8(array.astype(np.float64))
    if array.ndim == 3 and array.shape[2] in (3, 4):
        if array.dtype != np.uint8:
            array = np.asarray(_rescale(array.astype(np.float64)), dtype=np.uint8)
        return Image.fromarray(array, mode="RGB" if array.shape[2] == 3 else "RGBA")
    raise ImageLoadError(f"array image must be HxW, HxWx1, HxWx3 or HxWx4, got shape {array.shape}")


def _rescale(values: np.ndarray) -> np.ndarray:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ImageLoadError("image has no finite pixel values")
    low, high = float(finite.min()), float(finite.max())
    values = np.nan_to_num(values, nan=low, posinf=high, neginf=low)
    if high == low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.round((values - low) / (high - low) * 255.0).astype(np.uint8)


def _rescaled_to_uint8(values: np.ndarray) -> Image.Image:
    return Image.fromarray(_rescale(values), mode="L")


def _check_dimensions(width: int, height: int) -> None:
    if min(width, height) < MIN_IMAGE_SIDE:
        raise ImageLoadError(f"image is {width}x{height} pixels; each side must be at least {MIN_IMAGE_SIDE}")
    if max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
        raise ImageLoadError(f"image is {width}x{height}: aspect ratio over {MAX_ASPECT_RATIO} cannot be resized for the model")


def load_image(source: ImageSource, *, max_input_pixels: int = DEFAULT_MAX_INPUT_PIXELS) -> LoadedImage:
    """Read and validate one image and convert it to 8-bit RGB.

    Conversions (documented results, recorded in ``notes``):

    * grayscale / bilevel: replicated to three channels;
    * palette: expanded (through RGBA when it has transparency);
    * RGBA / LA / PA: alpha-composited on white, like Qwen's own loader;
    * 16-bit, 32-bit integer and float images: linearly rescaled from their own min..max to
      0..255 (a constant image becomes black). For CT / MR windowing use ``citrusv.medio``;
    * multi-frame files: the first frame;
    * EXIF orientation: applied, so pixel coordinates refer to the image as displayed.

    Raises:
        ImageLoadError: missing or unreadable file, truncated data, more than ``max_input_pixels``
            pixels, a side under ``MIN_IMAGE_SIDE`` pixels, or an aspect ratio over 200.
    """
    image = _open(source, max_input_pixels)
    notes: list[str] = []
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
        notes.append(f"multi-frame image: used frame 1 of {image.n_frames}")
    mode = image.mode
    try:
        transposed = ImageOps.exif_transpose(image)
    except Exception:  # malformed EXIF must not make a valid image unusable
        transposed = image
    if transposed is not image and transposed.size != image.size:
        notes.append("applied EXIF orientation")
    image = transposed if transposed is not None else image

    _check_dimensions(*image.size)

    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        image = _rescaled_to_uint8(np.asarray(image, dtype=np.float64)).convert("RGB")
        notes.append(f"{mode} image rescaled from its min..max to 8 bits")
    elif mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.split()[3])
        image = background
        notes.append("alpha composited on white")
    elif image.mode != "RGB":
        image = image.convert("RGB")
    return LoadedImage(image=image, source_mode=mode, notes=tuple(notes))


def peek_image_size(source: str | Path, *, max_input_pixels: int = DEFAULT_MAX_INPUT_PIXELS) -> tuple[int, int]:
    """``(height, width)`` of an image file as ``load_image`` would return it (EXIF orientation
    included), read from the header only: no pixel is decoded.

    Raises:
        ImageLoadError: missing or unreadable file, or a size ``load_image`` would reject.
    """
    path = Path(source)
    if not path.is_file():
        raise ImageLoadError(f"no image file at {path}")
    try:
        with Image.open(path) as image:
            width, height = image.size
            try:
                orientation = image.getexif().get(0x0112, 1)
            except Exception:  # malformed EXIF: load_image ignores it too
                orientation = 1
    except UnidentifiedImageError:
        raise ImageLoadError(f"{path}: not a readable image file") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageLoadError(f"{path}: unreadable image header ({err})") from None
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    if width * height > max_input_pixels:
        raise ImageLoadError(f"{path}: {width}x{height} = {width * height} pixels exceeds the limit of {max_input_pixels}")
    _check_dimensions(width, height)
    return height, width


# ----------------------------------------------------------------------------- Qwen side
def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen's resize rule: both sides multiples of ``factor``, area within
    ``[min_pixels, max_pixels]``, aspect ratio kept as closely as possible. Returns ``(h, w)``.

    Raises:
        ValueError: aspect ratio over 200 or a non-positive size.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(f"aspect ratio must be at most {MAX_ASPECT_RATIO}, got {max(height, width) / min(height, width):.1f}")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def patchify(image_chw: np.ndarray, patch_size: int, merge_size: int, temporal_patch_size: int) -> np.ndarray:
    """``[C, H, W]`` float image → ``[grid_h · grid_w, C · t · p · p]`` patches in the order the
    Qwen-VL vision tower expects (merge windows contiguous, the still frame repeated ``t`` times)."""
    channels, height, width = image_chw.shape
    grid_h, grid_w = height // patch_size, width // patch_size
    patches = image_chw.reshape(channels, grid_h // merge_size, merge_size, patch_size,
                                grid_w // merge_size, merge_size, patch_size)
    patches = patches.transpose(1, 4, 2, 5, 0, 3, 6)  # gh, gw, mh, mw, C, ph, pw
    patches = np.broadcast_to(patches[:, :, :, :, :, None], (*patches.shape[:5], temporal_patch_size, *patches.shape[5:]))
    return np.ascontiguousarray(patches).reshape(grid_h * grid_w, channels * temporal_patch_size * patch_size * patch_size)


def qwen_pixel_values(
    image: Image.Image,
    *,
    patch_size: int,
    merge_size: int,
    temporal_patch_size: int,
    min_pixels: int,
    max_pixels: int,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
) -> tuple[np.ndarray, tuple[int, int, int], Image.Image]:
    """Smart-resize (bicubic), rescale, normalise and patchify one RGB image.

    Returns:
        ``pixel_values [grid_h · grid_w, 3 · t · p · p]`` float32, ``grid_thw = (1, grid_h, grid_w)``,
        and the resized PIL image (its size is the "resized" coordinate space of boxes).
    """
    factor = patch_size * merge_size
    height, width = smart_resize(image.height, image.width, factor, min_pixels, max_pixels)
    resized = image if (image.height, image.width) == (height, width) else image.resize((width, height), Image.Resampling.BICUBIC)
    array = np.asarray(resized, dtype=np.float32).transpose(2, 0, 1) * np.float32(1 / 255)
    array = (array - np.asarray(mean, dtype=np.float32)[:, None, None]) / np.asarray(std, dtype=np.float32)[:, None, None]
    patches = patchify(array, patch_size, merge_size, temporal_patch_size)
    return patches, (1, height // patch_size, width // patch_size), resized


# ------------------------------------------------------------------------------ SAM side
def sam_pixel_values(image: Image.Image, size: int) -> np.ndarray:
    """RGB image → ``[3, size, size]`` float32: LANCZOS resize to a square (aspect ratio not kept,
    as in the release), / 255, ImageNet mean / std."""
    square = image.resize((size, size), Image.Resampling.LANCZOS)
    array = np.asarray(square, dtype=np.float32) / 255.0
    array = (array - np.asarray(IMAGENET_MEAN, dtype=np.float32)) / np.asarray(IMAGENET_STD, dtype=np.float32)
    return np.ascontiguousarray(array.transpose(2, 0, 1))
