"""Per-text scores (``acquisition/scores.py``): EC, BALD, entropy and the public ``expected_confidence`` API, against
hand-computed values and a literal loop over the paper's equations (``acquisition_reference``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beal_backend import acquisition as acq
from beal_backend.acquisition import AcquisitionError
from tests.unit.acquisition_reference import literal_bald, literal_ec, prob_arrays

LN2 = math.log(2.0)

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
