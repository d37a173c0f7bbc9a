"""Turning the image references of a request into validated images, with byte and pixel limits.

Accepted references (the ``url`` of an ``image_url`` content part):

* ``data:image/<type>;base64,<data>``: decoded with strict base64 after a size check on the text;
* ``file:///abs/path`` or an absolute path: only inside ``ServeSettings.allowed_dirs``, after
  resolving symlinks (a link pointing out of the folders is refused like ``../``);
* ``http(s)://``: only when ``allow_remote_urls`` is set, with a timeout and a byte cap.

PNG, JPEG, TIFF and the other formats of ``citrusv.processing.image.load_image`` are decoded
here; DICOM and NIfTI are recognised by their magic bytes and go to ``load_medical_image`` (``citrusv.medio``), the
one place where ``citrusv.medio`` will plug in.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..processing.image import ImageLoadError, LoadedImage, load_image
from .errors import APIError
from .settings import ServeSettings

__all__ = ["decode_image_reference", "load_medical_image", "medical_format"]

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[\w.+-]+=[\w.+-]+)*);base64,", re.IGNORECASE)


def medical_format(data: bytes) -> str | None:
    """``"dicom"`` / ``"nifti"`` when the bytes carry that format's magic, else ``None``."""
    if len(data) >= 132 and data[128:132] == b"DICM":
        return "dicom"
    head = data[:400]
    if data[:2] == b"\x1f\x8b":  # gzip: NIfTI is the only gzipped input we expect
        try:
            head = gzip.GzipFile(fileobj=io.BytesIO(data)).read(400)
        except (OSError, EOFError):
            return None
    if len(head) >= 348 and head[344:348] in (b"n+1\x00", b"ni1\x00", b"n+2\x00"):
        return "nifti"
    return None


def load_medical_image(data: bytes, kind: str, settings: ServeSettings) -> LoadedImage:
    """DICOM / NIfTI bytes → a ``LoadedImage`` through ``citrusv.medio``.

    A DICOM image is rescaled, VOI-windowed (its own window, else min..max) and MONOCHROME1
    inverted; a NIfTI must hold one 2D slice (a volume needs a slice choice, which the chat API
    has no field for: send the slice). The pixel limit is checked from the header first.

    Raises:
        APIError: 400 with medio's reason (not an image, a volume, an unsupported compression);
            415 when the server lacks the ``medio`` extra.
    """
    try:
        from ..medio import MedicalImageError, read_medical_image
    except ImportError:
        raise APIError(415, f"{kind.upper()} input needs the server installed with citrusv[medio]; "
                       "send PNG, JPEG or TIFF", code="unsupported_image_format") from None
    try:
        image = read_medical_image(data)
        return image.to_loaded_image()
    except MedicalImageError as err:
        raise APIError(400, f"{kind.upper()} image: {err}", code="invalid_image") from None
    except ImageLoadError as err:
        raise APIError(400, f"{kind.upper()} image: {err}", code="invalid_image") from None


def _from_bytes(data: bytes, settings: ServeSettings, what: str) -> LoadedImage:
    if len(data) > settings.max_image_bytes:
        raise APIError(413, f"{what} is {len(data)} bytes, over the limit of {settings.max_image_bytes}",
                       code="image_too_large")
    kind = medical_format(data)
    if kind is not None:
        return load_medical_image(data, kind, settings)
    try:
        return load_image(data, max_input_pixels=settings.max_image_pixels)
    except ImageLoadError as err:
        message = str(err).replace("<bytes>", what)
        raise APIError(400, message, code="invalid_image") from None


def _decode_data_url(url: str, settings: ServeSettings, what: str) -> LoadedImage:
    match = _DATA_URL.match(url)
    if not match:
        raise APIError(400, f"{what}: a data URL must look like data:image/png;base64,<data>", code="invalid_image_url")
    payload = url[match.end():]
    if len(payload) > settings.max_image_bytes * 4 // 3 + 4:
        raise APIError(413, f"{what}: encoded image is over the limit of {settings.max_image_bytes} bytes",
                       code="image_too_large")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise APIError(400, f"{what}: invalid base64 in the data URL", code="invalid_base64") from None
    return _from_bytes(data, settings, what)


def _resolve_allowed(path_text: str, settings: ServeSettings, what: str) -> Path:
    if not settings.allowed_dirs:
        raise APIError(400, f"{what}: file paths are disabled on this server (start it with --allowed-dir)",
                       code="file_paths_disabled")
    if "\x00" in path_text:
        raise APIError(400, f"{what}: invalid file path", code="invalid_path")
    path = Path(path_text)
    if not path.is_absolute():
        raise APIError(400, f"{what}: file paths must be absolute", code="invalid_path")
    try:
        resolved = Path(os.path.realpath(path))
    except (OSError, ValueError):
        raise APIError(400, f"{what}: invalid file path", code="invalid_path") from None
    if not any(resolved.is_relative_to(root) for root in settings.allowed_dirs):
        raise APIError(403, f"{what}: the path is outside the allowed folders", code="path_not_allowed")
    if not resolved.is_file():
        raise APIError(400, f"{what}: no such file inside the allowed folders", code="file_not_found")
    return resolved


def _read_file(path: Path, settings: ServeSettings, what: str) -> LoadedImage:
    size = path.stat().st_size
    if size > settings.max_image_bytes:
        raise APIError(413, f"{what}: file is {size} bytes, over the limit of {settings.max_image_bytes}",
                       code="image_too_large")
    return _from_bytes(path.read_bytes(), settings, what)


def _fetch(url: str, settings: ServeSettings, what: str) -> LoadedImage:
    if not settings.allow_remote_urls:
        raise APIError(400, f"{what}: remote image URLs are disabled on this server (send a data URL)",
                       code="remote_urls_disabled")
    import httpx

    try:
        with httpx.stream("GET", url, timeout=settings.remote_timeout_s, follow_redirects=False) as response:
            if response.status_code != 200:
                raise APIError(400, f"{what}: fetching the image URL returned HTTP {response.status_code}",
                               code="image_fetch_failed")
            chunks, total = [], 0
            for chunk in response.iter_bytes():
                total += len(chunk)
                if total > settings.max_image_bytes:
                    raise APIError(413, f"{what}: remote image is over the limit of {settings.max_image_bytes} bytes",
                                   code="image_too_large")
                chunks.append(chunk)
    except httpx.HTTPError as err:
        raise APIError(400, f"{what}: fetching the image URL failed ({type(err).__name__})",
                       code="image_fetch_failed") from None
    return _from_bytes(b"".join(chunks), settings, what)


def decode_image_reference(url: str, settings: ServeSettings, what: str = "image") -> LoadedImage:
    """One ``image_url.url`` → a validated 8-bit RGB image.

    Args:
        url: a data URL, ``file://`` URL, absolute path or (if enabled) an ``http(s)`` URL.
        what: how error messages name the image (``"messages[0].content[1]"``).

    Raises:
        APIError: 400 (malformed, unreadable, disabled source), 403 (path outside the allowed
            folders), 413 (over the byte limit), 400 (an unreadable DICOM / NIfTI).
    """
    if url[:5].lower() == "data:":
        return _decode_data_url(url, settings, what)
    lowered = url[:8].lower()
    if lowered.startswith("file://"):
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise APIError(400, f"{what}: file URLs must name a local path", code="invalid_path")
        return _read_file(_resolve_allowed(unquote(parsed.path), settings, what), settings, what)
    if lowered.startswith(("http://", "https://")):
        return _fetch(url, settings, what)
    if url.startswith("/"):
        return _read_file(_resolve_allowed(url, settings, what), settings, what)
    raise APIError(400, f"{what}: unsupported image reference (use a data URL"
                   + (", a file path inside the allowed folders" if settings.allowed_dirs else "")
                   + (" or an http(s) URL" if settings.allow_remote_urls else "") + ")", code="invalid_image_url")
