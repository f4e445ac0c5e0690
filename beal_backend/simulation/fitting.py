"""The service's learners (``engine.learners``) behind the simulation: fit a model on a labeled set of pool
rows, then give the outputs a strategy needs (the registry's ``acquisition.Strategy``), scored exactly as the
service scores them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from beal_backend.acquisition import PoolView, Strategy
from beal_backend.engine import learners
from beal_backend.engine.batching import Encoded, encode
from beal_backend.engine.scoring import ScoringConfig
from beal_backend.engine.training import TrainConfig, TrainedModel
from beal_backend.simulation import protocol
from beal_backend.simulation.config import SimulationConfig
from beal_backend.simulation.datasets import Dataset


class Learner:
    """The service's learner of ``cfg.mode`` on the dataset: ``learners.FrozenLearner`` (pool and test features
    computed once, cached on disk; a fresh head per fit) or ``learners.FinetuneLearner`` (the encoder fine-tuned
    from scratch every fit; pool and test token ids encoded once, by the first model's tokenizer)."""

    def __init__(self, cfg: SimulationConfig, data: Dataset):
        self.cfg, self.data = cfg, data
        self.frozen = cfg.mode == "frozen"
        self.inputs: tuple = ()  # (pool, test): features [N, H] (frozen) or token ids (finetune, once fitted)
        self.impl: learners.FrozenLearner | learners.FinetuneLearner
        if self.frozen:
            head = replace(cfg.head, device=cfg.device)
            self.impl = learners.FrozenLearner(_train_config(cfg), cfg.cache_dir, head=head)
            x = self.impl.features(data.pool_texts + data.test_texts)  # pool and test: one encoder load, one file
            self.inputs = (x[: len(data.pool_texts)], x[len(data.pool_texts) :])
        else:
            self.impl = learners.FinetuneLearner(_train_config(cfg))

    def fit(self, labeled: np.ndarray, seed: int) -> _Fit:
        labeled, val_rows = _split(self.cfg, labeled, self.cfg.head if self.frozen else self.cfg.train)
        given: dict[str, Any] = {"features": self.inputs[0][labeled]} if self.frozen else {}
        trained = self.impl.fit(*self.data.labeled(labeled), seed=seed, val_rows=val_rows, **given)
        if not self.inputs:
            tok, n = trained.tokenizer, self.cfg.max_wordpieces
            self.inputs = (encode(tok, self.data.pool_texts, n), encode(tok, self.data.test_texts, n))
        return _Fit(trained, self.cfg, *self.inputs)


def _split(cfg: SimulationConfig, labeled: np.ndarray, trainer) -> tuple[np.ndarray, list[int] | None]:
    """(the labeled rows the learner is given, its early-stopping positions among them): a service round's
    (``--protocol service``), else every labeled row and None (the trainer's own seeded split; none for the
    paper's head, whose ``val_fraction`` is 0)."""
    if not cfg.held_out:
        return labeled, None
    rows, stop = protocol.service_rows(labeled, trainer.val_fraction, trainer.min_val)
    return labeled[rows], stop


def _train_config(cfg: SimulationConfig) -> TrainConfig:
    return replace(
        cfg.train, device=cfg.device, encoder=cfg.encoder, max_wordpieces=cfg.max_wordpieces, pooling=cfg.pooling
    )


@dataclass
class _Fit:
    """A fitted model scored through ``learners.pool_moments`` / ``pool_deterministic``, as in the service, on
    its inputs for the ``pool`` and ``test`` texts: cached features (frozen) or token ids (finetune)."""

    trained: TrainedModel
    cfg: SimulationConfig
    pool: Any  # np.ndarray [N, H] or Encoded
    test: Any

    def _inputs(self, rows: np.ndarray | None = None) -> dict:
        """The model's inputs for the pool ``rows``, or for the test texts."""
        if rows is None:
            x = self.test
        else:
            x = self.pool.subset(rows) if isinstance(self.pool, Encoded) else self.pool[rows]
        return {"features": x} if learners.is_frozen(self.trained) else {"encoded": x}

    def _scoring(self, **kw) -> ScoringConfig:
        return ScoringConfig(scope=self.cfg.scope, device=self.cfg.device, **kw)

    def outputs(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return learners.pool_deterministic(self.trained, self._scoring(), **self._inputs(rows))

    def moments(self, rows: np.ndarray, passes: int, seed: int, deterministic: bool):
        cfg = self._scoring(passes=passes, seed=seed)
        return learners.pool_moments(self.trained, cfg, deterministic=deterministic, **self._inputs(rows))

    def test_probs(self) -> np.ndarray:
        return learners.pool_deterministic(self.trained, self._scoring(), **self._inputs())[0]

    def view(
        self, strategy: Strategy, pool: np.ndarray, labeled: np.ndarray, num_labels: int, passes: int, seed: int
    ) -> PoolView:
        """The outputs ``strategy`` needs (the registry's ``needs`` and ``centers``) for the unlabeled ``pool`` rows."""
        mc = self.moments(pool, passes, seed, strategy.deterministic_passes) if "mc" in strategy.needs else None
        probs, hidden = self.outputs(pool) if "deterministic" in strategy.needs else (None, None)
        centers = self.outputs(labeled)[1] if strategy.centers else None
        return learners.pool_view(len(pool), num_labels, mc, probs, hidden, centers)
