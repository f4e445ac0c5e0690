"""A version's ``scores.json``: how its pool was scored, and per task the strategy's score, EC and predicted
choices with the hash of the text they were computed on (``store.scores``). Written by a round, extended by a
rollback, the import job and /predict; read back here for the pool's EC (status page, stop hint)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from beal_backend import acquisition
from beal_backend.engine import pool_scoring
from beal_backend.engine.learners import Progress
from beal_backend.engine.scoring import ScoringConfig
from beal_backend.engine.training import TrainedModel
from beal_backend.store import scores as score_cache


def empty_scores(cfg: ScoringConfig, trained: TrainedModel | None = None, strategy: str = "beal") -> dict:
    scope = pool_scoring.sampled_scope(cfg, trained)
    return {"passes": cfg.passes, "scope": scope, "seed": cfg.seed, "strategy": strategy, "tasks": {}}


def score_pool(
    trained: TrainedModel,
    task_ids: Sequence[int],
    texts: Sequence[str],
    cfg: ScoringConfig,
    on_progress: Progress | None = None,
    features: np.ndarray | None = None,
    strategy: str = "beal",
    labeled_hidden: np.ndarray | None = None,
) -> dict:
    """``scores.json`` content for ``task_ids`` (``engine.pool_scoring.score_texts`` says what each entry holds)."""
    out = empty_scores(cfg, trained, strategy)
    if not task_ids:
        return out
    scored = pool_scoring.score_texts(trained, texts, cfg, features, strategy, labeled_hidden, on_progress)
    for i, tid in enumerate(task_ids):
        out["tasks"][str(tid)] = score_cache.entry(
            float(scored.score[i]), float(scored.ec[i]), scored.choices[i], texts[i]
        )
    return out


def pool_ec(scores: dict, num_labels: int, single_label: bool = False) -> list[float]:
    """Each scored task's EC / H_J (what the status page and stop hint show), whatever strategy ordered
    the pushed scores by."""
    ec = np.asarray([v["ec"] for v in scores["tasks"].values()], dtype=np.float64)
    return acquisition.normalized_score(ec, num_labels, single_label).tolist() if len(ec) else []


def mean_ec(scores: dict, num_labels: int, single_label: bool) -> float | None:
    ec = pool_ec(scores, num_labels, single_label)
    return float(np.mean(ec)) if ec else None
