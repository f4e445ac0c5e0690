"""Acquisition functions: pure NumPy, no torch, no I/O.

Axis order everywhere: ``probs[T, N, J]`` = T stochastic passes, N texts, J labels.
Strategies return *pool positions* (0..N-1) in acquisition order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from beal_backend import typical

EPS = 1e-12


class AcquisitionError(ValueError):
    """The pool or the request cannot be served (empty pool, b too large, missing inputs)."""


# ---------------------------------------------------------------- BEAL (Eqs. 1, 2, 7, 8)


def relevance(y: np.ndarray) -> np.ndarray:
    """Eq. 1: R(y) = 2^y - 1 (R(0) = 0, R(1) = 1)."""
    return np.exp2(y) - 1.0


def harmonic(num_labels: int) -> float:
    """H_J = sum_{k=1..J} 1/k, the largest possible EC; the Label Studio score is EC / H_J."""
    return float(np.sum(1.0 / np.arange(1, num_labels + 1)))


def ec_from_mean_relevance(mean_relevance: np.ndarray) -> np.ndarray:
    """EC from the posterior relevance (1/T) sum_t R(Y^t_j), shape [N, J] -> [N].

    pi-hat is fixed per text, so (1/T) sum_t conf(pi-hat, Y^t) = sum_j meanR_j / pi-hat(j): sort the
    mean relevance descending and dot it with 1/rank. Ties swap equal values, so the tie rule
    (stable sort = lower label index first) cannot change the result."""
    m = np.asarray(mean_relevance, dtype=np.float64)
    ordered = -np.sort(-m, axis=1, kind="stable")
    return ordered @ (1.0 / np.arange(1, m.shape[1] + 1))


def expected_confidence(probs: np.ndarray) -> np.ndarray:
    """Raw expected confidence EC(X) per text from MC-dropout probabilities ``probs[T, N, J]`` -> ``[N]``."""
    p = _check_probs(probs)
    return ec_from_mean_relevance(relevance(p).mean(axis=0))


def normalized_score(ec: np.ndarray, num_labels: int, single_label: bool = False) -> np.ndarray:
    """EC divided by its largest value, in [0, 1]: ascending order is BEAL's acquisition order. The largest
    EC is H_J for independent sigmoids (all ones) and 1 for a softmax vector (one-hot, single-choice)."""
    top = 1.0 if single_label else harmonic(num_labels)
    return np.clip(np.asarray(ec, dtype=np.float64) / top, 0.0, 1.0)


# ---------------------------------------------------------------- other uncertainty scores


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy (nats) of a Bernoulli(p), elementwise; 0 at p in {0, 1}."""
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return -(p * np.log(p) + (1.0 - p) * np.log1p(-p))


def bald_from_moments(mean_prob: np.ndarray, mean_entropy: np.ndarray) -> np.ndarray:
    """BALD for sigmoid outputs: sum_j [H(mean_t p_j) - mean_t H(p_j)], each label a Bernoulli. [N, J] -> [N]."""
    return np.clip(binary_entropy(mean_prob) - mean_entropy, 0.0, None).sum(axis=1)


def bald(probs: np.ndarray) -> np.ndarray:
    """BALD mutual information per text from ``probs[T, N, J]`` (no softmax: labels are independent)."""
    p = _check_probs(probs)
    return bald_from_moments(p.mean(axis=0), binary_entropy(p).mean(axis=0))


def mean_entropy(mean_prob: np.ndarray) -> np.ndarray:
    """Mean binary entropy over labels of the mean prediction, [N, J] -> [N]."""
    return binary_entropy(mean_prob).mean(axis=1)


# ---------------------------------------------------------------- diversity


def kcenter_greedy(pool: np.ndarray, labeled: np.ndarray | None, b: int) -> np.ndarray:
    """Core-Set: greedy k-center on embeddings; the labeled set are the initial centers.

    Each step takes the pool point farthest from its nearest center. Without labeled points the
    first pick is the point farthest from the pool mean (deterministic). Memory O(N)."""
    x = np.asarray(pool, dtype=np.float64)
    _check_budget(len(x), b)
    if labeled is not None and len(labeled):
        nearest = _min_sq_dist(x, np.asarray(labeled, dtype=np.float64))
    else:
        nearest = _sq_dist_to(x, x.mean(axis=0))
    chosen = np.empty(b, dtype=np.int64)
    for i in range(b):
        pick = int(np.argmax(nearest))
        chosen[i] = pick
        nearest = np.minimum(nearest, _sq_dist_to(x, x[pick]))
        nearest[chosen[: i + 1]] = -1.0  # never pick twice, even among exact duplicates
    return chosen


def badge(
    probs: np.ndarray, hidden: np.ndarray, b: int, rng: np.random.Generator, single_label: bool = False
) -> np.ndarray:
    """BADGE: k-means++ seeding on g_i = (p_i - yhat_i) (x) h_i, the last layer's loss gradient at the
    predicted label yhat_i: every p > 0.5 for sigmoid outputs, the one-hot argmax for a softmax
    (``single_label``: there the argmax is the prediction, even below 0.5).

    ``probs[N, J]`` deterministic probabilities, ``hidden[N, H]`` the head's hidden layer. The N x (J*H)
    gradient matrix is never built: ||g_i - g_k||^2 = |a_i|^2|h_i|^2 + |a_k|^2|h_k|^2 - 2 (a_i.a_k)(h_i.h_k)
    with a = p - yhat. The first center is the largest gradient (as in Ash et al.), then D^2 sampling."""
    p = np.asarray(probs, dtype=np.float64)
    h = np.asarray(hidden, dtype=np.float64)
    _check_budget(len(p), b)
    a = p - (np.eye(p.shape[1])[p.argmax(1)] if single_label else (p > 0.5))
    sq_norm = (a * a).sum(1) * (h * h).sum(1)
    chosen = [int(np.argmax(sq_norm))]
    d2 = _grad_sq_dist(a, h, sq_norm, chosen[0])
    while len(chosen) < b:
        d2[chosen] = 0.0
        total = d2.sum()
        if total <= EPS:  # all remaining gradients coincide with a center: any of them is as good
            rest = np.setdiff1d(np.arange(len(p)), chosen)
            chosen.extend(rng.choice(rest, size=b - len(chosen), replace=False).tolist())
            break
        pick = int(rng.choice(len(p), p=d2 / total))
        chosen.append(pick)
        d2 = np.minimum(d2, _grad_sq_dist(a, h, sq_norm, pick))
    return np.asarray(chosen, dtype=np.int64)


def diverse_lowest(
    ec: np.ndarray, num_labels: int, embeddings: np.ndarray, b: int, factor: float = 3.0, single_label: bool = False
) -> np.ndarray:
    """BEAL-diverse: the paper's future work, EC combined with diversity.

    Rule: take the ``ceil(factor * b)`` lowest-EC texts as candidates; pick the lowest-EC one first,
    then greedily the candidate maximising ``(1 - EC/H_J) * d``, where d is its Euclidean distance to
    the nearest text already picked in this batch. ``factor = 1`` is plain BEAL; larger factors trade
    uncertainty for coverage, so near-duplicate uncertain texts do not fill a batch. ``single_label``: EC of
    a softmax vector, whose largest value is 1, not H_J (``normalized_score``)."""
    ec = np.asarray(ec, dtype=np.float64)
    _check_budget(len(ec), b)
    if factor < 1.0:
        raise AcquisitionError(f"diversity factor must be >= 1, got {factor}")
    m = min(len(ec), int(np.ceil(factor * b)))
    cand = np.argsort(ec, kind="stable")[:m]
    x = np.asarray(embeddings, dtype=np.float64)[cand]
    weight = 1.0 - normalized_score(ec[cand], num_labels, single_label) + EPS
    picked = [0]
    nearest = _sq_dist_to(x, x[0])
    while len(picked) < b:
        gain = weight * np.sqrt(np.maximum(nearest, 0.0))
        gain[picked] = -1.0
        nxt = int(np.argmax(gain))
        picked.append(nxt)
        nearest = np.minimum(nearest, _sq_dist_to(x, x[nxt]))
    return cand[np.asarray(picked)]


def stochastic_lowest(scores: np.ndarray, b: int, rng: np.random.Generator, beta: float = 1.0) -> np.ndarray:
    """Stochastic batch acquisition (Kirsch et al., TMLR 2023, "power" / soft-rank form): instead of the b
    lowest scores, draw b texts without replacement, each with probability proportional to rank^-beta
    (rank 1 = lowest score), by Gumbel-top-k. A batch keeps the low-EC emphasis but is not b near-copies
    of the same hard case; beta -> infinity gives the plain top-b."""
    scores = np.asarray(scores, dtype=np.float64)
    _check_budget(len(scores), b)
    rank = np.empty(len(scores))
    rank[np.argsort(scores, kind="stable")] = np.arange(1, len(scores) + 1)
    keys = -beta * np.log(rank) + rng.gumbel(size=len(scores))
    return np.argsort(-keys, kind="stable")[:b]


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
    _check_budget(len(scores), b)
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
    _check_budget(len(ec), b)
    return typical.typical_lowest(ec, 1.0 - normalized_score(ec, view.num_labels), hidden, b)


def _select_random(view: PoolView, b: int, rng: np.random.Generator) -> np.ndarray:
    _check_budget(view.size, b)
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


# ---------------------------------------------------------------- helpers


def _check_probs(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 3 or 0 in p.shape:
        raise AcquisitionError(f"probs must be a non-empty [T, N, J] array, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or p.min() < 0.0 or p.max() > 1.0:
        raise AcquisitionError("probs must be finite probabilities in [0, 1]")
    return p


def _check_budget(n: int, b: int) -> None:
    if n == 0:
        raise AcquisitionError("the pool is empty")
    if not 1 <= b <= n:
        raise AcquisitionError(f"batch size must be in 1..{n} (pool size), got {b}")


def _sq_dist_to(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    d = x - y
    return np.einsum("ij,ij->i", d, d)


def _min_sq_dist(x: np.ndarray, centers: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Squared distance of each row of x to its nearest center, chunked over centers."""
    out = np.full(len(x), np.inf)
    xx = np.einsum("ij,ij->i", x, x)
    for s in range(0, len(centers), chunk):
        c = centers[s : s + chunk]
        d = xx[:, None] + np.einsum("ij,ij->i", c, c)[None, :] - 2.0 * x @ c.T
        out = np.minimum(out, np.maximum(d, 0.0).min(axis=1))
    return out


def _grad_sq_dist(a: np.ndarray, h: np.ndarray, sq_norm: np.ndarray, k: int) -> np.ndarray:
    """||g_i - g_k||^2 for all i, with g = a (x) h, without forming g."""
    return np.maximum(sq_norm + sq_norm[k] - 2.0 * (a @ a[k]) * (h @ h[k]), 0.0)
