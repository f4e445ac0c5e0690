"""Acquisition: which unlabeled texts to label next. Pure NumPy: no torch, no I/O.

``scores``: per-text scores (BEAL's expected confidence, BALD, entropy); ``batch``: rules that pick a batch from
scores and features (Core-Set, BADGE, the EC-based batch rules); ``typical``: BEAL-typical's rule; ``registry``:
every strategy by name (``STRATEGIES``). Strategies return *pool positions* (0..N-1) in acquisition order.
The public API is re-exported here: ``beal_backend.acquisition.expected_confidence(probs[T, N, J]) -> [N]``."""

from beal_backend.acquisition.batch import badge, diverse_lowest, kcenter_greedy, stochastic_lowest
from beal_backend.acquisition.registry import STRATEGIES, PoolView, Strategy, get_strategy, order_scores
from beal_backend.acquisition.scores import (
    EPS,
    AcquisitionError,
    bald,
    bald_from_moments,
    binary_entropy,
    ec_from_mean_relevance,
    expected_confidence,
    harmonic,
    mean_entropy,
    normalized_score,
    relevance,
)

__all__ = [
    "EPS",
    "STRATEGIES",
    "AcquisitionError",
    "PoolView",
    "Strategy",
    "badge",
    "bald",
    "bald_from_moments",
    "binary_entropy",
    "diverse_lowest",
    "ec_from_mean_relevance",
    "expected_confidence",
    "get_strategy",
    "harmonic",
    "kcenter_greedy",
    "mean_entropy",
    "normalized_score",
    "order_scores",
    "relevance",
    "stochastic_lowest",
]
