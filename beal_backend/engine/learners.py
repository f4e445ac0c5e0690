"""One learner interface for the service's rounds and ``beal simulate``.

A learner fits a fresh, seeded model on labeled texts (``fit`` -> ``TrainedModel``); ``pool_outputs``
then gives what the acquisition strategies need for any texts: the MC-dropout moments EC/BALD/entropy
are computed from (streamed, never a [T, N, J] array), the deterministic probabilities and the head's
hidden layer (BADGE, Core-Set, BEAL-diverse).

- ``finetune``: the paper's setting. The whole encoder is trained every round; MC dropout under the
  scoring scope (``full`` / ``last-k`` / ``head``). Costly on a CPU (minutes per round at team scale).
- ``frozen``: the encoder is never trained, so each text's sentence feature is computed once and kept in
  an ``EmbeddingCache``; a round trains only the head (hidden layer + sigmoids, dropout) from scratch and
  samples the head alone (T weight samples, a matrix product each). Gives up encoder adaptation.

Both return the same ``TrainedModel`` (a full encoder + head ``MultiLabelClassifier``; the frozen one
carries the pretrained encoder unchanged), so the store, /predict and rollback serve either.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from beal_backend import acquisition
from beal_backend.engine import encoders, evaluation, training
from beal_backend.engine.batching import collate, encode, sorted_batches
from beal_backend.engine.feature_cache import EmbeddingCache
from beal_backend.engine.features import (
    HeadConfig,
    head_moments,
    head_outputs,
    train_head,
)
from beal_backend.engine.model import MultiLabelClassifier, pool
from beal_backend.engine.scoring import (
    Moments,
    ScoringConfig,
    deterministic_outputs,
    mc_moments,
)
from beal_backend.engine.training import TrainConfig, TrainedModel

LEARNERS = ("frozen", "finetune")
# the TrainConfig fields the frozen learner's head takes over; the rest of its schedule is its own (HeadConfig)
SHARED_WITH_HEAD = ("hidden_size", "dropout", "val_fraction", "min_val", "seed", "device")
Progress = Callable[[int, int], None]  # (texts done, texts total)


def resolve(name: str, device: str) -> str:
    """``LEARNER``: ``auto`` = finetune on CUDA (the paper's setting is affordable), frozen on a CPU."""
    if name == "auto":
        return "finetune" if str(device).startswith("cuda") else "frozen"
    if name not in LEARNERS:
        raise ValueError(f"LEARNER must be auto, frozen or finetune, got {name!r}")
    return name


def build(name: str, cfg: TrainConfig, cache_dir: str | os.PathLike | None = None):
    """The learner ``name`` (auto resolved by ``cfg.device``); ``cache_dir``: the frozen learner's cache."""
    if resolve(name, cfg.device) == "finetune":
        return FinetuneLearner(cfg)
    return FrozenLearner(cfg, cache_dir)


@dataclass
class PoolOutputs:
    moments: Moments  # T-pass moments, [N, J] each
    probs: np.ndarray  # deterministic probabilities [N, J]
    hidden: np.ndarray  # the head's hidden layer [N, hidden], deterministic


class FinetuneLearner:
    name = "finetune"

    def __init__(self, cfg: TrainConfig):
        self.cfg = replace(cfg, learner="finetune")

    def features(self, texts: Sequence[str], keep: Sequence[str] | None = None) -> None:
        return None  # the encoder changes every round: nothing to cache

    def fit(self, texts, label_sets, labels, val_rows=None, on_progress=None, seed: int | None = None) -> TrainedModel:
        cfg = self.cfg if seed is None else replace(self.cfg, seed=seed)
        return training.train(texts, label_sets, labels, cfg, on_progress=on_progress, val_rows=val_rows)


class FrozenLearner:
    name = "frozen"

    def __init__(self, cfg: TrainConfig, cache_dir: str | os.PathLike | None = None, head: HeadConfig | None = None):
        self.cfg = replace(cfg, learner="frozen", pooling=encoders.pooling_for(cfg.encoder, cfg.pooling))
        self.head_cfg = head or HeadConfig(**{k: getattr(cfg, k) for k in SHARED_WITH_HEAD})
        self.cache = EmbeddingCache(cache_dir, cfg.encoder, self.cfg.pooling, cfg.max_wordpieces) if cache_dir else None
        self._pretrained: tuple | None = None  # (encoder, tokenizer): loaded once, never trained
        self.encoder_calls = 0  # texts embedded by the encoder (the cache's savings, for tests and logs)

    @property
    def pretrained(self):
        if self._pretrained is None:
            encoder, tokenizer = encoders.load_pretrained(self.cfg.encoder)
            self._pretrained = (encoder.to(self.cfg.device).eval(), tokenizer)
        return self._pretrained

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Features straight from the encoder (no cache)."""
        self.encoder_calls += len(texts)
        encoder, tokenizer = self.pretrained
        return embed(encoder, tokenizer, texts, self.cfg.pooling, self.cfg.max_wordpieces, self.cfg.device)

    def features(self, texts: Sequence[str], keep: Sequence[str] | None = None) -> np.ndarray:
        """Features [N, H], embedding only what the cache lacks; ``keep`` prunes texts gone from the project."""
        if self.cache is None:
            return self.embed(texts)
        return self.cache.features(texts, lambda missing: self.embed(missing), keep)

    def fit(
        self,
        texts,
        label_sets,
        labels,
        val_rows=None,
        on_progress=None,
        seed: int | None = None,
        features: np.ndarray | None = None,
    ) -> TrainedModel:
        """A fresh head on the texts' features (``features`` when the caller holds them already). ``val_rows``
        (the early-stopping half) are trained on too unless the head config early-stops (``HeadConfig``).
        ``on_progress`` is accepted for the interface and not called: head training takes seconds."""
        if not labels:
            raise ValueError("the label list is empty")
        x = self.features(texts) if features is None else features
        y = evaluation.multi_hot(label_sets, labels)
        head_cfg = self.head_cfg if seed is None else replace(self.head_cfg, seed=seed)
        head, metrics = train_head(x, y, head_cfg, val_rows=val_rows, single_label=self.cfg.single_label)
        encoder, tokenizer = self.pretrained
        # the head config shapes the head (the simulation's may differ from TrainConfig); recorded for store.load
        cfg = replace(self.cfg, hidden_size=head_cfg.hidden_size, dropout=head_cfg.dropout, seed=head_cfg.seed)
        model = MultiLabelClassifier(
            encoder, len(labels), cfg.hidden_size, cfg.dropout, single_label=cfg.single_label, pooling=cfg.pooling
        )
        model.head.load_state_dict(head.state_dict())
        model.to(self.cfg.device).eval()
        metrics = {k: v for k, v in metrics.items() if k != "val_micro_f1"}
        if head_cfg.early_stopping and val_rows is not None and len(val_rows):  # scored only if not trained on
            rows = np.unique(np.asarray(val_rows, dtype=np.int64))
            single = self.cfg.single_label
            pred = training.predicted(head_outputs(model.head, x[rows], self.cfg.device, single)[0], single)
            metrics.update(
                val_micro_f1=evaluation.micro_f1(y[rows], pred), val_macro_f1=evaluation.macro_f1(y[rows], pred)
            )
        return TrainedModel(model, tokenizer, list(labels), cfg, metrics)


def embed(encoder, tokenizer, texts: Sequence[str], pooling: str, max_wordpieces: int, device: str) -> np.ndarray:
    """Pooled sentence features float32 [N, H] of an encoder in eval mode (the model's own ``pool``)."""
    enc = encode(tokenizer, list(texts), max_wordpieces)
    out = np.zeros((len(texts), encoder.config.hidden_size), dtype=np.float32)
    budget = ScoringConfig(device=device).budget
    with torch.inference_mode():
        for rows in sorted_batches(enc.lengths, budget, 64):
            ids, mask = collate(enc, rows, device)
            out[rows] = (
                pool(encoder(input_ids=ids, attention_mask=mask).last_hidden_state, mask, pooling).float().cpu().numpy()
            )
    return out


def is_frozen(trained: TrainedModel) -> bool:
    return getattr(trained.config, "learner", "finetune") == "frozen"


def pool_outputs(
    trained: TrainedModel,
    texts: Sequence[str],
    cfg: ScoringConfig,
    features: np.ndarray | None = None,
    deterministic: bool = False,
    on_progress: Progress | None = None,
) -> PoolOutputs:
    """Moments of T passes (one with dropout off when ``deterministic``), deterministic probs and hidden.
    A frozen model samples its head only (on ``features`` when given, else it embeds ``texts``);
    a fine-tuned one runs ``scoring.mc_moments`` under ``cfg.scope``."""
    if is_frozen(trained) and features is None:
        features = features_of(trained, texts, cfg.device)
    encoded = None if is_frozen(trained) else encode(trained.tokenizer, list(texts), trained.config.max_wordpieces)
    moments = pool_moments(trained, cfg, features, encoded, deterministic, on_progress)
    probs, hidden = pool_deterministic(trained, cfg, features, encoded)
    return PoolOutputs(moments, probs, hidden)


def features_of(trained: TrainedModel, texts: Sequence[str], device: str) -> np.ndarray:
    """A frozen model's sentence features, computed by its own (pretrained) encoder."""
    model = trained.model
    return embed(model.encoder, trained.tokenizer, texts, model.pooling, trained.config.max_wordpieces, device)


def pool_moments(
    trained: TrainedModel,
    cfg: ScoringConfig,
    features=None,
    encoded=None,
    deterministic=False,
    on_progress: Progress | None = None,
) -> Moments:
    """T-pass moments from a frozen model's ``features`` [N, H] or a fine-tuned one's ``encoded`` texts."""
    if is_frozen(trained):
        moments = head_moments(
            trained.model.head, features, cfg.passes, cfg.seed, deterministic, cfg.device, trained.config.single_label
        )
        if on_progress:
            on_progress(len(features), len(features))
        return moments
    return mc_moments(trained.model, encoded, cfg, deterministic, on_progress=on_progress)


def pool_deterministic(
    trained: TrainedModel, cfg: ScoringConfig, features=None, encoded=None
) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities [N, J], head hidden layer [N, hidden]) with dropout off."""
    if is_frozen(trained):
        return head_outputs(trained.model.head, features, cfg.device, trained.config.single_label)
    det = deterministic_outputs(trained.model, encoded, cfg)
    return det.probs, det.hidden


def hidden_of(
    trained: TrainedModel, texts: Sequence[str], cfg: ScoringConfig, features: np.ndarray | None = None
) -> np.ndarray:
    """The head's hidden layer [N, hidden] with dropout off (Core-Set's labeled centers)."""
    if is_frozen(trained) and features is not None:
        return head_outputs(trained.model.head, features, cfg.device, trained.config.single_label)[1]
    return pool_outputs(trained, texts, replace(cfg, passes=1), features, deterministic=True).hidden


def pool_view(
    size: int,
    num_labels: int,
    moments: Moments | None = None,
    probs: np.ndarray | None = None,
    hidden: np.ndarray | None = None,
    labeled_hidden: np.ndarray | None = None,
    single_label: bool = False,
) -> acquisition.PoolView:
    """What a strategy looks at (``acquisition.PoolView``) from the outputs computed for it (None: not computed):
    T-pass ``moments``, deterministic ``probs`` and ``hidden``, Core-Set's ``labeled_hidden``."""
    mc = {} if moments is None else {k: getattr(moments, k) for k in ("mean_relevance", "mean_prob", "mean_entropy")}
    return acquisition.PoolView(
        size, num_labels, det_probs=probs, hidden=hidden, labeled_hidden=labeled_hidden, single_label=single_label, **mc
    )


def strategy_scores(
    strategy: str, outputs: PoolOutputs, num_labels: int, seed: int, labeled_hidden=None, single_label: bool = False
) -> np.ndarray:
    """Per-text scores in [0, 1] whose ascending order is ``strategy``'s acquisition order (Label Studio
    serves the lowest first), by the registry (``acquisition.Strategy.scores``). BEAL (and deterministic BEAL):
    EC / H_J. Every other strategy ranks the whole pool (batch-mode ones such as BADGE and Core-Set choose
    greedily, so only their order means anything): the k-th text it would acquire gets k / (N - 1)."""
    view = pool_view(
        len(outputs.probs), num_labels, outputs.moments, outputs.probs, outputs.hidden, labeled_hidden, single_label
    )
    return acquisition.get_strategy(strategy).scores(view, np.random.default_rng(seed))
