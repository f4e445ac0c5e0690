"""The strategy registry: every acquisition strategy's name, what it needs computed, how it picks a batch and
what score the service pushes for it. Config, learners and the simulation all read ``STRATEGIES``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from beal_backend.acquisition import typical
from beal_backend.acquisition.batch import badge, check_budget, diverse_lowest, kcenter_greedy, stochastic_lowest
from beal_backend.acquisition.scores import (
    AcquisitionError,
    bald_from_moments,
    ec_from_mean_relevance,
    mean_entropy,
    normalized_score,
)

# ---------------------------------------------------------------- strategy registry


@dataclass
class PoolView:
    """What a strategy may look at, aligned with pool positions 0..N-1: ``mean_relevance``, ``mean_prob`` and
    ``mean_entropy`` are [N, J] moments over T MC-dropout passes; ``det_probs`` [N, J] and ``hidden`` [N, H] come
    from one deterministic pass; ``labeled_hidden`` [L, H]: the labeled texts' hidden features (Core-Set's centers)."""

    size: int
    num_labels: int
    mean_relevance: np.ndarray | None = None
    mean_prob: np.ndarray | None = None
    mean_entropy: np.ndarray | None = None
    det_probs: np.ndarray | None = None
    hidden: np.ndarray | None = None
    labeled_hidden: np.ndarray | None = None
    single_label: bool = False  # softmax outputs (single-choice project): EC tops at 1, argmax predicts

    def require(self, *names: str) -> list[np.ndarray]:
        """The named arrays, in order; an ``AcquisitionError`` names those the caller did not compute."""
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise AcquisitionError(f"strategy needs {', '.join(missing)} in the pool view")
        return [getattr(self, n) for n in names]


@dataclass(frozen=True)
class Strategy:
    """A named acquisition rule and all its callers need to know of it (``STRATEGIES``, the one registry):
    ``needs``: the model outputs to compute, ``"mc"`` (T dropout passes: the moments) and ``"deterministic"``
    (one eval pass: probabilities and hidden features); ``select``: a batch, pool positions in acquisition order."""

    name: str
    needs: frozenset[str]
    select: Callable[[PoolView, int, np.random.Generator], np.ndarray]
    deterministic_passes: bool = False  # True: the "mc" moments come from T = 1 with dropout off
    centers: bool = False  # True: it reads ``labeled_hidden`` too, the labeled texts' hidden features
    score: str = "rank"  # what the service pushes: "ec" (EC over its largest value) or "rank" (order_scores)
    doc: str = field(default="", compare=False)

    def scores(self, view: PoolView, rng: np.random.Generator) -> np.ndarray:
        """Per-text scores in [0, 1] whose ascending order is the acquisition order (Label Studio serves the lowest)."""
        if self.score == "ec":
            ec = ec_from_mean_relevance(*view.require("mean_relevance"))
            return normalized_score(ec, view.num_labels, view.single_label)
        return order_scores(self.select(view, view.size, rng), view.size)


def order_scores(order: np.ndarray, n: int) -> np.ndarray:
    """Scores in [0, 1] whose ascending order is ``order`` (all n pool positions in acquisition order):
    the k-th acquired text gets k / (n - 1), a single text 0."""
    order = np.asarray(order, dtype=np.int64)
    if len(order) != n or len(np.unique(order)) != n:
        raise AcquisitionError(f"order must list each of the {n} pool positions once")
    out = np.empty(n)
    out[order] = np.arange(n) / max(n - 1, 1)
    return out


def _lowest(scores: np.ndarray, b: int) -> np.ndarray:
    check_budget(len(scores), b)
    return np.argsort(scores, kind="stable")[:b]


def _select_beal(view: PoolView, b: int, rng: np.random.Generator) -> np.ndarray:
    return _lowest(ec_from_mean_relevance(*view.require("mean_relevance")), b)


def _select_beal_diverse(view: PoolView, b: int, rng: np.random.Generator) -> np.ndarray:
    mean_relevance, hidden = view.require("mean_relevance", "hidden")
    ec = ec_from_mean_relevance(mean_relevance)
    return diverse_lowest(ec, view.num_labels, hidden, b, single_label=view.single_label)


def _select_beal_stochastic(view: PoolView, b: int, rng: np.random.Generator) -> np.ndarray:
    return stochastic_lowest(ec_from_mean_relevance(*view.require("mean_relevance")), b, rng)


def _select_beal_typical(view: PoolView, b: int, rng: np.random.Generator) -> np.ndarray:
    mean_relevance, hidden = view.require("mean_relevance", "hidden")
    ec = ec_from_mean_relevance(mean_relevance)
    check_budget(len(ec), b)
    return typical.typical_lowest(ec, 1.0 - normalized_score(ec, view.num_labels), hidden, b)


def _select_beal_kmeans(view: PoolView, b: int, rng: np.random.Generator) -> np.ndarray:
    mean_relevance, det_probs, hidden = view.require("mean_relevance", "det_probs", "hidden")
    return badge(det_probs, hidden, b, rng, view.single_label, ec=ec_from_mean_relevance(mean_relevance))


def _select_random(view: PoolView, b: int, rng: np.random.Generator) -> np.ndarray:
    check_budget(view.size, b)
    return rng.choice(view.size, size=b, replace=False)


def _select_bald(view: PoolView, b: int, rng: np.random.Generator) -> np.ndarray:
    return _lowest(-bald_from_moments(*view.require("mean_prob", "mean_entropy")), b)


def _select_entropy(view: PoolView, b: int, rng: np.random.Generator) -> np.ndarray:
    return _lowest(-mean_entropy(*view.require("mean_prob")), b)


def _select_badge(view: PoolView, b: int, rng: np.random.Generator) -> np.ndarray:
    det_probs, hidden = view.require("det_probs", "hidden")
    return badge(det_probs, hidden, b, rng, view.single_label)


def _select_coreset(view: PoolView, b: int, rng: np.random.Generator) -> np.ndarray:
    return kcenter_greedy(view.require("hidden")[0], view.labeled_hidden, b)


_MC, _DET = frozenset({"mc"}), frozenset({"deterministic"})
STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("beal", _MC, _select_beal, score="ec", doc="lowest expected confidence under MC dropout"),
        Strategy(
            "beal-deterministic", _MC, _select_beal, deterministic_passes=True, score="ec", doc="T = 1, no dropout"
        ),
        Strategy("beal-diverse", _MC | _DET, _select_beal_diverse, doc="lowest EC re-ranked for diversity"),
        Strategy("beal-typical", _MC | _DET, _select_beal_typical, doc="lowest EC, typical texts, covered"),
        Strategy("beal-kmeans", _MC | _DET, _select_beal_kmeans, doc="k-means++ on gradients, D^2 / EC rank"),
        Strategy("beal-stochastic", _MC, _select_beal_stochastic, doc="EC batch drawn by rank^-1 (Gumbel-top-k)"),
        Strategy("random", frozenset(), _select_random, doc="uniform sample"),
        Strategy("bald", _MC, _select_bald, doc="highest Bernoulli mutual information, summed over labels"),
        Strategy("entropy", _MC, _select_entropy, doc="highest mean binary entropy of the mean prediction"),
        Strategy("badge", _DET, _select_badge, doc="k-means++ on multi-label gradient embeddings"),
        Strategy("coreset", _DET, _select_coreset, centers=True, doc="greedy k-center on hidden features"),
    )
}


def get_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise AcquisitionError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    return STRATEGIES[name]
