"""MinHash signatures over word shingles (one-permutation hashing) and a banded LSH index.

Signatures are computed for a whole batch of texts with numpy (``minhash_signatures``), because
deduplication must keep up with 16.8M rows:

1. Words are ``\\w+`` runs of the case-folded text; each word gets a 64-bit polynomial hash of its
   bytes (computed for the whole batch with one prefix sum, no Python step per word), and each
   word ``n``-gram (shingle) the polynomial of its word hashes. A text of
   fewer than ``n`` words is one shingle. This is the set ``shingles`` describes.
2. **One-permutation hashing** (Li, Owen & Zhang, NeurIPS 2012): each shingle hash is mixed with
   the seed (splitmix64), its low 32 bits pick one of ``num_perm`` bins and its high 32 bits are
   the value; a bin keeps its minimum. One hash per shingle instead of ``num_perm``: the classical
   ``num_perm``-permutation scheme cost 28 µs per 45-word text here, this costs about 1 µs.
3. **Optimal densification** (Shrivastava, ICML 2017): an empty bin ``i`` borrows the value of
   the first non-empty bin in a pseudo-random sequence of bins that depends only on ``(i, seed)``,
   so two texts borrow alike and the fraction of equal entries stays an unbiased estimate of the
   shingle-set Jaccard similarity (measured here: bias below 0.002; RMSE 0.05 on 10-word texts,
   0.042 on 40-word texts, the same as 128 independent permutations from 40 words up).

``band_keys`` folds each band of ``rows`` entries of a signature into one 64-bit key; ``MinHashLSH``
is a small in-memory index built on them (the curation deduplicator keeps its own compact one in
``dedup``).
"""

from __future__ import annotations

import re

import numpy as np

from .multimap import SortedMultiMap

__all__ = ["MinHashLSH", "band_keys", "jaccard_estimate", "lsh_params", "minhash_signature", "minhash_signatures",
           "shingles", "text_fingerprints"]

_WORD = re.compile(r"\w+", re.UNICODE)
_EMPTY_SIGNATURE_VALUE = np.uint64(2**32 - 1)
_EMPTY = np.uint64(2**64 - 1)
_POLY = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier folding the word hashes of a shingle
_LOW32 = np.uint64(0xFFFFFFFF)


def shingles(text: str, n: int = 3) -> set[str]:
    """Word ``n``-grams of the normalised text; a text shorter than ``n`` words is one shingle."""
    words = _WORD.findall(text.casefold())
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 whose output bits all depend on every input bit."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


_BASE = np.uint64(0x100000001B3)  # odd, so invertible modulo 2**64
_BASE_INVERSE = np.uint64(pow(int(_BASE), -1, 2**64))
_POWERS: dict[str, np.ndarray] = {"up": np.ones(1, np.uint64), "down": np.ones(1, np.uint64)}
#: ASCII bytes as the hashing sees them: letters lower-cased, digits and "_" kept (``\\w``), NUL kept
#: (it separates texts), everything else a space.
_ASCII_CLASS = bytes(c if chr(c).isalnum() or c in (0x00, 0x5F) else 0x20 for c in range(128)).lower() + bytes([0x20]) * 128
_NON_WORD = re.compile(r"[^\w\x00]+", re.UNICODE)


_POWERS_CACHED = 1 << 23  # 2 × 64 MB at most stay cached; a longer batch computes its own


def _powers(length: int) -> tuple[np.ndarray, np.ndarray]:
    """``(BASE**k, BASE**-k)`` modulo 2**64 for ``k < length`` (grown on demand, cached up to
    ``_POWERS_CACHED``)."""
    if _POWERS["up"].size >= length:
        return _POWERS["up"][:length], _POWERS["down"][:length]
    size = max(length, min(2 * _POWERS["up"].size, _POWERS_CACHED))
    with np.errstate(over="ignore"):
        up = np.cumprod(np.concatenate([[np.uint64(1)], np.full(size - 1, _BASE)]), dtype=np.uint64)
        down = np.cumprod(np.concatenate([[np.uint64(1)], np.full(size - 1, _BASE_INVERSE)]), dtype=np.uint64)
    if size <= _POWERS_CACHED:
        _POWERS["up"], _POWERS["down"] = up, down
    return up[:length], down[:length]


def _word_hashes(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(hashes, text_index)`` of the words (``\\w+`` runs of the case-folded text) of all texts,
    in order, without a Python step per word: the texts are joined into one byte buffer (NUL
    between texts, space for every non-word character) and each word's polynomial hash
    ``sum c_k * BASE**(end-1-k)`` comes from one prefix sum of ``c_k * BASE**-k``."""
    joined = "\x00".join(t.replace("\x00", " ") for t in texts)
    if joined.isascii():
        data = joined.encode("ascii").translate(_ASCII_CLASS)
    else:  # Unicode \w (CJK, accents): non-word runs to spaces, word characters kept as UTF-8 bytes
        data = _NON_WORD.sub(" ", joined.casefold()).encode("utf-8")
    buffer = np.frombuffer(data, dtype=np.uint8)
    word = (buffer != 0x20) & (buffer != 0)
    edges = np.diff(word.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    owner = np.searchsorted(np.flatnonzero(buffer == 0), starts, side="right")
    up, down = _powers(buffer.size + 1)
    with np.errstate(over="ignore"):
        prefix = np.concatenate([[np.uint64(0)], np.cumsum(buffer.astype(np.uint64) * down[:buffer.size], dtype=np.uint64)])
        hashes = (prefix[ends] - prefix[starts]) * up[ends - 1]
        hashes = _mix64(hashes ^ (ends - starts).astype(np.uint64))
    return hashes, owner.astype(np.int64)


def _shingle_hashes(words: np.ndarray, text_of_word: np.ndarray, count: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(hashes, text_index)``: the uint64 hash of every shingle of every text (repeats allowed),
    from the word hashes of ``_word_hashes``."""
    if n <= 0:
        raise ValueError(f"ngram must be positive, got {n}")
    lengths = np.bincount(text_of_word, minlength=count)
    parts, owners = [], []
    with np.errstate(over="ignore"):
        if words.size >= n:
            count = words.size - n + 1
            folded = words[:count].copy()
            for j in range(1, n):
                folded *= _POLY
                folded += words[j:count + j]
            inside = text_of_word[:count] == text_of_word[n - 1:]  # window within one text
            parts.append(folded[inside])
            owners.append(text_of_word[:count][inside])
        short = np.flatnonzero((lengths > 0) & (lengths < n))
        if short.size:  # fewer than n words: the whole text is one shingle
            starts = np.cumsum(lengths) - lengths
            values = words[starts[short]].copy()
            for j in range(1, n - 1):
                present = lengths[short] > j
                values[present] = values[present] * _POLY + words[starts[short[present]] + j]
            parts.append(values)
            owners.append(short)
    if not parts:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    return np.concatenate(parts), np.concatenate(owners).astype(np.int64)


def _sequence_hashes(words: np.ndarray, text_of_word: np.ndarray, count: int) -> np.ndarray:
    """uint64 hash of each text's word sequence (order-sensitive polynomial of its word hashes)."""
    lengths = np.bincount(text_of_word, minlength=count)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    up, down = _powers(words.size + 1)
    with np.errstate(over="ignore"):
        prefix = np.concatenate([[np.uint64(0)], np.cumsum(words * down[:words.size], dtype=np.uint64)])
        folded = (prefix[ends] - prefix[starts]) * up[np.maximum(ends - 1, 0)]
        return _mix64(folded ^ (lengths.astype(np.uint64) * _POLY))


def text_fingerprints(texts: list[str], num_perm: int = 128, ngram: int = 3, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(signatures, text_hashes)`` of a batch, from one tokenisation: the ``minhash_signatures``
    and a 64-bit hash of each text's case-folded word sequence (the exact-duplicate key: case,
    spacing and punctuation do not count, word order does)."""
    if num_perm <= 0:
        raise ValueError(f"num_perm must be positive, got {num_perm}")
    count = len(texts)
    if count == 0:
        return np.zeros((0, num_perm), np.uint32), np.zeros(0, np.uint64)
    words, text_of_word = _word_hashes(texts)
    shingle_hashes, owner = _shingle_hashes(words, text_of_word, count, ngram)
    salt = _mix64(np.array([seed & (2**64 - 1)], dtype=np.uint64))[0]
    mixed = _mix64(shingle_hashes ^ salt)
    bins = (mixed & _LOW32) % np.uint64(num_perm)
    signatures = np.full(count * num_perm, _EMPTY, dtype=np.uint64)
    np.minimum.at(signatures, owner * num_perm + bins.astype(np.int64), mixed >> np.uint64(32))
    signatures = signatures.reshape(count, num_perm)
    _densify(signatures, salt)
    signatures[signatures == _EMPTY] = _EMPTY_SIGNATURE_VALUE  # texts without words
    return signatures.astype(np.uint32), _sequence_hashes(words, text_of_word, count)


def minhash_signatures(texts: list[str], num_perm: int = 128, ngram: int = 3, seed: int = 1) -> np.ndarray:
    """``[len(texts), num_perm]`` uint32 signatures of the texts' word-shingle sets.

    A text with no words gets a signature of all ``2**32 - 1``; two such texts compare equal. Every
    signature that is compared must use the same ``num_perm``, ``ngram`` and ``seed``.
    """
    return text_fingerprints(texts, num_perm, ngram, seed)[0]


_PROBE_STEP = np.uint64(0xD1B54A32D192ED03)


def _probe(bins: np.ndarray, attempt: np.ndarray | int, salt: np.uint64, num_perm: int) -> np.ndarray:
    """The bin that empty bin ``bins`` looks at on ``attempt`` (1, 2, ...): the same for every text."""
    with np.errstate(over="ignore"):
        mixed = _mix64(bins.astype(np.uint64) + salt + np.uint64(attempt) * _PROBE_STEP)
    return (mixed % np.uint64(num_perm)).astype(np.int64)


def _densify(signatures: np.ndarray, salt: np.uint64) -> None:
    """Optimal densification in place: empty bin ``i`` of a row takes the value of bin
    ``_probe(i, attempt)`` for the first attempt that lands on a bin filled by a shingle.

    While many bins are empty, each attempt is one pass over the whole block (bins × texts, bins
    first so a probe copies whole rows); the last few (texts of a few shingles need many attempts)
    continue as a list of positions."""
    count, num_perm = signatures.shape
    filled = np.ascontiguousarray((signatures != _EMPTY).T)  # [num_perm, count]
    empty = ~filled & filled.any(axis=0)[None, :]
    source = np.full((num_perm, count), -1, dtype=np.int16 if num_perm < 2**15 else np.int64)
    bins = np.arange(num_perm)
    attempt, remaining = 0, int(np.count_nonzero(empty))
    while remaining > count * num_perm // 32:
        for _ in range(4):  # counting what is left costs a pass too: count every fourth attempt
            attempt += 1
            probe = _probe(bins, attempt, salt, num_perm)
            hit = empty & filled[probe]
            np.copyto(source, probe[:, None].astype(source.dtype), where=hit)
            empty &= ~hit
        remaining = int(np.count_nonzero(empty))
    cols, rows = np.nonzero(empty)  # (bin, text) still empty
    while rows.size:
        attempt += 1
        probe = _probe(cols, attempt, salt, num_perm)
        hit = filled[probe, rows]
        source[cols[hit], rows[hit]] = probe[hit]
        rows, cols = rows[~hit], cols[~hit]
    own = np.broadcast_to(bins[:, None], source.shape)
    source = np.where(source >= 0, source, own).T  # [count, num_perm]: where each bin's value comes from
    signatures[:] = np.take_along_axis(signatures, source.astype(np.intp), axis=1)


def minhash_signature(text: str, num_perm: int = 128, ngram: int = 3, seed: int = 1) -> np.ndarray:
    """``[num_perm]`` uint32 signature of one text (``minhash_signatures`` of a batch of one)."""
    return minhash_signatures([text], num_perm, ngram, seed)[0]


def jaccard_estimate(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Fraction of equal entries: an estimate of the shingle-set Jaccard similarity."""
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


def band_keys(signatures: np.ndarray, bands: int, rows: int, salt: int = 0) -> np.ndarray:
    """``[n, bands]`` uint64 keys: band ``b`` of each signature (entries ``b*rows`` to
    ``(b+1)*rows``) folded into one hash that also depends on ``b`` and ``salt``, so several bands
    (and several indexes) can share one table. Equal bands give equal keys; unequal ones collide
    with probability about ``2**-64``."""
    signatures = np.asarray(signatures)
    if signatures.ndim != 2 or signatures.shape[1] < bands * rows:
        raise ValueError(f"signatures must have shape (n, >= {bands * rows}), got {signatures.shape}")
    body = signatures[:, :bands * rows].astype(np.uint64).reshape(len(signatures), bands, rows)
    with np.errstate(over="ignore"):
        keys = np.zeros((len(signatures), bands), dtype=np.uint64)
        for j in range(rows):
            keys = _mix64(keys ^ body[:, :, j])
        band_salt = _mix64(np.arange(bands, dtype=np.uint64) + np.uint64(salt & (2**64 - 1)) * np.uint64(0x9E3779B97F4A7C15))
        return _mix64(keys ^ band_salt[None, :])


class MinHashLSH:
    """Banded LSH over MinHash signatures, holding integer keys (an in-memory reference index).

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
        self._table = SortedMultiMap()
        self._signatures: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._signatures)

    def _keys(self, signature: np.ndarray) -> np.ndarray:
        sig = np.asarray(signature, dtype=np.uint32)
        if sig.shape != (self.num_perm,):
            raise ValueError(f"signature must have shape ({self.num_perm},), got {sig.shape}")
        return band_keys(sig[None, :], self.bands, self.rows)[0]

    def insert(self, key: int, signature: np.ndarray) -> None:
        """Add ``signature`` under ``key`` (keys are unique; re-inserting one raises)."""
        if key in self._signatures:
            raise ValueError(f"key {key} is already in the index")
        keys = self._keys(signature)
        self._table.insert(keys, np.full(len(keys), key, dtype=np.uint32))
        self._signatures[key] = np.asarray(signature, dtype=np.uint32)

    def candidates(self, signature: np.ndarray) -> set[int]:
        """Keys sharing at least one band with ``signature``."""
        _, values = self._table.lookup(self._keys(signature))
        return set(values.tolist())

    def query(self, signature: np.ndarray) -> list[tuple[int, float]]:
        """``(key, estimated Jaccard)`` of stored near duplicates, best first (ties: lower key)."""
        sig = np.asarray(signature, dtype=np.uint32)
        hits = [(k, jaccard_estimate(sig, self._signatures[k])) for k in self.candidates(sig)]
        return sorted([h for h in hits if h[1] >= self.threshold], key=lambda h: (-h[1], h[0]))
