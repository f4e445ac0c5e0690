"""Acquisition maths against hand-computed values and a literal loop over the paper's equations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from beal_backend import acquisition as acq
from beal_backend.acquisition import AcquisitionError, PoolView
from beal_backend.acquisition import batch as acq_batch

LN2 = math.log(2.0)

# ---------------------------------------------------------------- reference: the equations, literally


def literal_ec(probs: np.ndarray) -> np.ndarray:
    """Eqs. 1, 2, 7, 8 as loops: R = 2^y - 1; pi-hat sorts labels by mean_t R descending (ties: lower
    index first); conf = sum_j R(Y^t_j) / pi-hat(j); EC = mean_t conf."""
    T, N, J = probs.shape
    out = np.zeros(N)
    for n in range(N):
        mean_r = [sum(2.0 ** float(probs[t, n, j]) - 1.0 for t in range(T)) / T for j in range(J)]
        order = sorted(range(J), key=lambda j: (-mean_r[j], j))
        position = {label: rank + 1 for rank, label in enumerate(order)}
        confs = [sum((2.0 ** float(probs[t, n, j]) - 1.0) / position[j] for j in range(J)) for t in range(T)]
        out[n] = sum(confs) / T
    return out


def literal_bald(probs: np.ndarray) -> np.ndarray:
    def h(p: float) -> float:
        return 0.0 if p in (0.0, 1.0) else -(p * math.log(p) + (1 - p) * math.log(1 - p))

    T, N, J = probs.shape
    return np.array(
        [
            sum(
                h(sum(probs[t, n, j] for t in range(T)) / T) - sum(h(probs[t, n, j]) for t in range(T)) / T
                for j in range(J)
            )
            for n in range(N)
        ]
    )


prob_values = st.one_of(
    st.floats(0.0, 1.0, allow_nan=False),
    st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]),  # exact repeats create ties in pi-hat
)


@st.composite
def prob_arrays(draw, max_dim: int = 6):
    shape = (draw(st.integers(1, max_dim)), draw(st.integers(1, max_dim)), draw(st.integers(1, max_dim)))
    return draw(hnp.arrays(np.float64, shape, elements=prob_values))


# ---------------------------------------------------------------- the worked example (method.md)

WORKED = np.array([[[0.9, 0.2, 0.5]], [[0.7, 0.4, 0.5]]])  # [T=2, N=1, J=3]


def test_relevance_and_harmonic_by_hand():
    np.testing.assert_allclose(acq.relevance(np.array([0.0, 0.5, 1.0])), [0.0, math.sqrt(2) - 1, 1.0], atol=1e-15)
    np.testing.assert_allclose(acq.relevance(WORKED[0, 0]), [0.866066, 0.148698, 0.414214], atol=1e-6)
    np.testing.assert_allclose(acq.relevance(WORKED[1, 0]), [0.624505, 0.319508, 0.414214], atol=1e-6)
    assert acq.harmonic(1) == 1.0
    assert acq.harmonic(3) == pytest.approx(11 / 6, abs=1e-15)
    assert acq.harmonic(4) == pytest.approx(25 / 12, abs=1e-15)


def test_worked_example_ec_and_score():
    ec = acq.expected_confidence(WORKED)
    assert ec.shape == (1,)
    assert ec[0] == pytest.approx(1.030427, abs=1e-6)
    assert acq.normalized_score(ec, 3)[0] == pytest.approx(0.562051, abs=1e-6)
    # the same through the posterior relevance (the streamed path): mean R = (0.745285, 0.234103, 0.414214)
    mean_r = acq.relevance(WORKED).mean(axis=0)
    np.testing.assert_allclose(mean_r[0], [0.745285, 0.234103, 0.414214], atol=1e-6)
    assert acq.ec_from_mean_relevance(mean_r)[0] == pytest.approx(1.030427, abs=1e-6)
    # per-pass confidences with positions (1, 3, 2): 1.122739 and 0.938114
    r1, r2 = acq.relevance(WORKED[:, 0])
    pos = np.array([1, 3, 2])
    assert (r1 / pos).sum() == pytest.approx(1.122739, abs=1e-6)
    assert (r2 / pos).sum() == pytest.approx(0.938114, abs=1e-6)


def test_literal_reference_reproduces_worked_example():
    assert literal_ec(WORKED)[0] == pytest.approx(1.030427, abs=1e-6)


def test_ec_is_not_the_confidence_of_the_mean_prediction_ranked_per_pass():
    # pi-hat is fixed from the posterior relevance, not re-sorted per pass: with per-pass sorting pass 2
    # ((0.2, 0.9) -> label 2 first) would score 0.866066 + 0.148698/2 instead of 0.866066/2 + 0.148698.
    probs = np.array([[[0.9, 0.2]], [[0.8, 0.3]], [[0.2, 0.9]]])
    ec = acq.expected_confidence(probs)[0]
    assert ec == pytest.approx(literal_ec(probs)[0], abs=1e-12)
    per_pass_sorted = np.mean([np.sort(acq.relevance(p[0]))[::-1] @ [1, 0.5] for p in probs])
    assert abs(ec - per_pass_sorted) > 1e-3


# ---------------------------------------------------------------- properties against the literal loop


@settings(max_examples=300, deadline=None)
@given(prob_arrays())
def test_expected_confidence_matches_literal_loop(probs):
    got = acq.expected_confidence(probs)
    assert got.shape == (probs.shape[1],)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, literal_ec(probs), rtol=0, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(prob_arrays())
def test_ec_bounds_and_normalised_score(probs):
    J = probs.shape[2]
    ec = acq.expected_confidence(probs)
    assert np.all(ec >= 0.0)
    assert np.all(ec <= acq.harmonic(J) + 1e-12)
    score = acq.normalized_score(ec, J)
    assert np.all((score >= 0.0) & (score <= 1.0))
    np.testing.assert_allclose(score, ec / acq.harmonic(J), atol=1e-12)


@pytest.mark.parametrize("J", [1, 2, 5, 9])
def test_ec_extremes(J):
    ones, zeros = np.ones((3, 2, J)), np.zeros((3, 2, J))
    np.testing.assert_allclose(acq.expected_confidence(ones), acq.harmonic(J), atol=1e-12)
    np.testing.assert_allclose(acq.normalized_score(acq.expected_confidence(ones), J), 1.0, atol=1e-12)
    np.testing.assert_array_equal(acq.expected_confidence(zeros), 0.0)


@settings(max_examples=150, deadline=None)
@given(prob_arrays(), st.randoms(use_true_random=False))
def test_ec_invariant_to_label_pass_and_text_permutations(probs, rnd):
    T, N, J = probs.shape
    ec = acq.expected_confidence(probs)
    labels, passes, texts = (rnd.sample(range(k), k) for k in (J, T, N))
    np.testing.assert_allclose(acq.expected_confidence(probs[:, :, labels]), ec, atol=1e-12)
    np.testing.assert_allclose(acq.expected_confidence(probs[passes]), ec, atol=1e-12)
    np.testing.assert_allclose(acq.expected_confidence(probs[:, texts]), ec[texts], atol=1e-12)


def test_tied_posterior_relevance_any_order_same_ec():
    # labels 0 and 2 tie on mean relevance (0.3/0.7 vs 0.7/0.3 over passes) but differ per pass: both
    # tie orders give the same EC, and so does the literal loop with its lower-index-first rule.
    probs = np.array([[[0.3, 0.9, 0.7, 0.1]], [[0.7, 0.8, 0.3, 0.1]]])
    r = acq.relevance(probs[:, 0])
    by_order = []
    for order in ([1, 0, 2, 3], [1, 2, 0, 3]):
        pos = np.empty(4)
        pos[order] = np.arange(1, 5)
        by_order.append(np.mean([(rt / pos).sum() for rt in r]))
    assert by_order[0] == pytest.approx(by_order[1], abs=1e-15)
    assert acq.expected_confidence(probs)[0] == pytest.approx(by_order[0], abs=1e-12)
    assert literal_ec(probs)[0] == pytest.approx(by_order[0], abs=1e-12)


def test_float32_input_is_computed_in_float64():
    probs = np.random.default_rng(0).random((4, 5, 3)).astype(np.float32)
    got = acq.expected_confidence(probs)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, literal_ec(probs.astype(np.float64)), atol=1e-9)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((2, 3)),  # not [T, N, J]
        np.zeros((2, 3, 4, 1)),
        np.zeros((0, 3, 2)),  # empty axes
        np.zeros((2, 0, 2)),
        np.zeros((2, 3, 0)),
        np.full((1, 1, 2), np.nan),
        np.array([[[0.5, np.inf]]]),
        np.array([[[0.5, 1.0000001]]]),
        np.array([[[-1e-9, 0.5]]]),
    ],
)
def test_invalid_probs_raise(bad):
    with pytest.raises(AcquisitionError):
        acq.expected_confidence(bad)
    with pytest.raises(AcquisitionError):
        acq.bald(bad)


def test_acquisition_error_is_a_value_error():
    assert issubclass(AcquisitionError, ValueError)


# ---------------------------------------------------------------- entropy and BALD


def test_binary_entropy_by_hand():
    h = acq.binary_entropy(np.array([0.0, 1.0, 0.5, 0.25, 0.75, 0.2]))
    np.testing.assert_allclose(h[:2], 0.0, atol=1e-10)
    assert h[2] == pytest.approx(LN2, abs=1e-12)
    # H(0.25) = -(0.25 ln 0.25 + 0.75 ln 0.75) = 0.562335; symmetric in p <-> 1 - p
    assert h[3] == pytest.approx(0.562335, abs=1e-6)
    assert h[4] == pytest.approx(h[3], abs=1e-12)
    assert h[5] == pytest.approx(0.500402, abs=1e-6)


def test_mean_entropy_averages_over_labels():
    got = acq.mean_entropy(np.array([[0.5, 0.0], [0.5, 0.5], [0.25, 1.0]]))
    np.testing.assert_allclose(got, [LN2 / 2, LN2, 0.562335 / 2], atol=1e-6)


def test_bald_agreeing_passes_is_zero():
    probs = np.tile(np.array([[0.3, 0.8, 0.5], [0.01, 0.99, 0.0]]), (5, 1, 1))  # [T=5, N=2, J=3]
    np.testing.assert_allclose(acq.bald(probs), 0.0, atol=1e-12)


def test_bald_alternating_zero_one_is_ln2_per_label():
    probs = np.array([[[0.0, 1.0, 0.0]], [[1.0, 0.0, 1.0]], [[0.0, 1.0, 0.0]], [[1.0, 0.0, 1.0]]])  # T=4, J=3
    assert acq.bald(probs)[0] == pytest.approx(3 * LN2, abs=1e-9)


def test_bald_two_pass_by_hand():
    # label 1: passes (0.2, 0.8): H(0.5) - H(0.2) = 0.693147 - 0.500402 = 0.192745; label 2 agrees: 0
    probs = np.array([[[0.2, 0.6]], [[0.8, 0.6]]])
    assert acq.bald(probs)[0] == pytest.approx(0.192745, abs=1e-6)


def test_bald_is_per_label_bernoulli_mutual_information():
    # one label, same mean 0.5: agreeing passes carry no information, disagreeing ones do (a softmax over
    # a single sigmoid output would make both constant)
    same = np.array([[[0.5]], [[0.5]]])
    split = np.array([[[0.1]], [[0.9]]])
    assert acq.bald(same)[0] == pytest.approx(0.0, abs=1e-12)
    assert acq.bald(split)[0] == pytest.approx(LN2 - float(acq.binary_entropy(np.array(0.1))), abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(prob_arrays())
def test_bald_matches_literal_and_moments(probs):
    got = acq.bald(probs)
    np.testing.assert_allclose(got, literal_bald(probs), atol=1e-9)
    assert np.all(got >= 0.0)
    from_moments = acq.bald_from_moments(probs.mean(0), acq.binary_entropy(probs).mean(0))
    np.testing.assert_allclose(from_moments, got, atol=1e-12)


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


# ---------------------------------------------------------------- registry


N, J, H, T = 20, 4, 8, 6


def full_view() -> tuple[PoolView, np.ndarray]:
    rng = np.random.default_rng(7)
    probs = rng.random((T, N, J))
    view = PoolView(
        size=N,
        num_labels=J,
        mean_relevance=acq.relevance(probs).mean(0),
        mean_prob=probs.mean(0),
        mean_entropy=acq.binary_entropy(probs).mean(0),
        det_probs=rng.random((N, J)),
        hidden=rng.normal(size=(N, H)),
        labeled_hidden=rng.normal(size=(5, H)),
    )
    return view, probs


@pytest.mark.parametrize("name", sorted(acq.STRATEGIES))
@pytest.mark.parametrize("b", [1, 5, N])
def test_every_strategy_returns_b_distinct_valid_indices(name, b):
    view, _ = full_view()
    strategy = acq.get_strategy(name)
    assert strategy.name == name
    got = np.asarray(strategy.select(view, b, np.random.default_rng(0)))
    assert got.shape == (b,)
    assert np.issubdtype(got.dtype, np.integer)
    assert len(set(got.tolist())) == b
    assert got.min() >= 0 and got.max() < N


@pytest.mark.parametrize("name", sorted(acq.STRATEGIES))
def test_every_strategy_rejects_bad_budget(name):
    view, _ = full_view()
    for b in (0, N + 1):
        with pytest.raises(AcquisitionError):
            acq.get_strategy(name).select(view, b, np.random.default_rng(0))


def test_score_strategies_pick_the_right_end():
    view, probs = full_view()
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(acq.get_strategy("beal").select(view, 5, rng), np.argsort(literal_ec(probs))[:5])
    np.testing.assert_array_equal(acq.get_strategy("bald").select(view, 5, rng), np.argsort(-literal_bald(probs))[:5])
    ent = acq.binary_entropy(probs.mean(0)).mean(1)
    np.testing.assert_array_equal(acq.get_strategy("entropy").select(view, 5, rng), np.argsort(-ent)[:5])
    assert acq.get_strategy("beal-deterministic").deterministic_passes
    np.testing.assert_array_equal(
        acq.get_strategy("coreset").select(view, 5, rng), acq.kcenter_greedy(view.hidden, view.labeled_hidden, 5)
    )


def test_strategy_needs_are_declared_consistently():
    view, _ = full_view()
    inputs = {
        "mc": ("mean_relevance", "mean_prob", "mean_entropy"),
        "deterministic": ("det_probs", "hidden", "labeled_hidden"),
    }
    for name, strategy in acq.STRATEGIES.items():
        allowed = {f for need in strategy.needs for f in inputs[need]}
        narrowed = PoolView(size=N, num_labels=J, **{f: getattr(view, f) for f in allowed})
        got = strategy.select(narrowed, 3, np.random.default_rng(0))  # what it declares is enough
        assert len(set(np.asarray(got).tolist())) == 3, name


@pytest.mark.parametrize("name", ["beal", "bald", "entropy", "badge", "coreset", "beal-diverse"])
def test_missing_inputs_raise(name):
    with pytest.raises(AcquisitionError, match="needs"):
        acq.get_strategy(name).select(PoolView(size=N, num_labels=J), 2, np.random.default_rng(0))


def test_unknown_strategy():
    with pytest.raises(AcquisitionError, match=r"unknown strategy 'nope'.*beal"):
        acq.get_strategy("nope")


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


# ---------------------------------------------------------------- BEAL-typical (beal_backend/acquisition/typical.py)

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
