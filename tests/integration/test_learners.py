"""The learner interface: auto choice by device, frozen-learner cache reuse, identical EC across learners,
frozen versions stored and served like fine-tuned ones, pooling."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from beal_backend import acquisition
from beal_backend.config import Settings, SettingsError
from beal_backend.engine import encoders, learners
from beal_backend.engine.model import pool
from beal_backend.engine.scoring import ScoringConfig, deterministic_outputs, mc_moments
from beal_backend.engine.training import TrainConfig, TrainedModel
from beal_backend.store.versions import ModelStore
from beal_backend.wiring import train_config
from beal_backend.worker import pool_scores
from tests.conftest import (
    LABELS,
    build_tiny_classifier,
    random_encoded,
    synthetic_texts,
)

CONFIG = (
    '<View><Text name="text" value="$text"/><Choices name="label" toName="text" choice="multiple">'
    '<Choice value="A"/><Choice value="B"/></Choices></View>'
)


@pytest.mark.parametrize("device, expected", [("cuda", "finetune"), ("cuda:1", "finetune"), ("cpu", "frozen")])
def test_auto_picks_by_device(device, expected):
    assert learners.resolve("auto", device) == expected
    assert learners.build("auto", TrainConfig(encoder="x", pooling="cls", device=device)).name == expected
    assert learners.resolve("frozen", "cuda") == "frozen" and learners.resolve("finetune", "cpu") == "finetune"


def test_learner_settings_from_env_and_bad_value():
    s = Settings.from_env({"DEVICE": "cpu", "LEARNER": "finetune", "POOLING": "mean", "STRATEGY": "bald"})
    assert (s.learner, train_config(s).pooling, s.strategy) == ("finetune", "mean", "bald")
    assert Settings.from_env({"DEVICE": "cpu"}).learner == "auto"
    with pytest.raises(ValueError, match="LEARNER"):
        learners.resolve("gpu-please", "cpu")


def test_frozen_cache_is_reused_across_rounds(tmp_path, tiny_bert_train_config):
    texts, label_sets = synthetic_texts(24, seed=0)
    cfg = replace(tiny_bert_train_config, pooling="cls")
    first = learners.build("frozen", cfg, tmp_path / "emb")
    first.fit(texts[:20], label_sets[:20], LABELS)
    assert first.encoder_calls == 20

    second = learners.build("frozen", cfg, tmp_path / "emb")  # the next round: a fresh learner, same project
    feats = second.features(texts, keep=texts)
    trained = second.fit(texts, label_sets, LABELS)
    assert second.encoder_calls == 4  # only the 4 texts the first round never saw
    np.testing.assert_allclose(feats[:20], first.features(texts[:20]), atol=0)

    # the cached features are what the stored model computes itself (up to batching round-off)
    direct = learners.embed(trained.model.encoder, trained.tokenizer, texts, "cls", cfg.max_wordpieces, "cpu")
    np.testing.assert_allclose(feats, direct, atol=1e-5)


def test_frozen_learner_keeps_the_encoder_and_trains_the_head(tmp_path, tiny_bert_train_config, tiny_encoder_dir):
    from transformers import AutoModel

    texts, label_sets = synthetic_texts(32, seed=0)
    learner = learners.build("frozen", replace(tiny_bert_train_config, pooling="cls"), tmp_path / "emb")
    trained = learner.fit(texts, label_sets, LABELS, val_rows=list(range(10)))
    pretrained = AutoModel.from_pretrained(tiny_encoder_dir, add_pooling_layer=False).state_dict()
    state = trained.model.state_dict()
    assert all(torch.equal(v, state[f"encoder.{k}"]) for k, v in pretrained.items())
    assert trained.config.learner == "frozen"
    # the head trains on the early-stopping rows too (no early stopping), so they give no validation score
    assert trained.metrics["n_train"] == 32 and trained.metrics["n_val"] == 0 and "val_micro_f1" not in trained.metrics
    head = replace(learner.head_cfg, early_stopping=True)
    stopped = learners.FrozenLearner(learner.cfg, tmp_path / "emb", head=head).fit(
        texts, label_sets, LABELS, val_rows=list(range(10))
    )
    assert stopped.metrics["n_train"] == 22 and stopped.metrics["n_val"] == 10
    assert 0.0 <= stopped.metrics["val_micro_f1"] <= 1.0 and "val_macro_f1" in stopped.metrics


def _as(model, learner: str) -> TrainedModel:
    return TrainedModel(model, None, ["a", "b", "c"], TrainConfig(learner=learner), {})


def test_both_learners_give_identical_ec_for_identical_probabilities(tiny_classifier):
    """Dropout 0 everywhere: every MC pass of either learner yields the deterministic probabilities, so
    both must report EC = sum_j sorted-desc R(p_j) / rank, computed here from those probabilities."""
    model = build_tiny_classifier(layers=2)
    feats = torch.randn(6, 32, generator=torch.Generator().manual_seed(0)).numpy()
    frozen = learners.pool_outputs(
        _as(model, "frozen"), ["x"] * 6, ScoringConfig(passes=5, scope="full"), features=feats
    )
    with torch.inference_mode():
        p = torch.sigmoid(model.head(torch.as_tensor(feats))[0]).double().numpy()
    r = np.sort(np.exp2(p) - 1.0, axis=1)[:, ::-1]
    hand = r @ np.array([1.0, 1 / 2, 1 / 3])
    np.testing.assert_allclose(frozen.moments.ec, hand, rtol=1e-6)
    np.testing.assert_allclose(frozen.probs, p, rtol=1e-6)

    # the fine-tuned path on token ids: compare with the frozen path on the features the model computes
    enc = random_encoded(6)
    det = deterministic_outputs(model, enc, ScoringConfig())
    ft = mc_moments(model, enc, ScoringConfig(passes=5, scope="full"))
    fz = learners.pool_outputs(_as(model, "frozen"), ["x"] * 6, ScoringConfig(passes=5), features=det.features)
    np.testing.assert_allclose(ft.ec, fz.moments.ec, rtol=1e-6)
    np.testing.assert_allclose(ft.ec, acquisition.expected_confidence(det.probs[None].astype(np.float64)), rtol=1e-6)


def test_frozen_version_is_stored_loaded_and_scored_like_the_round(tmp_path, tiny_bert_train_config):
    """The published frozen model serves /predict and rollback: loaded from the store, it scores texts it
    never cached with the same head sampling as the round (same EC, to round-off)."""
    texts, label_sets = synthetic_texts(28, seed=0)
    learner = learners.build("frozen", replace(tiny_bert_train_config, pooling="mean"), tmp_path / "emb")
    trained = learner.fit(texts[:20], label_sets[:20], LABELS)
    cfg = ScoringConfig(passes=7, scope="last-2", seed=4)
    ids = list(range(100, 108))
    in_round = pool_scores.score_pool(trained, ids, texts[20:], cfg, features=learner.features(texts[20:]))
    assert in_round["scope"] == "head"

    store = ModelStore(tmp_path / "store")
    version = store.publish("3", trained, in_round, {})
    loaded = store.load("3", version)
    assert loaded.config.learner == "frozen" and loaded.model.pooling == "mean"
    served = pool_scores.score_pool(loaded, ids, texts[20:], cfg)  # no features: /predict embeds the text
    for t in map(str, ids):
        assert served["tasks"][t]["score"] == pytest.approx(in_round["tasks"][t]["score"], abs=1e-5)
        assert served["tasks"][t]["choices"] == in_round["tasks"][t]["choices"]


def test_mean_pooling_by_hand():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert pool(hidden, mask, "mean").tolist() == [[2.0, 3.0]]
    assert pool(hidden, mask, "cls").tolist() == [[1.0, 2.0]]
    with pytest.raises(ValueError, match="pooling"):
        pool(hidden, mask, "max")


def test_auto_pooling_detects_sentence_transformers_checkpoints(tmp_path, tiny_encoder_dir):
    assert encoders.pooling_for(str(tiny_encoder_dir), "auto") == "cls"
    assert encoders.pooling_for("minilm", "auto") == "mean"  # the packaged MiniLM has modules.json, 1_Pooling
    for marker in ("modules.json", "sentence_bert_config.json", "1_Pooling"):
        d = tmp_path / marker.replace(".", "_")
        d.mkdir()
        (d / marker).mkdir() if marker == "1_Pooling" else (d / marker).write_text("{}")
        assert encoders.pooling_for(str(d), "auto") == "mean"
    assert encoders.pooling_for("minilm", "cls") == "cls"
    with pytest.raises(ValueError, match="POOLING"):
        encoders.pooling_for("minilm", "max")


def test_auto_pooling_refuses_a_missing_folder_and_says_when_it_guesses(tmp_path, caplog):
    """A typo in ENCODER used to train with cls pooling in silence; an uncached hub name is a logged guess."""
    with pytest.raises(ValueError, match="ENCODER='/no/such/encoder' is neither a folder nor"):
        encoders.pooling_for("/no/such/encoder", "auto")
    with pytest.raises(ValueError, match="ENCODER"):
        learners.FrozenLearner(TrainConfig(encoder=str(tmp_path / "typo"), pooling="auto"))
    with caplog.at_level("WARNING", logger="beal_backend.engine.encoders"):
        assert encoders.pooling_for("some-org/not-downloaded", "auto") == "cls"
    assert "some-org/not-downloaded is not in the Hugging Face cache" in caplog.text


@pytest.mark.parametrize("name, value", [("LEARNER", "gpu"), ("POOLING", "max"), ("STRATEGY", "beal-fast")])
def test_bad_choice_in_env_is_refused_at_startup(name, value):
    with pytest.raises(SettingsError, match=f"{name}='{value}' is invalid: use one of"):
        Settings.from_env({"DEVICE": "cpu", name: value})


def _outputs(n=5, j=3, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95, size=(n, j))
    m = learners.Moments(acquisition.relevance(p), p, acquisition.binary_entropy(p), 1)
    return learners.PoolOutputs(m, p.astype(np.float32), rng.normal(size=(n, 4)).astype(np.float32))


def test_order_scores_by_hand():
    np.testing.assert_allclose(acquisition.order_scores(np.array([2, 0, 3, 1]), 4), [1 / 3, 1.0, 0.0, 2 / 3])
    assert acquisition.order_scores(np.array([0]), 1).tolist() == [0.0]
    with pytest.raises(acquisition.AcquisitionError):
        acquisition.order_scores(np.array([0, 0]), 2)


@pytest.mark.parametrize("strategy", sorted(acquisition.STRATEGIES))
def test_strategy_scores_ascending_is_the_strategy_order(strategy):
    """For every STRATEGY the pushed scores lie in [0, 1] and sorting them ascending gives what the
    strategy would acquire first: EC / H_J for BEAL, the selection order (rank / (N-1)) for the others."""
    out = _outputs()
    scores = learners.strategy_scores(strategy, out, 3, seed=7, labeled_hidden=np.zeros((2, 4)))
    assert scores.shape == (5,) and scores.min() >= 0.0 and scores.max() <= 1.0
    st = acquisition.get_strategy(strategy)
    view = acquisition.PoolView(
        5,
        3,
        out.moments.mean_relevance,
        out.moments.mean_prob,
        out.moments.mean_entropy,
        out.probs,
        out.hidden,
        np.zeros((2, 4)),
    )
    # greedy rules and Gumbel-top-k (one draw per pool text): a batch of 2 is the first 2 of the whole order
    b = 5 if strategy == "random" else 2
    first = st.select(view, b, np.random.default_rng(7))
    assert list(np.argsort(scores, kind="stable")[:b]) == list(first)
    if strategy in ("beal", "beal-deterministic"):
        np.testing.assert_allclose(scores, out.moments.ec / (1 + 1 / 2 + 1 / 3))
    else:
        assert sorted(scores.tolist()) == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_strategy_scores_pass_single_choice_to_badge():
    """A single-choice round's BADGE takes the argmax as the prediction (hand case of test_acquisition_batch:
    row 0 is the largest gradient under the argmax, row 1 under p > 0.5)."""
    p = np.array([[0.40, 0.30, 0.30], [0.45, 0.45, 0.10]])
    m = learners.Moments(acquisition.relevance(p), p, acquisition.binary_entropy(p), 1)
    out = learners.PoolOutputs(m, p, np.ones((2, 1)))
    assert learners.strategy_scores("badge", out, 3, seed=0, single_label=True).tolist() == [0.0, 1.0]
    assert learners.strategy_scores("badge", out, 3, seed=0).tolist() == [1.0, 0.0]


def test_score_pool_records_the_strategy(tiny_classifier):
    model = build_tiny_classifier(layers=2, num_labels=2)
    trained = TrainedModel(model, None, ["A", "B"], TrainConfig(learner="frozen"), {})
    feats = np.random.default_rng(1).normal(size=(4, 32)).astype(np.float32)
    out = pool_scores.score_pool(
        trained, [1, 2, 3, 4], ["w"] * 4, ScoringConfig(passes=3), features=feats, strategy="entropy"
    )
    assert out["strategy"] == "entropy" and out["scope"] == "head"
    assert sorted(v["score"] for v in out["tasks"].values()) == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])


def test_frozen_model_records_the_head_it_trained(tmp_path, tiny_bert_train_config):
    """A head config wider than TrainConfig's (the simulation's --hidden-size) is what is built and stored."""
    from beal_backend.engine.features import HeadConfig

    texts, label_sets = synthetic_texts(12, seed=0)
    learner = learners.FrozenLearner(
        replace(tiny_bert_train_config, pooling="cls"),
        head=HeadConfig(hidden_size=24, dropout=0.3, epochs=1, min_steps=1),
    )
    trained = learner.fit(texts, label_sets, LABELS, seed=5)
    assert trained.model.head.hidden.out_features == 24 and trained.model.head.dropout_in.p == 0.3
    assert (trained.config.hidden_size, trained.config.dropout, trained.config.seed) == (24, 0.3, 5)
    store = ModelStore(tmp_path)
    loaded = store.load("1", store.publish("1", trained, {"tasks": {}}))
    assert loaded.model.head.hidden.out_features == 24
