"""``ServeSettings``: every limit and safety switch of the HTTP server in one dataclass."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ServeSettings", "check_bind_address", "is_loopback"]


@dataclass
class ServeSettings:
    """Server settings (safe defaults for medical data; see ``docs/serving.md``).

    Attributes:
        model_name: the id reported by ``/v1/models``; requests must name it.
        api_key: bearer token required on ``/v1/*``; ``None`` disables auth (loopback only).
        allowed_dirs: folders whose files requests may name (``file://`` URLs or absolute
            paths). Empty: file paths are refused. Symlinks are resolved before the check.
        allow_remote_urls: fetch ``http(s)://`` image URLs (off by default).
        remote_timeout_s: timeout of one remote image fetch.
        max_body_bytes: largest request body (413 above).
        max_image_bytes: largest single image after base64 decoding / on disk / fetched.
        max_image_pixels: largest image (width · height, read from the header before decoding).
        max_images_per_request: images across all messages of one request.
        max_messages: messages per request.
        max_prompt_tokens: prompt tokens after image expansion (400 above).
        max_new_tokens_limit: largest ``max_tokens`` a request may ask for (400 above).
        default_max_tokens: ``max_tokens`` when the request gives none.
        max_batch_size: requests generated together in one ``pipeline`` call.
        max_wait_ms: how long the batcher waits for more requests after the first one.
        max_pending: requests queued or running at once; more get 429.
        log_content: log prompt text (never image bytes); for debugging only.
    """

    model_name: str = "citrus-v"
    api_key: str | None = None
    allowed_dirs: tuple[Path, ...] = field(default_factory=tuple)
    allow_remote_urls: bool = False
    remote_timeout_s: float = 10.0
    max_body_bytes: int = 32 * 1024 * 1024
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    max_images_per_request: int = 4
    max_messages: int = 64
    max_prompt_tokens: int = 16384
    max_new_tokens_limit: int = 2048
    default_max_tokens: int = 512
    max_batch_size: int = 8
    max_wait_ms: float = 5.0
    max_pending: int = 64
    log_content: bool = False

    def __post_init__(self) -> None:
        self.allowed_dirs = tuple(Path(d).expanduser().resolve() for d in self.allowed_dirs)
        for folder in self.allowed_dirs:
            if not folder.is_dir():
                raise ValueError(f"allowed folder {folder} does not exist or is not a folder")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key must not be empty (pass None to disable auth)")
        positive = ("max_body_bytes", "max_image_bytes", "max_image_pixels", "max_images_per_request", "max_messages",
                    "max_prompt_tokens", "max_new_tokens_limit", "default_max_tokens", "max_batch_size", "max_pending")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.default_max_tokens > self.max_new_tokens_limit:
            raise ValueError(f"default_max_tokens ({self.default_max_tokens}) exceeds max_new_tokens_limit "
                             f"({self.max_new_tokens_limit})")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")


def is_loopback(host: str) -> bool:
    """``True`` for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind_address(host: str, api_key: str | None) -> None:
    """Refuse to serve on a non-loopback address without an API key.

    Raises:
        ValueError: ``host`` is not loopback and ``api_key`` is missing.
    """
    if not is_loopback(host) and not api_key:
        raise ValueError(f"refusing to bind {host} without an API key: pass --api-key or set CITRUSV_API_KEY "
                         "(or bind 127.0.0.1)")
