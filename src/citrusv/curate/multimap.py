"""``SortedMultiMap``: a compact uint64 → uint32 multimap for deduplication indexes.

Python dicts cost about 100 bytes per entry; at 16.8M rows with a dozen index keys each that is
tens of GB. This map stores 12 bytes per entry in sorted numpy runs, log-structured: each batch
insert becomes a run, and the two newest runs are merged while the older is not more than twice
the newer (so there are O(log n) runs and each entry is re-sorted O(log n) times). Lookups are
batched ``searchsorted`` calls, one pair per run.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SortedMultiMap", "expand_ranges"]


def expand_ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(owner, position)`` for every position in each half-open range ``[lo[i], hi[i])``.

    >>> expand_ranges(np.array([0, 5, 7]), np.array([2, 5, 8]))
    (array([0, 0, 2]), array([0, 1, 7]))
    """
    counts = hi - lo
    total = int(counts.sum())
    owner = np.repeat(np.arange(len(lo)), counts)
    if total == 0:
        return owner, np.zeros(0, dtype=np.int64)
    first = np.cumsum(counts) - counts
    return owner, np.repeat(lo, counts) + (np.arange(total) - np.repeat(first, counts))


class SortedMultiMap:
    """Several uint32 values per uint64 key; batch ``insert`` and ``lookup``."""

    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return sum(len(keys) for keys, _ in self._runs)

    @property
    def nbytes(self) -> int:
        """Bytes held by the keys and values."""
        return sum(keys.nbytes + values.nbytes for keys, values in self._runs)

    def insert(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Add ``keys[i] → values[i]`` for every ``i`` (duplicates are kept)."""
        keys = np.asarray(keys, dtype=np.uint64).ravel()
        values = np.asarray(values, dtype=np.uint32).ravel()
        if keys.shape != values.shape:
            raise ValueError(f"keys and values differ in length: {keys.shape} vs {values.shape}")
        if keys.size == 0:
            return
        order = np.argsort(keys, kind="stable")
        self._runs.append((keys[order], values[order]))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            (k1, v1), (k2, v2) = self._runs[-2], self._runs.pop()
            keys, values = np.concatenate([k1, k2]), np.concatenate([v1, v2])
            order = np.argsort(keys, kind="stable")  # stable: older values first for equal keys
            self._runs[-1] = (keys[order], values[order])

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(query_index, value)`` pairs: every stored value of every queried key."""
        keys = np.asarray(keys, dtype=np.uint64).ravel()
        owners, values = [], []
        for run_keys, run_values in self._runs:
            lo = np.searchsorted(run_keys, keys, side="left")
            found = np.flatnonzero(run_keys[np.minimum(lo, run_keys.size - 1)] == keys)
            if found.size == 0:  # the usual case: most keys are in no run
                continue
            hi = np.searchsorted(run_keys, keys[found], side="right")
            owner, position = expand_ranges(lo[found], hi)
            owner = found[owner]
            if owner.size:
                owners.append(owner)
                values.append(run_values[position])
        if not owners:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint32)
        return np.concatenate(owners), np.concatenate(values)
