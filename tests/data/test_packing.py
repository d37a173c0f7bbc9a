import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citrusv.data.packing import pack_best_fit, packing_stats


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 300), max_size=200), st.integers(1, 128))
def test_every_token_exactly_once_and_rows_fit(lengths, max_length):
    rows = pack_best_fit(lengths, max_length)
    covered = {i: [] for i in range(len(lengths))}
    for row in rows:
        assert sum(end - start for _, start, end in row) <= max_length
        for index, start, end in row:
            assert 0 <= start < end <= lengths[index]
            covered[index].append((start, end))
    for index, spans in covered.items():
        spans.sort()
        assert spans[0][0] == 0 and spans[-1][1] == lengths[index]
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
        if lengths[index] <= max_length:
            assert len(spans) == 1  # only samples longer than a row are cut
        else:
            assert [e - s for s, e in spans[:-1]] == [max_length] * (len(spans) - 1)
    if lengths:
        assert len(rows) >= math.ceil(sum(lengths) / max_length)


def test_best_fit_decreasing_by_hand():
    # 7 → row0 (room 3); 5 → row1 (room 5); 4 → row1 (room 1, the tighter fit); 3 → row0 (room 0); 2 → row2
    assert pack_best_fit([3, 5, 7, 2, 4], 10) == [[(2, 0, 7), (0, 0, 3)], [(1, 0, 5), (4, 0, 4)], [(3, 0, 2)]]
    # 25 with max 10: two full rows and a tail of 5 that shares a row with the 4
    assert pack_best_fit([25, 4], 10) == [[(0, 0, 10)], [(0, 10, 20)], [(0, 20, 25), (1, 0, 4)]]


def test_deterministic_and_validated():
    lengths = np.random.default_rng(0).integers(1, 500, 1000)
    assert pack_best_fit(lengths, 512) == pack_best_fit(lengths.tolist(), 512)
    with pytest.raises(ValueError, match="sample 1 has length 0"):
        pack_best_fit([3, 0], 10)
    with pytest.raises(ValueError, match="max_length"):
        pack_best_fit([3], 0)
    assert pack_best_fit([], 8) == []


def test_close_to_the_lower_bound_on_a_mixed_distribution():
    rng = np.random.default_rng(1)
    n = 20_000
    kind = rng.choice(4, size=n, p=[0.45, 0.3, 0.15, 0.1])
    lengths = np.select([kind == 0, kind == 1, kind == 2],
                        [rng.lognormal(5.5, 0.6, n), rng.lognormal(6.6, 0.4, n), rng.lognormal(7.0, 0.3, n)],
                        rng.lognormal(8.0, 0.6, n)).clip(10, 40000).astype(int)
    stats = packing_stats(lengths, pack_best_fit(lengths, 8192), 8192)
    assert stats.rows_over_bound <= 1.01 and stats.padding_fraction <= 0.01 and stats.split_samples > 0
