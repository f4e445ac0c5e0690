"""The service's learners (``engine.learners``) behind the simulation: fit a model on a labeled set of pool
rows, then give the outputs a strategy needs, scored exactly as the service scores them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from beal_backend.acquisition import PoolView, Strategy
from beal_backend.engine import learners
from beal_backend.engine.batching import Encoded, encode
from beal_backend.engine.scoring import ScoringConfig
from beal_backend.engine.training import TrainConfig, TrainedModel
from beal_backend.simulation import protocol
from beal_backend.simulation.config import SimulationConfig
from beal_backend.simulation.datasets import Dataset


def make_learner(cfg: SimulationConfig, data: Dataset):
    """The learner of ``cfg.mode``: frozen (cached features, head only) or finetune (the whole encoder)."""
    return (_FrozenLearner if cfg.mode == "frozen" else _FinetuneLearner)(cfg, data)


class _FrozenLearner:
    """``learners.FrozenLearner``, the service's: features once (cached on disk), a fresh head per fit."""

    def __init__(self, cfg: SimulationConfig, data: Dataset):
        self.impl = learners.FrozenLearner(_train_config(cfg), cfg.cache_dir, head=replace(cfg.head, device=cfg.device))
        x = self.impl.features(data.pool_texts + data.test_texts)  # pool and test: one encoder load, one file
        self.pool_x, self.test_x = x[: len(data.pool_texts)], x[len(data.pool_texts) :]
        self.cfg, self.data = cfg, data

    def fit(self, labeled: np.ndarray, seed: int) -> _Fit:
        labeled, val_rows = _split(self.cfg, labeled, self.cfg.head)
        trained = self.impl.fit(
            *self.data.labeled(labeled), seed=seed, features=self.pool_x[labeled], val_rows=val_rows
        )
        return _Fit(trained, self.cfg, pool=lambda rows: self.pool_x[rows], test=lambda: self.test_x)


class _FinetuneLearner:
    """``learners.FinetuneLearner``, the service's: the encoder is fine-tuned from scratch every round."""

    def __init__(self, cfg: SimulationConfig, data: Dataset):
        self.impl = learners.FinetuneLearner(_train_config(cfg))
        self.cfg, self.data = cfg, data
        self.encoded: tuple[Encoded, Encoded] | None = None  # (pool, test) token ids, from the first tokenizer

    def fit(self, labeled: np.ndarray, seed: int) -> _Fit:
        labeled, val_rows = _split(self.cfg, labeled, self.cfg.train)
        trained = self.impl.fit(*self.data.labeled(labeled), seed=seed, val_rows=val_rows)
        if self.encoded is None:
            tok, n = trained.tokenizer, self.cfg.max_wordpieces
            self.encoded = (encode(tok, self.data.pool_texts, n), encode(tok, self.data.test_texts, n))
        pool, test = self.encoded
        return _Fit(trained, self.cfg, pool=lambda rows: pool.subset(rows), test=lambda: test)


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
    """A fitted model scored through ``learners.pool_moments`` / ``pool_deterministic``, as in the service.
    ``pool(rows)`` / ``test()`` give the model's inputs: cached features (frozen) or token ids (finetune)."""

    trained: TrainedModel
    cfg: SimulationConfig
    pool: Callable
    test: Callable

    def _inputs(self, x) -> dict:
        return {"features": x} if learners.is_frozen(self.trained) else {"encoded": x}

    def _scoring(self, **kw) -> ScoringConfig:
        return ScoringConfig(scope=self.cfg.scope, device=self.cfg.device, **kw)

    def outputs(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return learners.pool_deterministic(self.trained, self._scoring(), **self._inputs(self.pool(rows)))

    def moments(self, rows: np.ndarray, passes: int, seed: int, deterministic: bool):
        cfg = self._scoring(passes=passes, seed=seed)
        return learners.pool_moments(self.trained, cfg, deterministic=deterministic, **self._inputs(self.pool(rows)))

    def test_probs(self) -> np.ndarray:
        return learners.pool_deterministic(self.trained, self._scoring(), **self._inputs(self.test()))[0]


def pool_view(
    fit, strategy: Strategy, pool: np.ndarray, labeled: np.ndarray, num_labels: int, passes: int, seed: int
) -> PoolView:
    """The model outputs ``strategy`` needs, for the unlabeled ``pool`` rows."""
    view = PoolView(size=len(pool), num_labels=num_labels)
    if "mc" in strategy.needs:
        m = fit.moments(pool, passes, seed, strategy.deterministic_passes)
        view.mean_relevance, view.mean_prob, view.mean_entropy = m.mean_relevance, m.mean_prob, m.mean_entropy
    if "deterministic" in strategy.needs:
        view.det_probs, view.hidden = fit.outputs(pool)
        view.labeled_hidden = fit.outputs(labeled)[1]
    return view
