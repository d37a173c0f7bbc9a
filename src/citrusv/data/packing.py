"""Best-fit sequence packing (Ding et al. 2024, "Fewer truncations improve language modeling").

A sample longer than ``max_length`` is split into chunks of at most ``max_length`` tokens; every
chunk then goes, longest first, into the open row with the least room that still fits it
(best-fit decreasing), and a new row is opened only when none fits. No other sample is cut.

The search for "least room that still fits" keeps one bucket of rows per remaining capacity and
a bitmask (a Python int) of the non-empty buckets, so each chunk costs a shift and a lowest-set-bit
lookup instead of a scan over rows: a million lengths pack in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["PackingStats", "pack_best_fit", "packing_stats"]

Span = tuple[int, int, int]  # (sample_index, start, end): tokens [start, end) of a sample


def pack_best_fit(lengths: Sequence[int] | np.ndarray, max_length: int) -> list[list[Span]]:
    """Pack samples of the given token lengths into rows of at most ``max_length`` tokens.

    Args:
        lengths: token count of each sample (positive integers).
        max_length: capacity of a row.

    Returns:
        One list per row of ``(sample_index, start, end)`` spans; each sample's tokens appear in
        exactly one span, or in several consecutive chunks of ``max_length`` (the last shorter)
        when the sample is longer than a row. Deterministic for the same input.

    Raises:
        ValueError: ``max_length`` < 1, or a length that is not a positive integer.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    sizes = np.asarray(lengths, dtype=np.int64)
    if sizes.ndim != 1:
        raise ValueError(f"lengths must be a 1-D sequence, got shape {sizes.shape}")
    if sizes.size and sizes.min() < 1:
        bad = int(np.flatnonzero(sizes < 1)[0])
        raise ValueError(f"sample {bad} has length {int(sizes[bad])}; lengths must be >= 1")

    rows: list[list[Span]] = []
    # Whole rows of max_length chunks from long samples need no search.
    long_samples = np.flatnonzero(sizes > max_length)
    tails_index: list[int] = []
    tails_start: list[int] = []
    for index in long_samples.tolist():
        full, rest = divmod(int(sizes[index]), max_length)
        rows.extend([[(index, k * max_length, (k + 1) * max_length)] for k in range(full)])
        if rest:
            tails_index.append(index)
            tails_start.append(full * max_length)

    # Chunks to place: samples that fit, plus the tails of long samples.
    fitting = np.flatnonzero((sizes <= max_length))
    chunk_index = np.concatenate([fitting, np.asarray(tails_index, dtype=np.int64)])
    chunk_start = np.concatenate([np.zeros(fitting.size, dtype=np.int64), np.asarray(tails_start, dtype=np.int64)])
    chunk_len = sizes[chunk_index] - chunk_start
    order = np.lexsort((chunk_index, -chunk_len))  # longest first, ties by sample index

    buckets: list[list[int]] = [[] for _ in range(max_length + 1)]  # remaining capacity → rows
    nonempty = 0  # bit c set ⇔ buckets[c] holds a row
    for index, start, length in zip(chunk_index[order].tolist(), chunk_start[order].tolist(), chunk_len[order].tolist()):
        fits = nonempty >> length
        if fits:
            room = length + (fits & -fits).bit_length() - 1
            row = buckets[room].pop()
            if not buckets[room]:
                nonempty ^= 1 << room
        else:
            room = max_length
            row = len(rows)
            rows.append([])
        rows[row].append((index, start, start + length))
        left = room - length
        if left:
            if not buckets[left]:
                nonempty |= 1 << left
            buckets[left].append(row)
    return rows


@dataclass(frozen=True)
class PackingStats:
    """How well a packing uses its rows.

    Attributes:
        rows: rows used.
        lower_bound: ``ceil(total tokens / max_length)``, the fewest rows possible.
        rows_over_bound: ``rows / lower_bound``.
        padding_fraction: share of the ``rows · max_length`` slots left empty.
        split_samples: samples cut into chunks (longer than ``max_length``).
    """

    rows: int
    lower_bound: int
    rows_over_bound: float
    padding_fraction: float
    split_samples: int


def packing_stats(lengths: Sequence[int] | np.ndarray, rows: list[list[Span]], max_length: int) -> PackingStats:
    """Summarise a packing of ``lengths`` (see ``PackingStats``)."""
    total = int(np.asarray(lengths, dtype=np.int64).sum())
    bound = max(1, math.ceil(total / max_length))
    used = len(rows)
    split = int((np.asarray(lengths) > max_length).sum())
    return PackingStats(rows=used, lower_bound=bound, rows_over_bound=used / bound,
                        padding_fraction=1 - total / (used * max_length) if used else 0.0, split_samples=split)
