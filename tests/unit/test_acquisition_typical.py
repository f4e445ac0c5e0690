"""BEAL-typical (``acquisition/typical.py``): k-NN distances and picks computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from beal_backend import acquisition as acq
from beal_backend.acquisition import AcquisitionError, PoolView

# four texts on a line: 0 is an outlier at 10 with the lowest EC; 2 is a near-copy of 1
TYPICAL_X = np.array([[10.0], [0.0], [1.0], [3.0]])
TYPICAL_EC = np.array([0.1, 0.2, 0.3, 0.4])


def test_knn_distance_by_hand():
    from beal_backend.acquisition.typical import knn_distance

    # nearest other text: 10 -> 3 (7), 0 -> 1 (1), 1 -> 0 (1), 3 -> 1 (2); k = 2: 10 -> (7 + 9) / 2 = 8
    np.testing.assert_allclose(knn_distance(TYPICAL_X, np.arange(4), 1), [7.0, 1.0, 1.0, 2.0])
    np.testing.assert_allclose(knn_distance(TYPICAL_X, np.array([0, 3]), 2), [8.0, 2.5])


def test_beal_typical_skips_the_outlier_and_the_near_copy():
    """Weights (1 - EC) / k-NN distance (k = 1): 0.9/7 = 0.129, 0.8, 0.7, 0.3 -> text 1 first. The scale is the
    median k-NN distance squared, 1.5^2 = 2.25; damping by 1 - exp(-d^2 / 2.25) leaves text 0 at 0.129,
    text 2 at 0.7 * (1 - e^-0.444) = 0.251 and text 3 at 0.3 * (1 - e^-4) = 0.295 -> text 3.
    BEAL-diverse takes the outlier first (lowest EC), then the farthest: text 1."""
    from beal_backend.acquisition.typical import typical_lowest

    picks = typical_lowest(TYPICAL_EC, 1.0 - TYPICAL_EC, TYPICAL_X, b=2, factor=2.0, k=1)
    assert picks.tolist() == [1, 3]
    assert acq.diverse_lowest(TYPICAL_EC, 1, TYPICAL_X, b=2, factor=2.0).tolist() == [0, 1]
    # a longer batch starts with the same picks (the service serves a full order, annotators take its head)
    assert typical_lowest(TYPICAL_EC, 1.0 - TYPICAL_EC, TYPICAL_X, b=4, factor=1.0, k=1)[:2].tolist() == [1, 3]


def test_beal_typical_is_a_strategy_on_ec_and_hidden_features():
    s = acq.get_strategy("beal-typical")
    assert s.needs == frozenset({"mc", "deterministic"}) and not s.deterministic_passes
    # one label: EC = mean R(Y) = 2^p - 1; texts as above, hidden = their positions
    p = np.log2(1.0 + TYPICAL_EC)[:, None]
    view = PoolView(size=4, num_labels=1, mean_relevance=2.0**p - 1.0, hidden=TYPICAL_X)
    # defaults factor 3 (all 4 candidates), k = min(10, 3): spreads 26/3, 14/3, 4, 4 -> weights 0.104, 0.171,
    # 0.175, 0.150 -> text 2; scale (13/3)^2 = 18.78 damps text 1 to 0.009, text 3 to 0.029, text 0 to 0.102
    # -> text 0: in a 4-text pool every text is 'typical' at k = 3
    assert s.select(view, 2, np.random.default_rng(0)).tolist() == [2, 0]
    with pytest.raises(AcquisitionError, match="batch size"):
        s.select(view, 5, np.random.default_rng(0))
