"""Shared engine fixtures: tiny random BERTs, a tiny on-disk encoder, synthetic multi-label texts.

Everything here is engine-only (no Label Studio, no Redis, no web app) and CPU-fast: the tiny BERT has
32-wide hidden states, so a forward pass costs microseconds and a full training run well under a second.
The real packaged MiniLM is only loaded by tests marked ``slow``.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the network from the test suite
# REDIS_URL picks the suite's Redis server (tests/redis_server.py); the code under test must not inherit it,
# or every Settings.from_env() in a test would leave embedded mode
if os.environ.get("REDIS_URL"):
    os.environ["BEAL_TEST_REDIS"] = os.environ.pop("REDIS_URL")

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizer

from beal_backend.engine.batching import Encoded
from beal_backend.engine.model import MultiLabelClassifier

# ---------------------------------------------------------------- synthetic multi-label data

FILLER = [
    "the",
    "a",
    "man",
    "woman",
    "walked",
    "saw",
    "near",
    "quiet",
    "old",
    "new",
    "small",
    "big",
    "house",
    "car",
    "road",
    "table",
    "window",
    "garden",
    "city",
    "morning",
    "evening",
    "green",
    "blue",
    "ate",
    "found",
]
KEYWORDS = {"A": "apple", "B": "river"}  # the rule: a label is relevant iff its keyword occurs
LABELS = ["A", "B"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def synthetic_texts(n: int, seed: int) -> tuple[list[str], list[list[str]]]:
    """``n`` texts cycling through {}, {A}, {B}, {A, B}: filler words plus each label's keyword."""
    rng = np.random.default_rng(seed)
    texts, label_sets = [], []
    for i in range(n):
        words = list(rng.choice(FILLER, size=int(rng.integers(5, 9))))
        names = [name for bit, name in enumerate(LABELS) if (i % 4) >> bit & 1]
        for name in names:
            words.insert(int(rng.integers(0, len(words) + 1)), KEYWORDS[name])
        texts.append(" ".join(words))
        label_sets.append(names)
    return texts, label_sets


# ---------------------------------------------------------------- tiny random BERT


def build_tiny_bert(
    hidden_dropout: float = 0.0,
    attention_dropout: float = 0.0,
    layers: int = 4,
    vocab_size: int = 100,
    attn_implementation: str = "sdpa",
    seed: int = 0,
) -> BertModel:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=hidden_dropout,
        attention_probs_dropout_prob=attention_dropout,
        attn_implementation=attn_implementation,  # type: ignore[call-arg]  # a PretrainedConfig kwarg
    )
    return BertModel(config, add_pooling_layer=False)


def build_tiny_classifier(
    head_dropout: float = 0.0, num_labels: int = 3, seed: int = 0, **bert
) -> MultiLabelClassifier:
    """A tiny random BERT (``bert``: the keyword arguments of ``build_tiny_bert``) under a 16-unit head."""
    encoder = build_tiny_bert(seed=seed, **bert)
    torch.manual_seed(seed + 1)
    model = MultiLabelClassifier(encoder, num_labels, hidden_size=16, dropout=head_dropout)
    return model.eval()


def random_encoded(n: int = 7, min_len: int = 3, max_len: int = 12, vocab_size: int = 100, seed: int = 0) -> Encoded:
    """Token ids of ``n`` texts of varied lengths, each framed like BERT input ([CLS]=2 ... [SEP]=3)."""
    rng = np.random.default_rng(seed)
    ids = []
    for _ in range(n):
        body = rng.integers(5, vocab_size, size=int(rng.integers(min_len, max_len + 1))).tolist()
        ids.append([2, *body, 3])
    return Encoded(ids=ids, pad_id=0)


@pytest.fixture
def tiny_classifier():
    """Factory: ``tiny_classifier(hidden_dropout=..., attention_dropout=..., head_dropout=..., layers=...)``."""
    return build_tiny_classifier


# ---------------------------------------------------------------- tiny encoder on disk (for train/save/load)


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    """A BERT-style checkpoint folder (random tiny BERT + word-level tokenizer over the synthetic vocabulary)
    that ``TrainConfig(encoder=str(path))`` accepts like any Hugging Face checkpoint."""
    path = tmp_path_factory.mktemp("tiny-encoder")
    words = SPECIAL + sorted(set(FILLER) | set(KEYWORDS.values()))
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(words)})
    build_tiny_bert(hidden_dropout=0.1, attention_dropout=0.1, layers=2, vocab_size=len(words)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_bert_train_config(tiny_encoder_dir):
    from beal_backend.engine.training import TrainConfig

    return TrainConfig(
        encoder=str(tiny_encoder_dir),
        hidden_size=16,
        epochs=1,
        min_steps=0,
        batch_size=8,
        lr_encoder=1e-3,
        lr_head=1e-2,
        val_fraction=0.0,
        seed=0,
    )


@pytest.fixture(scope="session")
def tiny_bert_trained(tiny_bert_train_config):
    """A tiny model trained for one epoch on 32 synthetic texts (seconds at most)."""
    from beal_backend.engine.training import train

    texts, label_sets = synthetic_texts(32, seed=0)
    return train(texts, label_sets, LABELS, tiny_bert_train_config)


@pytest.fixture(scope="session")
def probe_texts() -> list[str]:
    return synthetic_texts(12, seed=99)[0]
