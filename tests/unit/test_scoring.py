"""The streamed MC moments of ``scoring.mc_moments`` (``engine/scoring.py``) on a tiny random BERT: equal to the
acquisition functions on the explicit [T, N, J] tensor, seeded, thread-safe, and off the process-wide RNG."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from beal_backend import acquisition as acq
from beal_backend.engine.batching import collate
from beal_backend.engine.scoring import ScoringConfig, deterministic_outputs, mc_moments
from tests.conftest import random_encoded

ENC = random_encoded(n=9, min_len=2, max_len=14, seed=5)


def eval_probs(model, enc) -> np.ndarray:
    """Sigmoid outputs of one eval forward per text (no batching, no padding), float64 [N, J]."""
    model.eval()
    out = []
    with torch.no_grad():
        for row in range(len(enc)):
            ids, mask = collate(enc, np.array([row]))
            out.append(torch.sigmoid(model(ids, mask)).double().numpy()[0])
    return np.stack(out)


def test_deterministic_moments_equal_one_eval_forward(tiny_classifier):
    model = tiny_classifier(hidden_dropout=0.3, attention_dropout=0.3, head_dropout=0.3)
    moments = mc_moments(model, ENC, ScoringConfig(passes=50, token_budget=64, max_batch=3), deterministic=True)
    probs = eval_probs(model, ENC)
    assert moments.passes == 1
    np.testing.assert_allclose(moments.mean_prob, probs, atol=1e-6)
    np.testing.assert_allclose(moments.ec, acq.expected_confidence(probs[None]), atol=1e-6)
    np.testing.assert_allclose(moments.mean_entropy, acq.binary_entropy(probs), atol=1e-6)
    np.testing.assert_allclose(acq.bald_from_moments(moments.mean_prob, moments.mean_entropy), 0.0, atol=1e-6)
    det = deterministic_outputs(model, ENC, ScoringConfig(token_budget=64, max_batch=3))
    np.testing.assert_allclose(det.probs, probs, atol=1e-6)


@pytest.mark.parametrize("scope", ["full", "last-2", "head"])
def test_mc_moments_without_dropout_equal_explicit_tensor(tiny_classifier, scope):
    """No dropout anywhere: every pass is the eval forward, so the streamed moments must equal the
    acquisition functions applied to the explicit [T, N, J] tensor. Small budgets force several batches
    and chunked replication (5 passes in chunks of r < 5), so a wrong pass/text reshape shows up."""
    model = tiny_classifier(hidden_dropout=0.0, attention_dropout=0.0, head_dropout=0.0)
    T = 5
    explicit = np.repeat(eval_probs(model, ENC)[None], T, axis=0)
    for budget in (40, 100, 10_000):
        moments = mc_moments(model, ENC, ScoringConfig(passes=T, scope=scope, token_budget=budget, max_batch=4))
        assert moments.passes == T
        np.testing.assert_allclose(moments.mean_prob, explicit.mean(0), atol=1e-6)
        np.testing.assert_allclose(moments.mean_relevance, acq.relevance(explicit).mean(0), atol=1e-6)
        np.testing.assert_allclose(moments.mean_entropy, acq.binary_entropy(explicit).mean(0), atol=1e-6)
        np.testing.assert_allclose(moments.ec, acq.expected_confidence(explicit), atol=1e-6)


def test_head_scope_without_head_dropout_ignores_token_budget(tiny_classifier):
    model = tiny_classifier(hidden_dropout=0.3, attention_dropout=0.3, head_dropout=0.0)
    results = [
        mc_moments(model, ENC, ScoringConfig(passes=7, scope="head", token_budget=b, max_batch=m))
        for b, m in ((16, 1), (50, 3), (4096, 64))
    ]
    for other in results[1:]:
        np.testing.assert_allclose(other.mean_relevance, results[0].mean_relevance, atol=1e-6)
        np.testing.assert_allclose(other.ec, results[0].ec, atol=1e-6)
    np.testing.assert_allclose(results[0].mean_prob, eval_probs(model, ENC), atol=1e-6)


@pytest.mark.parametrize("scope", ["full", "last-1", "head"])
def test_mc_moments_seeded_and_stochastic(tiny_classifier, scope):
    model = tiny_classifier(hidden_dropout=0.2, attention_dropout=0.2, head_dropout=0.2)
    cfg = ScoringConfig(passes=5, scope=scope, token_budget=256, max_batch=4, seed=3)
    a, b = mc_moments(model, ENC, cfg), mc_moments(model, ENC, cfg)
    np.testing.assert_array_equal(a.mean_relevance, b.mean_relevance)
    np.testing.assert_array_equal(a.mean_entropy, b.mean_entropy)
    c = mc_moments(model, ENC, ScoringConfig(passes=5, scope=scope, token_budget=256, max_batch=4, seed=4))
    assert not np.allclose(c.mean_relevance, a.mean_relevance, atol=1e-6)
    # the passes really differ: every text has positive mutual information
    assert np.all(acq.bald_from_moments(a.mean_prob, a.mean_entropy) > 1e-6)
    assert not model.training and not any(m.training for m in model.modules())


def test_mc_moments_progress_and_validation(tiny_classifier):
    model = tiny_classifier()
    seen = []
    mc_moments(
        model,
        ENC,
        ScoringConfig(passes=2, token_budget=40, max_batch=2),
        on_progress=lambda done, total: seen.append((done, total)),
    )
    assert len(seen) > 1
    assert [d for d, _ in seen] == sorted({d for d, _ in seen}) and seen[-1] == (len(ENC), len(ENC))
    assert all(total == len(ENC) for _, total in seen)
    with pytest.raises(ValueError, match="passes"):
        mc_moments(model, ENC, ScoringConfig(passes=0))
    with pytest.raises(ValueError, match="scope"):
        mc_moments(model, ENC, ScoringConfig(scope="tail"))


# ---------------------------------------------------------------- concurrency and the process-wide RNG


def test_concurrent_scoring_equals_sequential(tiny_classifier):
    """gunicorn threads share one model: 8 threads scoring at once give exactly the scores of the same calls
    made one by one (flags on the shared model or a process-wide reseed would mix the calls' passes)."""
    model = tiny_classifier(hidden_dropout=0.2, attention_dropout=0.2, head_dropout=0.2)
    encs = [random_encoded(n=12, min_len=2, max_len=14, seed=s) for s in range(8)]
    cfgs = [
        ScoringConfig(passes=6, scope=scope, token_budget=48, max_batch=2, seed=s)
        for s, scope in enumerate(["full", "last-2", "head", "full"] * 2)
    ]
    sequential = [mc_moments(model, e, c).mean_relevance for e, c in zip(encs, cfgs)]
    start, results = threading.Barrier(8), [None] * 8

    def run(i):
        start.wait()
        results[i] = mc_moments(model, encs[i], cfgs[i]).mean_relevance

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(8):
        np.testing.assert_array_equal(results[i], sequential[i], err_msg=f"call {i}")
    assert not any(m.training for m in model.modules())


def test_scoring_leaves_the_process_rng_alone(tiny_classifier):
    """An in-process training job draws its dropout from the global RNG: scoring must neither reseed nor
    advance it (it used to call torch.manual_seed(cfg.seed))."""
    model = tiny_classifier(hidden_dropout=0.2, attention_dropout=0.2, head_dropout=0.2)
    torch.manual_seed(1234)
    expected = torch.rand(4)
    torch.manual_seed(1234)
    for scope in ("full", "last-2", "head"):
        mc_moments(model, ENC, ScoringConfig(passes=3, scope=scope, token_budget=64, max_batch=3, seed=0))
    deterministic_outputs(model, ENC, ScoringConfig())
    torch.testing.assert_close(torch.rand(4), expected, rtol=0, atol=0)


def test_sdpa_and_eager_attention_sample_the_same_dropout(tiny_classifier):
    """The SDPA path's attention dropout is rerouted to the same generator draws as eager's F.dropout on the
    probabilities, so both implementations give the same MC moments: the rerouting samples the real thing."""
    kw = {"hidden_dropout": 0.2, "attention_dropout": 0.3, "head_dropout": 0.2}
    eager, sdpa = tiny_classifier(attn_implementation="eager", **kw), tiny_classifier(attn_implementation="sdpa", **kw)
    cfg = ScoringConfig(passes=4, scope="full", token_budget=64, max_batch=3, seed=2)
    a, b = mc_moments(eager, ENC, cfg), mc_moments(sdpa, ENC, cfg)
    np.testing.assert_allclose(a.mean_relevance, b.mean_relevance, atol=1e-6)
    assert np.all(acq.bald_from_moments(b.mean_prob, b.mean_entropy) > 1e-6)
