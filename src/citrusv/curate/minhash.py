"""MinHash signatures over word shingles and a banded LSH index (numpy only).

A signature is ``num_perm`` minima of multiply-shift hashes ``(a * x + b) >> 32`` (64-bit
wrap-around, ``a`` odd) over the 32-bit hashes ``x`` of a text's shingles. The fraction of equal
entries of two signatures estimates the Jaccard similarity of their shingle sets. ``MinHashLSH``
splits a signature into ``bands`` of ``rows`` entries; two texts become candidates when one band
is equal, and a candidate counts as a near duplicate when its estimated Jaccard reaches the
threshold (so the index has no false positives beyond the estimate's noise).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

import numpy as np

__all__ = ["MinHashLSH", "jaccard_estimate", "lsh_params", "minhash_signature", "normalize_text", "shingles"]

_WORD = re.compile(r"\w+", re.UNICODE)
_SPACE = re.compile(r"\s+")
_EMPTY_SIGNATURE_VALUE = np.uint64(2**32 - 1)


def normalize_text(text: str) -> str:
    """Case-folded text with runs of whitespace collapsed to one space (the exact-dedup key)."""
    return _SPACE.sub(" ", text.casefold()).strip()


def shingles(text: str, n: int = 3) -> set[str]:
    """Word ``n``-grams of the normalised text; a text shorter than ``n`` words is one shingle."""
    words = _WORD.findall(text.casefold())
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def _hash32(items: Iterable[str]) -> np.ndarray:
    return np.fromiter((int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=4).digest(), "little")
                        for s in items), dtype=np.uint64)


def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
    return a, b


def minhash_signature(text: str, num_perm: int = 128, ngram: int = 3, seed: int = 1) -> np.ndarray:
    """``[num_perm]`` uint32 MinHash signature of ``text``'s word shingles.

    An empty text (no words) gets a signature of all ``2**32 - 1``; two empty texts compare equal.
    The same ``seed`` must be used for every signature that is compared.
    """
    if num_perm <= 0:
        raise ValueError(f"num_perm must be positive, got {num_perm}")
    x = _hash32(sorted(shingles(text, ngram)))
    if x.size == 0:
        return np.full(num_perm, _EMPTY_SIGNATURE_VALUE, dtype=np.uint32)
    a, b = _permutations(num_perm, seed)
    with np.errstate(over="ignore"):
        values = (a[:, None] * x[None, :] + b[:, None]) >> np.uint64(32)
    return values.min(axis=1).astype(np.uint32)


def jaccard_estimate(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Fraction of equal entries: an unbiased estimate of the shingle-set Jaccard similarity."""
    if sig_a.shape != sig_b.shape:
        raise ValueError(f"signatures differ in length: {sig_a.shape} vs {sig_b.shape}")
    return float(np.mean(sig_a == sig_b))


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """``(bands, rows)`` with ``bands * rows <= num_perm`` minimising the summed false-positive and
    false-negative areas of the S-curve ``1 - (1 - s**rows)**bands`` around ``threshold``."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    s = np.linspace(0.0, 1.0, 1001)
    best, best_cost = (1, num_perm), float("inf")
    for bands in range(1, num_perm + 1):
        rows = num_perm // bands
        prob = 1.0 - (1.0 - s**rows) ** bands
        cost = np.trapezoid(np.where(s < threshold, prob, 0.0), s) + np.trapezoid(np.where(s >= threshold, 1 - prob, 0.0), s)
        if cost < best_cost:
            best, best_cost = (bands, rows), cost
    return best


class MinHashLSH:
    """Banded LSH over MinHash signatures, holding integer keys.

    Args:
        threshold: estimated Jaccard at or above which two texts are near duplicates.
        num_perm: signature length.
        bands: number of bands (default: ``lsh_params(threshold, num_perm)``).
    """

    def __init__(self, threshold: float = 0.8, num_perm: int = 128, bands: int | None = None):
        self.threshold = threshold
        self.num_perm = num_perm
        if bands is None:
            self.bands, self.rows = lsh_params(threshold, num_perm)
        else:
            if not 0 < bands <= num_perm:
                raise ValueError(f"bands must be in 1..{num_perm}, got {bands}")
            self.bands, self.rows = bands, num_perm // bands
        self._tables: list[dict[bytes, list[int]]] = [{} for _ in range(self.bands)]
        self._signatures: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._signatures)

    def _band_keys(self, signature: np.ndarray) -> list[bytes]:
        if signature.shape != (self.num_perm,):
            raise ValueError(f"signature must have shape ({self.num_perm},), got {signature.shape}")
        r = self.rows
        return [signature[i * r:(i + 1) * r].tobytes() for i in range(self.bands)]

    def insert(self, key: int, signature: np.ndarray) -> None:
        """Add ``signature`` under ``key`` (keys are unique; re-inserting one raises)."""
        if key in self._signatures:
            raise ValueError(f"key {key} is already in the index")
        sig = np.asarray(signature, dtype=np.uint32)
        for table, band in zip(self._tables, self._band_keys(sig)):
            table.setdefault(band, []).append(key)
        self._signatures[key] = sig

    def candidates(self, signature: np.ndarray) -> set[int]:
        """Keys sharing at least one band with ``signature``."""
        sig = np.asarray(signature, dtype=np.uint32)
        found: set[int] = set()
        for table, band in zip(self._tables, self._band_keys(sig)):
            found.update(table.get(band, ()))
        return found

    def query(self, signature: np.ndarray) -> list[tuple[int, float]]:
        """``(key, estimated Jaccard)`` of stored near duplicates, best first (ties: lower key)."""
        sig = np.asarray(signature, dtype=np.uint32)
        hits = [(k, jaccard_estimate(sig, self._signatures[k])) for k in self.candidates(sig)]
        return sorted([h for h in hits if h[1] >= self.threshold], key=lambda h: (-h[1], h[0]))
