"""Batch rules: which b pool positions to acquire, in order, from scores and features (Core-Set, BADGE and the
EC-based batch rules). Pure NumPy."""

from __future__ import annotations

import numpy as np

from beal_backend.acquisition.scores import EPS, AcquisitionError, normalized_score

# ---------------------------------------------------------------- diversity


def kcenter_greedy(pool: np.ndarray, labeled: np.ndarray | None, b: int) -> np.ndarray:
    """Core-Set: greedy k-center on embeddings; the labeled set are the initial centers.

    Each step takes the pool point farthest from its nearest center. Without labeled points the
    first pick is the point farthest from the pool mean (deterministic). Memory O(N)."""
    x = np.asarray(pool, dtype=np.float64)
    check_budget(len(x), b)
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
    probs: np.ndarray,
    hidden: np.ndarray,
    b: int,
    rng: np.random.Generator,
    single_label: bool = False,
    ec: np.ndarray | None = None,
) -> np.ndarray:
    """BADGE: k-means++ seeding on g_i = (p_i - yhat_i) (x) h_i, the last layer's loss gradient at the
    predicted label yhat_i: every p > 0.5 for sigmoid outputs, the one-hot argmax for a softmax
    (``single_label``: there the argmax is the prediction, even below 0.5).

    ``probs[N, J]`` deterministic probabilities, ``hidden[N, H]`` the head's hidden layer. The N x (J*H)
    gradient matrix is never built: ||g_i - g_k||^2 = |a_i|^2|h_i|^2 + |a_k|^2|h_k|^2 - 2 (a_i.a_k)(h_i.h_k)
    with a = p - yhat. The first center is the largest gradient (as in Ash et al.), then D^2 sampling.

    ``ec`` given (BEAL-kmeans, EC-weighted k-means++ seeding): the first center is the lowest-EC text and each
    text's D^2 is weighted by 1 / its EC rank (rank 1 = lowest), so a batch keeps BEAL's emphasis on low EC
    while BADGE's D^2 spreads it over the gradient space (a covered neighbourhood gives way)."""
    p = np.asarray(probs, dtype=np.float64)
    h = np.asarray(hidden, dtype=np.float64)
    check_budget(len(p), b)
    a = p - (np.eye(p.shape[1])[p.argmax(1)] if single_label else (p > 0.5))
    sq_norm = (a * a).sum(1) * (h * h).sum(1)
    weight, first = np.ones(len(p)), int(np.argmax(sq_norm))
    if ec is not None:
        order = np.argsort(np.asarray(ec, dtype=np.float64), kind="stable")
        weight[order] = 1.0 / np.arange(1, len(p) + 1)
        first = int(order[0])
    chosen = [first]
    d2 = _grad_sq_dist(a, h, sq_norm, first)
    while len(chosen) < b:
        d2[chosen] = 0.0
        mass = weight * d2
        total = mass.sum()
        if total <= EPS:  # all remaining gradients coincide with a center: any of them is as good
            rest = np.setdiff1d(np.arange(len(p)), chosen)
            chosen.extend(rng.choice(rest, size=b - len(chosen), replace=False).tolist())
            break
        pick = int(rng.choice(len(p), p=mass / total))
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
    check_budget(len(ec), b)
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
    check_budget(len(scores), b)
    rank = np.empty(len(scores))
    rank[np.argsort(scores, kind="stable")] = np.arange(1, len(scores) + 1)
    keys = -beta * np.log(rank) + rng.gumbel(size=len(scores))
    return np.argsort(-keys, kind="stable")[:b]


def check_budget(n: int, b: int) -> None:
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
