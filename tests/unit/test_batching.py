"""The batches scoring runs on (``engine/batching.py``): length-sorted and bucketed batches cover every row once,
``collate`` pads to the batch maximum."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from beal_backend.engine.batching import Encoded, bucketed_batches, collate, sorted_batches


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 60), min_size=1, max_size=40), st.integers(1, 400), st.integers(1, 9))
def test_sorted_batches_cover_rows_once_within_budget(lengths, budget, max_batch):
    lengths = np.array(lengths)
    batches = sorted_batches(lengths, budget, max_batch)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    for b in batches:
        assert 1 <= len(b) <= max_batch
        assert len(b) == 1 or len(b) * lengths[b].max() <= budget  # a single over-long text still gets a batch
    assert np.all(np.diff(lengths[rows]) >= 0)  # length-sorted: little padding


def test_bucketed_batches_cover_rows_once_and_are_seeded():
    lengths = np.random.default_rng(0).integers(3, 50, size=103)
    batches = list(bucketed_batches(lengths, 8, np.random.default_rng(1), bucket_factor=3))
    assert sorted(np.concatenate(batches).tolist()) == list(range(103))
    assert all(1 <= len(b) <= 8 for b in batches)
    again = list(bucketed_batches(lengths, 8, np.random.default_rng(1), bucket_factor=3))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))


def test_collate_pads_to_the_batch_maximum():
    enc = Encoded(ids=[[2, 7, 3], [2, 9, 9, 9, 3], [2, 3]], pad_id=0)
    ids, mask = collate(enc, np.array([2, 0]))
    assert ids.tolist() == [[2, 3, 0], [2, 7, 3]]
    assert mask.tolist() == [[1, 1, 0], [1, 1, 1]]
    assert enc.lengths.tolist() == [3, 5, 2]
    assert enc.subset([1]).ids == [[2, 9, 9, 9, 3]]
