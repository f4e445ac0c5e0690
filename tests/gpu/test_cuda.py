"""The CUDA path, run where a GPU is (``-m gpu``; ``scripts/gpu_evidence.sh`` runs it through the device tool).

The CPU suite proves the plumbing with the "meta" device (tests/integration/test_store.py); these tests run
the same code on a real GPU: a version published from the CPU loads onto CUDA and scores there like on the
CPU (bf16 autocast: within 0.02), MC dropout on CUDA is reproducible per seed and really stochastic, and
training on CUDA learns the synthetic task.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch

from beal_backend.engine.batching import encode
from beal_backend.engine.scoring import ScoringConfig, deterministic_outputs, mc_moments
from beal_backend.engine.training import train
from beal_backend.store.versions import ModelStore
from tests.conftest import LABELS, synthetic_texts

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="run with -m gpu where CUDA is available"),
]


def test_a_published_version_loads_onto_cuda_and_scores_as_on_the_cpu(tiny_bert_trained, probe_texts, tmp_path):
    store = ModelStore(tmp_path, device="cuda")
    version = store.publish("7", tiny_bert_trained, scores={})
    on_gpu = store.load("7", version)
    assert {p.device.type for p in on_gpu.model.parameters()} == {"cuda"}
    on_cpu = store.load("7", version, "cpu")
    enc = encode(on_gpu.tokenizer, probe_texts, on_gpu.config.max_wordpieces)
    gpu = deterministic_outputs(on_gpu.model, enc, ScoringConfig(device="cuda")).probs
    cpu = deterministic_outputs(on_cpu.model, enc, ScoringConfig(device="cpu")).probs
    assert gpu.shape == cpu.shape == (len(probe_texts), len(LABELS))
    assert np.abs(gpu - cpu).max() < 0.02  # bf16 autocast on CUDA, fp32 on the CPU


def test_mc_dropout_on_cuda_is_seeded_and_stochastic(tiny_bert_trained, probe_texts):
    model = copy.deepcopy(tiny_bert_trained.model).to("cuda")  # the fixture is shared by the session
    enc = encode(tiny_bert_trained.tokenizer, probe_texts, tiny_bert_trained.config.max_wordpieces)
    cfg = ScoringConfig(passes=20, scope="full", seed=3, device="cuda")
    a, b = mc_moments(model, enc, cfg), mc_moments(model, enc, cfg)
    other = mc_moments(model, enc, replace(cfg, seed=4))
    np.testing.assert_array_equal(a.mean_relevance, b.mean_relevance)  # one seed, one answer
    assert not np.array_equal(a.mean_relevance, other.mean_relevance)  # dropout really samples
    det = mc_moments(model, enc, cfg, deterministic=True)
    # Jensen: E[2^Y] > 2^E[Y] once Y varies; equal (to rounding) only if dropout were off
    assert (a.mean_relevance - (np.exp2(a.mean_prob) - 1.0)).min() >= -1e-6
    assert (a.mean_relevance - (np.exp2(a.mean_prob) - 1.0)).max() > 1e-5
    assert (det.mean_relevance - (np.exp2(det.mean_prob) - 1.0)).max() < 1e-9
    assert not model.training  # the caller's model is untouched


def test_training_on_cuda_learns_the_synthetic_task(tiny_bert_train_config):
    texts, label_sets = synthetic_texts(96, seed=1)
    trained = train(texts, label_sets, LABELS, replace(tiny_bert_train_config, epochs=20, device="cuda"))
    assert next(trained.model.parameters()).device.type == "cuda"
    test_texts, test_sets = synthetic_texts(40, seed=2)
    enc = encode(trained.tokenizer, test_texts, trained.config.max_wordpieces)
    pred = deterministic_outputs(trained.model, enc, ScoringConfig(device="cuda")).probs > 0.5
    truth = np.array([[label in s for label in LABELS] for s in test_sets])
    assert (pred == truth).mean() > 0.9
