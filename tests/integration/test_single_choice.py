"""Issue #15 items 1 and 3 on a real (tiny) model: single-choice training, choices by value."""

from __future__ import annotations

import numpy as np
import pytest

from beal_backend.engine import training
from beal_backend.engine.batching import encode
from beal_backend.engine.scoring import ScoringConfig, deterministic_outputs
from beal_backend.labelstudio.label_config import parse_label_config
from beal_backend.store.versions import ModelStore
from beal_backend.worker import pool_scores

from .conftest import CONFIG, POOL

SINGLE = CONFIG.replace('choice="multiple"', 'choice="single-radio"').replace(
    '<Choice value="water"/>', '<Choice value="water"/><Choice value="other"/>'
)
TEXTS = ["an apple a day", "the river runs", "green apple pie", "a wide river", "plain words", "nothing here"]
ONE = [["fruit"], ["water"], ["fruit"], ["water"], ["other"], ["other"]]


@pytest.fixture(scope="module")
def single_trained():
    cfg = training.TrainConfig(epochs=2, min_steps=0, min_val=100, seed=1, single_label=True)
    return training.train(TEXTS, ONE, ["fruit", "water", "other"], cfg)


def test_single_label_model_outputs_one_probability_vector(single_trained):
    probs = deterministic_outputs(
        single_trained.model, encode(single_trained.tokenizer, list(POOL.values())), ScoringConfig()
    ).probs
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


def test_single_choice_pool_gets_exactly_one_choice_and_ec_of_its_softmax(single_trained):
    cfg = ScoringConfig(passes=3, scope="full", seed=2)
    scores = pool_scores.score_pool(single_trained, list(POOL), list(POOL.values()), cfg)["tasks"]
    probs = deterministic_outputs(
        single_trained.model, encode(single_trained.tokenizer, list(POOL.values())), cfg
    ).probs
    for i, tid in enumerate(POOL):
        hit = scores[str(tid)]
        assert hit["choices"] == [single_trained.labels[int(np.argmax(probs[i]))]]
        assert hit["score"] == pytest.approx(hit["ec"])  # EC of a softmax vector is at most 1 (one-hot)
        assert 0.0 < hit["ec"] <= 1.0


def test_single_label_training_refuses_rows_without_exactly_one_label():
    with pytest.raises(ValueError, match="exactly one label"):
        training.train(["a", "b"], [["x"], ["x", "y"]], ["x", "y"], training.TrainConfig(epochs=1, single_label=True))


def test_single_label_mode_survives_the_store(single_trained, tmp_path):
    store = ModelStore(tmp_path)
    version = store.publish("3", single_trained, pool_scores.empty_scores(ScoringConfig()), {})
    loaded = store.load("3", version)
    assert loaded.config.single_label and loaded.model.single_label


def test_reordered_choices_keep_their_names(tiny_trained):
    """Old code named choices by the config's position: a reordered config swapped fruit and water."""
    reordered = parse_label_config(
        CONFIG.replace(
            '<Choice value="fruit"/><Choice value="water"/>', '<Choice value="water"/><Choice value="fruit"/>'
        )
    )
    cfg = ScoringConfig(passes=2, scope="full")
    a = pool_scores.score_pool(tiny_trained, [1, 2], [POOL[101], POOL[102]], cfg)["tasks"]
    # scoring never sees the config (choices are the model's own label names): what a prediction pushed under the
    # reordered config says reads back as the same choices
    b = {t: {**hit, "choices": reordered.choices_of(reordered.result(hit["choices"]))} for t, hit in a.items()}
    assert a == b


def test_predict_with_reordered_choices_still_answers(app_factory, published):
    app, _ = app_factory()
    reordered = CONFIG.replace(
        '<Choice value="fruit"/><Choice value="water"/>', '<Choice value="water"/><Choice value="fruit"/>'
    )
    tasks = [{"id": 101, "data": {"text": POOL[101]}}, {"id": 103, "data": {"text": POOL[103]}}]
    body = (
        app.test_client()
        .post("/predict", json={"project": "7.1", "tasks": tasks, "label_config": reordered})
        .get_json()
    )
    assert all(r and "score" in r for r in body["results"])
    assert body["results"][0]["score"] == published[1]["tasks"]["101"]["score"]


def test_ec_is_taken_on_the_softmax_vector(single_trained):
    """With dropout off, the streamed EC equals the paper's EC on the model's softmax probabilities."""
    from beal_backend import acquisition
    from beal_backend.engine.scoring import mc_moments

    enc = encode(single_trained.tokenizer, list(POOL.values()))
    probs = deterministic_outputs(single_trained.model, enc, ScoringConfig()).probs
    ec = mc_moments(single_trained.model, enc, ScoringConfig(), deterministic=True).ec
    np.testing.assert_allclose(ec, acquisition.expected_confidence(probs[None]), rtol=1e-5)
    # by hand for one softmax vector: sum_j (2^p_(j) - 1) / j over the probabilities sorted descending
    p = np.array([[[0.2, 0.5, 0.3]]])
    assert acquisition.expected_confidence(p)[0] == pytest.approx((2**0.5 - 1) + (2**0.3 - 1) / 2 + (2**0.2 - 1) / 3)
