"""Batch rules (``acquisition/batch.py``) against hand-computed picks and explicit references: Core-Set (greedy
k-center), BADGE, BEAL-kmeans, BEAL-diverse and BEAL-stochastic."""

from __future__ import annotations

import numpy as np
import pytest

from beal_backend import acquisition as acq
from beal_backend.acquisition import AcquisitionError, PoolView
from beal_backend.acquisition import batch as acq_batch

# ---------------------------------------------------------------- Core-Set: greedy k-center

LINE = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])


def test_kcenter_on_a_line_without_labeled():
    # mean 4.8: farthest is 11 (idx 4); then 0 (11 away); then 2 (min dist 2); then 1 vs 10 tie at 1 -> idx 1
    np.testing.assert_array_equal(acq.kcenter_greedy(LINE, None, 3), [4, 0, 2])
    np.testing.assert_array_equal(acq.kcenter_greedy(LINE, None, 5), [4, 0, 2, 1, 3])
    np.testing.assert_array_equal(acq.kcenter_greedy(LINE, np.zeros((0, 1)), 3), [4, 0, 2])


def test_kcenter_on_a_line_with_labeled_centers():
    # center at 11: 0 is farthest (11); then 2 (min(9, 2)); then 1 and 10 tie at 1 -> idx 1; then 10; 11 last
    np.testing.assert_array_equal(acq.kcenter_greedy(LINE, np.array([[11.0]]), 3), [0, 2, 1])
    np.testing.assert_array_equal(acq.kcenter_greedy(LINE, np.array([[11.0]]), 5), [0, 2, 1, 3, 4])
    # centers at 1 and 10.5: distances 1, 0, 1, 0.5, 0.5 -> 0 first (tie with 2, lower index), then 2
    np.testing.assert_array_equal(acq.kcenter_greedy(LINE, np.array([[1.0], [10.5]]), 2), [0, 2])


def test_kcenter_duplicates_never_picked_twice():
    pool = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [5.0, 0.0]])
    got = acq.kcenter_greedy(pool, None, 4)
    np.testing.assert_array_equal(got, [3, 0, 1, 2])
    got = acq.kcenter_greedy(pool, np.array([[0.0, 0.0], [5.0, 0.0]]), 4)  # every point already covered
    assert sorted(got.tolist()) == [0, 1, 2, 3]


def test_kcenter_chunked_centers_match_unchunked():
    rng = np.random.default_rng(1)
    x, centers = rng.normal(size=(30, 4)), rng.normal(size=(9, 4))
    explicit = ((x[:, None, :] - centers[None]) ** 2).sum(-1).min(1)
    np.testing.assert_allclose(acq_batch._min_sq_dist(x, centers, chunk=2), explicit, atol=1e-9)
    np.testing.assert_allclose(acq_batch._min_sq_dist(x, centers), explicit, atol=1e-9)


@pytest.mark.parametrize("b", [0, -1, 6])
def test_kcenter_budget_errors(b):
    with pytest.raises(AcquisitionError):
        acq.kcenter_greedy(LINE, None, b)


def test_empty_pool_errors():
    with pytest.raises(AcquisitionError):
        acq.kcenter_greedy(np.zeros((0, 2)), None, 1)
    with pytest.raises(AcquisitionError):
        acq.badge(np.zeros((0, 2)), np.zeros((0, 3)), 1, np.random.default_rng(0))


# ---------------------------------------------------------------- BADGE


def explicit_gradients(probs: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """The N x (J*H) matrix g_i = (p_i - yhat_i) (x) h_i, materialised."""
    a = probs - (probs > 0.5).astype(np.float64)
    return np.einsum("nj,nh->njh", a, hidden).reshape(len(probs), -1)


def reference_badge(probs, hidden, b, rng):
    """k-means++ seeding on the explicit gradients, drawing from ``rng`` exactly as the engine does."""
    g = explicit_gradients(probs, hidden)
    chosen = [int(np.argmax((g * g).sum(1)))]
    d2 = ((g - g[chosen[0]]) ** 2).sum(1)
    while len(chosen) < b:
        d2[chosen] = 0.0
        chosen.append(int(rng.choice(len(g), p=d2 / d2.sum())))
        d2 = np.minimum(d2, ((g - g[chosen[-1]]) ** 2).sum(1))
    return chosen


def test_badge_distance_identity_matches_explicit_gradients():
    rng = np.random.default_rng(3)
    probs, hidden = rng.random((9, 4)), rng.normal(size=(9, 5))
    g = explicit_gradients(probs, hidden)
    a = probs - (probs > 0.5)
    sq_norm = (a * a).sum(1) * (hidden * hidden).sum(1)
    np.testing.assert_allclose(sq_norm, (g * g).sum(1), atol=1e-12)
    for k in range(9):
        np.testing.assert_allclose(acq_batch._grad_sq_dist(a, hidden, sq_norm, k), ((g - g[k]) ** 2).sum(1), atol=1e-9)


def test_badge_first_pick_is_largest_gradient():
    probs = np.array([[0.5, 0.5], [0.9, 0.1], [0.6, 0.4], [0.99, 0.01]])
    hidden = np.array([[0.1, 0.0], [1.0, 1.0], [3.0, 0.0], [10.0, 10.0]])
    # |a|^2 |h|^2: 0.5*0.01=0.005, 0.02*2=0.04, 0.32*9=2.88, 0.0002*200=0.04 -> idx 2
    for seed in range(5):
        assert acq.badge(probs, hidden, 1, np.random.default_rng(seed))[0] == 2
        assert acq.badge(probs, hidden, 3, np.random.default_rng(seed))[0] == 2


def test_badge_matches_explicit_reference_and_is_distinct():
    data = np.random.default_rng(4)
    probs, hidden = data.random((15, 3)), data.normal(size=(15, 6))
    for seed in range(5):
        got = acq.badge(probs, hidden, 6, np.random.default_rng(seed))
        assert got.tolist() == reference_badge(probs, hidden, 6, np.random.default_rng(seed))
        assert len(set(got.tolist())) == 6
    everything = acq.badge(probs, hidden, 15, np.random.default_rng(0))
    assert sorted(everything.tolist()) == list(range(15))


def test_badge_identical_gradients_still_distinct():
    probs = np.full((6, 2), 0.7)
    hidden = np.ones((6, 3))
    got = acq.badge(probs, hidden, 6, np.random.default_rng(0))
    assert sorted(got.tolist()) == list(range(6))


class RecordingRng:
    """Stands in for a Generator in ``badge``'s D^2 draw: records each sampling distribution, takes its mode."""

    def __init__(self):
        self.seen: list[list[float]] = []

    def choice(self, n, p=None, size=None, replace=True):
        self.seen.append(list(p))
        return int(np.argmax(p))


def test_beal_kmeans_weights_d2_by_inverse_ec_rank():
    # J = 1, H = 1, all p < 0.5 (yhat = 0): g_i = p_i. EC ranks: text 0 lowest (rank 1), then 1, then 2.
    probs, hidden, ec = np.array([[0.1], [0.2], [0.4]]), np.ones((3, 1)), np.array([0.0, 1.0, 2.0])
    rng = RecordingRng()
    picks = acq.badge(probs, hidden, 2, rng, ec=ec)
    # first: the lowest EC (0), although text 2 has the largest gradient (BADGE's first);
    # D^2 to it: [0, 0.01, 0.09], weights 1/rank [1, 1/2, 1/3] -> mass [0, 0.005, 0.03] -> p = [0, 1/7, 6/7]
    assert picks.tolist() == [0, 2]
    np.testing.assert_allclose(rng.seen[0], [0.0, 1 / 7, 6 / 7], atol=1e-12)
    plain = RecordingRng()
    assert acq.badge(probs, hidden, 2, plain).tolist()[0] == 2  # BADGE: the largest gradient first
    np.testing.assert_allclose(plain.seen[0], [0.09 / 0.13, 0.04 / 0.13, 0.0], atol=1e-12)  # D^2 to text 2


def test_beal_kmeans_is_a_strategy_on_ec_and_gradients():
    s = acq.get_strategy("beal-kmeans")
    assert s.needs == {"mc", "deterministic"} and s.score == "rank"
    data = np.random.default_rng(5)
    probs, hidden = data.random((12, 3)), data.normal(size=(12, 4))
    mean_relevance = acq.relevance(probs)  # T = 1: the mean relevance is R(p)
    view = PoolView(size=12, num_labels=3, mean_relevance=mean_relevance, det_probs=probs, hidden=hidden)
    order = s.select(view, 12, np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(12))
    assert order[0] == int(np.argmin(acq.ec_from_mean_relevance(mean_relevance)))


def test_badge_single_choice_predicts_the_argmax_even_below_one_half():
    # unit hidden features, so |g|^2 = |p - yhat|^2. Softmax rows, J = 3:
    # row 0 [.40 .30 .30]: argmax yhat = e0 -> a = [-.60 .30 .30], |a|^2 = .54 (p > 0.5 would give yhat = 0: .34)
    # row 1 [.45 .45 .10]: argmax (first) e0 -> a = [-.55 .45 .10], |a|^2 = .515 (yhat = 0: .415)
    probs = np.array([[0.40, 0.30, 0.30], [0.45, 0.45, 0.10]])
    hidden = np.ones((2, 1))
    assert acq.badge(probs, hidden, 1, np.random.default_rng(0), single_label=True).tolist() == [0]
    assert acq.badge(probs, hidden, 1, np.random.default_rng(0)).tolist() == [1]  # sigmoids: p > 0.5 predicts
    view = PoolView(size=2, num_labels=3, det_probs=probs, hidden=hidden, single_label=True)
    assert acq.get_strategy("badge").select(view, 1, np.random.default_rng(0)).tolist() == [0]


# ---------------------------------------------------------------- BEAL-diverse


@pytest.mark.parametrize("b", [1, 3, 7, 10])
def test_diverse_lowest_factor_one_is_plain_lowest(b):
    rng = np.random.default_rng(b)
    ec = rng.random(10) * acq.harmonic(4)
    got = acq.diverse_lowest(ec, 4, rng.normal(size=(10, 3)), b, factor=1.0)
    np.testing.assert_array_equal(np.sort(got), np.sort(np.argsort(ec)[:b]))
    assert got[0] == np.argmin(ec)


def test_diverse_lowest_skips_near_duplicate():
    ec = np.array([0.10, 0.11, 0.50, 0.90])
    emb = np.array([[0.0, 0.0], [0.0, 1e-3], [5.0, 5.0], [10.0, 0.0]])
    np.testing.assert_array_equal(acq.diverse_lowest(ec, 3, emb, 2, factor=1.0), [0, 1])
    np.testing.assert_array_equal(acq.diverse_lowest(ec, 3, emb, 2, factor=1.5), [0, 2])
    with pytest.raises(AcquisitionError):
        acq.diverse_lowest(ec, 3, emb, 2, factor=0.5)


def test_diverse_lowest_weights_distance_by_uncertainty():
    # H_3 = 11/6. After text 0: text 1 gains (1 - 0.2/H_3) * 1.0 = 0.8909, text 2 gains (1 - 1.5/H_3) * 1.5
    # = 0.2727, so the more uncertain text 1 wins although text 2 is farther away.
    ec = np.array([0.1, 0.2, 1.5])
    emb = np.array([[0.0], [1.0], [-1.5]])
    np.testing.assert_array_equal(acq.diverse_lowest(ec, 3, emb, 2, factor=1.5), [0, 1])
    # with text 2 as uncertain as text 1 its distance decides
    np.testing.assert_array_equal(acq.diverse_lowest(np.array([0.1, 0.2, 0.2]), 3, emb, 2, factor=1.5), [0, 2])


def test_diverse_lowest_single_choice_normalises_by_one_not_h_j():
    # EC of a softmax vector tops at 1. After text 0 (lowest EC), with d = 1 for text 1 and 2 for text 2:
    # softmax: text 1 gains (1 - 0.5) * 1 = 0.5, text 2 (1 - 0.8) * 2 = 0.4 -> text 1;
    # divided by H_3 = 11/6 instead: (1 - 0.5/H_3) * 1 = 0.727, (1 - 0.8/H_3) * 2 = 1.127 -> text 2.
    ec = np.array([0.1, 0.5, 0.8])
    emb = np.array([[0.0], [1.0], [-2.0]])
    assert acq.diverse_lowest(ec, 3, emb, 2, factor=1.5, single_label=True).tolist() == [0, 1]
    assert acq.diverse_lowest(ec, 3, emb, 2, factor=1.5).tolist() == [0, 2]
    relevance = np.column_stack([ec, np.zeros(3), np.zeros(3)])  # EC = the one nonzero posterior relevance
    view = PoolView(size=3, num_labels=3, mean_relevance=relevance, hidden=emb, single_label=True)
    assert acq.get_strategy("beal-diverse").select(view, 2, np.random.default_rng(0)).tolist() == [0, 1]


# ---------------------------------------------------------------- BEAL-stochastic


def test_stochastic_lowest_is_gumbel_top_k_over_log_rank():
    """Hand-computed: ranks of [0.3, 0.1, 0.2] are [3, 1, 2]; keys = -log(rank) + the generator's Gumbel draws."""
    scores = np.array([0.3, 0.1, 0.2])
    g = np.random.default_rng(7).gumbel(size=3)
    keys = np.array([-np.log(3.0), 0.0, -np.log(2.0)]) + g
    expected = list(np.argsort(-keys)[:2])
    assert list(acq.stochastic_lowest(scores, 2, np.random.default_rng(7))) == expected


class FixedGumbel:
    """A generator whose Gumbel draws are given, so the expected order is computed by hand."""

    def __init__(self, draws):
        self.draws = np.asarray(draws, dtype=np.float64)

    def gumbel(self, size):
        assert size == len(self.draws)
        return self.draws


def test_stochastic_lowest_by_hand():
    """Ranks of [0.3, 0.1, 0.2] are [3, 1, 2]. Draws [2.0, 0.0, 0.5]: keys -ln 3 + 2 = 0.90, 0, -ln 2 + 0.5 = -0.19,
    so text 0 (the highest EC) comes first, then 1, then 2; with beta = 3: keys -1.30, 0, -1.58 -> 1, 0, 2."""
    scores = np.array([0.3, 0.1, 0.2])
    assert list(acq.stochastic_lowest(scores, 3, FixedGumbel([2.0, 0.0, 0.5]))) == [0, 1, 2]
    assert list(acq.stochastic_lowest(scores, 2, FixedGumbel([2.0, 0.0, 0.5]), beta=3.0)) == [1, 0]


def test_stochastic_lowest_draws_the_first_text_with_probability_proportional_to_inverse_rank():
    """p(rank r first) = (1/r) / H_3 for three texts: 6/11, 3/11, 2/11."""
    scores = np.array([0.5, 0.9, 0.1])  # ranks 2, 3, 1
    rng = np.random.default_rng(0)
    first = np.array([acq.stochastic_lowest(scores, 1, rng)[0] for _ in range(20000)])
    freq = np.bincount(first, minlength=3) / len(first)
    assert np.allclose(freq, [3 / 11, 2 / 11, 6 / 11], atol=0.015)


def test_stochastic_lowest_with_a_large_beta_is_plain_lowest():
    scores = np.random.default_rng(1).random(50)
    got = acq.stochastic_lowest(scores, 10, np.random.default_rng(2), beta=1e6)
    assert list(got) == list(np.argsort(scores)[:10])


def test_beal_stochastic_orders_a_whole_pool_once_and_favours_low_ec():
    """As a service strategy it ranks every pool text (scores in [0, 1], each position once) and the
    lower-EC half of a pool is acquired earlier on average."""
    rng = np.random.default_rng(3)
    mean_rel = rng.random((200, 4))
    view = acq.PoolView(size=200, num_labels=4, mean_relevance=mean_rel)
    order = acq.get_strategy("beal-stochastic").select(view, 200, np.random.default_rng(0))
    assert sorted(order) == list(range(200))
    ec = acq.ec_from_mean_relevance(mean_rel)
    low = set(np.argsort(ec)[:100])
    first_half = order[:100]
    assert sum(i in low for i in first_half) > 60
