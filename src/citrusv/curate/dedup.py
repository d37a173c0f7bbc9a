"""Deduplication across shards: exact text, near-duplicate text (MinHash LSH), near-duplicate images
(pHash + banded Hamming index) and image–text pairs.

Rows fall in three kinds, each with its own index (a text-only QA is never a duplicate of a
grounded one):

* ``text`` (no images): duplicate when the normalised instruction–response text hashes equal
  (``dup_text_exact``) or its MinHash reaches the Jaccard threshold against a kept row
  (``dup_text_near``).
* ``image`` (images, no text): duplicate when every image is within the Hamming radius of the
  kept row's images, in order (``dup_image``).
* ``pair`` (images and text): duplicate only when the images match as above **and** the text is
  equal or near-equal (``dup_pair``); the same image with a different report is kept.

The first row seen is the representative, so the result depends only on input order (shards are
committed in order whatever the worker count). Fingerprints are computed in workers
(``fingerprint``); ``Deduplicator`` runs in the main process and is rebuilt on resume by replaying
the fingerprints of kept rows of committed shards (``add_kept``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .minhash import MinHashLSH, jaccard_estimate, minhash_signature, normalize_text
from .phash import HammingIndex, hamming

__all__ = ["DedupConfig", "Deduplicator", "Fingerprint", "fingerprint", "row_text"]

_IMAGE_TAG = re.compile(r"<image>")


@dataclass
class DedupConfig:
    """Deduplication settings."""

    enabled: bool = True
    text_threshold: float = 0.8
    """Estimated Jaccard of word shingles at or above which two texts are near duplicates."""
    num_perm: int = 128
    ngram: int = 3
    seed: int = 1
    image_radius: int = 8
    """Largest pHash Hamming distance (of 64 bits) that counts as the same image."""
    image_bands: int | None = 4
    """Bit bands of the image index; ``None`` means ``image_radius + 1`` (exhaustive search)."""


@dataclass
class Fingerprint:
    """What deduplication needs of one row (picklable, computed in a worker)."""

    kind: str
    text_hash: bytes | None = None
    text_sig: np.ndarray | None = None
    image_hashes: list[int] = field(default_factory=list)


def row_text(row: dict[str, Any]) -> str:
    """The instruction–response text of a row: user and assistant contents without ``<image>``."""
    parts = [_IMAGE_TAG.sub("", m.get("content", "")) for m in row.get("messages", [])
             if m.get("role") in ("user", "assistant")]
    return "\n".join(p.strip() for p in parts if p.strip())


def fingerprint(row: dict[str, Any], config: DedupConfig, image_hashes: list[int] | None = None) -> Fingerprint:
    """The ``Fingerprint`` of a row; ``image_hashes`` are the pHashes of its images, in order."""
    text = row_text(row)
    hashes = list(image_hashes or [])
    kind = "pair" if hashes and text else "image" if hashes else "text"
    if not text:
        return Fingerprint(kind=kind, image_hashes=hashes)
    digest = hashlib.blake2b(normalize_text(text).encode("utf-8"), digest_size=16).digest()
    sig = minhash_signature(text, num_perm=config.num_perm, ngram=config.ngram, seed=config.seed)
    return Fingerprint(kind=kind, text_hash=digest, text_sig=sig, image_hashes=hashes)


class Deduplicator:
    """Stateful duplicate finder; ``check`` decides a row, ``add_kept`` records a kept one."""

    def __init__(self, config: DedupConfig):
        self.config = config
        self._ids: list[str] = []
        self._fps: list[Fingerprint | None] = []  # image / pair rows only; text signatures live in the LSH
        self._exact: dict[tuple[str, bytes], int] = {}
        self._text_lsh = MinHashLSH(config.text_threshold, config.num_perm)
        self._image_index = {kind: HammingIndex(config.image_radius, config.image_bands) for kind in ("image", "pair")}

    def __len__(self) -> int:
        return len(self._ids)

    def _images_match(self, a: list[int], b: list[int]) -> bool:
        return len(a) == len(b) and all(hamming(x, y) <= self.config.image_radius for x, y in zip(a, b))

    def _texts_match(self, a: Fingerprint, b: Fingerprint) -> bool:
        if a.text_hash == b.text_hash:
            return True
        return jaccard_estimate(a.text_sig, b.text_sig) >= self.config.text_threshold

    def check(self, fp: Fingerprint) -> tuple[str, str] | None:
        """``(reason, id of the kept representative)`` when ``fp`` duplicates a kept row, else ``None``."""
        if fp.kind == "text":
            if fp.text_hash is None:
                return None
            hit = self._exact.get(("text", fp.text_hash))
            if hit is not None:
                return "dup_text_exact", self._ids[hit]
            near = self._text_lsh.query(fp.text_sig)
            return ("dup_text_near", self._ids[near[0][0]]) if near else None
        for key, _ in self._image_index[fp.kind].query(fp.image_hashes[0]):
            other = self._fps[key]
            assert other is not None  # image indexes hold image / pair rows only
            if not self._images_match(fp.image_hashes, other.image_hashes):
                continue
            if fp.kind == "image":
                return "dup_image", self._ids[key]
            if self._texts_match(fp, other):
                return "dup_pair", self._ids[key]
        return None

    def add_kept(self, row_id: str, fp: Fingerprint) -> None:
        """Record a kept row so later rows are checked against it."""
        key = len(self._ids)
        self._ids.append(row_id)
        self._fps.append(None if fp.kind == "text" else fp)
        if fp.kind == "text":
            if fp.text_hash is not None:
                self._exact.setdefault(("text", fp.text_hash), key)
                self._text_lsh.insert(key, fp.text_sig)
        else:
            self._image_index[fp.kind].insert(key, fp.image_hashes[0])
