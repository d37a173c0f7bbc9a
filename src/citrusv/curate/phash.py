"""Perceptual image hash (DCT pHash, 64 bits) and a banded index for Hamming-radius search.

``phash``: grayscale, resize to 32×32, 2-D DCT-II, keep the 8×8 lowest frequencies, set a bit
where a coefficient exceeds their median (the scheme of ``imagehash.phash``). ``HammingIndex``
splits hashes into ``bands`` bit ranges; by the pigeonhole principle a hash within Hamming distance
``bands - 1`` shares at least one band exactly, so with ``bands = radius + 1`` the search is
exhaustive; fewer, wider bands trade recall for fewer candidates (each is verified).
"""

from __future__ import annotations

import itertools

import numpy as np

from .multimap import SortedMultiMap

__all__ = ["HammingIndex", "hamming", "hamming_band_keys", "hamming_bands", "phash", "phash_file"]


def phash(image, hash_size: int = 8, highfreq_factor: int = 4) -> int:
    """64-bit (``hash_size**2``) perceptual hash of a PIL image or a 2-D / 3-D numpy array."""
    from PIL import Image
    from scipy.fft import dctn

    if isinstance(image, np.ndarray):
        if image.dtype == np.uint8:  # 8-bit: as PIL would hold it
            image = Image.fromarray(image)
        else:  # other ranges (CT in HU, 16-bit): min-max scaled to 0..255
            arr = image.astype(np.float64)
            if arr.ndim == 3:
                arr = arr[..., :3].mean(axis=2)
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
            image = Image.fromarray(arr.astype(np.uint8))
    side = hash_size * highfreq_factor
    gray = np.asarray(image.convert("L").resize((side, side), Image.Resampling.LANCZOS), dtype=np.float64)
    low = dctn(gray, type=2, norm="ortho")[:hash_size, :hash_size]
    bits = (low > np.median(low)).flatten()
    return int(sum(1 << i for i, bit in enumerate(bits) if bit))


def phash_file(path) -> int:
    """``phash`` of the image file at ``path`` (first frame)."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return phash(image)


def hamming(a: int, b: int) -> int:
    """Number of differing bits of two integer hashes."""
    return (a ^ b).bit_count()


def hamming_bands(bands: int, bits: int = 64) -> list[tuple[int, int]]:
    """``(mask, shift)`` of each of ``bands`` contiguous bit ranges covering ``bits`` bits."""
    if not 0 < bands <= bits:
        raise ValueError(f"bands must be in 1..{bits}, got {bands}")
    edges = [int(e) for e in np.linspace(0, bits, bands + 1).astype(int)]
    return [(((1 << (hi - lo)) - 1) << lo, lo) for lo, hi in itertools.pairwise(edges)]


def hamming_band_keys(values: np.ndarray, bands: list[tuple[int, int]], salt: int = 0) -> np.ndarray:
    """``[n, len(bands)]`` uint64 keys: each band's bits of each hash, tagged with the band number
    and ``salt`` so that all bands (and several indexes) can share one table."""
    values = np.asarray(values, dtype=np.uint64).reshape(-1)
    keys = np.empty((values.size, len(bands)), dtype=np.uint64)
    for b, (mask, shift) in enumerate(bands):
        tag = ((salt & 0xFFFF) << 8) | (b & 0xFF)
        band = (values & np.uint64(mask)) >> np.uint64(shift)
        if mask >> shift < 1 << 48:  # room for the tag above the band's bits: keys never collide
            keys[:, b] = band | np.uint64(tag << 48)
        else:  # a band wider than 48 bits (one or two bands): tagged by xor; candidates are verified anyway
            keys[:, b] = band ^ np.uint64((tag * 0x9E3779B97F4A7C15) & (2**64 - 1))
    return keys


class HammingIndex:
    """Integer keys with 64-bit hashes, searchable within a Hamming radius (in memory).

    Args:
        radius: largest Hamming distance that counts as a near duplicate.
        bands: number of bit bands (default ``radius + 1``: exhaustive).
        bits: hash length.
    """

    def __init__(self, radius: int = 8, bands: int | None = None, bits: int = 64):
        if radius < 0:
            raise ValueError(f"radius must be >= 0, got {radius}")
        self.radius = radius
        self.bands = bands if bands is not None else min(radius + 1, bits)
        self._bands = hamming_bands(self.bands, bits)
        self._table = SortedMultiMap()
        self._hashes: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._hashes)

    def insert(self, key: int, value: int) -> None:
        if key in self._hashes:
            raise ValueError(f"key {key} is already in the index")
        keys = hamming_band_keys(np.array([value], dtype=np.uint64), self._bands)[0]
        self._table.insert(keys, np.full(len(keys), key, dtype=np.uint32))
        self._hashes[key] = value

    def query(self, value: int) -> list[tuple[int, int]]:
        """``(key, distance)`` of stored hashes within ``radius``, nearest first (ties: lower key)."""
        _, found = self._table.lookup(hamming_band_keys(np.array([value], dtype=np.uint64), self._bands)[0])
        hits = [(k, hamming(value, self._hashes[k])) for k in set(found.tolist())]
        return sorted([h for h in hits if h[1] <= self.radius], key=lambda h: (h[1], h[0]))
