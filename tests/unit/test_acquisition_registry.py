"""The strategy registry (``acquisition/registry.py``): every strategy by name returns a valid batch, declares the
inputs it needs, and the score strategies pick the right end of the literal scores (``acquisition_reference``)."""

from __future__ import annotations

import numpy as np
import pytest

from beal_backend import acquisition as acq
from beal_backend.acquisition import AcquisitionError, PoolView
from tests.unit.acquisition_reference import literal_bald, literal_ec

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
