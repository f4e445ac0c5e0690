"""What a version says about unlabeled texts, as arrays: each text's score under an acquisition strategy (ascending
= the order it would acquire them; EC / H_J for BEAL), its EC, and the predicted choices. ``worker.pool_scores``
turns them into a version's ``scores.json``; a round, /predict and the import job all score through here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from beal_backend import acquisition
from beal_backend.engine import learners, training
from beal_backend.engine.scoring import ScoringConfig
from beal_backend.engine.training import TrainedModel


@dataclass(frozen=True)
class PoolScores:
    score: np.ndarray  # [N] the strategy's score
    ec: np.ndarray  # [N] expected confidence
    choices: list[list[str]]  # predicted label names (deterministic, > 0.5; single-label: the argmax)


def score_texts(
    trained: TrainedModel,
    texts: Sequence[str],
    cfg: ScoringConfig,
    features: np.ndarray | None = None,
    strategy: str = "beal",
    labeled_hidden: np.ndarray | None = None,
    on_progress: learners.Progress | None = None,
) -> PoolScores:
    """Score ``texts`` with ``strategy``. ``features``: a frozen model's cached sentence features of ``texts``;
    ``labeled_hidden``: the labeled texts' hidden features (Core-Set's centers)."""
    single = trained.config.single_label
    deterministic = acquisition.get_strategy(strategy).deterministic_passes
    outputs = learners.pool_outputs(
        trained, texts, cfg, features=features, deterministic=deterministic, on_progress=on_progress
    )
    chosen = training.predicted(outputs.probs, single)
    score = learners.strategy_scores(strategy, outputs, len(trained.labels), cfg.seed, labeled_hidden, single)
    # by the model's own label names: the project's config may list them in another order
    choices = [[trained.labels[j] for j in np.flatnonzero(row)] for row in chosen]
    return PoolScores(score=score, ec=outputs.moments.ec, choices=choices)


def sampled_scope(cfg: ScoringConfig, trained: TrainedModel | None = None) -> str:
    """The MC-dropout scope the scores were sampled under: a frozen model samples its head only."""
    return "head" if trained is not None and learners.is_frozen(trained) else cfg.scope
