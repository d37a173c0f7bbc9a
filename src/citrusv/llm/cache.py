"""A disk cache of chat completions, keyed by the request.

The key is the SHA-256 of a canonical JSON of the namespace (by default the endpoint URL) and the
request body: model, messages (images included, as data URLs) and every sampling parameter. The
API key is not part of it, so rotating keys keeps the cache. One file per key under a two-level
fan-out (``ab/cd/abcd....json``) keeps directories small at millions of entries; each file is
written to a temporary name and renamed into place, so a crash never leaves a half-written entry,
and an entry that does not read back (disk trouble, a hand edit) counts as a miss and is
overwritten by the next answer.

A hit returns the stored answer whatever the temperature: with ``temperature > 0`` the cache
freezes one sample. That is deliberate (a judge rerun must give the same verdicts); to draw fresh
samples, use another ``seed``, another namespace or no cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["ResponseCache", "request_key"]

logger = logging.getLogger(__name__)

#: Bumped when the key recipe changes, so old entries become misses instead of wrong hits.
KEY_VERSION = 1


def _canonical(value: Any) -> Any:
    # 0 and 0.0 (or 1 and 1.0) are the same request to a server, but json.dumps writes them
    # differently; integral floats become ints so both spellings share one key.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def request_key(namespace: str, body: dict[str, Any]) -> str:
    """The cache key (64 hex digits) of a request body under a namespace.

    Args:
        namespace: separates endpoints that serve different models under one name (the client
            uses the base URL unless told otherwise).
        body: the JSON body of ``POST /chat/completions``.

    Raises:
        TypeError: the body holds something JSON cannot encode.
    """
    payload = {"v": KEY_VERSION, "namespace": namespace, "body": _canonical(body)}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ResponseCache:
    """Response JSON stored one file per request key; safe for many threads and processes.

    Args:
        root: the cache folder (created when missing).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        """Where the entry for ``key`` lives.

        Raises:
            ValueError: ``key`` is not 64 lowercase hex digits (a guard against path tricks).
        """
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"a cache key is 64 lowercase hex digits, got {key!r}")
        return self.root / key[:2] / key[2:4] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored response for ``key``, or ``None`` on a miss (absent or unreadable entry)."""
        path = self.path_for(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            logger.warning("unreadable cache entry %s (%s); treating it as a miss", path, err)
            return None
        if not isinstance(entry, dict) or entry.get("key") != key or not isinstance(entry.get("response"), dict):
            logger.warning("malformed cache entry %s; treating it as a miss", path)
            return None
        return entry["response"]

    def put(self, key: str, response: dict[str, Any]) -> None:
        """Store ``response`` for ``key`` atomically (temporary file, fsync, rename).

        Raises:
            TypeError: ``response`` holds something JSON cannot encode.
            OSError: the disk write failed (nothing partial is left behind).
        """
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"key": key, "created": time.time(), "response": response}, ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:8]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def delete(self, key: str) -> bool:
        """Remove the entry for ``key``; returns whether there was one."""
        try:
            self.path_for(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("??/??/*.json"))

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.root)!r})"
