"""BEAL-typical: lowest EC, covered without outliers (pure NumPy).

Lowest-EC batches carry outlying texts the features cannot place, and near-copies of one hard case; BADGE's
lead suggests coverage is what plain top-k lacks. This follows TypiClust (Hacohen et al., ICML 2022:
typicality = inverse mean distance to the k nearest neighbours) and ProbCover / DropQuery (a picked text
covers its neighbourhood): among the ``factor * b`` lowest-EC texts, a candidate's weight is its EC
uncertainty times its typicality in the pool; each step takes the heaviest candidate and damps the weights
around it by ``1 - exp(-d^2 / s^2)`` (s: the candidates' median k-NN distance). Distance is never rewarded,
so an outlier is not picked for being far; a neighbourhood already covered gives way to the next one.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-12


def knn_distance(x: np.ndarray, rows: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """Mean Euclidean distance of each ``x[rows]`` to its ``k`` nearest other rows of ``x``, chunked over rows."""
    x = np.asarray(x, dtype=np.float64)
    k = min(k, len(x) - 1)
    if k < 1:
        return np.ones(len(rows))
    xx = np.einsum("ij,ij->i", x, x)
    out = np.empty(len(rows))
    for s in range(0, len(rows), chunk):
        r = rows[s : s + chunk]
        d = np.sqrt(np.maximum(xx[r, None] + xx[None, :] - 2.0 * x[r] @ x.T, 0.0))
        out[s : s + chunk] = np.partition(d, k, axis=1)[:, : k + 1].sum(1) / k  # the k + 1 nearest hold the text
    return out


def typical_lowest(
    ec: np.ndarray, uncertainty: np.ndarray, embeddings: np.ndarray, b: int, factor: float = 3.0, k: int = 10
) -> np.ndarray:
    """``b`` positions, in acquisition order, among the ``ceil(factor * b)`` lowest ``ec``; ``uncertainty``
    (1 - EC / H_J) weighs them, ``embeddings`` [N, H] place them (the head's hidden layer)."""
    m = min(len(ec), int(np.ceil(factor * b)))
    cand = np.argsort(np.asarray(ec, dtype=np.float64), kind="stable")[:m]
    x = np.asarray(embeddings, dtype=np.float64)
    spread = knn_distance(x, cand, k)
    weight = (np.asarray(uncertainty, dtype=np.float64)[cand] + EPS) / (spread + EPS)
    scale = max(float(np.median(spread)) ** 2, EPS)
    xc = x[cand]
    picked: list[int] = []
    while len(picked) < b:
        pick = int(np.argmax(weight))
        picked.append(pick)
        d2 = np.einsum("ij,ij->i", xc - xc[pick], xc - xc[pick])
        weight = weight * (1.0 - np.exp(-d2 / scale))
        weight[picked] = -1.0
    return cand[np.asarray(picked, dtype=np.int64)]
