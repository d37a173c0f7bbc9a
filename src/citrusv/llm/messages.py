"""Building OpenAI chat messages, images included as base64 data URLs.

OpenAI and vLLM both accept ``{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}``
content parts; a data URL keeps the request self-contained (the server needs no access to our
files) and makes the disk cache key depend on the pixels, not on a path that may be rewritten.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "ImageInput",
    "Message",
    "assistant_message",
    "image_part",
    "image_to_data_url",
    "sniff_image_mime",
    "system_message",
    "user_message",
]

#: One OpenAI chat message: ``{"role": ..., "content": str | list[part]}``.
Message = dict[str, Any]
#: What ``user_message`` accepts as an image: a file path, encoded image bytes, a PIL image, or a
#: string URL (``http(s)://`` or ``data:``) passed through unchanged.
ImageInput = Union[str, Path, bytes, "Image.Image"]

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)
_URL_PREFIXES = ("http://", "https://", "data:")
# PIL modes PNG stores as they are; others (CMYK, YCbCr, LAB, HSV) are converted to RGB first.
_PNG_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"}
_DETAILS = (None, "auto", "low", "high")


def sniff_image_mime(data: bytes) -> str | None:
    """The MIME type of encoded image bytes from their signature, or ``None`` when unknown."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    return None


def _pil_to_png(image: Image.Image) -> bytes:
    if image.mode not in _PNG_MODES:
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def image_to_data_url(image: ImageInput) -> str:
    """A ``data:`` URL for an image; a string URL (``http(s)://``, ``data:``) is returned as is.

    Args:
        image: a file path, encoded bytes (PNG, JPEG, GIF, BMP, TIFF, WebP; the type is read
            from the signature, not trusted from a file extension), or a PIL image (encoded
            as PNG, lossless).

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: bytes or a file whose signature is not a known image format, or empty bytes.
        TypeError: anything else.
    """
    if isinstance(image, str) and image.startswith(_URL_PREFIXES):
        return image
    if isinstance(image, (str, Path)):
        path = Path(image)
        data = path.read_bytes()
        where = f"image file {str(path)!r}"
    elif isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        where = "image bytes"
    elif hasattr(image, "save") and hasattr(image, "mode"):  # a PIL image; PIL is imported lazily
        return "data:image/png;base64," + base64.b64encode(_pil_to_png(image)).decode("ascii")
    else:
        raise TypeError(f"an image must be a path, bytes, a PIL image or a URL string, got {type(image).__name__}")
    if not data:
        raise ValueError(f"{where} is empty")
    mime = sniff_image_mime(data)
    if mime is None:
        raise ValueError(f"{where} is not a PNG, JPEG, GIF, BMP, TIFF or WebP image (first bytes {data[:8]!r})")
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def image_part(image: ImageInput, detail: str | None = None) -> dict[str, Any]:
    """One ``image_url`` content part (see ``image_to_data_url``).

    Args:
        image: the image.
        detail: OpenAI's ``"auto"``, ``"low"`` or ``"high"``; ``None`` leaves it out (vLLM
            ignores it).

    Raises:
        ValueError: an unknown ``detail``, or an unreadable image (see ``image_to_data_url``).
    """
    if detail not in _DETAILS:
        raise ValueError(f"detail must be one of {_DETAILS}, got {detail!r}")
    url: dict[str, Any] = {"url": image_to_data_url(image)}
    if detail is not None:
        url["detail"] = detail
    return {"type": "image_url", "image_url": url}


def user_message(text: str, images: Iterable[ImageInput] = (), *, detail: str | None = None) -> Message:
    """A user message; with images, a list of parts: the images in order, then the text.

    Images come first because that is how Qwen-VL-style models were trained to read a turn; for
    OpenAI models the order makes no difference.

    Args:
        text: the user text.
        images: file paths, bytes, PIL images or URL strings.
        detail: OpenAI image detail for every image (see ``image_part``).

    Raises:
        TypeError: ``text`` is not a string, or an image of an unsupported type.
        ValueError, FileNotFoundError: an unreadable image (see ``image_to_data_url``).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    if isinstance(images, (str, Path, bytes)) or hasattr(images, "mode"):
        images = [images]  # one image passed bare; iterating it would go character by character
    parts = [image_part(image, detail) for image in images]
    if not parts:
        return {"role": "user", "content": text}
    return {"role": "user", "content": [*parts, {"type": "text", "text": text}]}


def system_message(text: str) -> Message:
    """A system message."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    return {"role": "system", "content": text}


def assistant_message(text: str) -> Message:
    """An assistant message (a previous turn, or a few-shot example)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    return {"role": "assistant", "content": text}
